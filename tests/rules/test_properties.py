"""Property tests: round trips of text and JSON, and rewrites that keep `evaluate`'s verdict."""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segsync.rules import ast
from segsync.rules.evaluate import evaluate
from segsync.rules.generate import EXAMPLE_SCHEMA, RuleGenerator
from segsync.rules.normalize import NormalFormTooLarge, cnf, dnf, nnf, simplify
from segsync.rules.parser import parse
from segsync.rules.printer import to_text
from segsync.rules.typecheck import check_rule


def _load_strategies() -> object:
    name = "segsync_tests_rules_strategies"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, Path(__file__).with_name("strategies.py")
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


strategies = _load_strategies()
rules = strategies.rules  # type: ignore[attr-defined]

SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
SEEDS = st.randoms(use_true_random=False)


@SETTINGS
@given(rules)
def test_parse_of_print_is_identity(rule: ast.Rule) -> None:
    """parse(to_text(r)) == r for every rule (groups of two or more items)."""

    assert parse(to_text(rule)) == rule


@SETTINGS
@given(rules)
def test_json_round_trip(rule: ast.Rule) -> None:
    """The JSON form loads back to the same rule."""

    assert ast.rule_from_json(ast.rule_to_json(rule)) == rule


def _generated(rnd: random.Random, **kw: object) -> tuple[RuleGenerator, ast.Rule, list]:  # type: ignore[type-arg]
    generator = RuleGenerator(EXAMPLE_SCHEMA, seed=rnd, **kw)  # type: ignore[arg-type]
    rule = generator.rule()
    return generator, rule, generator.contacts(8, rule=rule)


def _same_verdicts(generator: RuleGenerator, original: ast.Rule, rewritten: ast.Rule,
                   contacts: list) -> None:  # type: ignore[type-arg]
    for person in contacts:
        expected = evaluate(original, person, now=generator.now, schema=EXAMPLE_SCHEMA)
        actual = evaluate(rewritten, person, now=generator.now, schema=EXAMPLE_SCHEMA)
        assert actual == expected, (to_text(original), to_text(rewritten), person)


@SETTINGS
@given(SEEDS)
def test_generated_rules_are_well_typed_and_round_trip(rnd: random.Random) -> None:
    """The generator's rules type-check, and print/parse back to themselves."""

    _, rule, _ = _generated(rnd)

    assert check_rule(rule, EXAMPLE_SCHEMA) == []
    assert parse(to_text(rule)) == rule


@SETTINGS
@given(SEEDS)
def test_nnf_preserves_evaluate(rnd: random.Random) -> None:
    """NNF selects the same contacts as the rule (unset values included)."""

    generator, rule, contacts = _generated(rnd)

    _same_verdicts(generator, rule, nnf(rule), contacts)


@SETTINGS
@given(SEEDS)
def test_dnf_preserves_evaluate(rnd: random.Random) -> None:
    """DNF (when under the cap) selects the same contacts as the rule."""

    generator, rule, contacts = _generated(rnd)
    try:
        rewritten = dnf(rule, max_terms=128)
    except NormalFormTooLarge:
        return

    _same_verdicts(generator, rule, rewritten, contacts)


@SETTINGS
@given(SEEDS)
def test_cnf_preserves_evaluate(rnd: random.Random) -> None:
    """CNF (when under the cap) selects the same contacts as the rule."""

    generator, rule, contacts = _generated(rnd)
    try:
        rewritten = cnf(rule, max_terms=128)
    except NormalFormTooLarge:
        return

    _same_verdicts(generator, rule, rewritten, contacts)


@SETTINGS
@given(SEEDS)
def test_simplify_preserves_evaluate(rnd: random.Random) -> None:
    """simplify selects the same contacts as the rule."""

    generator, rule, contacts = _generated(rnd, node_types={"compare", "in", "is_set", "has",
                                                            "const"})

    _same_verdicts(generator, rule, simplify(rule), contacts)
