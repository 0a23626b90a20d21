"""The reference semantics of rules: `evaluate(rule, contact, now=...) -> bool`.

Every platform compiler must select exactly the contacts this module selects.

Values
    A field's value is read with `Contact.value(name)` (built-ins, then `fields`, then
    `engagement`). With a `schema`, it is coerced to the field's type; a value that cannot be
    read as that type counts as unset. Without a schema, the kind of a field is taken from its
    Python value (str -> text, number, bool, date/datetime, set -> multi-valued), except the
    built-ins (`email` text, `tags` multi-valued, `consent` enum).

Unset
    A value is *unset* when it is None or absent, an empty string, or an empty set (platforms
    store a cleared field as ""). Every condition on an unset field is FALSE -- including
    ``!=``, ``not in``, ``before``, ``after``, ``within``, ``between``, ``contains`` and
    ``has`` -- except ``is not set``, which is true. ``not X`` is boolean negation, so
    ``not country = "FR"`` is true when country is unset while ``country != "FR"`` is false.
    `consent` is always set.

Equality
    On a set value, ``!=`` is exactly "not ``=``" and ``not in`` exactly "not ``in``".
    Text (`text`, `phone`, `email`) compares case-insensitively (both sides through
    `text_key`, i.e. `str.casefold`), for ``= != in`` and ``contains starts_with ends_with``.
    Enum values (and `consent`) compare exactly. Numbers compare numerically (``1 = 1.0``).
    ``has`` on `tags` is case-insensitive (tags are case-insensitive on Mailchimp, and
    segsync treats ``VIP`` and ``vip`` as one tag); ``has`` on a `multi_enum` field is exact.

Dates
    Date literals are ISO-8601 strings: a date (``2024-01-31``) or a datetime
    (``2024-01-31T08:00:00Z``; no offset means UTC). A comparison happens at the coarser
    granularity of its two sides: if either is a date, both are taken as UTC calendar days
    (so ``signup after "2024-01-31T23:00:00Z"`` on a date field means "from 1 February", and
    ``last_open before "2024-01-31"`` on a datetime field means "on 30 January or earlier");
    two datetimes compare as instants. ``before``/``after`` are strict, ``between`` is
    inclusive at both ends. ``within N days|hours`` holds when ``now - N <= value <= now``
    (a future value is not within); on a date field at day granularity:
    ``day(now - N) <= value <= day(now)``.

Recurring dates
    On a field declared `recurring` (a birthday), ``within N days`` holds when the yearly
    anniversary of the date (year ignored) falls in ``day(now) .. day(now) + N days``, both
    inclusive (``within 0 days``: today). A 29 February is celebrated on 28 February in
    years without one. ``within N hours`` counts whole days (N // 24). Other operators
    compare the date itself. Recurring needs the schema (without it, a date is a date).

Ill-typed rules (which `load_rule` rejects) evaluate without raising: a literal that
cannot be compared with the value makes ``=``/ordering/date conditions false.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Set
from typing import Any, Protocol

from segsync.model import FieldSpec, Schema
from segsync.rules import ast
from segsync.rules.typecheck import (
    BUILTIN_FIELDS,
    FieldKind,
    field_kind,
    field_spec,
    parse_iso,
)

__all__ = [
    "CASE_INSENSITIVE_MULTI",
    "Predicate",
    "Values",
    "anniversary",
    "compile_rule",
    "evaluate",
    "read_value",
    "text_key",
]


class Values(Protocol):
    """What a rule is evaluated on: `value(name)`, as `segsync.model.Contact.value` gives
    it (built-ins, then fields, then engagement; None when unset)."""

    def value(self, name: str) -> Any: ...

CASE_INSENSITIVE_MULTI: frozenset[str] = frozenset({"tags"})
"""Multi-valued fields whose `has` compares case-insensitively."""

_UNITS: dict[ast.TimeUnit, dt.timedelta] = {
    ast.TimeUnit.DAYS: dt.timedelta(days=1),
    ast.TimeUnit.HOURS: dt.timedelta(hours=1),
}


def text_key(text: str) -> str:
    """The case-insensitive form of text that text comparisons use."""
    return text.casefold()


def _infer_kind(value: Any) -> FieldKind:
    if isinstance(value, bool):
        return FieldKind.BOOLEAN
    if isinstance(value, int | float):
        return FieldKind.NUMBER
    if isinstance(value, dt.date):
        return FieldKind.DATE
    if isinstance(value, Set | list | tuple):
        return FieldKind.MULTI
    return FieldKind.TEXT


def _is_unset(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return value == ""
    return isinstance(value, Set | list | tuple) and len(value) == 0


def read_value(
    contact: Values, name: str, schema: Schema | None = None
) -> tuple[FieldKind, Any]:
    """The kind of field `name` and the contact's value of it (None when unset)."""
    spec: FieldSpec | None = field_spec(schema, name) if schema is not None else None
    return _read(contact.value(name), spec or BUILTIN_FIELDS.get(name))


def _read(raw: Any, spec: FieldSpec | None) -> tuple[FieldKind, Any]:
    """`read_value` of the raw value `raw` of a field of spec `spec` (None: unknown)."""
    if spec is None:
        kind = _infer_kind(raw)
        value = raw
        if kind is FieldKind.TEXT and raw is not None and not isinstance(raw, str):
            value = str(raw)
    else:
        kind = field_kind(spec)
        try:
            value = spec.coerce(raw)
        except ValueError:
            value = None
    if kind is FieldKind.MULTI and value is not None and not isinstance(value, Set):
        value = frozenset(value)
    return kind, (None if _is_unset(value) else value)


def _day(value: dt.date) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).date()
    return value


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _date_value(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return _aware(value)
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        return parse_iso(value)
    return None


def _aligned(value: Any, literal: Any) -> tuple[Any, Any] | None:
    """Value and literal as comparable dates/instants at the coarser granularity."""
    left = _date_value(value)
    right = _date_value(literal) if isinstance(literal, str) else None
    if left is None or right is None:
        return None
    if isinstance(left, dt.datetime) and isinstance(right, dt.datetime):
        return left, right
    return _day(left), _day(right)


def _ordered(kind: FieldKind, value: Any, literal: Any) -> tuple[Any, Any] | None:
    """Value and literal as a comparable pair for `kind`, or None when incomparable."""
    match kind:
        case FieldKind.NUMBER:
            if isinstance(value, bool) or not isinstance(value, int | float):
                return None
            if isinstance(literal, bool) or not isinstance(literal, int | float):
                return None
            return value, literal
        case FieldKind.DATE:
            return _aligned(value, literal)
        case FieldKind.TEXT:
            if isinstance(literal, bool):
                return None
            return text_key(str(value)), text_key(str(literal))
        case FieldKind.ENUM:
            return (str(value), literal) if isinstance(literal, str) else None
        case FieldKind.BOOLEAN:
            if isinstance(value, bool) and isinstance(literal, bool):
                return value, literal
            return None
    return None


def _equal(kind: FieldKind, value: Any, literal: Any) -> bool:
    pair = _ordered(kind, value, literal)
    return pair is not None and bool(pair[0] == pair[1])


def _compare(kind: FieldKind, value: Any, op: ast.CompareOp, literal: Any) -> bool:
    if op is ast.CompareOp.EQ:
        return _equal(kind, value, literal)
    if op is ast.CompareOp.NE:
        return not _equal(kind, value, literal)
    pair = _ordered(kind, value, literal)
    if pair is None:
        return False
    left, right = pair
    try:
        match op:
            case ast.CompareOp.LT:
                return bool(left < right)
            case ast.CompareOp.LE:
                return bool(left <= right)
            case ast.CompareOp.GT:
                return bool(left > right)
            case _:
                return bool(left >= right)
    except TypeError:
        return False


def _text_match(kind: FieldKind, value: Any, op: ast.TextOp, text: str) -> bool:
    if kind not in (FieldKind.TEXT, FieldKind.ENUM):
        return False
    haystack, needle = text_key(str(value)), text_key(text)
    match op:
        case ast.TextOp.CONTAINS:
            return needle in haystack
        case ast.TextOp.STARTS_WITH:
            return haystack.startswith(needle)
        case _:
            return haystack.endswith(needle)


def _within(value: Any, amount: int, unit: ast.TimeUnit, now: dt.datetime) -> bool:
    moment = _date_value(value)
    if moment is None:
        return False
    try:
        earliest = now - amount * _UNITS[unit]
    except OverflowError:  # further back than datetime goes: everything up to now
        earliest = dt.datetime.min.replace(tzinfo=dt.UTC)
    if isinstance(moment, dt.datetime):
        return earliest <= moment <= now
    return _day(earliest) <= moment <= _day(now)


def anniversary(day: dt.date, year: int) -> dt.date:
    """The anniversary of `day` in `year` (29 February is 28 February in other years)."""
    try:
        return day.replace(year=year)
    except ValueError:  # 29 February in a year without one
        return dt.date(year, 2, 28)


def _anniversary_within(value: Any, amount: int, unit: ast.TimeUnit, now: dt.datetime) -> bool:
    moment = _date_value(value)
    if moment is None:
        return False
    day, today = _day(moment), _day(now)
    days = amount if unit is ast.TimeUnit.DAYS else amount // 24
    if days >= 366:
        return True  # every anniversary falls within a year
    last = today + dt.timedelta(days=days)
    return any(today <= anniversary(day, year) <= last for year in (today.year, today.year + 1))


def _between(kind: FieldKind, value: Any, low: Any, high: Any) -> bool:
    above = _ordered(kind, value, low)
    below = _ordered(kind, value, high)
    if above is None or below is None:
        return False
    try:
        return bool(above[1] <= above[0]) and bool(below[0] <= below[1])
    except TypeError:
        return False


def _has(name: str, kind: FieldKind, value: Any, item: str) -> bool:
    if kind is not FieldKind.MULTI:
        return False
    if name in CASE_INSENSITIVE_MULTI:
        wanted = text_key(item)
        return any(text_key(str(member)) == wanted for member in value)
    return item in value


def _leaf(rule: ast.Rule, contact: Values, now: dt.datetime, schema: Schema | None) -> bool:
    name: str = getattr(rule, "field", "")
    kind, value = read_value(contact, name, schema)
    return _decide(rule, name, kind, value, now, schema)


def _decide(
    rule: ast.Rule, name: str, kind: FieldKind, value: Any, now: dt.datetime,
    schema: Schema | None,
) -> bool:
    """A leaf's verdict on the value of its field (`read_value`)."""
    if isinstance(rule, ast.IsSet):
        return (value is None) if rule.negated else (value is not None)
    if value is None:
        return False
    match rule:
        case ast.Compare(op=op, value=literal):
            return _compare(kind, value, op, literal)
        case ast.In(values=values, negated=negated):
            found = any(_equal(kind, value, literal) for literal in values)
            return not found if negated else found
        case ast.TextMatch(op=op, value=text):
            return _text_match(kind, value, op, text)
        case ast.Has(value=item):
            return _has(name, kind, value, item)
        case ast.Within(amount=amount, unit=unit):
            spec = field_spec(schema, name) if schema is not None else None
            if spec is not None and spec.recurring:
                return _anniversary_within(value, amount, unit, now)
            return _within(value, amount, unit, now)
        case ast.DateCmp(op=op, value=literal):
            pair = _aligned(value, literal)
            if pair is None:
                return False
            return bool(pair[0] < pair[1]) if op is ast.DateOp.BEFORE else bool(pair[0] > pair[1])
        case ast.Between(low=low, high=high):
            return _between(kind, value, low, high)
    raise TypeError(f"not a rule node: {rule!r}")  # pragma: no cover - the union is closed


def _eval(rule: ast.Rule, contact: Values, now: dt.datetime, schema: Schema | None) -> bool:
    match rule:
        case ast.Const(value=verdict):
            return verdict
        case ast.And(items=items):
            return all(_eval(item, contact, now, schema) for item in items)
        case ast.Or(items=items):
            return any(_eval(item, contact, now, schema) for item in items)
        case ast.Not(item=item):
            return not _eval(item, contact, now, schema)
    return _leaf(rule, contact, now, schema)


def evaluate(
    rule: ast.Rule, contact: Values, *, now: dt.datetime, schema: Schema | None = None
) -> bool:
    """Whether `contact` matches `rule` at time `now` (see the module docstring).

    Args:
        rule: the rule (type-checked by `load_rule` for meaningful results).
        contact: the contact (a `segsync.model.Contact`, or anything reading values as
            it does: `Values`).
        now: the current time, from the injected clock (naive means UTC).
        schema: the canonical schema; gives each field its type (enum equality is exact,
            text equality case-insensitive). Without it, kinds come from the values.

    Returns:
        True when the contact is a member.
    """
    return _eval(rule, contact, _aware(now), schema)



Predicate = Callable[[Values, dt.datetime], bool]
"""A compiled rule: `(contact, now) -> member?` (`now` aware, see `compile_rule`)."""


def compile_rule(rule: ast.Rule, schema: Schema | None = None) -> Predicate:
    """`rule` as a function of `(contact, now)` with `evaluate`'s verdicts, its shape
    walked and its fields' specs looked up once (a materialised segment evaluates one rule
    on every contact): `compile_rule(rule, schema)(contact, now)` is
    `evaluate(rule, contact, now=now, schema=schema)` for an aware `now`."""
    match rule:
        case ast.Const(value=verdict):
            return lambda contact, now: verdict
        case ast.And(items=items):
            every = tuple(compile_rule(item, schema) for item in items)
            return lambda contact, now: all(item(contact, now) for item in every)
        case ast.Or(items=items):
            some = tuple(compile_rule(item, schema) for item in items)
            return lambda contact, now: any(item(contact, now) for item in some)
        case ast.Not(item=item):
            inner = compile_rule(item, schema)
            return lambda contact, now: not inner(contact, now)
    name: str = getattr(rule, "field", "")
    spec = (field_spec(schema, name) if schema is not None else None) or BUILTIN_FIELDS.get(name)

    def leaf(contact: Values, now: dt.datetime) -> bool:
        kind, value = _read(contact.value(name), spec)
        return _decide(rule, name, kind, value, now, schema)

    return leaf
