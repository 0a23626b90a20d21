"""Load-time checks of a rule against a `segsync.model.Schema`, and `load_rule`.

Every problem is reported (not only the first), each with the node's path and, for rules
parsed from text, the line, column and a caret under the offending token:

- unknown fields (with "did you mean"),
- an operator that does not apply to the field's type (`has` on a non-multi-valued field,
  `within`/`before`/`after` on a non-date field, ordering on text, ...),
- literals of the wrong type (a number field compared with a string, a text field with a
  number), enum values not among the field's options, consent values that are not a
  `ConsentStatus`, dates that are not ISO-8601, `between` bounds in the wrong order.

Built-in names: `email` (text), `tags` (multi-valued, open), `consent` (enum of the
`ConsentStatus` values). Engagement fields are ordinary schema fields marked `read_only`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

from pydantic import ValidationError

from segsync.engagement import split_qualified
from segsync.model import ConsentStatus, FieldSpec, FieldType, Schema
from segsync.rules import ast
from segsync.rules.parser import (
    NodePath,
    NodeSpans,
    RuleError,
    Span,
    did_you_mean,
    parse_with_spans,
    render_caret,
)

__all__ = [
    "BUILTIN_FIELDS",
    "OPERATORS_BY_KIND",
    "FieldKind",
    "RuleIssue",
    "RuleTypeError",
    "check_rule",
    "field_kind",
    "field_spec",
    "load_rule",
    "parse_iso",
]

BUILTIN_FIELDS: Mapping[str, FieldSpec] = {
    "email": FieldSpec(type=FieldType.TEXT, description="the contact's email (built in)"),
    "tags": FieldSpec(type=FieldType.MULTI_ENUM, description="the contact's tags (built in)"),
    "consent": FieldSpec(
        type=FieldType.ENUM,
        options=tuple(status.value for status in ConsentStatus),
        description="email marketing consent (built in)",
    ),
}
"""The names every rule may use, whatever the schema declares."""


class FieldKind(enum.StrEnum):
    """How the rule language treats a field type."""

    TEXT = "text"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATE = "date"
    ENUM = "enum"
    MULTI = "multi-valued"


_KIND_OF_TYPE: Mapping[FieldType, FieldKind] = {
    FieldType.TEXT: FieldKind.TEXT,
    FieldType.PHONE: FieldKind.TEXT,
    FieldType.NUMBER: FieldKind.NUMBER,
    FieldType.INTEGER: FieldKind.NUMBER,
    FieldType.BOOLEAN: FieldKind.BOOLEAN,
    FieldType.DATE: FieldKind.DATE,
    FieldType.DATETIME: FieldKind.DATE,
    FieldType.ENUM: FieldKind.ENUM,
    FieldType.MULTI_ENUM: FieldKind.MULTI,
}

_ORDERING = ("<", "<=", ">", ">=")
OPERATORS_BY_KIND: Mapping[FieldKind, frozenset[str]] = {
    FieldKind.TEXT: frozenset({"=", "!=", "in", "text", "is_set"}),
    FieldKind.NUMBER: frozenset({"=", "!=", *_ORDERING, "in", "is_set", "between"}),
    FieldKind.BOOLEAN: frozenset({"=", "!=", "in", "is_set"}),
    FieldKind.DATE: frozenset(
        {"=", "!=", *_ORDERING, "in", "is_set", "within", "date", "between"}
    ),
    FieldKind.ENUM: frozenset({"=", "!=", "in", "is_set"}),
    FieldKind.MULTI: frozenset({"has", "is_set"}),
}
"""Which operators apply to which kind of field (keys: compare ops, else node `type`)."""

_OPERATOR_NEEDS: Mapping[str, str] = {
    "<": "a number or date field",
    "text": "a text field",
    "has": "a multi-valued field (tags or a multi_enum field)",
    "within": "a date or datetime field",
    "date": "a date or datetime field",
    "between": "a number or date field",
    "=": "a single-valued field",
    "in": "a single-valued field",
}

_ISO = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
)


def parse_iso(text: str) -> dt.date | dt.datetime | None:
    """An ISO-8601 date (``2024-01-31``) or datetime (UTC when no offset); None if neither."""
    if not isinstance(text, str) or not _ISO.fullmatch(text):
        return None
    try:
        if len(text) == 10:
            return dt.date.fromisoformat(text)
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def field_spec(schema: Schema | None, name: str) -> FieldSpec | None:
    """The spec of a built-in or declared field; None when the name is unknown."""
    builtin = BUILTIN_FIELDS.get(name)
    if builtin is not None:
        return builtin
    return schema.get(name) if schema is not None else None


def field_kind(spec: FieldSpec) -> FieldKind:
    """How rules treat a field of this spec."""
    return _KIND_OF_TYPE[spec.type]


@dataclasses.dataclass(frozen=True)
class RuleIssue:
    """One problem in a rule: the message, the node's path, and where in the text if known."""

    message: str
    path: NodePath
    span: Span | None = None

    def render(self, source: str | None) -> str:
        """`line L, column C: message` and a caret line (or the node path without text)."""
        if self.span is None or source is None:
            where = "/".join(map(str, self.path)) or "root"
            return f"at node {where}: {self.message}"
        return (f"line {self.span.line}, column {self.span.column}: {self.message}\n"
                f"{render_caret(source, self.span)}")


class RuleTypeError(RuleError):
    """A rule that does not fit the schema; `issues` lists every problem found."""

    def __init__(self, issues: list[RuleIssue], source: str | None = None) -> None:
        self.issues = tuple(issues)
        self.source = source
        head = "1 problem" if len(issues) == 1 else f"{len(issues)} problems"
        body = "\n".join(issue.render(source) for issue in issues)
        super().__init__(f"{head} in rule:\n{body}")

    @property
    def line(self) -> int | None:
        """The line of the first issue (None for rules not parsed from text)."""
        span = self.issues[0].span if self.issues else None
        return span.line if span else None

    @property
    def column(self) -> int | None:
        """The column of the first issue (None for rules not parsed from text)."""
        span = self.issues[0].span if self.issues else None
        return span.column if span else None


def _walk(rule: ast.Rule, path: NodePath = ()) -> Iterator[tuple[NodePath, ast.Rule]]:
    yield path, rule
    if isinstance(rule, ast.And | ast.Or):
        for index, item in enumerate(rule.items):
            yield from _walk(item, (*path, index))
    elif isinstance(rule, ast.Not):
        yield from _walk(rule.item, (*path, 0))


def _operator_key(node: ast.Rule) -> str:
    if isinstance(node, ast.Compare):
        return node.op.value
    return node.type


def _literal_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "the boolean"
    if isinstance(value, int | float):
        return "the number"
    return "the string"


class _Checker:
    def __init__(self, schema: Schema, spans: Mapping[NodePath, NodeSpans] | None) -> None:
        self.schema = schema
        self.spans = spans or {}
        self.issues: list[RuleIssue] = []

    def report(self, message: str, path: NodePath, what: str = "node", index: int = 0) -> None:
        spans = self.spans.get(path)
        span: Span | None = None
        if spans is not None:
            span = spans.node
            if what == "field" and spans.field is not None:
                span = spans.field
            elif what == "value" and index < len(spans.values):
                span = spans.values[index]
        self.issues.append(RuleIssue(message, path, span))

    def check(self, rule: ast.Rule) -> list[RuleIssue]:
        for path, node in _walk(rule):
            if isinstance(node, ast.And | ast.Or | ast.Not | ast.Const):
                continue
            self.leaf(node, path)
        return self.issues

    def leaf(self, node: ast.Rule, path: NodePath) -> None:
        name: str = getattr(node, "field", "")
        spec = field_spec(self.schema, name)
        if spec is None:
            self.report(self._unknown(name), path, "field")
            return
        kind = field_kind(spec)
        op = _operator_key(node)
        if op not in OPERATORS_BY_KIND[kind]:
            needs = _OPERATOR_NEEDS.get("<" if op in _ORDERING else op, "another field type")
            if op == "!=":
                needs = _OPERATOR_NEEDS["="]
            shown = {"text": getattr(node, "op", op), "date": getattr(node, "op", op),
                     "is_set": "is set"}.get(op, op)
            advice = f"; use '{name} has \"...\"'" if kind is FieldKind.MULTI else ""
            self.report(f"'{shown}' does not apply to {kind.value} field '{name}' "
                        f"({spec.type.value}); it needs {needs}{advice}", path)
            return
        match node:
            case ast.Within(unit=unit) if spec.recurring and unit is not ast.TimeUnit.DAYS:
                self.report(f"'{name}' is a recurring date: its anniversary is a day, so "
                            f"'within' takes days, not {unit.value}", path)
            case ast.Compare(value=value):
                self.literal(value, spec, kind, name, path, 0)
            case ast.In(values=values):
                for index, value in enumerate(values):
                    self.literal(value, spec, kind, name, path, index)
            case ast.Has(value=value) | ast.TextMatch(value=value):
                self.literal(value, spec, kind, name, path, 0)
            case ast.DateCmp(value=value):
                self.literal(value, spec, kind, name, path, 0)
            case ast.Between(low=low, high=high):
                ok = self.literal(low, spec, kind, name, path, 0)
                ok = self.literal(high, spec, kind, name, path, 1) and ok
                if ok and _bounds_reversed(low, high, kind):
                    self.report(f"'between' bounds are in the wrong order: "
                                f"{low!r} is after {high!r} (the rule would match nobody)",
                                path)

    def _unknown(self, name: str) -> str:
        """Why `name` is unknown: a platform that is not configured, or the closest name."""
        qualified = split_qualified(name)
        if qualified is not None:
            configured = sorted({q[0] for n in self.schema.names()
                                 if (q := split_qualified(n)) is not None})
            if qualified[0] not in configured:
                return (f"'{name}' is engagement of platform '{qualified[0]}', which is not "
                        f"configured{did_you_mean(qualified[0], configured)} (configured: "
                        f"{', '.join(configured) or 'none'})")
        return f"unknown field '{name}'{did_you_mean(name, self.schema.names())}"

    def literal(self, value: Any, spec: FieldSpec, kind: FieldKind, name: str,
                path: NodePath, index: int) -> bool:
        problem = _literal_problem(value, spec, kind, name)
        if problem:
            self.report(problem, path, "value", index)
        return problem is None


def _bounds_reversed(low: Any, high: Any, kind: FieldKind) -> bool:
    """Whether `low` is after `high` (dates at the coarser granularity of the two)."""
    if kind is not FieldKind.DATE:
        return bool(low > high)
    lo, hi = parse_iso(low), parse_iso(high)
    if isinstance(lo, dt.datetime) and isinstance(hi, dt.datetime):
        return lo > hi
    return _day(lo) > _day(hi)


def _day(value: Any) -> dt.date:
    return value.astimezone(dt.UTC).date() if isinstance(value, dt.datetime) else value


def _literal_problem(value: Any, spec: FieldSpec, kind: FieldKind, name: str) -> str | None:
    shown = json.dumps(value, ensure_ascii=False)
    kind_of_value = _literal_kind(value)
    match kind:
        case FieldKind.TEXT:
            if not isinstance(value, str):
                return (f"text field '{name}' compared with {kind_of_value} {shown}; "
                        f"quote it: \"{value}\"" if not isinstance(value, bool)
                        else f"text field '{name}' compared with {kind_of_value} {shown}")
        case FieldKind.NUMBER:
            if isinstance(value, bool) or not isinstance(value, int | float):
                return f"number field '{name}' compared with {kind_of_value} {shown}"
            if not math.isfinite(value):
                return f"number field '{name}' compared with {value!r}, not a finite number"
            low, high = spec.minimum, spec.maximum
            if (low is not None and value < low) or (high is not None and value > high):
                hint = (f" (for {value:g} % write {value / 100:g})"
                        if low == 0 and high == 1 and 1 < value <= 100 else "")
                return (f"'{name}' is from {low if low is not None else -math.inf:g} to "
                        f"{high if high is not None else math.inf:g}; {shown} is outside{hint}")
        case FieldKind.BOOLEAN:
            if not isinstance(value, bool):
                return f"boolean field '{name}' compared with {kind_of_value} {shown}; " \
                       "use true or false"
        case FieldKind.DATE:
            if not isinstance(value, str) or parse_iso(value) is None:
                return (f"date field '{name}' compared with {kind_of_value} {shown}; "
                        "use an ISO date such as 2024-01-31 or 2024-01-31T08:00:00Z")
        case FieldKind.ENUM | FieldKind.MULTI:
            if not isinstance(value, str):
                return f"{kind.value} field '{name}' compared with {kind_of_value} {shown}"
            if spec.options and value not in spec.options:
                what = "a consent status" if name == "consent" else f"an option of '{name}'"
                hint = did_you_mean(value, spec.options)
                return (f"{shown} is not {what}{hint}; "
                        f"expected one of {', '.join(spec.options)}")
    return None


def check_rule(
    rule: ast.Rule, schema: Schema, *, spans: Mapping[NodePath, NodeSpans] | None = None
) -> list[RuleIssue]:
    """Every problem of `rule` against `schema` (empty when it type-checks)."""
    return _Checker(schema, spans).check(rule)


def load_rule(source: str | Mapping[str, Any] | ast.Rule, schema: Schema) -> ast.Rule:
    """Load a rule from text, JSON text, a structured dict (YAML/JSON form) or an AST, checked.

    Args:
        source: rule text (``country = "FR"``), its JSON form (text starting with ``{``, or a
            decoded dict), or an already built AST.
        schema: the canonical schema the rule's fields must belong to.

    Returns:
        The rule, type-checked against `schema`.

    Raises:
        RuleSyntaxError: the text is not a rule.
        RuleTypeError: the rule does not fit the schema (every problem listed).
        RuleError: the structured form is not a rule.
    """
    text: str | None = None
    spans: Mapping[NodePath, NodeSpans] | None = None
    if isinstance(source, str) and not source.lstrip().startswith("{"):
        parsed = parse_with_spans(source)
        rule, text, spans = parsed.rule, source, parsed.spans
    elif isinstance(source, str | Mapping):
        try:
            rule = ast.rule_from_json(source if isinstance(source, str) else dict(source))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, err['loc'])) or 'rule'}: {err['msg']}"
                for err in exc.errors()[:5]
            )
            raise RuleError(f"not a rule in structured form: {problems}") from None
    else:
        rule = source
    issues = check_rule(rule, schema, spans=spans)
    if issues:
        raise RuleTypeError(issues, text)
    return rule
