"""NNF, DNF, CNF and simplification: shapes, the unset-preserving rewrites, the size cap."""

from __future__ import annotations

import time

import pytest

from segsync.rules import ast
from segsync.rules.normalize import NormalFormTooLarge, cnf, dnf, nnf, simplify
from segsync.rules.parser import parse
from segsync.rules.printer import to_text


def text_of(fn: object, text: str, **kw: int) -> str:
    return to_text(fn(parse(text), **kw))  # type: ignore[operator]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('not country = "FR"', 'country != "FR" or country is not set'),
        ('not country != "FR"', 'country = "FR" or country is not set'),
        ("not x < 5", "x >= 5 or x is not set"),
        ("not x <= 5", "x > 5 or x is not set"),
        ("not x > 5", "x <= 5 or x is not set"),
        ("not x >= 5", "x < 5 or x is not set"),
        ('not c in ["FR", "BE"]', 'c not in ["FR", "BE"] or c is not set'),
        ('not c not in ["FR"]', 'c in ["FR"] or c is not set'),
        ("not x is set", "x is not set"),
        ("not x is not set", "x is set"),
        ('not tags has "vip"', 'not tags has "vip"'),
        ('not email contains "a"', 'not email contains "a"'),
        ("not d within 3 days", "not d within 3 days"),
        ("not d before 2024-01-01", 'not d before "2024-01-01"'),
        ("not n between 1 and 2", "not n between 1 and 2"),
        ("not not x = 1", "x = 1"),
        ("not not not x is set", "x is not set"),
        ("not (a = 1 and b = 2)", "a != 1 or a is not set or b != 2 or b is not set"),
        ("not (a is set or b is set)", "a is not set and b is not set"),
        ("(a = 1 and (b = 1 and c = 1)) or (d = 1 or e = 1)",
         "a = 1 and b = 1 and c = 1 or d = 1 or e = 1"),
        ("a = 1 and true", "a = 1"),
        ("a = 1 and false", "false"),
        ("a = 1 or not false", "true"),
        ("not (a = 1 and a < 3)", "a != 1 or a is not set or a >= 3"),
    ],
)
def test_nnf(text: str, expected: str) -> None:
    """NOT goes down to the leaves, adding the unset case back where it complements."""

    assert expected == text_of(nnf, text)


def test_nnf_result_has_negation_only_on_leaves() -> None:
    """After NNF, a Not never holds a group or another Not."""

    rule = nnf(parse('not (a = 1 or not (b has "x" and not c contains "y"))'))

    def check(node: ast.Rule) -> None:
        if isinstance(node, ast.Not):
            assert not isinstance(node.item, ast.And | ast.Or | ast.Not)
        for child in getattr(node, "items", ()):
            check(child)

    check(rule)
    assert to_text(rule) == '(a != 1 or a is not set) and b has "x" and not c contains "y"'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a = 1 and (b = 1 or c = 1)", "a = 1 and b = 1 or a = 1 and c = 1"),
        ("(a = 1 or b = 1) and (c = 1 or d = 1)",
         "a = 1 and c = 1 or a = 1 and d = 1 or b = 1 and c = 1 or b = 1 and d = 1"),
        ("a = 1 or (a = 1 and b = 1)", "a = 1"),
        ("a = 1 and (b = 1 or c = 1) and b = 1", "a = 1 and b = 1"),
        ('tags has "x" and (not tags has "x" or b = 1)', 'tags has "x" and b = 1'),
        ('tags has "x" and not tags has "x"', "false"),
        ("a = 1", "a = 1"),
        ("a = 1 and b = 1", "a = 1 and b = 1"),
        ("true", "true"),
    ],
)
def test_dnf(text: str, expected: str) -> None:
    """DNF is an Or of Ands of leaves; absorbed and contradictory terms are dropped."""

    assert expected == text_of(dnf, text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a = 1 or b = 1 and c = 1", "(a = 1 or b = 1) and (a = 1 or c = 1)"),
        ("a = 1 and (a = 1 or b = 1)", "a = 1"),
        ('tags has "x" or not tags has "x"', "true"),
        ("a = 1 or b = 1", "a = 1 or b = 1"),
        ("not (a = 1 and b = 2)", "a != 1 or a is not set or b != 2 or b is not set"),
    ],
)
def test_cnf(text: str, expected: str) -> None:
    """CNF is an And of Ors of leaves; a single clause collapses to its Or."""

    assert expected == text_of(cnf, text)


def test_dnf_shape() -> None:
    """Every DNF term is a leaf or an And of leaves (negated leaves allowed)."""

    rule = dnf(parse("(a = 1 or not (b = 1 and c has \"x\")) and (d is set or e < 3)"))

    assert isinstance(rule, ast.Or)
    for term in rule.items:
        leaves = term.items if isinstance(term, ast.And) else (term,)
        for leaf in leaves:
            assert not isinstance(leaf, ast.And | ast.Or)


def test_cnf_size_cap_is_reported_quickly() -> None:
    """20 ORs of 2-item ANDs under CNF (2**20 clauses) raises at once with size and cap."""

    rule = ast.Or(items=tuple(
        ast.And(items=(ast.IsSet(field=f"a{i}"), ast.IsSet(field=f"b{i}"))) for i in range(20)
    ))
    started = time.perf_counter()

    with pytest.raises(NormalFormTooLarge) as info:
        cnf(rule, max_terms=64)

    assert time.perf_counter() - started < 0.5
    assert (info.value.estimated, info.value.cap, info.value.form) == (2**20, 64, "CNF")
    assert str(info.value) == "CNF would have up to 1,048,576 clauses, over the cap of 64"
    assert dnf(rule, max_terms=64) == rule


def test_dnf_size_cap() -> None:
    """DNF of an AND of many ORs is refused from the estimate, before any work."""

    rule = ast.And(items=tuple(
        ast.Or(items=tuple(ast.IsSet(field=f"f{i}_{j}") for j in range(3))) for i in range(40)
    ))
    started = time.perf_counter()

    with pytest.raises(NormalFormTooLarge, match="DNF would have up to about 1e19 terms"):
        dnf(rule, max_terms=1000)

    assert time.perf_counter() - started < 0.5


def test_cap_is_inclusive() -> None:
    """A form of exactly `max_terms` terms is built."""

    rule = parse("(a = 1 or b = 1) and (c = 1 or d = 1)")

    assert len(dnf(rule, max_terms=4).items) == 4  # type: ignore[union-attr]
    with pytest.raises(NormalFormTooLarge):
        dnf(rule, max_terms=3)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a = 1 or (a = 1 and b = 1)", "a = 1"),
        ("a = 1 and (a = 1 or b = 1)", "a = 1"),
        ("a = 1 and a = 1 and b = 1", "a = 1 and b = 1"),
        ("a = 1 and not a = 1", "false"),
        ("a = 1 or not a = 1", "true"),
        ("not not a = 1", "a = 1"),
        ("not true", "false"),
        ("a in []", "false"),
        ("a not in []", "a is set"),
        ('a in ["x", "x", 1]', 'a in ["x", 1]'),
        ("(a = 1 and b = 1) and c = 1", "a = 1 and b = 1 and c = 1"),
        ("not (a = 1 or a = 1)", "not a = 1"),
        ("b = 1 or (a = 1 and b = 1) or (a = 1 and b = 1 and c = 1)", "b = 1"),
    ],
)
def test_simplify(text: str, expected: str) -> None:
    """simplify removes duplicates, absorbed items, complements and constants."""

    assert expected == text_of(simplify, text)
