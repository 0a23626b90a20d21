"""Mailchimp error bodies become (title, message); titles decide what segsync does."""

from __future__ import annotations

import httpx
from segsync_mailchimp.errors import ErrorAction, parse_error, problem_body, resolution, retry_after

from segsync.clock import VirtualClock


def test_problem_body_with_field_errors_is_one_message() -> None:
    """The title is the code; detail and every field error make the message."""
    body = problem_body(
        400,
        "Invalid Resource",
        "Your merge fields were invalid.",
        errors=[{"field": "LNAME", "message": "Please enter a value"}],
    )
    response = httpx.Response(400, json=body)

    assert parse_error(response) == (
        "Invalid Resource",
        "Your merge fields were invalid. (LNAME: Please enter a value)",
    )


def test_bodyless_answer_keeps_the_status_text() -> None:
    """At very high volumes Mailchimp may answer 403/429 without a body."""
    assert parse_error(httpx.Response(429)) == (None, "Too Many Requests")


def test_no_retry_after_and_actions_by_title() -> None:
    """Mailchimp sends no Retry-After; titles map to retry, config failure or record failure."""
    assert retry_after(httpx.Response(429, headers={"Retry-After": "5"}), VirtualClock()) is None
    assert resolution(403, "Wrong Datacenter") is ErrorAction.FAIL_CONFIG
    assert resolution(400, "Member In Compliance State") is ErrorAction.FAIL_RECORD
    assert resolution(429, None) is ErrorAction.RATE_LIMITED
    assert resolution(503, None) is ErrorAction.RETRY
