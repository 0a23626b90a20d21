"""The seeded generator: reproducible, well-typed, restrictable, and hitting boundaries."""

from __future__ import annotations

import collections
import datetime as dt
import random

import pytest

from segsync.model import FieldSpec, FieldType, Schema
from segsync.rules import ast
from segsync.rules.evaluate import evaluate, read_value
from segsync.rules.generate import (
    EXAMPLE_SCHEMA,
    LEAF_TYPES,
    RuleGenerator,
    generate_contacts,
    generate_rule,
    literals_of,
)
from segsync.rules.printer import to_text
from segsync.rules.typecheck import check_rule


def _walk(rule: ast.Rule) -> list[ast.Rule]:
    nodes = [rule]
    for child in getattr(rule, "items", ()):
        nodes.extend(_walk(child))
    if isinstance(rule, ast.Not):
        nodes.extend(_walk(rule.item))
    return nodes


def _depth(rule: ast.Rule) -> int:
    """Connective levels, `not` included."""
    children = [*getattr(rule, "items", ())] + ([rule.item] if isinstance(rule, ast.Not) else [])
    return 1 + max(_depth(c) for c in children) if children else 0


def test_same_seed_same_output() -> None:
    """A seed reproduces rules and contacts exactly; another seed differs."""

    def run(seed: int) -> tuple[list[str], list[str]]:
        generator = RuleGenerator(seed=seed)
        rules = [to_text(generator.rule()) for _ in range(20)]
        contacts = [c.model_dump_json() for c in generator.contacts(10)]
        return rules, contacts

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_rules_are_well_typed_and_bounded() -> None:
    """Generated rules type-check and respect the depth and width bounds."""

    generator = RuleGenerator(seed=11, max_depth=3, max_items=4, max_leaves=7)
    sizes = set()

    for _ in range(500):
        rule = generator.rule()
        assert check_rule(rule, EXAMPLE_SCHEMA) == []
        for node in _walk(rule):
            if isinstance(node, ast.And | ast.Or):
                assert 2 <= len(node.items) <= 4
        assert _depth(rule) <= 3
        sizes.add(sum(1 for n in _walk(rule) if not isinstance(n, ast.And | ast.Or | ast.Not)))

    assert max(sizes) == 7


def test_node_types_and_connectives_can_be_restricted() -> None:
    """Only the requested leaf types and connectives appear."""

    generator = RuleGenerator(seed=5, node_types={"compare", "has"}, connectives={"and"})
    seen: set[str] = set()

    for _ in range(300):
        seen.update(node.type for node in _walk(generator.rule()))

    assert seen == {"compare", "has", "and"}


def test_every_leaf_type_is_generated_by_default() -> None:
    """With no restriction, every leaf type and connective shows up."""

    generator = RuleGenerator(seed=1)
    seen: collections.Counter[str] = collections.Counter()

    for _ in range(400):
        seen.update(node.type for node in _walk(generator.rule()))

    assert set(seen) == LEAF_TYPES | {"and", "or", "not"}


def test_unknown_restrictions_are_rejected() -> None:
    """Typos in node types or connectives raise; a schema with nothing to draw raises."""

    with pytest.raises(ValueError, match="unknown node types"):
        RuleGenerator(node_types={"comparison"})
    with pytest.raises(ValueError, match="unknown connectives"):
        RuleGenerator(connectives={"xor"})
    with pytest.raises(ValueError, match="no field of the schema supports"):
        RuleGenerator(Schema(), node_types={"within"})


def test_each_leaf_type_is_both_true_and_false_on_generated_contacts() -> None:
    """Literals and contact values collide: every leaf type matches some and misses some."""

    outcomes: dict[str, set[bool]] = collections.defaultdict(set)
    for leaf_type in sorted(LEAF_TYPES):
        generator = RuleGenerator(seed=2, node_types={leaf_type}, max_depth=0)
        for _ in range(60):
            rule = generator.rule()
            for person in generator.contacts(5, rule=rule):
                outcomes[leaf_type].add(
                    evaluate(rule, person, now=generator.now, schema=EXAMPLE_SCHEMA)
                )

    assert {k: v for k, v in outcomes.items() if v != {True, False}} == {}


def test_equality_is_hit_often() -> None:
    """Over a third of generated `=` conditions on set values hold."""

    generator = RuleGenerator(seed=9, node_types={"compare"}, max_depth=0)
    hits = total = 0
    for _ in range(300):
        rule = generator.rule()
        assert isinstance(rule, ast.Compare)
        if rule.op is not ast.CompareOp.EQ:
            continue
        for person in generator.contacts(4, rule=rule):
            if read_value(person, rule.field, EXAMPLE_SCHEMA)[1] is None:
                continue
            total += 1
            hits += evaluate(rule, person, now=generator.now, schema=EXAMPLE_SCHEMA)

    assert total > 100
    assert hits / total > 1 / 3


def test_within_boundaries_are_generated() -> None:
    """Contacts near a `within` rule include the exact boundary instant."""

    generator = RuleGenerator(seed=4)
    rule = ast.Within(field="last_open", amount=7)
    edge = generator.now - dt.timedelta(days=7)

    values = {c.value("last_open") for c in generator.contacts(200, rule=rule)}

    assert edge in values
    assert edge - dt.timedelta(seconds=1) in values


def test_contacts_include_unset_unicode_and_tags() -> None:
    """Generated contacts have unset values, empty strings, non-ASCII text and tags."""

    contacts = RuleGenerator(seed=8).contacts(200)

    firsts = [c.fields.get("first_name") for c in contacts]
    assert None in firsts
    assert "" in firsts
    assert any(isinstance(v, str) and not v.isascii() for v in firsts)
    assert any(c.tags for c in contacts)
    assert any(not c.tags for c in contacts)
    assert len({c.email for c in contacts}) == 200
    assert all("open_rate" not in c.fields for c in contacts)
    assert any(c.engagement.get("open_rate") is not None for c in contacts)


def test_literals_of() -> None:
    """literals_of lists every literal by field."""

    rule = ast.And(items=(
        ast.In(field="country", values=("FR", "BE")),
        ast.Not(item=ast.Between(field="ltv", low=1, high=2)),
        ast.Within(field="last_open", amount=3),
    ))

    assert literals_of(rule) == {
        "country": ["FR", "BE"],
        "ltv": [1, 2],
        "last_open": [("within", 3, ast.TimeUnit.DAYS)],
    }


def test_function_forms_for_the_conformance_kit() -> None:
    """generate_rule / generate_contacts draw from a caller's Random and ignore connectives."""

    schema = Schema(fields={"country": FieldSpec(type=FieldType.ENUM, options=("FR", "BE"))})
    rng = random.Random(0)

    contacts = generate_contacts(schema, 10, rng)
    rule = generate_rule(schema, rng, node_types=["and", "compare", "in", "or"])

    assert len(contacts) == 10
    assert check_rule(rule, schema) == []
    assert {n.type for n in _walk(rule)} <= {"and", "or", "not", "compare", "in"}
