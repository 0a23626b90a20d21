"""Mailchimp error bodies become (title, message); a 429 carries no wait, so backoff decides."""

from __future__ import annotations

import httpx
from segsync_mailchimp import MailchimpConnector
from segsync_mailchimp.emulator import MailchimpEmulator
from segsync_mailchimp.errors import ERROR_TITLES, parse_error, problem_body

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


def test_a_429_without_rate_headers_leaves_the_wait_to_backoff() -> None:
    """Mailchimp sends no rate headers: the connector's hints find no wait in its 429 (the
    HTTP layer backs off exponentially), and would honour a `Retry-After` if one came."""
    hints = MailchimpConnector.rate_limit_hints
    clock = VirtualClock()
    emulator = MailchimpEmulator()
    limit = emulator.limits[0]
    answer = emulator.rate_limited_response(limit, retry_after=5.0)
    response = httpx.Response(answer.status_code, headers=dict(answer.headers), content=answer.body)

    assert response.status_code == 429
    assert hints.seconds(response, clock) is None
    assert parse_error(response) == (
        "Too Many Requests",
        "You have exceeded the limit of 10 simultaneous connections.",
    )
    assert hints.seconds(httpx.Response(429, headers={"Retry-After": "5"}), clock) == 5.0


def test_the_error_table_names_the_titles_the_client_reports() -> None:
    """Every glossary error the emulator can answer parses back to its own title."""
    for name, (status, title) in ERROR_TITLES.items():
        body = problem_body(status, title, f"Triggered {name} error.")
        assert parse_error(httpx.Response(status, json=body)) == (title, f"Triggered {name} error.")
