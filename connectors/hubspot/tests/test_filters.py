"""The emulator's list-filter and search semantics, operation by operation."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from segsync_hubspot.filters import RecordView, branch_accepts, search_filter_accepts

NOW = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.UTC)
MIDNIGHT_14 = {"timeType": "DATE", "year": 2026, "month": 1, "day": 14, "zoneId": "UTC"}


def accepts(prop: str, operation: dict[str, Any], **props: str) -> bool:
    flt = {"filterType": "PROPERTY", "property": prop, "operation": operation}
    branch = {
        "filterBranchType": "OR",
        "filters": [],
        "filterBranches": [{"filterBranchType": "AND", "filterBranches": [], "filters": [flt]}],
    }
    return branch_accepts(branch, RecordView(props, {}, lambda _: False), NOW)


@pytest.mark.parametrize(
    ("operation", "value", "expected"),
    [
        (
            {"operationType": "MULTISTRING", "operator": "IS_EQUAL_TO", "values": ["ada", "x"]},
            "ADA",
            True,
        ),
        (
            {"operationType": "MULTISTRING", "operator": "IS_NOT_EQUAL_TO", "values": ["ada"]},
            "Ada",
            False,
        ),
        ({"operationType": "MULTISTRING", "operator": "CONTAINS", "values": ["DA"]}, "ada", True),
        (
            {"operationType": "MULTISTRING", "operator": "DOES_NOT_CONTAIN", "values": ["z"]},
            "ada",
            True,
        ),
        ({"operationType": "MULTISTRING", "operator": "STARTS_WITH", "values": ["a"]}, "Ada", True),
        ({"operationType": "MULTISTRING", "operator": "ENDS_WITH", "values": ["x"]}, "Ada", False),
        (
            {"operationType": "MULTISTRING", "operator": "CONTAINS_EXACTLY", "values": ["DA"]},
            "ada",
            False,
        ),
        ({"operationType": "NUMBER", "operator": "IS_GREATER_THAN", "value": 2}, "2.5", True),
        (
            {"operationType": "NUMBER", "operator": "IS_LESS_THAN_OR_EQUAL_TO", "value": 2},
            "2.0",
            True,
        ),
        (
            {
                "operationType": "NUMBER_RANGED",
                "operator": "IS_BETWEEN",
                "lowerBound": 1,
                "upperBound": 3,
            },
            "3",
            True,
        ),
        (
            {
                "operationType": "NUMBER_RANGED",
                "operator": "IS_NOT_BETWEEN",
                "lowerBound": 1,
                "upperBound": 3,
            },
            "3",
            False,
        ),
        ({"operationType": "BOOL", "operator": "IS_EQUAL_TO", "value": True}, "true", True),
        ({"operationType": "ENUMERATION", "operator": "IS_ANY_OF", "values": ["b"]}, "a;b", True),
        ({"operationType": "ENUMERATION", "operator": "IS_ANY_OF", "values": ["B"]}, "a;b", False),
        ({"operationType": "ENUMERATION", "operator": "IS_NONE_OF", "values": ["c"]}, "a;b", True),
        (
            {"operationType": "ENUMERATION", "operator": "IS_EXACTLY", "values": ["b", "a"]},
            "a;b",
            True,
        ),
        (
            {"operationType": "ENUMERATION", "operator": "CONTAINS_ALL", "values": ["a", "c"]},
            "a;b",
            False,
        ),
        (
            {
                "operationType": "TIME_POINT",
                "operator": "IS_AFTER",
                "timePoint": MIDNIGHT_14,
                "endpointBehavior": "EXCLUSIVE",
            },
            "2026-01-14",
            False,
        ),
        (
            {
                "operationType": "TIME_POINT",
                "operator": "IS_AFTER",
                "timePoint": MIDNIGHT_14,
                "endpointBehavior": "INCLUSIVE",
            },
            "2026-01-14",
            True,
        ),
        (
            {"operationType": "TIME_POINT", "operator": "IS_BEFORE", "timePoint": MIDNIGHT_14},
            "1768300000000",
            True,
        ),
        (
            {
                "operationType": "TIME_RANGED",
                "operator": "IS_BETWEEN",
                "lowerBoundTimePoint": {
                    "timeType": "INDEXED",
                    "indexReference": {"referenceType": "NOW"},
                    "offset": {"days": -1},
                    "zoneId": "UTC",
                },
                "upperBoundTimePoint": {
                    "timeType": "INDEXED",
                    "indexReference": {"referenceType": "NOW"},
                    "zoneId": "UTC",
                },
            },
            "2026-01-14T12:00:00.000Z",
            True,
        ),
        (
            {
                "operationType": "TIME_RANGED",
                "operator": "IS_BETWEEN",
                "lowerBoundTimePoint": {
                    "timeType": "INDEXED",
                    "indexReference": {"referenceType": "TODAY"},
                    "zoneId": "UTC",
                },
                "upperBoundTimePoint": {
                    "timeType": "INDEXED",
                    "indexReference": {"referenceType": "NOW"},
                    "zoneId": "UTC",
                },
            },
            "2026-01-14T23:59:59.999Z",
            False,
        ),
    ],
)
def test_operations_on_a_set_value(operation: dict[str, Any], value: str, expected: bool) -> None:
    """Each operation type and operator judges a set value as HubSpot documents."""
    assert accepts("p", {**operation, "includeObjectsWithNoValueSet": False}, p=value) is expected


@pytest.mark.parametrize("include", [True, False])
def test_unset_values_take_include_objects_with_no_value_set(include: bool) -> None:
    """With no value, every operation answers includeObjectsWithNoValueSet, but ALL_PROPERTY."""
    operation = {
        "operationType": "MULTISTRING",
        "operator": "IS_NOT_EQUAL_TO",
        "values": ["a"],
        "includeObjectsWithNoValueSet": include,
    }
    known = {
        "operationType": "ALL_PROPERTY",
        "operator": "IS_KNOWN",
        "includeObjectsWithNoValueSet": True,
    }

    assert accepts("p", operation) is include
    assert accepts("p", operation, p="") is include
    assert accepts("p", known) is False


def test_in_list_and_constant_filters() -> None:
    """IN_LIST / NOT_IN_LIST follow the other list; CONSTANT says what it says."""
    view = RecordView({}, {}, lambda list_id: list_id == "7")
    branch = {
        "filterBranchType": "OR",
        "filters": [],
        "filterBranches": [
            {
                "filterBranchType": "AND",
                "filterBranches": [],
                "filters": [
                    {"filterType": "IN_LIST", "listId": "7", "operator": "IN_LIST"},
                    {"filterType": "IN_LIST", "listId": "8", "operator": "NOT_IN_LIST"},
                    {"filterType": "CONSTANT", "shouldAccept": True},
                ],
            }
        ],
    }

    assert branch_accepts(branch, view, NOW) is True
    branch["filterBranches"][0]["filters"].append({"filterType": "CONSTANT", "shouldAccept": False})
    assert branch_accepts(branch, view, NOW) is False


@pytest.mark.parametrize(
    ("flt", "ptype", "expected"),
    [
        ({"propertyName": "p", "operator": "EQ", "value": "ADA"}, "string", True),
        ({"propertyName": "p", "operator": "IN", "values": ["ada"]}, "string", True),
        ({"propertyName": "p", "operator": "IN", "values": ["Ada"]}, "string", False),
        ({"propertyName": "p", "operator": "NEQ", "value": "bob"}, "string", True),
        ({"propertyName": "p", "operator": "CONTAINS_TOKEN", "value": "*da"}, "string", True),
        ({"propertyName": "p", "operator": "HAS_PROPERTY"}, "string", True),
        ({"propertyName": "q", "operator": "NOT_HAS_PROPERTY"}, "string", True),
        (
            {"propertyName": "n", "operator": "BETWEEN", "value": "1", "highValue": "2"},
            "number",
            True,
        ),
        ({"propertyName": "d", "operator": "GTE", "value": "1768435200000"}, "datetime", True),
        ({"propertyName": "d", "operator": "LT", "value": "1768435200000"}, "datetime", False),
    ],
)
def test_search_filters(flt: dict[str, Any], ptype: str, expected: bool) -> None:
    """CRM search operators, with HubSpot's case rules (IN takes lowercase values)."""
    props = {"p": "Ada", "n": "1.5", "d": "2026-01-15T00:00:00.000Z"}

    assert search_filter_accepts(flt, props, ptype) is expected
