"""The request check against Brevo's API description catches what departs from it."""

from __future__ import annotations

import json

import pytest
from segsync_brevo.spec import SpecValidator


@pytest.fixture
def validator(spec_validator: SpecValidator | None) -> SpecValidator:
    if spec_validator is None:
        pytest.skip("the Brevo API description (../shared/specs/brevo) is absent")
    return spec_validator


def test_conforming_requests_pass(validator: SpecValidator) -> None:
    """Requests the connector sends are accepted."""
    body = json.dumps(
        {"email": "a@example.com", "attributes": {"FIRSTNAME": "A"}, "updateEnabled": True}
    ).encode()

    assert validator.check("POST", "/v3/contacts", [], body) == []
    assert validator.check("GET", "/v3/contacts", [("limit", "1000"), ("sort", "asc")]) == []
    assert (
        validator.check(
            "POST", "/v3/contacts/lists/7/contacts/add", [], b'{"emails": ["a@example.com"]}'
        )
        == []
    )
    assert validator.check("GET", "/processes/70") == []


@pytest.mark.parametrize(
    ("method", "path", "query", "body", "problem"),
    [
        ("GET", "/v3/contacts", [("limit", "5000")], None, "greater than the maximum"),
        ("GET", "/v3/contacts", [("pageSize", "5")], None, "not described"),
        (
            "POST",
            "/v3/contacts",
            [],
            b'{"email": "a@example.com", "update": true}',
            "Additional properties",
        ),
        ("POST", "/v3/contacts/segments", [], b"{}", "method not described"),
        ("GET", "/v3/nowhere", [], None, "path not described"),
        ("POST", "/v3/contacts/import", [], b'{"jsonBody": "x", "listIds": [1]}', "not of type"),
        ("PUT", "/v3/contacts/1", [("identifierType", "uuid")], b"{}", "is not one of"),
    ],
)
def test_departures_are_reported(
    validator: SpecValidator,
    method: str,
    path: str,
    query: list[tuple[str, str]],
    body: bytes | None,
    problem: str,
) -> None:
    """Unknown paths, methods, parameters, properties and wrong types are each reported."""
    problems = validator.check(method, path, query, body)

    assert problems
    assert any(problem in p for p in problems), problems
