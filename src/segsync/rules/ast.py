"""The rule AST: frozen, hashable pydantic nodes in a union discriminated on `type`.

The JSON form of a node (`rule_to_json` / `rule_from_json`) is the canonical serialised
form of a rule; the text form is parsed by `segsync.rules.parser` and printed by
`segsync.rules.printer`.

Literal values are JSON scalars. Dates and datetimes are ISO-8601 strings (checked against
the field's type at load time); consent statuses and enum options are strings.

Nodes compose in code: ``field("country") == "FR"`` builds a `Compare`,
``has_tag("vip") & ~field("email").ends_with("@example.com")`` an `And` of a `Has` and a
`Not`.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    TypeAdapter,
)

__all__ = [
    "RULE_NODE_TYPES",
    "And",
    "Between",
    "Compare",
    "CompareOp",
    "Const",
    "DateCmp",
    "DateOp",
    "FieldRef",
    "Has",
    "In",
    "IsSet",
    "Not",
    "Or",
    "Rule",
    "Scalar",
    "TextMatch",
    "TextOp",
    "TimeUnit",
    "Within",
    "field",
    "has_tag",
    "rule_from_json",
    "rule_to_json",
]

Scalar = StrictBool | StrictInt | StrictFloat | StrictStr


class CompareOp(enum.StrEnum):
    EQ = "="
    NE = "!="
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="


class TextOp(enum.StrEnum):
    CONTAINS = "contains"
    STARTS_WITH = "starts_with"
    ENDS_WITH = "ends_with"


class DateOp(enum.StrEnum):
    BEFORE = "before"
    AFTER = "after"


class TimeUnit(enum.StrEnum):
    DAYS = "days"
    HOURS = "hours"


class _Node(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def __and__(self, other: Rule) -> And:
        return And(items=(*_flat(self, And), *_flat(other, And)))

    def __or__(self, other: Rule) -> Or:
        return Or(items=(*_flat(self, Or), *_flat(other, Or)))

    def __invert__(self) -> Not:
        return Not(item=self)


def _flat(node: Any, kind: type[And] | type[Or]) -> tuple[Any, ...]:
    return tuple(node.items) if isinstance(node, kind) else (node,)


class Const(_Node):
    """A constant verdict; produced by the normaliser (e.g. an empty `in` list), never by users."""

    type: Literal["const"] = "const"
    value: bool


class And(_Node):
    """All of `items` hold (two or more after normalisation; one is allowed on input)."""

    type: Literal["and"] = "and"
    items: tuple[Rule, ...] = Field(min_length=1)


class Or(_Node):
    """Any of `items` holds."""

    type: Literal["or"] = "or"
    items: tuple[Rule, ...] = Field(min_length=1)


class Not(_Node):
    """`item` does not hold (see evaluate.py for unset values)."""

    type: Literal["not"] = "not"
    item: Rule


class Compare(_Node):
    """`field op value` with `= != < <= > >=`."""

    type: Literal["compare"] = "compare"
    field: str
    op: CompareOp
    value: Scalar


class In(_Node):
    """`field in [values]` (or `not in` when `negated`)."""

    type: Literal["in"] = "in"
    field: str
    values: tuple[Scalar, ...]
    negated: bool = False


class TextMatch(_Node):
    """`field contains|starts_with|ends_with "text"` (case-insensitive)."""

    type: Literal["text"] = "text"
    field: str
    op: TextOp
    value: StrictStr


class IsSet(_Node):
    """`field is set` (or `is not set` when `negated`)."""

    type: Literal["is_set"] = "is_set"
    field: str
    negated: bool = False


class Has(_Node):
    """`tags has "vip"` or `interests has "news"`: membership in a multi-valued field."""

    type: Literal["has"] = "has"
    field: str
    value: StrictStr


class Within(_Node):
    """`field within N days|hours`: the date is in the last N units up to now (injected clock)."""

    type: Literal["within"] = "within"
    field: str
    amount: StrictInt = Field(ge=0)
    unit: TimeUnit = TimeUnit.DAYS


class DateCmp(_Node):
    """`field before|after "2024-01-31"` (ISO date or datetime, strict comparison)."""

    type: Literal["date"] = "date"
    field: str
    op: DateOp
    value: StrictStr


class Between(_Node):
    """`field between low and high`, inclusive on both ends (numbers or ISO dates)."""

    type: Literal["between"] = "between"
    field: str
    low: Scalar
    high: Scalar


Rule = Annotated[
    Const | And | Or | Not | Compare | In | TextMatch | IsSet | Has | Within | DateCmp | Between,
    Field(discriminator="type"),
]

RULE_NODE_TYPES: tuple[type[BaseModel], ...] = (
    Const, And, Or, Not, Compare, In, TextMatch, IsSet, Has, Within, DateCmp, Between,
)
"""Every node class, in a stable order (capability matrices are generated from it)."""

for _cls in (And, Or, Not):
    _cls.model_rebuild()

_ADAPTER: TypeAdapter[Rule] = TypeAdapter(Rule)


def rule_to_json(rule: Rule) -> str:
    """The canonical JSON text of a rule."""
    return _ADAPTER.dump_json(rule).decode()


def rule_from_json(data: str | bytes | dict[str, Any]) -> Rule:
    """Load a rule from its JSON text or an already-decoded dict (the structured form)."""
    if isinstance(data, dict):
        return _ADAPTER.validate_python(data)
    return _ADAPTER.validate_json(data)


class FieldRef:
    """A builder for leaf nodes on one field: ``field("age") >= 18``."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def _cmp(self, op: CompareOp, value: Any) -> Compare:
        return Compare(field=self.name, op=op, value=value)

    def __eq__(self, value: object) -> Compare:  # type: ignore[override]
        return self._cmp(CompareOp.EQ, value)

    def __ne__(self, value: object) -> Compare:  # type: ignore[override]
        return self._cmp(CompareOp.NE, value)

    def __lt__(self, value: Any) -> Compare:
        return self._cmp(CompareOp.LT, value)

    def __le__(self, value: Any) -> Compare:
        return self._cmp(CompareOp.LE, value)

    def __gt__(self, value: Any) -> Compare:
        return self._cmp(CompareOp.GT, value)

    def __ge__(self, value: Any) -> Compare:
        return self._cmp(CompareOp.GE, value)

    __hash__ = None  # type: ignore[assignment]

    def in_(self, *values: Any) -> In:
        return In(field=self.name, values=tuple(values))

    def not_in(self, *values: Any) -> In:
        return In(field=self.name, values=tuple(values), negated=True)

    def contains(self, text: str) -> TextMatch:
        return TextMatch(field=self.name, op=TextOp.CONTAINS, value=text)

    def starts_with(self, text: str) -> TextMatch:
        return TextMatch(field=self.name, op=TextOp.STARTS_WITH, value=text)

    def ends_with(self, text: str) -> TextMatch:
        return TextMatch(field=self.name, op=TextOp.ENDS_WITH, value=text)

    def is_set(self) -> IsSet:
        return IsSet(field=self.name)

    def is_not_set(self) -> IsSet:
        return IsSet(field=self.name, negated=True)

    def has(self, value: str) -> Has:
        return Has(field=self.name, value=value)

    def within(self, amount: int, unit: TimeUnit = TimeUnit.DAYS) -> Within:
        return Within(field=self.name, amount=amount, unit=unit)

    def before(self, iso: str) -> DateCmp:
        return DateCmp(field=self.name, op=DateOp.BEFORE, value=iso)

    def after(self, iso: str) -> DateCmp:
        return DateCmp(field=self.name, op=DateOp.AFTER, value=iso)

    def between(self, low: Any, high: Any) -> Between:
        return Between(field=self.name, low=low, high=high)


def field(name: str) -> FieldRef:
    """Start a leaf node on the field `name`."""
    return FieldRef(name)


def has_tag(tag: str) -> Has:
    """`tags has "tag"`."""
    return Has(field="tags", value=tag)
