"""The AST -> text printer, the inverse of `segsync.rules.parser`.

`to_text` prints the fewest parentheses that keep the tree: ``or`` binds loosest, then
``and``, then ``not``, then a condition. A group nested directly in a group of the same kind
is parenthesised, so ``(a and b) and c`` stays an `And` inside an `And`.

Contract: ``parse(to_text(rule)) == rule`` for every rule whose `And`/`Or` nodes have two or
more items. A one-item group means its item and prints as it (``And(items=(x,))`` prints as
``x`` and parses back as ``x``). `Const` prints as ``true``/``false`` and parses back as
`Const`. Strings print double-quoted with JSON escapes; field names that are not plain
identifiers, or are keywords, print in backquotes. Floats print with `repr` (``0.5``,
``1e+20``); NaN and infinities have no text form and raise `ValueError`.
"""

from __future__ import annotations

import json
import math
import re

from segsync.rules import ast
from segsync.rules.parser import KEYWORDS

__all__ = ["format_field", "format_literal", "to_text"]

_PLAIN_FIELD = re.compile(r"[^\W\d][\w.]*")
_OR, _AND, _NOT, _LEAF = 1, 2, 3, 4


def format_field(name: str) -> str:
    """A field name as the parser reads it: bare, or in backquotes when it must be."""
    if _PLAIN_FIELD.fullmatch(name) and name not in KEYWORDS:
        return name
    if not name or "`" in name or "\n" in name:
        raise ValueError(f"field name {name!r} has no text form (empty, '`' or a newline)")
    return f"`{name}`"


def format_literal(value: ast.Scalar) -> str:
    """A literal value as rule text: ``"text"``, ``12``, ``0.5``, ``true``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} has no text form")
        return repr(value)
    return json.dumps(value, ensure_ascii=False)


def _unwrap(rule: ast.Rule) -> ast.Rule:
    while isinstance(rule, ast.And | ast.Or) and len(rule.items) == 1:
        rule = rule.items[0]
    return rule


def _precedence(rule: ast.Rule) -> int:
    if isinstance(rule, ast.Or):
        return _OR
    if isinstance(rule, ast.And):
        return _AND
    if isinstance(rule, ast.Not):
        return _NOT
    return _LEAF


def _child(rule: ast.Rule, parent: int) -> str:
    """Print `rule` as an operand of a node of precedence `parent`."""
    rule = _unwrap(rule)
    text = _print(rule)
    # A same-kind group is parenthesised too, so that nesting survives a re-parse.
    return f"({text})" if _precedence(rule) <= parent else text


def _print(rule: ast.Rule) -> str:
    rule = _unwrap(rule)
    match rule:
        case ast.Or(items=items):
            return " or ".join(_child(item, _OR) for item in items)
        case ast.And(items=items):
            return " and ".join(_child(item, _AND) for item in items)
        case ast.Not(item=item):
            inner = _unwrap(item)
            text = _print(inner)
            return f"not ({text})" if _precedence(inner) < _NOT else f"not {text}"
        case ast.Const(value=value):
            return "true" if value else "false"
        case _:
            return _leaf(rule)


def _leaf(rule: ast.Rule) -> str:
    name = format_field(getattr(rule, "field", ""))
    match rule:
        case ast.Compare(op=op, value=value):
            return f"{name} {op.value} {format_literal(value)}"
        case ast.In(values=values, negated=negated):
            listed = ", ".join(format_literal(v) for v in values)
            return f"{name} {'not in' if negated else 'in'} [{listed}]"
        case ast.TextMatch(op=op, value=value):
            return f"{name} {op.value} {format_literal(value)}"
        case ast.IsSet(negated=negated):
            return f"{name} is {'not set' if negated else 'set'}"
        case ast.Has(value=value):
            return f"{name} has {format_literal(value)}"
        case ast.Within(amount=amount, unit=unit):
            word = unit.value[:-1] if amount == 1 else unit.value
            return f"{name} within {amount} {word}"
        case ast.DateCmp(op=op, value=value):
            return f"{name} {op.value} {format_literal(value)}"
        case ast.Between(low=low, high=high):
            return f"{name} between {format_literal(low)} and {format_literal(high)}"
    raise TypeError(f"not a rule node: {rule!r}")  # pragma: no cover - the union is closed


def to_text(rule: ast.Rule) -> str:
    """The text form of a rule, with minimal parentheses (see the module docstring)."""
    return _print(rule)
