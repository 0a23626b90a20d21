"""The printer: every operator, minimal parentheses, and the documented edge cases."""

from __future__ import annotations

import pytest

from segsync.rules import ast
from segsync.rules.parser import parse
from segsync.rules.printer import format_field, to_text

a, b, c = (ast.Compare(field=n, op=ast.CompareOp.EQ, value=1) for n in "abc")


@pytest.mark.parametrize(
    "text",
    [
        'country = "FR"',
        'country != "FR"',
        "age < 18",
        "age <= 18",
        "open_rate > 0.5",
        "open_rate >= -150.0",
        "big > 1e+20",
        "vip = true",
        'consent = "subscribed"',
        'country in ["FR", "BE"]',
        "orders in []",
        'country not in ["FR", 1, false]',
        'email contains "@gmail"',
        'name starts_with "An"',
        'email ends_with ".fr"',
        "phone is set",
        "phone is not set",
        'tags has "vip"',
        "last_open within 30 days",
        "last_open within 1 day",
        "last_open within 0 hours",
        "last_open within 1 hour",
        'signup before "2024-01-31"',
        'signup after "2024-01-31T08:30:00Z"',
        "ltv between 100 and 500.5",
        'signup between "2024-01-01" and "2024-03-31"',
        "true",
        "false",
        '`first name` = "Zoë"',
        "`and` is set",
        '`2fa` = "x"',
        'note = "say \\"hi\\"\\n"',
    ],
)
def test_every_operator_prints_canonically(text: str) -> None:
    """Canonical text prints back identically."""

    assert text == to_text(parse(text))


@pytest.mark.parametrize(
    ("rule", "text"),
    [
        (ast.Or(items=(ast.And(items=(a, b)), c)), "a = 1 and b = 1 or c = 1"),
        (ast.And(items=(ast.Or(items=(a, b)), c)), "(a = 1 or b = 1) and c = 1"),
        (ast.And(items=(ast.And(items=(a, b)), c)), "(a = 1 and b = 1) and c = 1"),
        (ast.Or(items=(a, ast.Or(items=(b, c)))), "a = 1 or (b = 1 or c = 1)"),
        (ast.Not(item=ast.And(items=(a, b))), "not (a = 1 and b = 1)"),
        (ast.Not(item=ast.Not(item=a)), "not not a = 1"),
        (ast.And(items=(ast.Not(item=a), b)), "not a = 1 and b = 1"),
        (ast.Or(items=(ast.Const(value=True), a)), "true or a = 1"),
    ],
)
def test_minimal_parentheses(rule: ast.Rule, text: str) -> None:
    """Parentheses appear only where precedence or nesting needs them, and the tree survives."""

    assert text == to_text(rule)
    assert parse(text) == rule


def test_one_item_group_prints_as_its_item() -> None:
    """A one-item And/Or means its item: it prints (and so re-parses) as the item."""

    rule = ast.And(items=(ast.Or(items=(a,)),))

    assert to_text(rule) == "a = 1"
    assert to_text(ast.Not(item=ast.And(items=(ast.Or(items=(a, b)),)))) == \
        "not (a = 1 or b = 1)"


def test_unprintable_values_raise() -> None:
    """NaN, infinities and field names with a backquote have no text form."""

    with pytest.raises(ValueError, match="no text form"):
        to_text(ast.Compare(field="x", op=ast.CompareOp.EQ, value=float("nan")))
    with pytest.raises(ValueError, match="no text form"):
        format_field("a`b")
