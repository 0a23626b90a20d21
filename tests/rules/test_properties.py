"""Property tests: round trips of text and JSON, and rewrites that keep `evaluate`'s verdict."""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segsync.rules import ast
from segsync.rules.evaluate import evaluate
from segsync.rules.generate import EXAMPLE_SCHEMA, RuleGenerator
from segsync.rules.normalize import NormalFormTooLarge, cnf, dnf, nnf, simplify
from segsync.rules.parser import RuleSyntaxError, parse
from segsync.rules.printer import to_text
from segsync.rules.typecheck import check_rule


def _load_strategies() -> object:
    name = "segsync_tests_rules_strategies"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, Path(__file__).with_name("strategies.py")
        )
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


strategies = _load_strategies()
rules = strategies.rules  # type: ignore[attr-defined]

SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
SEEDS = st.tuples(st.randoms(use_true_random=False), st.integers(0, 2**32))


@pytest.mark.slow
@SETTINGS
@given(rules)
def test_parse_of_print_is_identity(rule: ast.Rule) -> None:
    """parse(to_text(r)) == r for every rule (groups of two or more items)."""

    assert parse(to_text(rule)) == rule


@pytest.mark.slow
@SETTINGS
@given(rules)
def test_json_round_trip(rule: ast.Rule) -> None:
    """The JSON form loads back to the same rule."""

    assert ast.rule_from_json(ast.rule_to_json(rule)) == rule


def _generated(
    case: tuple[random.Random, int], **kw: object
) -> tuple[RuleGenerator, ast.Rule, list]:  # type: ignore[type-arg]
    """A rule drawn through Hypothesis, and contacts near it from a plain seeded Random."""
    rnd, contact_seed = case
    rule = RuleGenerator(EXAMPLE_SCHEMA, seed=rnd, **kw).rule()  # type: ignore[arg-type]
    generator = RuleGenerator(EXAMPLE_SCHEMA, seed=contact_seed)
    return generator, rule, generator.contacts(8, rule=rule)


def _same_verdicts(generator: RuleGenerator, original: ast.Rule, rewritten: ast.Rule,
                   contacts: list) -> None:  # type: ignore[type-arg]
    for person in contacts:
        expected = evaluate(original, person, now=generator.now, schema=EXAMPLE_SCHEMA)
        actual = evaluate(rewritten, person, now=generator.now, schema=EXAMPLE_SCHEMA)
        assert actual == expected, (to_text(original), to_text(rewritten), person)


@pytest.mark.slow
@SETTINGS
@given(SEEDS)
def test_generated_rules_are_well_typed_and_round_trip(case: tuple[random.Random, int]) -> None:
    """The generator's rules type-check, and print/parse back to themselves."""

    _, rule, _ = _generated(case)

    assert check_rule(rule, EXAMPLE_SCHEMA) == []
    assert parse(to_text(rule)) == rule


@pytest.mark.slow
@SETTINGS
@given(SEEDS)
def test_nnf_preserves_evaluate(case: tuple[random.Random, int]) -> None:
    """NNF selects the same contacts as the rule (unset values included)."""

    generator, rule, contacts = _generated(case)

    _same_verdicts(generator, rule, nnf(rule), contacts)


@pytest.mark.slow
@SETTINGS
@given(SEEDS)
def test_dnf_preserves_evaluate(case: tuple[random.Random, int]) -> None:
    """DNF (when under the cap) selects the same contacts as the rule."""

    generator, rule, contacts = _generated(case)
    try:
        rewritten = dnf(rule, max_terms=128)
    except NormalFormTooLarge:
        return

    _same_verdicts(generator, rule, rewritten, contacts)


@pytest.mark.slow
@SETTINGS
@given(SEEDS)
def test_cnf_preserves_evaluate(case: tuple[random.Random, int]) -> None:
    """CNF (when under the cap) selects the same contacts as the rule."""

    generator, rule, contacts = _generated(case)
    try:
        rewritten = cnf(rule, max_terms=128)
    except NormalFormTooLarge:
        return

    _same_verdicts(generator, rule, rewritten, contacts)


@pytest.mark.slow
@SETTINGS
@given(SEEDS)
def test_simplify_preserves_evaluate(case: tuple[random.Random, int]) -> None:
    """simplify selects the same contacts as the rule."""

    generator, rule, contacts = _generated(case, node_types={"compare", "in", "is_set", "has",
                                                            "const"})

    _same_verdicts(generator, rule, simplify(rule), contacts)


_FRAGMENTS = st.sampled_from([
    "a", "tags", "`x y`", "=", "!=", "<=", ">", "in", "not", "and", "or", "(", ")", "[", "]",
    ",", '"s"', '"\\', "1", "-2.5", "1e3", "2024-01-31", "2024-01-31T08:00:00Z", "true",
    "contains", "starts_with", "is", "set", "has", "within", "days", "hours", "before",
    "after", "between", "#c\n", "\n", "'", "&", "é", "`",
])


@pytest.mark.slow
@SETTINGS
@given(st.one_of(st.text(max_size=40), st.lists(_FRAGMENTS, max_size=12).map(" ".join)))
def test_parse_never_fails_other_than_with_a_syntax_error(text: str) -> None:
    """Any text either parses (and re-prints to itself) or raises RuleSyntaxError."""

    rule, error = _try_parse(text)

    if error is not None:
        assert error.column >= 1
        assert 1 <= error.line <= text.count("\n") + 1
    else:
        assert rule is not None
        assert parse(to_text(rule)) == rule


def _try_parse(text: str) -> tuple[ast.Rule | None, RuleSyntaxError | None]:
    try:
        return parse(text), None
    except RuleSyntaxError as err:
        return None, err
