"""Rules -> HubSpot DYNAMIC list filter branches.

HubSpot's list filter is an `OR` root holding `AND` branches of filters, so a rule is pushed
into disjunctive normal form (NOT pushed down by De Morgan, `in`/`between` on numbers,
booleans and dates expanded) and each conjunction becomes one `AND` branch. Each leaf becomes
a typed operation chosen by the HubSpot type of the property it reads (`MULTISTRING` for
strings, `NUMBER`, `BOOL`, `ENUMERATION` for selects and the tag checkbox, `TIME_POINT` /
`TIME_RANGED` for dates, `ALL_PROPERTY` for `is set`).

Unset values follow segsync's reference semantics: every condition on an unset field is false
except `is not set`, and `not X` is true when X is false or the field is unset. So a positive
leaf carries `includeObjectsWithNoValueSet: false` and a negated leaf the complementary
operator with `includeObjectsWithNoValueSet: true`.

`consent = subscribed` is an `EMAIL_SUBSCRIPTION` filter (`OPT_IN` on the synced subscription
type, whose id the connector fills in) ANDed with "not a bad address".

The compiler sees its connector's config and mapping (`RuleCompiler.config`, `.mapping`): tag
conditions filter on the configured `tags_property`, and a field the mapping moves to another
property is filtered on that property (None: segsync's defaults and the shipped mapping).

What HubSpot cannot say raises `PlatformCannotExpress` (the ladder then splits or
materialises): ordering on text, `not starts_with` / `not ends_with`, other `consent`
conditions (HubSpot does not tell pending, non_subscribed, unsubscribed and bounced apart as
segsync does), `within N hours` on a date-only property, sub-millisecond instants.
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any, ClassVar

from segsync.model import ConsentStatus, FieldSpec, FieldType
from segsync.rules import ast
from segsync.rules.compiler import CompilerCapabilities, PlatformCannotExpress, RuleCompiler
from segsync.rules.typecheck import BUILTIN_FIELDS, parse_iso
from segsync_hubspot.config import HubSpotConfig
from segsync_hubspot.fields import PropertyTarget, mapped_target

__all__ = ["HubSpotCompiler"]

_Literal = tuple[ast.Rule, bool]  # a leaf and whether it is negated
_Bound = tuple[dict[str, Any], bool]  # a time point and whether the endpoint is inclusive

_NUMBER_OPERATOR = {
    ast.CompareOp.EQ: "IS_EQUAL_TO",
    ast.CompareOp.NE: "IS_NOT_EQUAL_TO",
    ast.CompareOp.LT: "IS_LESS_THAN",
    ast.CompareOp.LE: "IS_LESS_THAN_OR_EQUAL_TO",
    ast.CompareOp.GT: "IS_GREATER_THAN",
    ast.CompareOp.GE: "IS_GREATER_THAN_OR_EQUAL_TO",
}
_NUMBER_NEGATION = {
    ast.CompareOp.EQ: ast.CompareOp.NE,
    ast.CompareOp.NE: ast.CompareOp.EQ,
    ast.CompareOp.LT: ast.CompareOp.GE,
    ast.CompareOp.GE: ast.CompareOp.LT,
    ast.CompareOp.LE: ast.CompareOp.GT,
    ast.CompareOp.GT: ast.CompareOp.LE,
}
_HUBSPOT_TYPES_OF: dict[FieldType, frozenset[str]] = {
    FieldType.TEXT: frozenset({"string", "enumeration"}),
    FieldType.PHONE: frozenset({"string"}),
    FieldType.ENUM: frozenset({"string", "enumeration"}),
    FieldType.MULTI_ENUM: frozenset({"enumeration"}),
    FieldType.NUMBER: frozenset({"number"}),
    FieldType.INTEGER: frozenset({"number"}),
    FieldType.BOOLEAN: frozenset({"bool"}),
    FieldType.DATE: frozenset({"date", "datetime"}),
    FieldType.DATETIME: frozenset({"date", "datetime"}),
}
"""HubSpot property types that can hold each canonical type with the same comparisons."""

_SUBSCRIBED = "@hubspot:subscribed"  # opted in to the subscription type (EMAIL_SUBSCRIPTION)
_BOUNCED = "@hubspot:bounced"  # hs_email_bad_address

_TEXT_OPERATOR = {
    ast.TextOp.CONTAINS: "CONTAINS",
    ast.TextOp.STARTS_WITH: "STARTS_WITH",
    ast.TextOp.ENDS_WITH: "ENDS_WITH",
}


def _leaves(rule: ast.Rule) -> list[ast.Rule]:
    if isinstance(rule, ast.And | ast.Or):
        return [leaf for item in rule.items for leaf in _leaves(item)]
    if isinstance(rule, ast.Not):
        return _leaves(rule.item)
    return [rule]


class HubSpotCompiler(RuleCompiler):
    """Compiles rules into `{"filterBranch": ...}` for a DYNAMIC contact list."""

    platform: ClassVar[str] = "hubspot"
    #: What the Lists v3 filter language lacks for `birthday within N days`: an operation
    #: whose left side is the property's yearly anniversary. TIME_POINT / TIME_RANGED read
    #: the property through `propertyParser` VALUE or UPDATED_AT (the date, or when it was
    #: set); CALENDAR_DATE (IN_THIS/NEXT/LAST_TIME_UNIT) and the legacy ROLLING_DATE_RANGE
    #: place the full date around today. ANNIVERSARY appears only as a `referenceType` of a
    #: PROPERTY_REFERENCED time point, i.e. on the right side (another property's
    #: anniversary), named in the spec without a meaning (the year it falls in, 29 February)
    #: and without an offset to reach "today + N days". So segsync does not emit it.
    RECURRING_DATES_REASON: ClassVar[str] = (
        "HubSpot's list filters have no anniversary operator (TIME_POINT and TIME_RANGED "
        "compare the full date, propertyParser VALUE or UPDATED_AT; CALENDAR_DATE and "
        "ROLLING_DATE_RANGE place the full date around today; ANNIVERSARY is only a "
        "referenceType of a PROPERTY_REFERENCED time point, undocumented and without offset)"
    )
    CAPS: ClassVar[CompilerCapabilities] = CompilerCapabilities(
        node_types=frozenset(
            {"compare", "in", "text", "is_set", "has", "within", "date", "between"}
        ),
        connectives=frozenset({"and", "or"}),
        max_depth=2,
        root="or",
        max_conditions=250,
        max_dnf_terms=64,
        negated_leaves=True,
    )
    #: the subscription type in EMAIL_SUBSCRIPTION filters; the connector puts the id of the
    #: one it syncs consent with in its place when it publishes
    SUBSCRIPTION: ClassVar[str] = "segsync:subscription"
    #: most AND branches one list holds (HubSpot documents no limit; stay moderate)
    MAX_BRANCHES: ClassVar[int] = 64

    @property
    def tags_property(self) -> str:
        """The multi-checkbox property holding tags: the connector's `tags_property`."""
        if isinstance(self.config, HubSpotConfig):
            return self.config.tags_property
        default: str = HubSpotConfig.model_fields["tags_property"].default
        return default

    # -- structure ---------------------------------------------------------------------------

    def fits(self, rule: ast.Rule) -> str | None:
        """Leaf types and size only: `emit` puts any and/or/not nesting into OR-of-ANDs itself
        (so the reason a rule is not native is the condition HubSpot cannot say)."""
        if isinstance(rule, ast.Const):
            return "a constant rule has no native form"
        leaves = list(_leaves(rule))
        for leaf in leaves:
            if leaf.type not in self.CAPS.node_types:
                return f"'{leaf.type}' conditions are not supported natively"
        if len(leaves) > self.CAPS.max_conditions:
            return f"{len(leaves)} conditions exceed the limit of {self.CAPS.max_conditions}"
        return None

    def emit(self, rule: ast.Rule) -> dict[str, Any]:
        """The `{"filterBranch": {OR of AND branches}}` of `rule`."""
        terms = self._dnf(rule, negated=False)
        if not terms:  # selects nobody: HubSpot's CONSTANT filter says so
            terms = [[(ast.Const(value=False), False)]]
        if len(terms) > self.MAX_BRANCHES:
            raise PlatformCannotExpress(
                f"{len(terms)} AND branches exceed the {self.MAX_BRANCHES} segsync publishes"
            )
        branches = []
        for term in terms:
            filters: list[dict[str, Any]] = []
            for leaf, negated in term:
                filters += self._filters(leaf, negated)
            branches.append(
                {
                    "filterBranchType": "AND",
                    "filterBranchOperator": "AND",
                    "filterBranches": [],
                    "filters": filters,
                }
            )
        return {
            "filterBranch": {
                "filterBranchType": "OR",
                "filterBranchOperator": "OR",
                "filters": [],
                "filterBranches": branches,
            }
        }

    def _dnf(self, rule: ast.Rule, *, negated: bool) -> list[list[_Literal]]:
        """`rule` (negated when asked) as a list of conjunctions of literals."""
        if isinstance(rule, ast.Const):
            return [[]] if rule.value != negated else []
        if isinstance(rule, ast.Not):
            return self._dnf(rule.item, negated=not negated)
        if isinstance(rule, ast.And | ast.Or):
            parts = [self._dnf(item, negated=negated) for item in rule.items]
            conjunctive = isinstance(rule, ast.And) != negated
            if not conjunctive:
                return [term for part in parts for term in part]
            size = 1
            for part in parts:
                size *= max(1, len(part))
                if size > self.CAPS.max_dnf_terms:
                    raise PlatformCannotExpress(
                        f"the filter would need more than {self.CAPS.max_dnf_terms} AND branches"
                    )
            return [[lit for term in combo for lit in term] for combo in itertools.product(*parts)]
        expanded = self._expand(rule)
        if expanded is not None:
            return self._dnf(expanded, negated=negated)
        return [[(rule, negated)]]

    def _expand(self, rule: ast.Rule) -> ast.Rule | None:
        """Leaves that are several HubSpot filters: `in`/`between` on non-string properties,
        and `consent = subscribed` (opted in to the subscription type and not bounced)."""
        if isinstance(rule, ast.Compare | ast.In | ast.IsSet) and rule.field == "consent":
            return self._consent(rule)
        if isinstance(rule, ast.In) and not rule.values:
            # `in []` holds for nobody, `not in []` for every set value
            return ast.IsSet(field=rule.field) if rule.negated else ast.Const(value=False)
        if isinstance(rule, ast.In | ast.Between):
            target, _ = self._target(rule.field)
            if isinstance(rule, ast.In) and target.type in ("number", "bool", "date", "datetime"):
                op = ast.CompareOp.NE if rule.negated else ast.CompareOp.EQ
                items = tuple(ast.Compare(field=rule.field, op=op, value=v) for v in rule.values)
                return ast.And(items=items) if rule.negated else ast.Or(items=items)
            if isinstance(rule, ast.Between) and target.type == "number":
                return ast.And(
                    items=(
                        ast.Compare(field=rule.field, op=ast.CompareOp.GE, value=rule.low),
                        ast.Compare(field=rule.field, op=ast.CompareOp.LE, value=rule.high),
                    )
                )
        return None

    # -- leaves -----------------------------------------------------------------------------

    def _consent(self, rule: ast.Compare | ast.In | ast.IsSet) -> ast.Rule:
        """`consent` conditions HubSpot holds one to one: the set {subscribed} (or all but it).

        Sync writes `subscribed` as SUBSCRIBED and every other status as something else, but
        pending, non_subscribed, unsubscribed and bounced are not told apart one to one
        (pending is not written; bounced is written as an opt-out; HubSpot sets bounces).
        """
        if isinstance(rule, ast.IsSet):
            return ast.Const(value=not rule.negated)  # consent is always set
        statuses = {s.value for s in ConsentStatus}
        if isinstance(rule, ast.Compare):
            if rule.op not in (ast.CompareOp.EQ, ast.CompareOp.NE):
                raise PlatformCannotExpress("consent statuses have no order")
            chosen = {rule.value} if rule.op is ast.CompareOp.EQ else statuses - {rule.value}
        else:
            chosen = statuses - set(rule.values) if rule.negated else set(rule.values)
        subscribed = ast.And(
            items=(
                ast.Compare(field=_SUBSCRIBED, op=ast.CompareOp.EQ, value=True),
                ast.Not(item=ast.Compare(field=_BOUNCED, op=ast.CompareOp.EQ, value=True)),
            )
        )
        if chosen == {ConsentStatus.SUBSCRIBED.value}:
            return subscribed
        if chosen == statuses - {ConsentStatus.SUBSCRIBED.value}:
            return ast.Not(item=subscribed)
        raise PlatformCannotExpress(
            "consent conditions other than 'subscribed': HubSpot does not tell pending, "
            "non_subscribed, unsubscribed and bounced apart as segsync does"
        )

    def _target(self, field: str) -> tuple[PropertyTarget, FieldSpec | None]:
        if field == "tags":
            return PropertyTarget(self.tags_property, "enumeration", "checkbox"), None
        spec = self.schema.fields.get(field) or BUILTIN_FIELDS.get(field)
        target = mapped_target(field, spec, self.mapping)
        if target.read_only and not target.builtin:
            raise PlatformCannotExpress(f"HubSpot reports no {field}: it has no such property")
        return target, spec

    def _filters(self, leaf: ast.Rule, negated: bool) -> list[dict[str, Any]]:
        if isinstance(leaf, ast.Const):
            return [{"filterType": "CONSTANT", "shouldAccept": leaf.value != negated}]
        field: str = getattr(leaf, "field", "")
        if field == _SUBSCRIBED:
            if negated:
                raise PlatformCannotExpress(
                    "'not subscribed': the EMAIL_SUBSCRIPTION statuses other than OPT_IN are "
                    "not documented"
                )
            return [
                {
                    "filterType": "EMAIL_SUBSCRIPTION",
                    "subscriptionIds": [self.SUBSCRIPTION],
                    "acceptedStatuses": ["OPT_IN"],
                }
            ]
        if field == _BOUNCED:
            target = PropertyTarget("hs_email_bad_address", "bool", "booleancheckbox")
            return [self._bool_filter(target, leaf, negated)]
        target, spec = self._target(field)
        if spec is not None and target.type not in _HUBSPOT_TYPES_OF[spec.type]:
            raise PlatformCannotExpress(
                f"{field} ({spec.type.value}) is kept in HubSpot's {target.type} property "
                f"{target.name}, which cannot compare it as a {spec.type.value}"
            )
        if isinstance(leaf, ast.IsSet):
            known = leaf.negated == negated
            return [
                self._filter(
                    target,
                    {
                        "operationType": "ALL_PROPERTY",
                        "operator": "IS_KNOWN" if known else "IS_UNKNOWN",
                    },
                    include=False,
                )
            ]
        if target.type in ("date", "datetime"):
            return [self._time_filter(target, leaf, negated)]
        if target.type == "string":
            return [self._string_filter(target, leaf, negated)]
        if target.type == "number":
            return [self._number_filter(target, leaf, negated)]
        if target.type == "bool":
            return [self._bool_filter(target, leaf, negated)]
        if target.type == "enumeration":
            return [self._enum_filter(target, leaf, negated)]
        raise PlatformCannotExpress(f"{field}: HubSpot type {target.type} is not supported")

    @staticmethod
    def _filter(
        target: PropertyTarget, operation: dict[str, Any], *, include: bool
    ) -> dict[str, Any]:
        return {
            "filterType": "PROPERTY",
            "property": target.name,
            "operation": {**operation, "includeObjectsWithNoValueSet": include},
        }

    def _string_filter(
        self, target: PropertyTarget, leaf: ast.Rule, negated: bool
    ) -> dict[str, Any]:
        def text(value: Any) -> str:
            if isinstance(value, bool):
                raise PlatformCannotExpress(f"{target.name}: a boolean compared with text")
            return str(value)

        if isinstance(leaf, ast.Compare) and leaf.op in (ast.CompareOp.EQ, ast.CompareOp.NE):
            equal = (leaf.op is ast.CompareOp.EQ) != negated
            operator = "IS_EQUAL_TO" if equal else "IS_NOT_EQUAL_TO"
            values = [text(leaf.value)]
        elif isinstance(leaf, ast.In):
            equal = (not leaf.negated) != negated
            operator = "IS_EQUAL_TO" if equal else "IS_NOT_EQUAL_TO"
            values = [text(v) for v in leaf.values]
            if not values:
                raise PlatformCannotExpress(f"{target.name}: an empty 'in' list has no filter")
        elif isinstance(leaf, ast.TextMatch):
            if negated and leaf.op is not ast.TextOp.CONTAINS:
                raise PlatformCannotExpress(
                    f"not {leaf.op.value}: HubSpot has no negated {leaf.op.value} operator"
                )
            operator = "DOES_NOT_CONTAIN" if negated else _TEXT_OPERATOR[leaf.op]
            values = [leaf.value]
        else:
            raise PlatformCannotExpress(
                f"{leaf.type} on text property {target.name}: HubSpot cannot order or range text"
            )
        return self._filter(
            target,
            {"operationType": "MULTISTRING", "operator": operator, "values": values},
            include=negated,
        )

    def _number_filter(
        self, target: PropertyTarget, leaf: ast.Rule, negated: bool
    ) -> dict[str, Any]:
        if not isinstance(leaf, ast.Compare):
            raise PlatformCannotExpress(f"{leaf.type} on number property {target.name}")
        if isinstance(leaf.value, bool) or not isinstance(leaf.value, int | float):
            raise PlatformCannotExpress(f"{target.name}: a number compared with {leaf.value!r}")
        op = _NUMBER_NEGATION[leaf.op] if negated else leaf.op
        return self._filter(
            target,
            {"operationType": "NUMBER", "operator": _NUMBER_OPERATOR[op], "value": leaf.value},
            include=negated,
        )

    def _bool_filter(self, target: PropertyTarget, leaf: ast.Rule, negated: bool) -> dict[str, Any]:
        if not (
            isinstance(leaf, ast.Compare)
            and isinstance(leaf.value, bool)
            and leaf.op in (ast.CompareOp.EQ, ast.CompareOp.NE)
        ):
            raise PlatformCannotExpress(f"{leaf.type} on boolean property {target.name}")
        equal = (leaf.op is ast.CompareOp.EQ) != negated
        return self._filter(
            target,
            {
                "operationType": "BOOL",
                "operator": "IS_EQUAL_TO" if equal else "IS_NOT_EQUAL_TO",
                "value": leaf.value,
            },
            include=negated,
        )

    def _enum_filter(self, target: PropertyTarget, leaf: ast.Rule, negated: bool) -> dict[str, Any]:
        fold = target.name == self.tags_property

        def value(v: Any) -> str:
            if isinstance(v, bool):
                raise PlatformCannotExpress(f"{target.name}: a boolean compared with an option")
            return str(v).casefold() if fold else str(v)

        if isinstance(leaf, ast.Has):
            values, positive = [value(leaf.value)], True
        elif isinstance(leaf, ast.Compare) and leaf.op in (ast.CompareOp.EQ, ast.CompareOp.NE):
            if target.multi:
                raise PlatformCannotExpress(f"= on multi-valued property {target.name}")
            values, positive = [value(leaf.value)], leaf.op is ast.CompareOp.EQ
        elif isinstance(leaf, ast.In) and not target.multi:
            values, positive = [value(v) for v in leaf.values], not leaf.negated
            if not values:
                raise PlatformCannotExpress(f"{target.name}: an empty 'in' list")
        else:
            raise PlatformCannotExpress(f"{leaf.type} on option property {target.name}")
        return self._filter(
            target,
            {
                "operationType": "ENUMERATION",
                "operator": "IS_ANY_OF" if positive != negated else "IS_NONE_OF",
                "values": values,
            },
            include=negated,
        )

    # -- time ---------------------------------------------------------------------------------

    @staticmethod
    def _day_point(day: dt.date) -> dict[str, Any]:
        return {
            "timeType": "DATE",
            "year": day.year,
            "month": day.month,
            "day": day.day,
            "hour": 0,
            "minute": 0,
            "second": 0,
            "millisecond": 0,
            "zoneId": "UTC",
        }

    @staticmethod
    def _instant_point(when: dt.datetime) -> dict[str, Any]:
        when = when.astimezone(dt.UTC)
        if when.microsecond % 1000:
            raise PlatformCannotExpress("HubSpot time points stop at milliseconds")
        return {
            "timeType": "DATE",
            "year": when.year,
            "month": when.month,
            "day": when.day,
            "hour": when.hour,
            "minute": when.minute,
            "second": when.second,
            "millisecond": when.microsecond // 1000,
            "zoneId": "UTC",
        }

    def _bounds(
        self, target: PropertyTarget, op: ast.CompareOp, literal: Any
    ) -> tuple[_Bound | None, _Bound | None]:
        """(lower, upper) bounds of `value op literal` at the evaluator's granularity."""
        parsed = parse_iso(literal) if isinstance(literal, str) else None
        if parsed is None:
            raise PlatformCannotExpress(f"{target.name}: {literal!r} is not an ISO date")
        if target.type == "date" or not isinstance(parsed, dt.datetime):
            day = parsed.astimezone(dt.UTC).date() if isinstance(parsed, dt.datetime) else parsed
            start, end = self._day_point(day), self._day_point(day + dt.timedelta(days=1))
            return {
                ast.CompareOp.EQ: ((start, True), (end, False)),
                ast.CompareOp.LT: (None, (start, False)),
                ast.CompareOp.LE: (None, (end, False)),
                ast.CompareOp.GT: ((end, True), None),
                ast.CompareOp.GE: ((start, True), None),
            }[op]
        point = self._instant_point(parsed)
        return {
            ast.CompareOp.EQ: ((point, True), (point, True)),
            ast.CompareOp.LT: (None, (point, False)),
            ast.CompareOp.LE: (None, (point, True)),
            ast.CompareOp.GT: ((point, False), None),
            ast.CompareOp.GE: ((point, True), None),
        }[op]

    def _time_filter(self, target: PropertyTarget, leaf: ast.Rule, negated: bool) -> dict[str, Any]:
        outside = False  # `!=`: the complement of the range, with unset excluded
        if isinstance(leaf, ast.Compare):
            op = leaf.op
            if op is ast.CompareOp.NE:
                op, outside = ast.CompareOp.EQ, True
            low, high = self._bounds(target, op, leaf.value)
        elif isinstance(leaf, ast.DateCmp):
            op = ast.CompareOp.LT if leaf.op is ast.DateOp.BEFORE else ast.CompareOp.GT
            low, high = self._bounds(target, op, leaf.value)
        elif isinstance(leaf, ast.Between):
            low = self._bounds(target, ast.CompareOp.GE, leaf.low)[0]
            high = self._bounds(target, ast.CompareOp.LE, leaf.high)[1]
        elif isinstance(leaf, ast.Within):
            low, high = self._within(target, leaf)
        else:
            raise PlatformCannotExpress(f"{leaf.type} on date property {target.name}")
        if outside:
            negated = not negated
            include = not negated  # `!=` excludes unset; `not (!=)` includes it
        else:
            include = negated
        return self._filter(target, self._time_operation(low, high, negated), include=include)

    def _within(self, target: PropertyTarget, leaf: ast.Within) -> tuple[_Bound, _Bound]:
        if target.type == "date":
            days = leaf.amount if leaf.unit is ast.TimeUnit.DAYS else None
            if days is None:
                if leaf.amount % 24:
                    raise PlatformCannotExpress(
                        f"within {leaf.amount} hours on date-only property {target.name}"
                    )
                days = leaf.amount // 24
            today = {"referenceType": "TODAY"}
            return (
                (
                    {
                        "timeType": "INDEXED",
                        "indexReference": today,
                        "offset": {"days": -days},
                        "zoneId": "UTC",
                    },
                    True,
                ),
                ({"timeType": "INDEXED", "indexReference": today, "zoneId": "UTC"}, True),
            )
        unit = "days" if leaf.unit is ast.TimeUnit.DAYS else "hours"
        now = {"referenceType": "NOW"}
        return (
            (
                {
                    "timeType": "INDEXED",
                    "indexReference": now,
                    "offset": {unit: -leaf.amount},
                    "zoneId": "UTC",
                },
                True,
            ),
            ({"timeType": "INDEXED", "indexReference": now, "zoneId": "UTC"}, True),
        )

    @staticmethod
    def _time_operation(low: _Bound | None, high: _Bound | None, negated: bool) -> dict[str, Any]:
        def behaviour(inclusive: bool) -> str:
            return "INCLUSIVE" if inclusive else "EXCLUSIVE"

        if low is not None and high is not None:
            return {
                "operationType": "TIME_RANGED",
                "type": "TIME_RANGED",
                "operator": "IS_NOT_BETWEEN" if negated else "IS_BETWEEN",
                "lowerBoundTimePoint": low[0],
                "upperBoundTimePoint": high[0],
                "lowerBoundEndpointBehavior": behaviour(low[1]),
                "upperBoundEndpointBehavior": behaviour(high[1]),
                "propertyParser": "VALUE",
            }
        if low is not None:  # value after low; negated: value before it (other endpoint)
            point, inclusive = low
            operator = "IS_BEFORE" if negated else "IS_AFTER"
        else:
            assert high is not None
            point, inclusive = high
            operator = "IS_AFTER" if negated else "IS_BEFORE"
        return {
            "operationType": "TIME_POINT",
            "type": "TIME_POINT",
            "operator": operator,
            "timePoint": point,
            "endpointBehavior": behaviour(inclusive != negated),
            "propertyParser": "VALUE",
        }
