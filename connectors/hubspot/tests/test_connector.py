"""The HubSpot connector: windowed reads, batching, tags, consent, pacing, lists, versions."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import re
from collections.abc import Callable
from typing import Any, ClassVar

import httpx
import pytest
from segsync_hubspot import HubSpotConnector, HubSpotEmulator
from segsync_hubspot.emulator import HubSpotError
from starlette.requests import Request

from segsync.clock import VirtualClock
from segsync.connector import ContactChange
from segsync.emulator.base import FaultPlan
from segsync.http import ApiError, RequestStats
from segsync.model import ConsentStatus, FieldSpec, FieldType
from segsync.testing import FirstRequestsFault

TOKEN = HubSpotEmulator.default_api_key
MakeConnector = Callable[..., HubSpotConnector]
Wrap = Callable[[httpx.AsyncBaseTransport], httpx.AsyncBaseTransport]
Settle = Callable[[HubSpotEmulator], None]


def new(email: str, **fields: Any) -> ContactChange:
    return ContactChange(email=email, create=True, fields=fields)


def writes(emulator: HubSpotEmulator, pattern: str) -> int:
    return emulator.log.count(path=re.compile(pattern))


class _SmallCapConnector(HubSpotConnector):
    search_cap = 1_000  # HubSpot's 10,000, scaled down with the emulator's to keep tests fast


@pytest.mark.slow
def test_reads_window_past_the_search_cap(
    clock: VirtualClock, checked: Wrap, settle: Settle
) -> None:
    """More changes than search pages through are all read, each once, without a 400."""
    emulator = HubSpotEmulator(clock=clock, enforce_rate_limits=False, search_result_cap=1_000)
    for i in range(2_600):
        if i % 100 == 0:
            clock.advance(60)
        emulator.seed_contact({"email": f"w{i}@example.com"})
    settle(emulator)
    connector = _SmallCapConnector(
        {"token": TOKEN, "base_url": "http://127.0.0.1:9"},
        transport=checked(emulator.transport()),
        clock=clock,
    )

    async def main() -> list[str]:
        async with connector:
            return [c.email async for page in connector.read() for c in page.contacts]

    emails = asyncio.run(main())

    searches = emulator.log.count(path=re.compile(r"/search$"))

    assert len(emails) == 2_600
    assert len(set(emails)) == 2_600
    assert searches <= 13 + 12, searches  # 13 pages of 200, a few window probes
    assert [s for _, _, s in emulator.log.entries if s >= 400] == []


class _BusyEmulator(HubSpotEmulator):
    """Someone edits the first contacts in HubSpot while segsync pages through a window."""

    async def route_search(self, request: Request) -> Any:
        answer = await super().route_search(request)
        if self.log.count(path=re.compile(r"/search$")) == 3:  # the second page of a window
            self.clock.advance(1)
            for contact_id in ("101", "102", "103"):
                self.modify_contact(contact_id, {"firstname": "Edited"})
        return answer


@pytest.mark.slow
def test_records_shifted_by_edits_during_a_read_are_not_lost(
    clock: VirtualClock, checked: Wrap
) -> None:
    """Edits that move records out of a window mid-read do not make others skip a page slot."""
    emulator = _BusyEmulator(clock=clock, enforce_rate_limits=False, search_result_cap=1_000)
    for i in range(1_500):
        if i % 100 == 0:
            clock.advance(60)
        emulator.seed_contact({"email": f"e{i}@example.com"})
    clock.advance(60)
    connector = _SmallCapConnector(
        {"token": TOKEN, "base_url": "http://127.0.0.1:9"},
        transport=checked(emulator.transport()),
        clock=clock,
    )

    async def main() -> list[str]:
        async with connector:
            return [c.email async for page in connector.read() for c in page.contacts]

    emails = asyncio.run(main())

    assert set(emails) == {f"e{i}@example.com" for i in range(1_500)}
    assert len(emails) == len(set(emails))


def test_incremental_read_catches_changes_search_had_not_indexed(
    clock: VirtualClock, checked: Wrap
) -> None:
    """A change made just before a read but not yet searchable is caught by the overlap."""
    emulator = HubSpotEmulator(clock=clock, search_delay_seconds=20)
    connector = HubSpotConnector(
        {"token": TOKEN, "base_url": "http://127.0.0.1:9"},
        transport=checked(emulator.transport()),
        clock=clock,
    )
    emulator.seed_contact({"email": "early@example.com"})
    clock.advance(30)
    late = emulator.seed_contact({"email": "late@example.com"})

    async def main() -> tuple[list[str], list[str], list[str]]:
        async with connector:
            first = [p async for p in connector.read()]
            clock.advance(30)
            second = [c.email async for p in connector.read(first[-1].cursor) for c in p.contacts]
            clock.advance(3600)
            third = [c.email async for p in connector.read(first[-1].cursor) for c in p.contacts]
        return [c.email for p in first for c in p.contacts], second, third

    first, second, third = asyncio.run(main())
    del late

    assert first == ["early@example.com"]
    assert second == ["late@example.com"]
    assert third == ["late@example.com"]


def test_writes_batch_100_upserts_concurrently(
    emulator: HubSpotEmulator, make_connector: MakeConnector
) -> None:
    """250 changes are 3 batch upserts; nothing is sent for empty writes."""
    connector = make_connector()

    async def main() -> tuple[list[Any], RequestStats]:
        async with connector:
            await connector.prepare({"first_name": FieldSpec(type=FieldType.TEXT)}, [])
            results = await connector.write(
                [new(f"b{i}@example.com", first_name="B") for i in range(250)]
            )
            before = connector.stats.calls
            assert await connector.write([]) == []
            assert connector.stats.calls == before
            return results, connector.stats

    results, stats = asyncio.run(main())

    assert all(r.ok and r.created for r in results)
    assert stats.endpoints["POST contacts/batch/upsert"].calls == 3
    assert len(emulator.contacts) == 250


def test_two_changes_to_one_email_go_in_successive_batches(
    emulator: HubSpotEmulator, make_connector: MakeConnector
) -> None:
    """HubSpot refuses one email twice in a batch: the second change is sent after the first."""
    connector = make_connector()

    async def main() -> list[Any]:
        async with connector:
            return await connector.write(
                [
                    new("d@example.com", first_name="One"),
                    new("other@example.com", first_name="Other"),
                    ContactChange(email="D@example.com", fields={"first_name": "Two"}),
                ]
            )

    results = asyncio.run(main())

    assert [r.ok for r in results] == [True, True, True]
    assert writes(emulator, r"/batch/upsert$") == 2
    assert (emulator.contact_by_email("d@example.com") or {})["firstname"] == "Two"


def test_all_or_nothing_email_upserts_are_bisected(clock: VirtualClock, checked: Wrap) -> None:
    """Where HubSpot refuses a whole email upsert for one bad input, only that one fails."""
    emulator = HubSpotEmulator(clock=clock, email_upsert_all_or_nothing=True)
    connector = HubSpotConnector(
        {"token": TOKEN, "base_url": "http://127.0.0.1:9"},
        transport=checked(emulator.transport()),
        clock=clock,
    )
    changes = [new(f"ok{i}@example.com", first_name="Ok") for i in range(15)]
    changes[9] = ContactChange(email="not-an-address", create=True)

    async def main() -> list[Any]:
        async with connector:
            return await connector.write(changes)

    results = asyncio.run(main())

    assert [i for i, r in enumerate(results) if not r.ok] == [9]
    assert "not-an-address" in (results[9].error or "")
    assert len(emulator.contacts) == 14


class _RefusingEmulator(HubSpotEmulator):
    """Answers a whole-batch 400 to any upsert that contains `poison@example.com`."""

    POISON: ClassVar[str] = "poison@example.com"

    async def route_batch_upsert(self, request: Request) -> Any:
        body = await self._object_body(request)
        if any(i.get("id") == self.POISON for i in body.get("inputs") or []):
            raise HubSpotError(400, "VALIDATION_ERROR", "Property values were not valid")
        return await super().route_batch_upsert(request)


def test_a_whole_batch_400_is_bisected_to_the_bad_record(
    clock: VirtualClock, checked: Wrap
) -> None:
    """When HubSpot refuses a whole batch, the connector isolates the refused record."""
    emulator = _RefusingEmulator(clock=clock)
    connector = HubSpotConnector(
        {"token": TOKEN, "base_url": "http://127.0.0.1:9"},
        transport=checked(emulator.transport()),
        clock=clock,
    )
    changes = [new(f"ok{i}@example.com", first_name="Ok") for i in range(7)]
    changes.insert(3, new(_RefusingEmulator.POISON, first_name="Bad"))

    async def main() -> list[Any]:
        async with connector:
            return await connector.write(changes)

    results = asyncio.run(main())

    assert [r.ok for r in results] == [True] * 3 + [False] + [True] * 4
    assert results[3].error == "Property values were not valid"
    assert writes(emulator, r"/batch/upsert$") <= 1 + 2 * 3  # a log2(8)-deep bisection


def test_tag_options_are_created_before_values_are_written(
    emulator: HubSpotEmulator, make_connector: MakeConnector
) -> None:
    """A new tag becomes an option (one PATCH) before the upsert that writes it."""
    connector = make_connector()

    async def main() -> None:
        async with connector:
            await connector.prepare({}, ["vip"])
            results = await connector.write(
                [
                    ContactChange(
                        email="t@example.com", create=True, tags_add=frozenset({"VIP", "Brand New"})
                    )
                ]
            )
            assert results[0].ok, results

    asyncio.run(main())
    paths = [(m, p) for m, p, _ in emulator.log.entries]
    patch = paths.index(("PATCH", "/crm/properties/2026-03/contacts/segsync_tags"))
    upsert = paths.index(("POST", "/crm/objects/2026-03/contacts/batch/upsert"))

    assert patch < upsert
    assert (emulator.contact_by_email("t@example.com") or {})["segsync_tags"] == "brand new;vip"
    options = emulator.properties["segsync_tags"]["options"]
    assert {o["value"]: o["label"] for o in options} == {"vip": "vip", "brand new": "Brand New"}


def test_a_tag_holding_a_semicolon_fails_only_its_record(
    emulator: HubSpotEmulator, make_connector: MakeConnector
) -> None:
    """`;` joins checkbox values, so a tag containing it is refused for its record alone."""
    connector = make_connector()

    async def main() -> list[Any]:
        async with connector:
            return await connector.write(
                [
                    ContactChange(email="s1@example.com", create=True, tags_add=frozenset({"a;b"})),
                    ContactChange(email="s2@example.com", create=True, tags_add=frozenset({"ok"})),
                ]
            )

    bad, good = asyncio.run(main())

    assert (bad.ok, good.ok) == (False, True)
    assert "';'" in (bad.error or "")
    assert emulator.contact_by_email("s1@example.com") is None


def test_tags_as_manual_lists(
    emulator: HubSpotEmulator, make_connector: MakeConnector, settle: Settle
) -> None:
    """With `tags_as: lists`, tags are owned MANUAL lists, added to and removed from."""
    connector = make_connector(tags_as="lists")
    reader = make_connector(tags_as="lists")

    async def main() -> dict[str, frozenset[str]]:
        async with connector, reader:
            await connector.prepare({}, ["vip", "b2b"])
            [first] = await connector.write(
                [
                    ContactChange(
                        email="l@example.com", create=True, tags_add=frozenset({"vip", "b2b"})
                    )
                ]
            )
            await connector.write(
                [ContactChange(email="l@example.com", tags_remove=frozenset({"vip"}))]
            )
            assert first.platform_id is not None
            settle(emulator)
            return {c.email: c.tags async for p in reader.read() for c in p.contacts}

    tags = asyncio.run(main())

    assert tags == {"l@example.com": frozenset({"b2b"})}
    assert {x.name for x in emulator.lists.values()} == {"segsync: tag vip", "segsync: tag b2b"}
    assert {x.processing_type for x in emulator.lists.values()} == {"MANUAL"}


def test_opt_out_is_written_with_its_legal_basis(
    emulator: HubSpotEmulator, make_connector: MakeConnector
) -> None:
    """An unsubscribe goes through the subscription statuses, legal basis included."""
    connector = make_connector()

    async def main() -> None:
        async with connector:
            await connector.write([new("c@example.com", first_name="C")])
            results = await connector.write(
                [
                    ContactChange(
                        email="c@example.com",
                        consent=ConsentStatus.UNSUBSCRIBED,
                        consent_basis="legitimate_interest_other",
                    )
                ]
            )
            assert results[0].ok, results

    asyncio.run(main())
    status = emulator.statuses["c@example.com"][101]

    assert status.status == "NOT_SUBSCRIBED"
    assert status.legal_basis == "LEGITIMATE_INTEREST_OTHER"
    assert (emulator.contact_by_email("c@example.com") or {})["hs_email_optout_101"] == "true"


@pytest.mark.parametrize("opt_out", ["unsubscribe_all", "hard_bounce", "subscription"])
def test_never_resubscribes_an_opted_out_address(
    emulator: HubSpotEmulator, make_connector: MakeConnector, opt_out: str
) -> None:
    """`subscribed` for an address HubSpot holds as opted out is refused and never sent."""
    emulator.seed_contact({"email": "o@example.com"})
    if opt_out == "unsubscribe_all":
        emulator.unsubscribe_all("o@example.com")
    elif opt_out == "hard_bounce":
        emulator.hard_bounce("o@example.com")
    else:
        emulator.set_subscription("o@example.com", 101, subscribed=False)
    connector = make_connector()

    async def main() -> list[Any]:
        async with connector:
            return await connector.write(
                [
                    ContactChange(
                        email="o@example.com",
                        fields={"first_name": "O"},
                        consent=ConsentStatus.SUBSCRIBED,
                    )
                ]
            )

    [result] = asyncio.run(main())

    assert not result.ok
    assert result.code == "CONSENT_OPT_OUT"
    assert result.partial, "the field change itself was written"
    assert writes(emulator, r"/statuses/o@example\.com$") == 0
    assert emulator.status_writes == [], "no status written, batch or single"
    assert emulator.subscription_status("o@example.com") != "SUBSCRIBED"
    assert (emulator.contact_by_email("o@example.com") or {})["firstname"] == "O"


def test_new_contacts_get_the_canonical_consent_and_no_subscription_by_default(
    emulator: HubSpotEmulator, make_connector: MakeConnector
) -> None:
    """Created contacts: subscribed is written; non_subscribed and pending send nothing."""
    connector = make_connector()

    async def main() -> None:
        async with connector:
            await connector.write(
                [
                    ContactChange(
                        email="s@example.com", create=True, consent=ConsentStatus.SUBSCRIBED
                    ),
                    ContactChange(
                        email="n@example.com", create=True, consent=ConsentStatus.NON_SUBSCRIBED
                    ),
                    ContactChange(
                        email="p@example.com", create=True, consent=ConsentStatus.PENDING
                    ),
                ]
            )

    asyncio.run(main())

    assert emulator.subscription_status("s@example.com") == "SUBSCRIBED"
    assert emulator.subscription_status("n@example.com") == "NOT_SPECIFIED"
    assert emulator.subscription_status("p@example.com") == "NOT_SPECIFIED"
    assert writes(emulator, r"/statuses/[np]@example\.com$") == 0
    assert [email for email, _, _ in emulator.status_writes] == ["s@example.com"]


def test_pacing_stays_within_the_burst_and_search_limits(
    clock: VirtualClock, checked: Wrap
) -> None:
    """250 calls and 12 searches at once: no 429, paced on the virtual clock."""
    emulator = HubSpotEmulator(clock=clock)
    connector = HubSpotConnector(
        {"token": TOKEN, "base_url": "http://127.0.0.1:9"},
        transport=checked(emulator.transport()),
        clock=clock,
    )

    async def main() -> None:
        async with connector:
            await asyncio.gather(*(connector.check() for _ in range(250)))
            started = clock.elapsed
            await asyncio.gather(*(connector._search(0, None, 0) for _ in range(12)))
            assert clock.elapsed - started >= 2.0

    asyncio.run(main())

    assert emulator.rate_limited == 0
    assert clock.elapsed >= 20.0


def test_a_429_without_retry_after_waits_by_policy(clock: VirtualClock, checked: Wrap) -> None:
    """HubSpot's 429s carry no Retry-After: the connector waits the policy's window."""
    emulator = HubSpotEmulator(clock=clock)
    connector = HubSpotConnector(
        {"token": TOKEN, "base_url": "http://127.0.0.1:9"},
        transport=checked(emulator.transport()),
        clock=clock,
    )
    limit = next(x for x in emulator.limits if x.name == "TEN_SECONDLY_ROLLING")
    for _ in range(100):  # another app of the account used the whole window
        limit.hit(0.0)

    async def main() -> None:
        async with connector:
            await connector.check()

    asyncio.run(main())

    assert emulator.rate_limited == 1
    assert clock.elapsed >= 10.0


def test_prepare_creates_typed_properties_and_refuses_a_mismatch(
    emulator: HubSpotEmulator, make_connector: MakeConnector
) -> None:
    """Missing properties are created with matching types; an existing one of another type
    is reported unwritable (never reused, never changed)."""
    fields = {
        "plan": FieldSpec(type=FieldType.ENUM, options=("free", "pro")),
        "interests": FieldSpec(type=FieldType.MULTI_ENUM, options=("news",)),
        "lifetime_value": FieldSpec(type=FieldType.NUMBER),
        "vip": FieldSpec(type=FieldType.BOOLEAN),
        "signup": FieldSpec(type=FieldType.DATE),
        "last_seen": FieldSpec(type=FieldType.DATETIME),
        "first_name": FieldSpec(type=FieldType.TEXT),
    }
    connector = make_connector()

    async def main() -> None:
        async with connector:
            await connector.prepare(fields, ["vip"])
            await connector.prepare(fields, ["vip"])  # a second run creates nothing
            bad = make_connector()
            async with bad:
                problems = await bad.prepare(
                    {"lifetime_value": FieldSpec(type=FieldType.TEXT)}, []
                )
                assert [(p.kind, p.name) for p in problems] == [("field", "lifetime_value")]
                assert "number" in problems[0].message
                assert "fix" in problems[0].message

    asyncio.run(main())
    props = emulator.properties
    kinds = {
        n: (props[n]["type"], props[n]["fieldType"])
        for n in (
            "plan",
            "interests",
            "lifetime_value",
            "vip",
            "signup",
            "last_seen",
            "segsync_tags",
        )
    }

    assert kinds == {
        "plan": ("enumeration", "select"),
        "interests": ("enumeration", "checkbox"),
        "lifetime_value": ("number", "number"),
        "vip": ("bool", "booleancheckbox"),
        "signup": ("date", "date"),
        "last_seen": ("datetime", "date"),
        "segsync_tags": ("enumeration", "checkbox"),
    }
    assert props["plan"]["groupName"] == "segsync"
    assert writes(emulator, r"/properties/2026-03/contacts$") == 2 + 7  # 2 GETs, 7 creations


def test_values_round_trip_through_typed_properties(
    emulator: HubSpotEmulator, make_connector: MakeConnector, settle: Settle
) -> None:
    """Every canonical type is written as HubSpot stores it and read back equal."""
    values = {
        "first_name": "Zoë",
        "country": "FR",
        "plan": "pro",
        "lifetime_value": 12.5,
        "orders": 3,
        "vip": True,
        "signup": dt.date(2025, 3, 1),
        "last_seen": dt.datetime(2025, 3, 1, 8, 30, 15, 250000, tzinfo=dt.UTC),
        "interests": frozenset({"news", "deals"}),
    }
    connector = make_connector()

    async def main() -> dict[str, Any]:
        async with connector:
            await connector.prepare(connector.schema.fields, [])
            [result] = await connector.write(
                [ContactChange(email="rt@example.com", create=True, fields=values)]
            )
            assert result.ok, result
            settle(emulator)
            [contact] = [c async for p in connector.read() for c in p.contacts]
            return contact.fields

    fields = asyncio.run(main())
    stored = emulator.contact_by_email("rt@example.com") or {}

    assert fields == values
    assert stored["signup"] == "2025-03-01"
    assert stored["vip"] == "true"
    assert stored["interests"] == "deals;news"


def test_static_lists_and_native_segments(
    emulator: HubSpotEmulator, make_connector: MakeConnector
) -> None:
    """Owned MANUAL lists take members by email; DYNAMIC lists are created then updated."""
    connector = make_connector()
    branch = {
        "filterBranch": {
            "filterBranchType": "OR",
            "filters": [],
            "filterBranches": [
                {
                    "filterBranchType": "AND",
                    "filterBranches": [],
                    "filters": [
                        {
                            "filterType": "PROPERTY",
                            "property": "firstname",
                            "operation": {
                                "operationType": "MULTISTRING",
                                "operator": "IS_EQUAL_TO",
                                "values": ["A"],
                                "includeObjectsWithNoValueSet": False,
                            },
                        }
                    ],
                }
            ],
        }
    }

    async def main() -> tuple[set[str], set[str], list[Any], set[str]]:
        async with connector:
            await connector.write(
                [new("a@example.com", first_name="A"), new("b@example.com", first_name="B")]
            )
            static = await connector.ensure_static("vips", None)
            results = await connector.change_static_members(
                static, ["a@example.com", "b@example.com", "ghost@example.com"], []
            )
            await connector.change_static_members(static, [], ["a@example.com"])
            members = {e async for e in connector.segment_members(static)}
            ref = await connector.publish_native("as", branch, None)
            first = {e async for e in connector.segment_members(ref)}
            branch["filterBranch"]["filterBranches"][0]["filters"][0]["operation"]["values"] = ["B"]
            assert await connector.publish_native("as", branch, ref) == ref
            second = {e async for e in connector.segment_members(ref)}
            return members, first, results, second

    members, first, results, second = asyncio.run(main())

    assert members == {"b@example.com"}
    assert [r.ok for r in results] == [True, True, False]
    assert first == {"a@example.com"}
    assert second == {"b@example.com"}
    assert {x.name for x in emulator.lists.values()} == {"segsync: vips", "segsync: as"}


def test_api_version_v3_paths(
    emulator: HubSpotEmulator, make_connector: MakeConnector, settle: Settle
) -> None:
    """With `api_version: v3` the connector speaks /crm/v3/... and the same state results."""
    connector = make_connector(api_version="v3")

    async def main() -> list[str]:
        async with connector:
            await connector.write([new("v3@example.com", first_name="V")])
            settle(emulator)
            return [c.email async for p in connector.read() for c in p.contacts]

    emails = asyncio.run(main())

    assert emails == ["v3@example.com"]
    assert writes(emulator, r"^/crm/v3/objects/contacts/batch/upsert$") == 1
    assert writes(emulator, r"^/crm/objects/") == 0


def test_the_token_never_shows(
    emulator: HubSpotEmulator, clock: VirtualClock, checked: Wrap
) -> None:
    """The token is absent from reprs and from the error of a refused request."""
    secret = "pat-na1-secret-0000-1111-2222-333333333333"
    connector = HubSpotConnector(
        {"token": secret, "base_url": "http://127.0.0.1:9"},
        transport=checked(emulator.transport()),
        clock=clock,
    )

    async def main() -> ApiError:
        async with connector:
            with pytest.raises(ApiError) as caught:
                await connector.check()
            return caught.value

    error = asyncio.run(main())

    assert error.status == 401
    assert secret not in str(error) + repr(connector) + repr(connector.config)
    assert secret not in repr(error.body)


def test_without_batch_status_reads_consent_comes_from_opt_out_properties(
    clock: VirtualClock, checked: Wrap, settle: Settle
) -> None:
    """On a portal without the Enterprise batch status API, opt-outs are still read and kept."""
    emulator = HubSpotEmulator(clock=clock, enterprise_consent=False)
    emulator.seed_contact({"email": "in@example.com"})
    emulator.seed_contact({"email": "out@example.com"})
    emulator.set_subscription("in@example.com", subscribed=True)
    emulator.unsubscribe_all("out@example.com")
    settle(emulator)
    connector = HubSpotConnector(
        {"token": TOKEN, "base_url": "http://127.0.0.1:9"},
        transport=checked(emulator.transport()),
        clock=clock,
    )

    async def main() -> tuple[dict[str, ConsentStatus], list[Any]]:
        async with connector:
            read = {c.email: c.consent.status async for p in connector.read() for c in p.contacts}
            refused = await connector.write(
                [ContactChange(email="out@example.com", consent=ConsentStatus.SUBSCRIBED)]
            )
            return read, refused

    read, [refused] = asyncio.run(main())

    assert read == {
        "in@example.com": ConsentStatus.NON_SUBSCRIBED,
        "out@example.com": ConsentStatus.UNSUBSCRIBED,
    }
    assert refused.code == "CONSENT_OPT_OUT"
    assert emulator.subscription_status("out@example.com") == "NOT_SUBSCRIBED"


def test_writes_and_reads_survive_server_errors_and_lost_answers(
    clock: VirtualClock, checked: Wrap, settle: Settle
) -> None:
    """With 5xx answers and answers lost after HubSpot acted, every change lands exactly once."""
    emulator = HubSpotEmulator(
        clock=clock, faults=FaultPlan(per_kind={"500": 0.15, "drop_after": 0.1}, seed=3)
    )
    connector = HubSpotConnector(
        {"token": TOKEN, "base_url": "http://127.0.0.1:9"},
        transport=checked(emulator.transport()),
        clock=clock,
    )
    changes = [
        ContactChange(
            email=f"f{i}@example.com",
            create=True,
            fields={"first_name": "F"},
            tags_add=frozenset({"vip"} if i % 2 else {"b2b"}),
        )
        for i in range(300)
    ]

    async def main() -> tuple[list[Any], list[str]]:
        async with connector:
            await connector.prepare({}, ["vip", "b2b"])
            results = await connector.write(changes)
            settle(emulator)
            emails = [c.email async for p in connector.read() for c in p.contacts]
            return results, emails

    results, emails = asyncio.run(main())

    assert sum(emulator.faults.injected.values()) > 0
    assert all(r.ok for r in results), [r for r in results if not r.ok][:3]
    assert len(emulator.contacts) == 300
    assert sorted(emails) == sorted(c.email for c in changes)
    assert (emulator.contact_by_email("f1@example.com") or {})["segsync_tags"] == "vip"


def test_a_list_whose_creation_answer_was_lost_is_not_created_twice(
    clock: VirtualClock, checked: Wrap
) -> None:
    """A list created but answered by a dropped connection is found, not duplicated; a name
    taken by someone else's list gets a distinct one (`... [2]`), theirs left alone."""
    emulator = HubSpotEmulator(clock=clock)
    connector = HubSpotConnector(
        {"token": TOKEN, "base_url": "http://127.0.0.1:9"},
        transport=checked(emulator.transport()),
        clock=clock,
    )

    async def main() -> tuple[str, str, tuple[str, str | None]]:
        async with connector:
            emulator.faults = FirstRequestsFault("drop_after", times=1)
            ref = await connector.ensure_static("vips", None)
            emulator.faults = FaultPlan()
            emulator.lists["99"] = dataclasses.replace(
                emulator.lists[ref], id="99", name="segsync: theirs", members={}
            )
            planned = await connector.creation_name("static", "theirs")
            mine = await connector.ensure_static("theirs", None)
            return ref, mine, planned

    ref, mine, planned = asyncio.run(main())

    assert [x.name for x in emulator.lists.values()] == [
        "segsync: vips", "segsync: theirs", "segsync: theirs [2]"
    ]
    assert emulator.lists[ref].name == "segsync: vips"
    assert mine != "99"
    assert emulator.lists[mine].name == "segsync: theirs [2]"
    assert planned[0] == "segsync: theirs [2]"
    assert planned[1] is not None
    assert "'segsync: theirs' (id 99)" in planned[1]
