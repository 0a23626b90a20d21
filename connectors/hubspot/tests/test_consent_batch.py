"""Batch subscription-status writes: the emulator's `statuses/batch/write` and the connector's
use of it (100 inputs a call, the per-address fallback, per-record results, the opt-out guard)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from segsync_hubspot import HubSpotConnector, HubSpotEmulator
from segsync_hubspot.spec import SpecValidator, ValidatingTransport
from starlette.requests import Request

from segsync.clock import VirtualClock
from segsync.connector import ChangeResult, ContactChange
from segsync.emulator.base import FaultPlan
from segsync.model import ConsentStatus

TOKEN = HubSpotEmulator.default_api_key
SPECS = Path(__file__).resolve().parents[3].parent / "shared" / "specs" / "hubspot"
SPECS_MISSING = f"the HubSpot API descriptions are not at {SPECS}"
Wrap = Callable[[httpx.AsyncBaseTransport], httpx.AsyncBaseTransport]

CP = "/communication-preferences/2026-03"
WRITE = f"{CP}/statuses/batch/write"
SINGLE = r"/statuses/[^/]+@[^/]+$"

Call = Callable[..., Awaitable[httpx.Response]]


def run(emulator: HubSpotEmulator, body: Callable[[Call], Awaitable[None]]) -> None:
    async def main() -> None:
        async with httpx.AsyncClient(
            transport=emulator.transport(),
            base_url="http://127.0.0.1:9",
            headers={"Authorization": f"Bearer {TOKEN}"},
        ) as client:

            async def call(method: str, path: str, **kwargs: Any) -> httpx.Response:
                return await client.request(method, path, **kwargs)

            await body(call)

    asyncio.run(main())


def status_input(email: str, state: str = "SUBSCRIBED", **extra: Any) -> dict[str, Any]:
    return {
        "subscriberIdString": email,
        "channel": "EMAIL",
        "subscriptionId": 101,
        "statusState": state,
        **extra,
    }


def count(emulator: HubSpotEmulator, pattern: str) -> int:
    return emulator.log.count(method="POST", path=re.compile(pattern))


# -- the emulator -----------------------------------------------------------------------------


def test_batch_write_sets_each_status_in_one_rate_limited_request() -> None:
    """Each input is applied with its legal basis; the answer validates against the spec; the
    call counts one request against the rolling limit, whatever the number of inputs."""
    emulator = HubSpotEmulator(clock=VirtualClock())
    emulator.seed_contact({"email": "a@example.com"})
    emulator.seed_contact({"email": "b@example.com"})

    async def body(call: Call) -> None:
        before = await call("GET", f"{CP}/definitions")
        answer = await call(
            "POST",
            WRITE,
            json={
                "inputs": [
                    status_input("a@example.com", legalBasis="CONSENT_WITH_NOTICE"),
                    status_input(
                        "B@example.com",
                        "UNSUBSCRIBED",
                        legalBasis="LEGITIMATE_INTEREST_OTHER",
                        legalBasisExplanation="asked to leave",
                    ),
                    *(status_input(f"n{i}@example.com") for i in range(40)),
                ]
            },
        )

        assert answer.status_code == 200, answer.text
        data = answer.json()
        assert data["status"] == "COMPLETE"
        assert "errors" not in data
        by_email = {r["subscriberIdString"]: r for r in data["results"]}
        assert len(by_email) == 42
        assert by_email["a@example.com"]["status"] == "SUBSCRIBED"
        assert by_email["a@example.com"]["setStatusSuccessReason"] == "REQUESTED_CHANGE_OCCURRED"
        assert by_email["b@example.com"]["status"] == "UNSUBSCRIBED"
        assert by_email["b@example.com"]["legalBasis"] == "LEGITIMATE_INTEREST_OTHER"
        remaining = int(before.headers["X-HubSpot-RateLimit-Remaining"])
        assert int(answer.headers["X-HubSpot-RateLimit-Remaining"]) == remaining - 1
        if SPECS.is_dir():
            problems = SpecValidator(SPECS).response_problems("POST", WRITE, 200, data)
            assert problems == []

    run(emulator, body)

    assert emulator.subscription_status("a@example.com") == "SUBSCRIBED"
    assert emulator.subscription_status("b@example.com") == "NOT_SUBSCRIBED"
    assert emulator.statuses["a@example.com"][101].legal_basis == "CONSENT_WITH_NOTICE"
    assert (emulator.contact_by_email("b@example.com") or {})["hs_email_optout_101"] == "true"
    assert emulator.log.count(path=WRITE) == 1


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({}, "inputs is required"),
        (
            {"inputs": [{"channel": "EMAIL", "subscriptionId": 101, "statusState": "SUBSCRIBED"}]},
            "subscriberIdString: is required",
        ),
        ({"inputs": [status_input("a@example.com", "OPTED_OUT")]}, "statusState"),
        ({"inputs": [status_input("a@example.com", channel="SMS")]}, "channel"),
        ({"inputs": [status_input("a@example.com", legalBasis="GDPR")]}, "legalBasis"),
        ({"inputs": [status_input("a@example.com", subscriptionId="101")]}, "subscriptionId"),
        ({"inputs": [status_input(f"p{i}@example.com") for i in range(101)]}, "limit is 100"),
    ],
)
def test_batch_write_refuses_a_body_outside_the_spec_whole(body: Any, why: str) -> None:
    """A body that is not a BatchInputPublicStatusRequest (or holds over 100 inputs) is a 400
    and writes nothing, not even its valid inputs."""
    emulator = HubSpotEmulator(clock=VirtualClock())
    body = {"inputs": [status_input("ok@example.com"), *body["inputs"]]} if body else body

    async def check(call: Call) -> None:
        answer = await call("POST", WRITE, json=body)

        assert answer.status_code == 400
        assert answer.json()["category"] == "VALIDATION_ERROR"
        assert why in answer.json()["message"]

    run(emulator, check)

    assert emulator.status_writes == []


def test_batch_write_at_the_limit_is_accepted() -> None:
    emulator = HubSpotEmulator(clock=VirtualClock())

    async def check(call: Call) -> None:
        answer = await call(
            "POST", WRITE, json={"inputs": [status_input(f"p{i}@example.com") for i in range(100)]}
        )
        assert answer.status_code == 200
        assert len(answer.json()["results"]) == 100

    run(emulator, check)


def test_batch_write_reports_a_bad_input_alone() -> None:
    """An invalid address or an unknown subscription fails its input only, named in `errors`."""
    emulator = HubSpotEmulator(clock=VirtualClock())

    async def check(call: Call) -> None:
        answer = await call(
            "POST",
            WRITE,
            json={
                "inputs": [
                    status_input("not-an-address"),
                    status_input("x@example.com", subscriptionId=999),
                    status_input("good@example.com"),
                ]
            },
        )

        assert answer.status_code == 200
        data = answer.json()
        assert [r["subscriberIdString"] for r in data["results"]] == ["good@example.com"]
        assert data["numErrors"] == 2
        named = [e["context"]["subscriberIdString"] for e in data["errors"]]
        assert named == [["not-an-address"], ["x@example.com"]]
        assert "999" in data["errors"][1]["message"]
        if SPECS.is_dir():
            assert SpecValidator(SPECS).response_problems("POST", WRITE, 200, data) == []

    run(emulator, check)

    assert emulator.subscription_status("good@example.com") == "SUBSCRIBED"
    assert emulator.subscription_status("x@example.com") == "NOT_SPECIFIED"


def test_batch_write_needs_enterprise_as_batch_read_does() -> None:
    """Without Marketing Hub Enterprise both batch status calls are 403 MISSING_SCOPES."""
    emulator = HubSpotEmulator(clock=VirtualClock(), enterprise_consent=False)

    async def check(call: Call) -> None:
        write = await call("POST", WRITE, json={"inputs": [status_input("a@example.com")]})
        read = await call(
            "POST",
            f"{CP}/statuses/batch/read",
            params={"channel": "EMAIL"},
            json={"inputs": ["a@example.com"]},
        )
        single = await call(
            "POST",
            f"{CP}/statuses/a@example.com",
            json={"channel": "EMAIL", "subscriptionId": 101, "statusState": "UNSUBSCRIBED"},
        )

        for answer, scope in ((write, "write"), (read, "read")):
            assert answer.status_code == 403
            assert answer.json()["category"] == "MISSING_SCOPES"
            [detail] = answer.json()["errors"]
            assert detail["context"]["requiredGranularScopes"] == [
                f"communication_preferences.statuses.batch.{scope}"
            ]
        assert single.status_code == 200

    run(emulator, check)

    assert emulator.status_writes == [("a@example.com", 101, "UNSUBSCRIBED")]


def _write_opted_out(path: str, payload: Any) -> tuple[str, str]:
    """(setStatusSuccessReason, resulting status) of subscribing an opted-out address."""
    emulator = HubSpotEmulator(clock=VirtualClock())
    emulator.set_subscription("o@example.com", 101, subscribed=False)
    reasons: list[str] = []

    async def check(call: Call) -> None:
        answer = await call("POST", path, json=payload)
        assert answer.status_code == 200
        reasons.append(answer.json()["results"][0]["setStatusSuccessReason"])

    run(emulator, check)
    return reasons[0], emulator.subscription_status("o@example.com")


def test_batch_write_treats_an_opted_out_address_as_the_single_endpoint_does() -> None:
    """v4 (single or batch) re-subscribes an opted-out address when asked, as HubSpot does;
    the two endpoints leave the same state and give the same reason."""
    one = {k: v for k, v in status_input("o").items() if k != "subscriberIdString"}
    single = _write_opted_out(f"{CP}/statuses/o@example.com", one)
    batch = _write_opted_out(WRITE, {"inputs": [status_input("o@example.com")]})

    assert single == batch == ("RESUBSCRIBE_OCCURRED", "SUBSCRIBED")


# -- the connector ----------------------------------------------------------------------------


def connector_on(
    emulator: HubSpotEmulator, clock: VirtualClock, checked: Wrap, **config: Any
) -> HubSpotConnector:
    return HubSpotConnector(
        {"token": TOKEN, "base_url": "http://127.0.0.1:9", **config},
        transport=checked(emulator.transport()),
        clock=clock,
    )


def write(connector: HubSpotConnector, *batches: Sequence[ContactChange]) -> list[ChangeResult]:
    async def main() -> list[ChangeResult]:
        out: list[ChangeResult] = []
        async with connector:
            for changes in batches:
                out += await connector.write(changes)
        return out

    return asyncio.run(main())


def seeded(emulator: HubSpotEmulator, n: int, prefix: str = "c") -> list[str]:
    emails = [f"{prefix}{i:03d}@example.com" for i in range(n)]
    for email in emails:
        emulator.seed_contact({"email": email})
    return emails


def test_consent_changes_go_100_to_a_batch_write(clock: VirtualClock, checked: Wrap) -> None:
    """250 status changes take 3 batch writes and no per-address call; legal bases arrive."""
    emulator = HubSpotEmulator(clock=clock)
    emails = seeded(emulator, 250)
    changes = [
        ContactChange(
            email=email,
            consent=ConsentStatus.UNSUBSCRIBED if i % 2 else ConsentStatus.SUBSCRIBED,
            consent_basis="consent_with_notice" if i % 5 == 0 else None,
        )
        for i, email in enumerate(emails)
    ]

    results = write(connector_on(emulator, clock, checked), changes)

    assert all(r.ok for r in results), [r for r in results if not r.ok][:3]
    assert count(emulator, r"/statuses/batch/write$") == 3
    assert count(emulator, SINGLE) == 0
    for i, email in enumerate(emails):
        assert emulator.subscription_status(email) == ("NOT_SUBSCRIBED" if i % 2 else "SUBSCRIBED")
        basis = emulator.statuses[email][101].legal_basis
        assert basis == ("CONSENT_WITH_NOTICE" if i % 5 == 0 else None)


@pytest.mark.parametrize("why", ["refused for the tier", "turned off in the config"])
def test_falls_back_to_one_call_per_address(clock: VirtualClock, checked: Wrap, why: str) -> None:
    """Where HubSpot refuses batch writes (403) the connector writes each address alone, and
    does not try the batch endpoint again; with the config switch off it never tries it."""
    gated = why == "refused for the tier"
    emulator = HubSpotEmulator(clock=clock, enterprise_consent=not gated)
    emails = seeded(emulator, 160)
    connector = connector_on(emulator, clock, checked, consent_batch_writes=gated)
    first = [ContactChange(email=e, consent=ConsentStatus.UNSUBSCRIBED) for e in emails[:150]]
    second = [ContactChange(email=e, consent=ConsentStatus.UNSUBSCRIBED) for e in emails[150:]]

    results = write(connector, first, second)

    assert all(r.ok for r in results)
    assert count(emulator, r"/statuses/batch/write$") == (1 if gated else 0)
    assert count(emulator, SINGLE) == 160
    assert all(emulator.subscription_status(e) == "NOT_SUBSCRIBED" for e in emails)


class _PartialWrites(HubSpotEmulator):
    """Injected partial failures on batch status writes only."""

    def fault_allowed(self, method: str, path: str) -> Sequence[str]:
        return ("partial",) if path.endswith("/statuses/batch/write") else ()


def test_a_status_refused_in_a_batch_fails_its_record_only(
    clock: VirtualClock, checked: Wrap
) -> None:
    """Per-record results: an input the batch answer names in `errors` fails (partially: its
    fields were written), the others succeed, and each result agrees with HubSpot's state."""
    emulator = _PartialWrites(clock=clock, faults=FaultPlan(per_kind={"partial": 1.0}, seed=3))
    emails = seeded(emulator, 30)
    changes = [
        ContactChange(email=e, fields={"first_name": "F"}, consent=ConsentStatus.UNSUBSCRIBED)
        for e in emails
    ]

    results = write(connector_on(emulator, clock, checked), changes)

    failed = [r for r in results if not r.ok]
    assert 1 <= len(failed) < len(results)
    for result in failed:
        assert result.partial
        assert "injected failure" in (result.error or "")
        assert result.code == "VALIDATION_ERROR"
    for result in results:
        written = emulator.subscription_status(result.email) == "NOT_SUBSCRIBED"
        assert written == result.ok, result
        assert (emulator.contact_by_email(result.email) or {})["firstname"] == "F"


class _RefusesOneAddressWhole(HubSpotEmulator):
    """Answers a batch naming `refused@example.com` with a whole-batch 400."""

    async def route_v4_batch_write(self, request: Request) -> Any:
        body = await request.json()
        named = {str(i.get("subscriberIdString")) for i in body.get("inputs") or []}
        if "refused@example.com" in named:
            return self.error_response(400, "bad_request", "refused@example.com: refused")
        return await super().route_v4_batch_write(request)


def test_a_whole_batch_400_is_bisected_to_the_refused_input(
    clock: VirtualClock, checked: Wrap
) -> None:
    """A 400 for the whole batch fails only the input(s) HubSpot refuses, not the others."""
    emulator = _RefusesOneAddressWhole(clock=clock)
    emails = [*seeded(emulator, 15), "refused@example.com"]
    emulator.seed_contact({"email": "refused@example.com"})
    changes = [ContactChange(email=e, consent=ConsentStatus.UNSUBSCRIBED) for e in emails]

    results = write(connector_on(emulator, clock, checked), changes)

    assert [r.email for r in results if not r.ok] == ["refused@example.com"]
    assert "refused" in (results[-1].error or "")
    assert all(emulator.subscription_status(e) == "NOT_SUBSCRIBED" for e in emails[:-1])
    assert count(emulator, r"/statuses/batch/write$") <= 1 + 2 * 4  # log2(16) levels


def test_an_opted_out_address_is_never_resubscribed_through_the_batch(
    clock: VirtualClock, checked: Wrap
) -> None:
    """`subscribed` for addresses held as opted out, bounced or unsubscribed-from-all is refused
    before the batch: no batch input names them, the rest are written in batches."""
    emulator = HubSpotEmulator(clock=clock)
    emails = seeded(emulator, 150)
    held = {emails[3]: "subscription", emails[70]: "all", emails[120]: "bounce"}
    emulator.set_subscription(emails[3], 101, subscribed=False)
    emulator.unsubscribe_all(emails[70])
    emulator.hard_bounce(emails[120])
    changes = [ContactChange(email=e, consent=ConsentStatus.SUBSCRIBED) for e in emails]

    results = write(connector_on(emulator, clock, checked), changes)

    by_email = {r.email: r for r in results}
    assert count(emulator, r"/statuses/batch/write$") == 2
    assert count(emulator, SINGLE) == 0
    written = {email for email, _, _ in emulator.status_writes}
    assert written == set(emails) - set(held)
    for email in held:
        assert by_email[email].code == "CONSENT_OPT_OUT"
        assert emulator.subscription_status(email) != "SUBSCRIBED"
    assert all(by_email[e].ok for e in emails if e not in held)


def test_two_changes_to_one_address_are_written_in_order(
    clock: VirtualClock, checked: Wrap
) -> None:
    """One batch never names an address twice; the later change goes in a later batch."""
    emulator = HubSpotEmulator(clock=clock)
    seeded(emulator, 1, prefix="twice")
    changes = [
        ContactChange(email="twice000@example.com", consent=ConsentStatus.SUBSCRIBED),
        ContactChange(email="twice000@example.com", consent=ConsentStatus.UNSUBSCRIBED),
    ]

    results = write(connector_on(emulator, clock, checked), changes)

    assert [r.ok for r in results] == [True, True]
    assert count(emulator, r"/statuses/batch/write$") == 2
    assert [state for _, _, state in emulator.status_writes] == ["SUBSCRIBED", "UNSUBSCRIBED"]
    assert emulator.subscription_status("twice000@example.com") == "NOT_SUBSCRIBED"


@pytest.mark.skipif(not SPECS.is_dir(), reason=SPECS_MISSING)
def test_batch_write_requests_validate_against_the_spec(clock: VirtualClock) -> None:
    """The connector's batch write body and the emulator's answer are checked by the spec
    validator (the `checked` fixture does this in every test above; this one asserts the
    validator actually saw batch writes, so the check is not vacuous)."""
    validator = SpecValidator(SPECS)
    emulator = HubSpotEmulator(clock=clock)
    emails = seeded(emulator, 5)
    transport = ValidatingTransport(emulator.transport(), validator, responses=True)
    connector = HubSpotConnector(
        {"token": TOKEN, "base_url": "http://127.0.0.1:9", "legal_basis": "non_gdpr"},
        transport=transport,
        clock=clock,
    )

    results = write(
        connector, [ContactChange(email=e, consent=ConsentStatus.SUBSCRIBED) for e in emails]
    )

    assert all(r.ok for r in results)
    assert count(emulator, r"/statuses/batch/write$") == 1
    assert transport.problems == []
    assert emulator.statuses[emails[0]][101].legal_basis == "NON_GDPR"
    bad = validator.problems(
        "POST", WRITE, {}, {"inputs": [{"subscriberIdString": "a@example.com", "channel": "EMAIL"}]}
    )
    assert bad, "the validator refuses an input without subscriptionId and statusState"
