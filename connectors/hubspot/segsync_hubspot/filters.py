"""HubSpot's filter semantics, as the emulator applies them.

Two filter languages live here:

- list filter branches (Lists v3 `filterBranch`): `validate_branch` enforces the shape HubSpot
  accepts (root `OR` without filters holding `AND` branches; typed operations per property
  type) and `branch_accepts` evaluates a branch on one record, including
  `includeObjectsWithNoValueSet` (a record with no value for the property gets the flag's
  verdict for every operation except `ALL_PROPERTY`);
- CRM search filters (`filterGroups` of `EQ`, `GT`, `IN`, ...): `search_filter_accepts`.

Values on the wire are strings; enumeration multi-values are `;`-joined; dates are ISO dates
and datetimes ISO-8601 UTC (epoch milliseconds are accepted where HubSpot accepts them).

Date operations are held to what HubSpot documents, and refused when a list is created or
its filters updated (never silently read another way): `propertyParser` VALUE or
UPDATED_AT; time points DATE, or INDEXED on NOW or TODAY with offsets in weeks, days,
hours, minutes, seconds and milliseconds. A PROPERTY_REFERENCED time point (whose reference
types include ANNIVERSARY) is refused: the specification names its reference types without
saying what they mean (which year an anniversary falls in, 29 February) and gives it no
offset.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

__all__ = [
    "OPERATION_TYPES_BY_PROPERTY_TYPE",
    "OPERATORS",
    "FilterError",
    "RecordView",
    "branch_accepts",
    "normalise_branch",
    "search_filter_accepts",
    "to_epoch_ms",
    "validate_branch",
]


class FilterError(ValueError):
    """A filter HubSpot would refuse; the message is HubSpot-style."""


OPERATORS: dict[str, frozenset[str]] = {
    "MULTISTRING": frozenset(
        {
            "IS_EQUAL_TO",
            "IS_NOT_EQUAL_TO",
            "CONTAINS",
            "DOES_NOT_CONTAIN",
            "STARTS_WITH",
            "ENDS_WITH",
            "CONTAINS_EXACTLY",
            "DOES_NOT_CONTAIN_EXACTLY",
        }
    ),
    "STRING": frozenset(
        {
            "IS_EQUAL_TO",
            "IS_NOT_EQUAL_TO",
            "CONTAINS",
            "DOES_NOT_CONTAIN",
            "STARTS_WITH",
            "ENDS_WITH",
            "HAS_EVER_BEEN_EQUAL_TO",
            "HAS_NEVER_BEEN_EQUAL_TO",
            "HAS_EVER_CONTAINED",
            "HAS_NEVER_CONTAINED",
        }
    ),
    "NUMBER": frozenset(
        {
            "IS_EQUAL_TO",
            "IS_NOT_EQUAL_TO",
            "IS_GREATER_THAN",
            "IS_GREATER_THAN_OR_EQUAL_TO",
            "IS_LESS_THAN",
            "IS_LESS_THAN_OR_EQUAL_TO",
            "HAS_EVER_BEEN_EQUAL_TO",
            "HAS_NEVER_BEEN_EQUAL_TO",
        }
    ),
    "NUMBER_RANGED": frozenset({"IS_BETWEEN", "IS_NOT_BETWEEN"}),
    "BOOL": frozenset(
        {
            "IS_EQUAL_TO",
            "IS_NOT_EQUAL_TO",
            "HAS_EVER_BEEN_EQUAL_TO",
            "HAS_NEVER_BEEN_EQUAL_TO",
        }
    ),
    "ENUMERATION": frozenset(
        {
            "IS_ANY_OF",
            "IS_NONE_OF",
            "IS_EXACTLY",
            "IS_NOT_EXACTLY",
            "CONTAINS_ALL",
            "DOES_NOT_CONTAIN_ALL",
            "HAS_EVER_BEEN_ANY_OF",
            "HAS_NEVER_BEEN_ANY_OF",
            "HAS_EVER_BEEN_EXACTLY",
            "HAS_NEVER_BEEN_EXACTLY",
            "HAS_EVER_CONTAINED_ALL",
            "HAS_NEVER_CONTAINED_ALL",
        }
    ),
    "ALL_PROPERTY": frozenset({"IS_KNOWN", "IS_UNKNOWN"}),
    "TIME_POINT": frozenset({"IS_BEFORE", "IS_AFTER"}),
    "TIME_RANGED": frozenset({"IS_BETWEEN", "IS_NOT_BETWEEN"}),
}
"""Operators allowed per `operationType` (spec descriptions)."""

OPERATION_TYPES_BY_PROPERTY_TYPE: dict[str, frozenset[str]] = {
    "string": frozenset({"MULTISTRING", "STRING", "ALL_PROPERTY"}),
    "phone_number": frozenset({"MULTISTRING", "STRING", "ALL_PROPERTY"}),
    "number": frozenset({"NUMBER", "NUMBER_RANGED", "ALL_PROPERTY"}),
    "bool": frozenset({"BOOL", "ALL_PROPERTY"}),
    "enumeration": frozenset({"ENUMERATION", "ALL_PROPERTY"}),
    "date": frozenset({"TIME_POINT", "TIME_RANGED", "ALL_PROPERTY"}),
    "datetime": frozenset({"TIME_POINT", "TIME_RANGED", "ALL_PROPERTY"}),
}
"""Which operation types a property of each type accepts (an unlisted pair is refused)."""

_EXTRA_REQUIRED: dict[str, tuple[str, ...]] = {
    "MULTISTRING": ("values",),
    "STRING": ("value",),
    "NUMBER": ("value",),
    "NUMBER_RANGED": ("lowerBound", "upperBound"),
    "BOOL": ("value",),
    "ENUMERATION": ("values",),
    "ALL_PROPERTY": (),
    "TIME_POINT": ("timePoint",),
    "TIME_RANGED": ("lowerBoundTimePoint", "upperBoundTimePoint"),
}

_HISTORY_OPERATORS = frozenset(op for ops in OPERATORS.values() for op in ops if "EVER" in op)

PROPERTY_PARSERS: frozenset[str] = frozenset({"VALUE", "UPDATED_AT"})
"""`propertyParser` values of TIME_POINT / TIME_RANGED whose meaning HubSpot documents (the
spec lists none; the docs' recipes use these two)."""
ENDPOINT_BEHAVIOURS: frozenset[str] = frozenset({"INCLUSIVE", "EXCLUSIVE"})
_INDEX_REFERENCES = frozenset({"NOW", "TODAY"})
_OFFSET_UNITS = ("weeks", "days", "hours", "minutes", "seconds", "milliseconds")
"""INDEXED offsets evaluated (months, quarters and years, whose length varies, are refused
rather than ignored)."""
_DATE_PARTS = ("year", "month", "day", "hour", "minute", "second", "millisecond")
"""Parts of a DATE time point (year, month, day and `zoneId` required)."""


@dataclasses.dataclass(frozen=True)
class RecordView:
    """What filters see of a record: current values, value history and list memberships."""

    properties: Mapping[str, str]
    history: Mapping[str, Sequence[tuple[str, dt.datetime]]]
    in_list: Callable[[str], bool]
    subscription_status: Callable[[str], str] = lambda _sub: "NOT_OPTED"


# -- values -----------------------------------------------------------------------------


_DIGITS = re.compile(r"-?\d+")


@functools.lru_cache(maxsize=1 << 16)
def to_epoch_ms(value: str) -> int | None:
    """A date or datetime property value (ISO or epoch ms) as epoch milliseconds, or None."""
    text = value.strip()
    if _DIGITS.fullmatch(text):
        return int(text)
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() * 1000)
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return round(when.timestamp() * 1000)


def _time_point_ms(point: Mapping[str, Any], now: dt.datetime) -> int:
    kind = point.get("timeType")
    zone = ZoneInfo(str(point.get("zoneId") or "UTC"))
    if kind == "DATE":
        when = dt.datetime(
            int(point["year"]),
            int(point["month"]),
            int(point["day"]),
            int(point.get("hour") or 0),
            int(point.get("minute") or 0),
            int(point.get("second") or 0),
            int(point.get("millisecond") or 0) * 1000,
            tzinfo=zone,
        )
        return round(when.timestamp() * 1000)
    if kind == "INDEXED":
        reference = point.get("indexReference") or {}
        base = now.astimezone(zone)
        ref_type = reference.get("referenceType")
        if ref_type == "TODAY":
            base = base.replace(hour=0, minute=0, second=0, microsecond=0)
        elif ref_type != "NOW":
            raise FilterError(f"indexReference type {ref_type!r} is not supported here")
        offset = point.get("offset") or {}
        delta = dt.timedelta(
            weeks=int(offset.get("weeks") or 0),
            days=int(offset.get("days") or 0),
            hours=int(offset.get("hours") or 0),
            minutes=int(offset.get("minutes") or 0),
            seconds=int(offset.get("seconds") or 0),
            milliseconds=int(offset.get("milliseconds") or 0),
        )
        return round((base + delta).timestamp() * 1000)
    raise FilterError(f"timeType {kind!r} is not supported here")


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


# -- validation -------------------------------------------------------------------------


def validate_branch(
    branch: Any,
    property_type: Callable[[str], str | None],
    list_exists: Callable[[str], bool],
    subscription_exists: Callable[[str], bool] = lambda _sub: True,
) -> None:
    """Raise `FilterError` unless `branch` is a root filter branch HubSpot accepts."""
    if not isinstance(branch, dict):
        raise FilterError("filterBranch must be an object")
    if branch.get("filterBranchType") != "OR":
        raise FilterError("The root filter branch must be of type OR")
    if branch.get("filters"):
        raise FilterError("The root OR filter branch cannot have filters")
    children = branch.get("filterBranches") or []
    if not children:
        raise FilterError("The root OR filter branch must contain at least one AND filter branch")
    for child in children:
        if not isinstance(child, dict) or child.get("filterBranchType") != "AND":
            raise FilterError("Only AND filter branches may be nested in the root OR branch")
        for nested in child.get("filterBranches") or []:
            kind = nested.get("filterBranchType") if isinstance(nested, dict) else None
            if kind not in ("UNIFIED_EVENTS", "ASSOCIATION"):
                raise FilterError(
                    f"An AND filter branch may only nest UNIFIED_EVENTS or ASSOCIATION "
                    f"branches, not {kind}"
                )
            raise FilterError(f"{kind} filter branches are not supported by this emulator")
        for flt in child.get("filters") or []:
            _validate_filter(flt, property_type, list_exists, subscription_exists)


def _validate_filter(
    flt: Any,
    property_type: Callable[[str], str | None],
    list_exists: Callable[[str], bool],
    subscription_exists: Callable[[str], bool],
) -> None:
    if not isinstance(flt, dict):
        raise FilterError("a filter must be an object")
    kind = flt.get("filterType")
    if kind == "IN_LIST":
        if flt.get("operator") not in ("IN_LIST", "NOT_IN_LIST"):
            raise FilterError("IN_LIST filters need operator IN_LIST or NOT_IN_LIST")
        if not list_exists(str(flt.get("listId"))):
            raise FilterError(f"List {flt.get('listId')} does not exist")
        return
    if kind == "CONSTANT":
        if not isinstance(flt.get("shouldAccept"), bool):
            raise FilterError("CONSTANT filters need a boolean shouldAccept")
        return
    if kind == "EMAIL_SUBSCRIPTION":
        if not flt.get("subscriptionIds") or not flt.get("acceptedStatuses"):
            raise FilterError(
                "EMAIL_SUBSCRIPTION filters need subscriptionIds and acceptedStatuses"
            )
        for sub in flt["subscriptionIds"]:
            if not subscription_exists(str(sub)):
                raise FilterError(f"Subscription {sub} does not exist")
        return
    if kind != "PROPERTY":
        raise FilterError(f"filterType {kind!r} is not supported by this emulator")
    name = flt.get("property")
    ptype = property_type(str(name))
    if ptype is None:
        raise FilterError(f"Property {name} does not exist")
    operation = flt.get("operation")
    if not isinstance(operation, dict):
        raise FilterError(f"Filter on {name} has no operation")
    op_type = operation.get("operationType")
    if op_type not in OPERATORS:
        raise FilterError(f"operationType {op_type!r} is not supported")
    if op_type not in OPERATION_TYPES_BY_PROPERTY_TYPE.get(ptype, frozenset()):
        raise FilterError(
            f"Operation type {op_type} is not valid for property {name} of type {ptype}"
        )
    operator = operation.get("operator")
    if operator not in OPERATORS[op_type]:
        raise FilterError(f"Operator {operator} is not valid for operation type {op_type}")
    for key in _EXTRA_REQUIRED[op_type]:
        if key not in operation:
            raise FilterError(f"{op_type} operation on {name} is missing {key}")
    if op_type in ("MULTISTRING", "ENUMERATION") and not isinstance(operation["values"], list):
        raise FilterError(f"{op_type} operation on {name}: values must be an array")
    if op_type in ("TIME_POINT", "TIME_RANGED"):
        _validate_time_operation(str(name), op_type, operation)


def _validate_time_operation(name: str, op_type: str, operation: Mapping[str, Any]) -> None:
    """Refuse a date operation the emulator cannot evaluate as HubSpot documents it."""
    where = f"{op_type} operation on {name}"
    parser = operation.get("propertyParser", "VALUE")
    if parser not in PROPERTY_PARSERS:
        raise FilterError(
            f"{where}: propertyParser {parser!r} is not supported by this emulator "
            f"(documented: {', '.join(sorted(PROPERTY_PARSERS))})"
        )
    if op_type == "TIME_POINT":
        behaviours = {"endpointBehavior": operation.get("endpointBehavior", "EXCLUSIVE")}
        points = {"timePoint": operation["timePoint"]}
    else:
        behaviours = {
            key: operation.get(key, "INCLUSIVE")
            for key in ("lowerBoundEndpointBehavior", "upperBoundEndpointBehavior")
        }
        points = {k: operation[k] for k in ("lowerBoundTimePoint", "upperBoundTimePoint")}
    for key, behaviour in behaviours.items():
        if behaviour not in ENDPOINT_BEHAVIOURS:
            raise FilterError(f"{where}: {key} {behaviour!r} is not valid")
    for key, point in points.items():
        _validate_time_point(f"{where}: {key}", point)


def _validate_time_point(where: str, point: Any) -> None:
    """Refuse a time point the emulator would not evaluate as documented."""
    if not isinstance(point, dict):
        raise FilterError(f"{where} must be an object")
    kind = point.get("timeType")
    if kind == "PROPERTY_REFERENCED":
        raise FilterError(
            f"{where}: PROPERTY_REFERENCED time points (referenceType "
            f"{point.get('referenceType')!r}) are not supported by this emulator: HubSpot "
            "names their reference types (VALUE, UPDATED_AT, ANNIVERSARY, ...) without "
            "documenting what they mean"
        )
    if kind not in ("DATE", "INDEXED"):
        raise FilterError(f"{where}: timeType {kind!r} is not valid")
    zone = point.get("zoneId")
    if not isinstance(zone, str) or not zone:
        raise FilterError(f"{where} is missing zoneId")
    try:
        ZoneInfo(zone)
    except (ValueError, KeyError, OSError):  # ZoneInfoNotFoundError is a KeyError
        raise FilterError(f"{where}: zoneId {zone!r} is not a time zone") from None
    if kind == "DATE":
        for key in ("year", "month", "day"):
            if key not in point:
                raise FilterError(f"{where} is missing {key}")
        parts = [point.get(k) for k in _DATE_PARTS]
        if not all(v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in parts):
            raise FilterError(f"{where}: the parts of a DATE time point are integers")
        year, month, day, hour, minute, second, milli = (int(v or 0) for v in parts)
        try:
            dt.datetime(year, month, day, hour, minute, second, milli * 1000)
        except ValueError as exc:
            raise FilterError(f"{where} is not a date: {exc}") from None
        return
    reference = point.get("indexReference")
    ref_type = reference.get("referenceType") if isinstance(reference, dict) else None
    if ref_type not in _INDEX_REFERENCES:
        raise FilterError(
            f"{where}: indexReference {ref_type!r} is not supported by this emulator "
            f"(supported: {', '.join(sorted(_INDEX_REFERENCES))})"
        )
    assert isinstance(reference, dict)
    timed = sorted(set(reference) - {"referenceType"})
    if timed:  # NOW/TODAY at a set hour, minute, ...: not evaluated here
        raise FilterError(
            f"{where}: indexReference {', '.join(timed)} is not supported by this emulator"
        )
    offset = point.get("offset") or {}
    if not isinstance(offset, dict):
        raise FilterError(f"{where}: offset must be an object")
    refused = sorted(set(offset) - set(_OFFSET_UNITS))
    if refused:
        raise FilterError(
            f"{where}: offset {', '.join(refused)} is not supported by this emulator "
            f"(supported: {', '.join(_OFFSET_UNITS)})"
        )
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in offset.values()):
        raise FilterError(f"{where}: offsets are integers")


def normalise_branch(branch: dict[str, Any]) -> dict[str, Any]:
    """The branch as HubSpot echoes it: `filterBranchOperator` and defaults filled in."""
    out = dict(branch)
    out["filterBranchOperator"] = branch.get("filterBranchType")
    out["filterBranches"] = [normalise_branch(b) for b in branch.get("filterBranches") or []]
    filters = []
    for flt in branch.get("filters") or []:
        flt = dict(flt)
        if isinstance(flt.get("operation"), dict):
            operation = dict(flt["operation"])
            operation.setdefault("includeObjectsWithNoValueSet", False)
            flt["operation"] = operation
        filters.append(flt)
    out["filters"] = filters
    return out


# -- evaluation -------------------------------------------------------------------------


def branch_accepts(branch: Mapping[str, Any], record: RecordView, now: dt.datetime) -> bool:
    """Whether `record` is a member under `branch` (AND: all pass; OR: any passes)."""
    results = [_filter_accepts(f, record, now) for f in branch.get("filters") or []] + [
        branch_accepts(b, record, now) for b in branch.get("filterBranches") or []
    ]
    if branch.get("filterBranchType") == "AND":
        return all(results)
    return any(results)


def _filter_accepts(flt: Mapping[str, Any], record: RecordView, now: dt.datetime) -> bool:
    kind = flt.get("filterType")
    if kind == "CONSTANT":
        return bool(flt.get("shouldAccept"))
    if kind == "IN_LIST":
        member = record.in_list(str(flt["listId"]))
        return member if flt.get("operator") == "IN_LIST" else not member
    if kind == "EMAIL_SUBSCRIPTION":
        accepted = set(flt.get("acceptedStatuses") or [])
        return any(
            record.subscription_status(str(sub)) in accepted
            for sub in flt.get("subscriptionIds") or []
        )
    operation = flt["operation"]
    name = str(flt["property"])
    op_type = operation["operationType"]
    operator = operation["operator"]
    if operator in _HISTORY_OPERATORS:
        return _history_accepts(name, operation, record)
    raw = record.properties.get(name)
    if op_type == "ALL_PROPERTY":
        known = raw not in (None, "")
        return known if operator == "IS_KNOWN" else not known
    if raw in (None, ""):
        return bool(operation.get("includeObjectsWithNoValueSet", False))
    assert raw is not None
    if operation.get("propertyParser") == "UPDATED_AT":
        changes = record.history.get(name) or []
        if not changes:
            return bool(operation.get("includeObjectsWithNoValueSet", False))
        raw = str(round(changes[-1][1].timestamp() * 1000))
    return _value_accepts(op_type, operator, operation, raw, now)


def _value_accepts(
    op_type: str, operator: str, operation: Mapping[str, Any], raw: str, now: dt.datetime
) -> bool:
    if op_type in ("MULTISTRING", "STRING"):
        values = operation["values"] if op_type == "MULTISTRING" else [operation["value"]]
        return _string_accepts(operator, raw, [str(v) for v in values])
    if op_type == "NUMBER":
        number, target = _number(raw), _number(operation["value"])
        if number is None or target is None:
            return False
        return {
            "IS_EQUAL_TO": number == target,
            "IS_NOT_EQUAL_TO": number != target,
            "IS_GREATER_THAN": number > target,
            "IS_GREATER_THAN_OR_EQUAL_TO": number >= target,
            "IS_LESS_THAN": number < target,
            "IS_LESS_THAN_OR_EQUAL_TO": number <= target,
        }[operator]
    if op_type == "NUMBER_RANGED":
        number = _number(raw)
        if number is None:
            return False
        inside = float(operation["lowerBound"]) <= number <= float(operation["upperBound"])
        return inside if operator == "IS_BETWEEN" else not inside
    if op_type == "BOOL":
        wanted = "true" if operation["value"] in (True, "true") else "false"
        equal = raw.lower() == wanted
        return equal if operator == "IS_EQUAL_TO" else not equal
    if op_type == "ENUMERATION":
        have = {v for v in raw.split(";") if v}
        want = {str(v) for v in operation["values"]}
        return {
            "IS_ANY_OF": bool(have & want),
            "IS_NONE_OF": not (have & want),
            "IS_EXACTLY": have == want,
            "IS_NOT_EXACTLY": have != want,
            "CONTAINS_ALL": want <= have,
            "DOES_NOT_CONTAIN_ALL": not want <= have,
        }[operator]
    if op_type == "TIME_POINT":
        value = to_epoch_ms(raw)
        if value is None:
            return False
        point = _time_point_ms(operation["timePoint"], now)
        inclusive = operation.get("endpointBehavior") == "INCLUSIVE"
        if operator == "IS_BEFORE":
            return value <= point if inclusive else value < point
        return value >= point if inclusive else value > point
    if op_type == "TIME_RANGED":
        value = to_epoch_ms(raw)
        if value is None:
            return False
        low = _time_point_ms(operation["lowerBoundTimePoint"], now)
        high = _time_point_ms(operation["upperBoundTimePoint"], now)
        low_ok = (
            value > low
            if operation.get("lowerBoundEndpointBehavior") == "EXCLUSIVE"
            else value >= low
        )
        high_ok = (
            value < high
            if operation.get("upperBoundEndpointBehavior") == "EXCLUSIVE"
            else value <= high
        )
        inside = low_ok and high_ok
        return inside if operator == "IS_BETWEEN" else not inside
    raise FilterError(f"operationType {op_type} is not supported")  # pragma: no cover


def _string_accepts(operator: str, raw: str, values: list[str]) -> bool:
    if operator in ("CONTAINS_EXACTLY", "DOES_NOT_CONTAIN_EXACTLY"):
        hit = any(v in raw for v in values)
        return hit if operator == "CONTAINS_EXACTLY" else not hit
    text = raw.casefold()
    folded = [v.casefold() for v in values]
    return {
        "IS_EQUAL_TO": any(text == v for v in folded),
        "IS_NOT_EQUAL_TO": all(text != v for v in folded),
        "CONTAINS": any(v in text for v in folded),
        "DOES_NOT_CONTAIN": all(v not in text for v in folded),
        "STARTS_WITH": any(text.startswith(v) for v in folded),
        "ENDS_WITH": any(text.endswith(v) for v in folded),
    }[operator]


def _history_accepts(name: str, operation: Mapping[str, Any], record: RecordView) -> bool:
    operator = operation["operator"]
    past = [value for value, _ in record.history.get(name) or [] if value not in (None, "")]
    if "value" in operation:
        targets = [str(operation["value"]).casefold()]
    else:
        targets = [str(v).casefold() for v in operation.get("values") or []]
    if "CONTAINED" in operator:
        hit = any(t in v.casefold() for v in past for t in targets)
    else:
        hit = any(v.casefold() in targets for v in past)
    return hit if "EVER" in operator and "NEVER" not in operator else not hit


# -- CRM search ---------------------------------------------------------------------------


def search_filter_accepts(
    flt: Mapping[str, Any], properties: Mapping[str, str], ptype: str
) -> bool:
    """One CRM search filter on a record's properties (`ptype`: the property's type)."""
    operator = flt["operator"]
    raw = properties.get(flt["propertyName"])
    known = raw not in (None, "")
    if operator == "HAS_PROPERTY":
        return known
    if operator == "NOT_HAS_PROPERTY":
        return not known
    if not known:
        return operator in ("NEQ", "NOT_IN", "NOT_CONTAINS_TOKEN")
    assert raw is not None
    if operator in ("IN", "NOT_IN"):
        # exact match; string values must be given lowercase (HubSpot search docs)
        values = [str(v) for v in flt.get("values") or []]
        candidate = raw.lower() if ptype in ("string", "phone_number") else raw
        hit = candidate in values or (
            ptype == "enumeration" and bool(set(raw.split(";")) & set(values))
        )
        return hit if operator == "IN" else not hit
    if operator in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        pattern = re.escape(str(flt.get("value", "")).lower()).replace(r"\*", ".*")
        tokens = re.split(r"[\s,;]+", raw.lower())
        hit = any(re.fullmatch(pattern, tok) for tok in tokens) or bool(
            re.fullmatch(pattern, raw.lower())
        )
        return hit if operator == "CONTAINS_TOKEN" else not hit
    left: Any
    right: Any
    high: Any = None
    if ptype in ("number",):
        left, right = _number(raw), _number(flt.get("value"))
        high = _number(flt.get("highValue"))
    elif ptype in ("date", "datetime"):
        left, right = to_epoch_ms(raw), to_epoch_ms(str(flt.get("value", "")))
        high = to_epoch_ms(str(flt.get("highValue", ""))) if flt.get("highValue") else None
    elif ptype == "enumeration":
        left, right = raw, str(flt.get("value", ""))
        if operator in ("EQ", "NEQ"):
            hit = right in raw.split(";")
            return hit if operator == "EQ" else not hit
    else:
        left, right = raw.casefold(), str(flt.get("value", "")).casefold()
        high = str(flt.get("highValue", "")).casefold()
    if left is None or right is None:
        return False
    if operator == "EQ":
        return bool(left == right)
    if operator == "NEQ":
        return bool(left != right)
    if operator == "LT":
        return bool(left < right)
    if operator == "LTE":
        return bool(left <= right)
    if operator == "GT":
        return bool(left > right)
    if operator == "GTE":
        return bool(left >= right)
    if operator == "BETWEEN":
        return high is not None and bool(right <= left <= high)
    raise FilterError(f"Unknown operator {operator}")
