"""Rules -> Mailchimp saved-segment conditions (one flat `match` any/all list).

A leaf compiles to one condition, or to several that must sit under one particular `match`
(e.g. ``n >= 3`` is ``any[greater 3, is 3]``; ``city != "x"`` is ``all[not x, blank_not]``
because Mailchimp's `not` also selects blanks while segsync's ``!=`` never selects an unset
field). A leaf whose expansion needs the other `match` than its parent's, a field with no
condition type, or more conditions than the platform takes raises `PlatformCannotExpress`,
and the ladder of `RuleCompiler.compile` rewrites, splits or materialises — each step with a
diagnostic.

Tag names and group option names stand in for their ids in the emitted definition
(`StaticSegment.value` is the tag name; `Interests.field` is ``interests-<field>`` and its
value the option names); `MailchimpConnector.publish_native` resolves them.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any, ClassVar

from segsync.connector import ConnectorConfig
from segsync.mapping import PlatformMapping
from segsync.model import FieldSpec, FieldType, Schema
from segsync.rules import ast
from segsync.rules.compiler import (
    CompilerCapabilities,
    PlatformCannotExpress,
    RuleCompiler,
    Strictness,
)
from segsync.rules.printer import to_text
from segsync_mailchimp.config import MailchimpConfig
from segsync_mailchimp.fields import (
    MERGE_TYPE_BY_FIELD_TYPE,
    FieldPlace,
    default_mapping,
    member_places,
)

__all__ = ["MailchimpCompiler"]

Condition = dict[str, Any]
#: how the conditions of one leaf combine: "one" fits either match
Expansion = tuple[str, list[Condition]]

_DATE_OUT = "%m/%d/%Y"  # the merge fields' date_format segsync creates (MM/DD/YYYY)


def _cond(ctype: str, field: str, op: str, value: Any = None) -> Condition:
    c: Condition = {"condition_type": ctype, "field": field, "op": op}
    if value is not None:
        c["value"] = value
    return c


def _day(literal: Any, node: Any) -> dt.date:
    if not isinstance(literal, str):
        raise PlatformCannotExpress(f"{literal!r} is not a date", node)
    text = literal.strip()
    try:
        if len(text) > 10:
            moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=dt.UTC)
            return moment.astimezone(dt.UTC).date()
        return dt.date.fromisoformat(text)
    except ValueError:
        raise PlatformCannotExpress(f"{literal!r} is not an ISO date", node) from None


def _number(literal: Any, node: Any) -> float:
    if isinstance(literal, bool) or not isinstance(literal, int | float):
        raise PlatformCannotExpress(f"{literal!r} is not a number", node)
    return float(literal)


def _num_text(value: float) -> str:
    value = float(value)
    return str(int(value)) if value.is_integer() else repr(value)


class MailchimpCompiler(RuleCompiler):
    """Compiles rules to `{"match": "all"|"any", "conditions": [...]}` (see module docstring)."""

    platform: ClassVar[str] = "mailchimp"
    CAPS: ClassVar[CompilerCapabilities] = CompilerCapabilities(
        node_types=frozenset({"compare", "in", "text", "is_set", "has", "date", "between"}),
        connectives=frozenset({"and", "or"}),
        max_depth=1,
        # not documented for the API; the UI allows 5 conditions on regular plans
        max_conditions=5,
        max_dnf_terms=16,
        negated_leaves=True,
    )

    #: a birthday merge field is filtered by `BirthdayMerge` `is`/`not` one `MM/DD`: no
    #: window relative to today, so an anniversary within N days is materialised
    RECURRING_DATES_REASON: ClassVar[str] = (
        "Mailchimp's birthday condition (BirthdayMerge) matches one fixed MM/DD, not a window "
        "relative to today"
    )

    #: the rating Mailchimp gives every member it never emailed (segsync's copies among
    #: them), for whom segsync's `member_rating` is unset
    UNEMAILED_RATING: ClassVar[int] = 2

    #: canonical engagement fields Mailchimp can filter on, and the condition kind
    ENGAGEMENT_CONDITIONS: ClassVar[dict[str, str]] = {
        "rating": "MemberRating",
        "member_rating": "MemberRating",
        "country_code": "IPGeoCountryState",
    }

    config: MailchimpConfig | None
    mapping: PlatformMapping | None

    def __init__(
        self,
        schema: Schema | None = None,
        *,
        strictness: Strictness | str = Strictness.WARN,
        config: ConnectorConfig | None = None,
        mapping: PlatformMapping | None = None,
    ) -> None:
        """`config` None compiles for the default merge tags; `mapping` None for the mapping
        this package ships. Fields are placed as the connector places them (`member_places`),
        so a rule names the merge field the connector writes."""
        super().__init__(
            schema,
            strictness=strictness,
            config=config if isinstance(config, MailchimpConfig) else None,
            mapping=mapping if mapping is not None else default_mapping(),
        )
        self.places: dict[str, FieldPlace] = member_places(self.schema, self.mapping, self.config)

    # -- emit -----------------------------------------------------------------------------

    def emit(self, rule: ast.Rule) -> dict[str, Any]:
        """The saved-segment options of a rule that `fits` (flat and leaf-negated)."""
        if isinstance(rule, ast.And | ast.Or):
            match = "all" if isinstance(rule, ast.And) else "any"
            items = self._fold_unset(rule.items) if match == "any" else rule.items
            conditions: list[Condition] = []
            for item in items:
                combine, conds = self._leaf(item)
                if combine not in ("one", match) and len(conds) > 1:
                    raise PlatformCannotExpress(
                        f"{to_text(item)} needs match '{combine}' inside '{match}'", item
                    )
                conditions.extend(conds)
        else:
            combine, conditions = self._leaf(rule)
            match = "all" if combine == "one" else combine
        if len(conditions) > self.CAPS.max_conditions:
            raise PlatformCannotExpress(
                f"{len(conditions)} conditions exceed Mailchimp's {self.CAPS.max_conditions}"
            )
        return {"match": match, "conditions": conditions}

    @staticmethod
    def _fold_unset(items: tuple[ast.Rule, ...]) -> tuple[ast.Rule, ...]:
        """In an OR, ``x != v or x is not set`` is ``not x = v`` (Mailchimp's `not`, blanks
        included): the form NNF gives a negated equality, folded back so it fits `any`."""
        unset = {i.field for i in items if isinstance(i, ast.IsSet) and i.negated}
        folded: list[ast.Rule] = []
        used: set[str] = set()
        for item in items:
            if (
                isinstance(item, ast.Compare)
                and item.op is ast.CompareOp.NE
                and item.field in unset
            ):
                folded.append(
                    ast.Not(
                        item=ast.Compare(field=item.field, op=ast.CompareOp.EQ, value=item.value)
                    )
                )
                used.add(item.field)
            elif isinstance(item, ast.In) and item.negated and item.field in unset:
                folded.append(ast.Not(item=item.model_copy(update={"negated": False})))
                used.add(item.field)
            else:
                folded.append(item)
        return tuple(
            i for i in folded if not (isinstance(i, ast.IsSet) and i.negated and i.field in used)
        )

    def _leaf(self, node: ast.Rule) -> Expansion:
        negated = isinstance(node, ast.Not)
        leaf = node.item if isinstance(node, ast.Not) else node
        name = getattr(leaf, "field", None)
        if name is None:
            raise PlatformCannotExpress(f"{leaf.type} has no native form", node)
        if name == "tags":
            return self._tags(leaf, negated)
        if name == "email":
            return self._text(leaf, negated, "EmailAddress", "EMAIL", always_set=True)
        if name == "consent":
            raise PlatformCannotExpress(
                "saved segments have no condition on subscription status", node
            )
        if name in self.ENGAGEMENT_CONDITIONS:
            return self._engagement(leaf, negated, self.ENGAGEMENT_CONDITIONS[name])
        spec = self.schema.get(name)
        if spec is None:
            raise PlatformCannotExpress(f"field {name!r} is not in the schema", node)
        if spec.read_only:
            raise PlatformCannotExpress(
                f"{name!r} is read-only engagement Mailchimp does not filter on", node
            )
        place = self.places.get(name)
        if place is None:
            raise PlatformCannotExpress(
                f"{name!r} is a marketing permission, which saved segments cannot filter on",
                node,
            )
        if place.group:
            return self._group(leaf, negated, name)
        if place.path == "language" and place.plain:
            return self._language(leaf, negated)
        tag = place.merge_tag
        if tag is None or not place.plain:
            raise PlatformCannotExpress(
                f"{name!r} is mapped to {place.path}"
                + ("" if place.plain else " with a conversion")
                + ", which saved segments cannot compare",
                node,
            )
        match spec.type:
            case FieldType.TEXT | FieldType.PHONE:
                return self._text(leaf, negated, "TextMerge", tag)
            case FieldType.ENUM | FieldType.BOOLEAN if (
                spec.options or spec.type is FieldType.BOOLEAN
            ):
                return self._select(leaf, negated, tag, spec)
            case FieldType.ENUM:
                # an open enum is a text merge field, which compares case-insensitively
                if isinstance(leaf, ast.TextMatch | ast.IsSet):
                    return self._text(leaf, negated, "TextMerge", tag)
                raise PlatformCannotExpress(
                    f"{name!r} compares exactly, Mailchimp text fields case-insensitively", node
                )
            case FieldType.NUMBER | FieldType.INTEGER:
                return self._number(leaf, negated, tag, integer=spec.type is FieldType.INTEGER)
            case FieldType.DATE:
                return self._date(leaf, negated, tag)
            case FieldType.MULTI_ENUM:
                return self._group(leaf, negated, name)
        if isinstance(leaf, ast.IsSet):
            return self._blank(leaf, negated, "TextMerge", tag)
        kind = MERGE_TYPE_BY_FIELD_TYPE.get(spec.type, spec.type.value)
        raise PlatformCannotExpress(
            f"{leaf.type} on a {spec.type.value} field (a {kind} merge field) has no condition",
            node,
        )

    # -- leaves by field kind ---------------------------------------------------------------

    @staticmethod
    def _blank(leaf: ast.IsSet, negated: bool, ctype: str, field: str) -> Expansion:
        is_set = leaf.negated == negated
        return "one", [_cond(ctype, field, "blank_not" if is_set else "blank")]

    def _tags(self, leaf: ast.Rule, negated: bool) -> Expansion:
        if not isinstance(leaf, ast.Has):
            raise PlatformCannotExpress(f"{leaf.type} on tags has no condition", leaf)
        op = "static_not" if negated else "static_is"
        return "one", [_cond("StaticSegment", "static_segment", op, leaf.value)]

    def _group(self, leaf: ast.Rule, negated: bool, name: str) -> Expansion:
        field = f"interests-{name}"
        if isinstance(leaf, ast.IsSet):
            spec = self.schema.get(name)
            if spec is None or not spec.options:
                raise PlatformCannotExpress(f"the options of {name!r} are not declared", leaf)
            # set = holds one of the options at least
            is_set = leaf.negated == negated
            op = "interestcontains" if is_set else "interestnotcontains"
            return "one", [_cond("Interests", field, op, list(spec.options))]
        if not isinstance(leaf, ast.Has):
            raise PlatformCannotExpress(f"{leaf.type} on a group field has no condition", leaf)
        op = "interestnotcontains" if negated else "interestcontains"
        return "one", [_cond("Interests", field, op, [leaf.value])]

    def _text(
        self, leaf: ast.Rule, negated: bool, ctype: str, field: str, *, always_set: bool = False
    ) -> Expansion:
        """Text semantics: case-insensitive on both sides; `not`-ops also select blanks."""
        set_guard = [] if always_set else [_cond(ctype, field, "blank_not")]
        match leaf:
            case ast.IsSet():
                if always_set:
                    raise PlatformCannotExpress("email is always set", leaf)
                return self._blank(leaf, negated, ctype, field)
            case ast.Compare(op=op, value=value):
                if isinstance(value, bool):
                    raise PlatformCannotExpress(f"{value!r} is not text", leaf)
                text = str(value)
                simple = {
                    ast.CompareOp.EQ: ("is", "not"),
                    ast.CompareOp.GT: ("greater", None),
                    ast.CompareOp.LT: ("less", None),
                }
                if op is ast.CompareOp.NE:
                    if negated:  # not (x != v): x = v, or x unset
                        blank = [] if always_set else [_cond(ctype, field, "blank")]
                        return (
                            ("any", [_cond(ctype, field, "is", text), *blank])
                            if blank
                            else ("one", [_cond(ctype, field, "is", text)])
                        )
                    return "all", [_cond(ctype, field, "not", text), *set_guard]
                if op in simple:
                    positive, negative = simple[op]
                    if not negated:
                        return "one", [_cond(ctype, field, positive, text)]
                    if negative:
                        return "one", [_cond(ctype, field, negative, text)]
                    # not (x > v): x < v or x = v or x unset
                    other = "less" if op is ast.CompareOp.GT else "greater"
                    blank = [] if always_set else [_cond(ctype, field, "blank")]
                    return "any", [
                        _cond(ctype, field, other, text),
                        _cond(ctype, field, "is", text),
                        *blank,
                    ]
                strict = "greater" if op is ast.CompareOp.GE else "less"
                if not negated:
                    return "any", [
                        _cond(ctype, field, strict, text),
                        _cond(ctype, field, "is", text),
                    ]
                other = "less" if op is ast.CompareOp.GE else "greater"
                blank = [] if always_set else [_cond(ctype, field, "blank")]
                return "any", [_cond(ctype, field, other, text), *blank]
            case ast.In(values=values, negated=not_in):
                texts = [str(v) for v in values]
                if not texts:
                    raise PlatformCannotExpress("an empty 'in' list has no condition", leaf)
                if not_in == negated:  # x in [...], or not (x not in [...]) which adds unset
                    blank = [_cond(ctype, field, "blank")] if negated and not always_set else []
                    conds = [_cond(ctype, field, "is", t) for t in texts] + blank
                    return ("any" if len(conds) > 1 else "one"), conds
                guard = [] if negated else set_guard  # not (x in ...) also selects unset
                conds = [_cond(ctype, field, "not", t) for t in texts] + guard
                return ("all" if len(conds) > 1 else "one"), conds
            case ast.TextMatch(value=""):
                # matching "" is "is set"
                if always_set:
                    raise PlatformCannotExpress("a condition matching every address", leaf)
                return "one", [_cond(ctype, field, "blank" if negated else "blank_not")]
            case ast.TextMatch(op=op, value=text):
                positive = {
                    ast.TextOp.CONTAINS: "contains",
                    ast.TextOp.STARTS_WITH: "starts",
                    ast.TextOp.ENDS_WITH: "ends",
                }[op]
                if not negated:
                    return "one", [_cond(ctype, field, positive, text)]
                if op is ast.TextOp.CONTAINS:
                    return "one", [_cond(ctype, field, "notcontain", text)]
                raise PlatformCannotExpress(f"Mailchimp has no 'does not {op.value}' op", leaf)
        raise PlatformCannotExpress(f"{leaf.type} on text has no condition", leaf)

    def _select(self, leaf: ast.Rule, negated: bool, field: str, spec: FieldSpec) -> Expansion:
        """Dropdown merge fields: values are one of the choices, compared exactly."""

        def value_of(literal: Any) -> str:
            if spec.type is FieldType.BOOLEAN:
                if not isinstance(literal, bool):
                    raise PlatformCannotExpress(f"{literal!r} is not a boolean", leaf)
                return "true" if literal else "false"
            if not isinstance(literal, str):
                raise PlatformCannotExpress(f"{literal!r} is not one of the choices", leaf)
            return literal

        guard = [_cond("SelectMerge", field, "blank_not")]
        match leaf:
            case ast.IsSet():
                return self._blank(leaf, negated, "SelectMerge", field)
            case ast.Compare(op=ast.CompareOp.EQ | ast.CompareOp.NE as op, value=literal):
                equal = (op is ast.CompareOp.EQ) != negated
                v = value_of(literal)
                if equal and negated:  # not (x != v): x = v, or x unset
                    return "any", [
                        _cond("SelectMerge", field, "is", v),
                        _cond("SelectMerge", field, "blank"),
                    ]
                if equal:
                    return "one", [_cond("SelectMerge", field, "is", v)]
                if negated:  # not (x = v)
                    return "one", [_cond("SelectMerge", field, "not", v)]
                return "all", [_cond("SelectMerge", field, "not", v), *guard]
            case ast.In(values=values, negated=not_in):
                vs = [value_of(v) for v in values]
                if not vs:
                    raise PlatformCannotExpress("an empty 'in' list has no condition", leaf)
                if not_in == negated:
                    conds = [_cond("SelectMerge", field, "is", v) for v in vs]
                    conds += [_cond("SelectMerge", field, "blank")] if negated else []
                    return ("any" if len(conds) > 1 else "one"), conds
                conds = [_cond("SelectMerge", field, "not", v) for v in vs]
                conds += [] if negated else guard
                return ("all" if len(conds) > 1 else "one"), conds
            case ast.TextMatch(op=ast.TextOp.CONTAINS, value=text) if text:
                text_op = "notcontain" if negated else "contains"
                return "one", [_cond("SelectMerge", field, text_op, text)]
        raise PlatformCannotExpress(f"{leaf.type} on a dropdown field has no condition", leaf)

    def _number(self, leaf: ast.Rule, negated: bool, field: str, *, integer: bool) -> Expansion:
        """Number merge fields (TextMerge ops compare numerically); blanks match no comparison."""

        def c(op: str, value: float | None = None) -> Condition:
            return _cond("TextMerge", field, op, None if value is None else _num_text(value))

        match leaf:
            case ast.IsSet():
                return self._blank(leaf, negated, "TextMerge", field)
            case ast.Compare(op=op, value=literal):
                v = _number(literal, leaf)
                if negated:
                    op = {
                        ast.CompareOp.EQ: ast.CompareOp.NE,
                        ast.CompareOp.NE: ast.CompareOp.EQ,
                        ast.CompareOp.LT: ast.CompareOp.GE,
                        ast.CompareOp.LE: ast.CompareOp.GT,
                        ast.CompareOp.GT: ast.CompareOp.LE,
                        ast.CompareOp.GE: ast.CompareOp.LT,
                    }[op]
                # negation of a comparison also selects blanks (an unset value)
                blank = [c("blank")] if negated and op is not ast.CompareOp.NE else []
                match op:
                    case ast.CompareOp.EQ:
                        return ("any", [c("is", v), *blank]) if blank else ("one", [c("is", v)])
                    case ast.CompareOp.NE:
                        if negated:
                            return "one", [c("not", v)]
                        return "all", [c("not", v), c("blank_not")]
                    case ast.CompareOp.GT:
                        return (
                            ("any", [c("greater", v), *blank])
                            if blank
                            else ("one", [c("greater", v)])
                        )
                    case ast.CompareOp.LT:
                        return ("any", [c("less", v), *blank]) if blank else ("one", [c("less", v)])
                    case ast.CompareOp.GE:
                        return "any", [c("greater", v), c("is", v), *blank]
                    case ast.CompareOp.LE:
                        return "any", [c("less", v), c("is", v), *blank]
            case ast.In(values=values, negated=not_in):
                vs = [_number(x, leaf) for x in values]
                if not vs:
                    raise PlatformCannotExpress("an empty 'in' list has no condition", leaf)
                if not_in == negated:
                    conds = [c("is", x) for x in vs] + ([c("blank")] if negated else [])
                    return ("any" if len(conds) > 1 else "one"), conds
                conds = [c("not", x) for x in vs] + ([] if negated else [c("blank_not")])
                return ("all" if len(conds) > 1 else "one"), conds
            case ast.Between(low=low, high=high):
                lo, hi = _number(low, leaf), _number(high, leaf)
                if negated:
                    return "any", [c("less", lo), c("greater", hi), c("blank")]
                if integer:
                    return "all", [c("greater", math.ceil(lo) - 1), c("less", math.floor(hi) + 1)]
                raise PlatformCannotExpress(
                    "an inclusive range on a decimal field needs 'greater or equal', which "
                    "Mailchimp lacks",
                    leaf,
                )
        raise PlatformCannotExpress(f"{leaf.type} on a number field has no condition", leaf)

    def _date(self, leaf: ast.Rule, negated: bool, field: str) -> Expansion:
        """Date merge fields: whole days; `>= d` is `greater d-1`."""
        one = dt.timedelta(days=1)

        def c(op: str, day: dt.date | None = None) -> Condition:
            return _cond("DateMerge", field, op, None if day is None else day.strftime(_DATE_OUT))

        blank = [c("blank")]
        match leaf:
            case ast.IsSet():
                return self._blank(leaf, negated, "DateMerge", field)
            case ast.DateCmp(op=op, value=literal):
                d = _day(literal, leaf)
                if op is ast.DateOp.BEFORE:
                    return (
                        ("any", [c("greater", d - one), *blank])
                        if negated
                        else ("one", [c("less", d)])
                    )
                return (
                    ("any", [c("less", d + one), *blank]) if negated else ("one", [c("greater", d)])
                )
            case ast.Compare(op=op, value=literal):
                d = _day(literal, leaf)
                if negated:
                    op = {
                        ast.CompareOp.EQ: ast.CompareOp.NE,
                        ast.CompareOp.NE: ast.CompareOp.EQ,
                        ast.CompareOp.LT: ast.CompareOp.GE,
                        ast.CompareOp.LE: ast.CompareOp.GT,
                        ast.CompareOp.GT: ast.CompareOp.LE,
                        ast.CompareOp.GE: ast.CompareOp.LT,
                    }[op]
                extra = blank if negated and op is not ast.CompareOp.NE else []
                conds = {
                    ast.CompareOp.EQ: [c("is", d)],
                    ast.CompareOp.NE: [c("not", d)] if negated else [c("not", d), c("blank_not")],
                    ast.CompareOp.GT: [c("greater", d)],
                    ast.CompareOp.GE: [c("greater", d - one)],
                    ast.CompareOp.LT: [c("less", d)],
                    ast.CompareOp.LE: [c("less", d + one)],
                }[op]
                if op is ast.CompareOp.NE and not negated:
                    return "all", conds
                conds = conds + extra
                return ("any" if len(conds) > 1 else "one"), conds
            case ast.In(values=values, negated=not_in):
                days = [_day(v, leaf) for v in values]
                if not days:
                    raise PlatformCannotExpress("an empty 'in' list has no condition", leaf)
                if not_in == negated:
                    conds = [c("is", d) for d in days] + (blank if negated else [])
                    return ("any" if len(conds) > 1 else "one"), conds
                conds = [c("not", d) for d in days] + ([] if negated else [c("blank_not")])
                return ("all" if len(conds) > 1 else "one"), conds
            case ast.Between(low=low, high=high):
                lo, hi = _day(low, leaf), _day(high, leaf)
                if negated:
                    return "any", [c("less", lo), c("greater", hi), *blank]
                return "all", [c("greater", lo - one), c("less", hi + one)]
        raise PlatformCannotExpress(f"{leaf.type} on a date field has no condition", leaf)

    @staticmethod
    def _language(leaf: ast.Rule, negated: bool) -> Expansion:
        """The member's language (Language is/not: `not` also selects members without one)."""
        match leaf:
            case ast.Compare(op=ast.CompareOp.EQ, value=str(code)):
                return "one", [_cond("Language", "language", "not" if negated else "is", code)]
            case ast.In(values=values, negated=False) if (
                not negated and all(isinstance(v, str) for v in values) and values
            ):
                conds = [_cond("Language", "language", "is", str(v)) for v in values]
                return ("any" if len(conds) > 1 else "one"), conds
        raise PlatformCannotExpress(f"{leaf.type} on the language has no condition", leaf)

    def _unemailed_rating(self, leaf: ast.Compare, value: float) -> None:
        """Refuse a rating comparison the default rating of never-emailed members satisfies.

        Mailchimp's `MemberRating` sees that rating (2) on every member it never emailed,
        where segsync sees no rating: a comparison true of 2 (``< 3``, ``= 2``, ``!= 5``)
        selects them natively but never in segsync, and its negation the reverse. Only
        a comparison false of 2 (``> 2``, ``= 4``, ``< 2``, ``!= 2``) selects alike, negated
        or not (unset makes the comparison false and its negation true, as 2 does)."""
        default = self.UNEMAILED_RATING
        holds = {
            ast.CompareOp.EQ: default == value,
            ast.CompareOp.NE: default != value,
            ast.CompareOp.GT: default > value,
            ast.CompareOp.LT: default < value,
        }[leaf.op]
        if holds:
            raise PlatformCannotExpress(
                f"Mailchimp rates every member it never emailed (segsync's copies among them) "
                f"{default}, where segsync sees no rating; '{to_text(leaf)}' is true of "
                f"{default}, so Mailchimp's filter would select them (native only: a comparison "
                f"false of {default}, e.g. '> {default}')",
                leaf,
            )

    def _engagement(self, leaf: ast.Rule, negated: bool, ctype: str) -> Expansion:
        if ctype == "MemberRating" and isinstance(leaf, ast.Compare):
            v = _number(leaf.value, leaf)
            ops = {
                ast.CompareOp.EQ: ("is", "not"),
                ast.CompareOp.NE: ("not", "is"),
                ast.CompareOp.GT: ("greater", "less"),
                ast.CompareOp.LT: ("less", "greater"),
            }
            if leaf.op in ops and (not negated or leaf.op in (ast.CompareOp.EQ, ast.CompareOp.NE)):
                self._unemailed_rating(leaf, v)
                op = ops[leaf.op][1 if negated else 0]
                return "one", [_cond("MemberRating", "rating", op, v)]
        if (
            ctype == "IPGeoCountryState"
            and isinstance(leaf, ast.Compare)
            and isinstance(leaf.value, str)
            and leaf.op is ast.CompareOp.EQ
        ):
            op = "ipgeonotcountry" if negated else "ipgeocountry"
            return "one", [_cond("IPGeoCountryState", "ipgeo", op, leaf.value.upper())]
        raise PlatformCannotExpress(f"{leaf.type} on {ctype} has no condition", leaf)
