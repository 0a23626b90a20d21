"""The Brevo connector against the emulator: what it sends, and what Brevo ends up holding."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from segsync_brevo import BrevoConnector
from segsync_brevo.emulator import BrevoEmulator

from segsync.clock import VirtualClock
from segsync.connector import ContactChange, RemoteContact
from segsync.emulator.base import FaultPlan
from segsync.model import ConsentStatus, FieldSpec, FieldType, Schema

SCHEMA = Schema(
    fields={
        "first_name": FieldSpec(type=FieldType.TEXT),
        "country": FieldSpec(type=FieldType.ENUM, options=("FR", "BE", "DE")),
        "lifetime_value": FieldSpec(type=FieldType.NUMBER),
        "orders": FieldSpec(type=FieldType.INTEGER),
        "vip": FieldSpec(type=FieldType.BOOLEAN),
        "birthday": FieldSpec(type=FieldType.DATE),
        "last_seen_at": FieldSpec(type=FieldType.DATETIME),
        "topics": FieldSpec(type=FieldType.MULTI_ENUM, options=("news", "offers")),
    }
)
TAGS = ("alpha", "beta", "gamma")

Body = Callable[[BrevoConnector, BrevoEmulator, VirtualClock], Awaitable[None]]


def run(body: Body, config: dict[str, Any] | None = None, **emulator_kwargs: Any) -> BrevoEmulator:
    """Run `body` with a connector on a fresh emulator sharing a virtual clock."""
    clock = VirtualClock()
    emulator = BrevoEmulator(clock=clock, **emulator_kwargs)

    async def main() -> None:
        connector = BrevoConnector(
            {"api_key": emulator.api_key, **(config or {})},
            schema=SCHEMA,
            transport=emulator.transport(),
            clock=clock,
        )
        async with connector:
            await body(connector, emulator, clock)

    asyncio.run(main())
    return emulator


def full_change(i: int, **extra: Any) -> ContactChange:
    values: dict[str, Any] = {
        "email": f"person{i:05d}@example.com",
        "create": True,
        "fields": {
            "first_name": f"Name {i}",
            "country": ("FR", "BE", "DE")[i % 3],
            "lifetime_value": i * 1.5,
            "orders": i,
            "vip": i % 2 == 0,
            "birthday": dt.date(1990, 1, 1) + dt.timedelta(days=i),
            "last_seen_at": dt.datetime(2025, 5, 1, 12, 30, tzinfo=dt.UTC),
            "topics": frozenset({"news"}),
        },
        "consent": ConsentStatus.SUBSCRIBED,
        "tags_add": frozenset(TAGS[: i % 3]),
    }
    values.update(extra)
    return ContactChange(**values)


async def read_all(connector: BrevoConnector, cursor: str | None = None) -> list[RemoteContact]:
    return [c async for page in connector.read(cursor) for c in page.contacts]


def test_prepare_creates_typed_attributes_folder_and_tag_lists() -> None:
    """prepare() creates each attribute with its category and type, and one list per tag."""

    async def body(connector: BrevoConnector, emu: BrevoEmulator, clock: VirtualClock) -> None:
        await connector.prepare(SCHEMA.fields, TAGS)
        await connector.prepare(SCHEMA.fields, TAGS)  # a second run creates nothing

        kinds = {n: (a.category, a.type) for n, a in emu.attributes.items()}
        assert kinds["FIRSTNAME"] == ("normal", "text")
        assert kinds["COUNTRY"] == ("category", "category")
        assert [e["label"] for e in emu.attributes["COUNTRY"].enumeration] == ["FR", "BE", "DE"]
        assert kinds["LIFETIME_VALUE"] == kinds["ORDERS"] == ("normal", "float")
        assert kinds["VIP"] == ("normal", "boolean")
        assert kinds["BIRTHDAY"] == ("normal", "date")
        assert kinds["LAST_SEEN_AT"] == ("normal", "text")
        assert kinds["TOPICS"] == ("normal", "multiple-choice")
        assert emu.attributes["TOPICS"].options == ["news", "offers"]
        assert kinds["SEGSYNC_CONSENT"] == ("category", "category")
        assert kinds["SEGSYNC_TAGS"] == ("normal", "multiple-choice")  # tags without opt-in
        folder = next(i for i, name in emu.folders.items() if name == "segsync")
        names = sorted(d["name"] for d in emu.lists.values() if d["folderId"] == folder)
        assert names == ["tag: alpha", "tag: beta", "tag: gamma"]
        assert emu.log.count("POST", re.compile("/contacts/(attributes|folders|lists)")) == 13

    run(body)


def test_roundtrip_of_every_type() -> None:
    """Values of every canonical type come back equal, with tags and consent."""

    async def body(connector: BrevoConnector, emu: BrevoEmulator, clock: VirtualClock) -> None:
        await connector.prepare(SCHEMA.fields, TAGS)
        changes = [full_change(i) for i in range(3)]
        results = await connector.write(changes)
        back = {c.email: c for c in await read_all(connector)}

        assert [r.ok for r in results] == [True, True, True]
        assert all(r.created and r.platform_id for r in results)
        for change in changes:
            got = back[change.email]
            assert got.fields == {k: SCHEMA.fields[k].coerce(v) for k, v in change.fields.items()}
            assert got.tags == change.tags_add
            assert got.consent.status is ConsentStatus.SUBSCRIBED
        assert emu.dropped_values == []

    run(body)


def test_values_brevo_would_drop_are_errors_and_not_sent() -> None:
    """A value that does not fit its attribute is a failed result; nothing is sent for it."""

    async def body(connector: BrevoConnector, emu: BrevoEmulator, clock: VirtualClock) -> None:
        await connector.prepare(SCHEMA.fields, TAGS)
        sent = len(emu.log)
        results = await connector.write(
            [
                ContactChange(email="a@example.com", create=True, fields={"country": "IT"}),
                ContactChange(
                    email="b@example.com", create=True, fields={"lifetime_value": "lots"}
                ),
                ContactChange(
                    email="c@example.com", create=True, fields={"topics": frozenset({"gossip"})}
                ),
            ]
        )

        assert [r.ok for r in results] == [False, False, False]
        assert all(r.code == "invalid_value" for r in results)
        assert "COUNTRY" in (results[0].error or "")
        assert "Brevo would drop" in (results[1].error or "")
        assert len(emu.log) == sent
        assert emu.dropped_values == []

    run(body)


def test_empty_and_unchanged_writes_send_nothing() -> None:
    """write([]) and changes equal to what was read send no request."""

    async def body(connector: BrevoConnector, emu: BrevoEmulator, clock: VirtualClock) -> None:
        await connector.prepare(SCHEMA.fields, TAGS)
        [created] = await connector.write([full_change(1)])
        [seen] = await read_all(connector)
        sent = len(emu.log)
        same = ContactChange(
            email=seen.email,
            platform_id=seen.platform_id,
            fields=dict(seen.fields),
            tags_add=seen.tags,
            consent=seen.consent.status,
        )

        assert await connector.write([]) == []
        results = await connector.write([same])
        assert [r.ok for r in results] == [True]
        assert len(emu.log) == sent
        assert created.platform_id == seen.platform_id

    run(body)


def test_large_change_sets_go_through_import() -> None:
    """Above the threshold, one import per list set; polls stay few; results carry ids."""

    async def body(connector: BrevoConnector, emu: BrevoEmulator, clock: VirtualClock) -> None:
        await connector.prepare(SCHEMA.fields, TAGS)
        changes = [full_change(i, fields={"first_name": f"N{i}"}) for i in range(1200)]
        results = await connector.write(changes)

        assert all(r.ok for r in results)
        assert len({r.platform_id for r in results}) == 1200
        assert all(r.created for r in results)
        assert (
            emu.log.count("POST", re.compile("/contacts/import$")) == 3
        )  # {}, {alpha}, {alpha,beta}
        assert emu.log.count("POST", re.compile("^/v3/contacts$")) == 0
        assert emu.log.count("GET", re.compile("^/v3/processes")) <= 3
        assert emu.rate_limited == 0
        stored = emu.contact("person00002@example.com")
        assert stored is not None
        tag_ids = {d["name"]: i for i, d in emu.lists.items()}
        assert {tag_ids["tag: alpha"], tag_ids["tag: beta"]} <= stored.list_ids
        assert stored.attributes["FIRSTNAME"] == "N2"

    run(body)


def test_import_with_booleans_uses_single_calls() -> None:
    """Boolean attributes are not imported by Brevo, so those changes go one by one."""

    async def body(connector: BrevoConnector, emu: BrevoEmulator, clock: VirtualClock) -> None:
        await connector.prepare(SCHEMA.fields, TAGS)
        changes = [
            ContactChange(email=f"b{i}@example.com", create=True, fields={"vip": True})
            for i in range(5)
        ]
        results = await connector.write(changes)

        assert all(r.ok for r in results)
        assert emu.log.count("POST", re.compile("/contacts/import$")) == 0
        stored = emu.contact("b3@example.com")
        assert stored is not None
        assert stored.attributes["VIP"] is True

    run(body, {"import_threshold": 2})


def test_small_tag_groups_in_an_import_use_membership_calls() -> None:
    """List sets shared by fewer than 150 contacts are added 150 a call after the import."""

    async def body(connector: BrevoConnector, emu: BrevoEmulator, clock: VirtualClock) -> None:
        await connector.prepare(SCHEMA.fields, TAGS)
        changes = [
            ContactChange(
                email=f"g{i}@example.com",
                create=True,
                fields={"first_name": "G"},
                consent=ConsentStatus.SUBSCRIBED,
                tags_add=frozenset({TAGS[i % 3]}),
            )
            for i in range(30)
        ]
        results = await connector.write(changes)

        assert all(r.ok for r in results)
        assert emu.log.count("POST", re.compile("/contacts/import$")) == 1
        assert emu.log.count("POST", re.compile("/contacts/add$")) == 3
        back = {c.email: c.tags for c in await read_all(connector)}
        assert back["g4@example.com"] == frozenset({"beta"})

    run(body, {"import_threshold": 10})


def test_partial_import_failure_is_reported_per_contact() -> None:
    """Contacts an import refuses get failed results; the others are confirmed."""

    async def body(connector: BrevoConnector, emu: BrevoEmulator, clock: VirtualClock) -> None:
        await connector.prepare(SCHEMA.fields, TAGS)
        emu.faults = FaultPlan(per_kind={"partial": 1.0}, seed=3)
        results = await connector.write(
            [
                ContactChange(email=f"p{i}@example.com", create=True, fields={"first_name": "P"})
                for i in range(20)
            ]
        )
        emu.faults = FaultPlan()

        failed = [r for r in results if not r.ok]
        assert len(failed) == 2  # the emulator refuses a tenth of the batch
        assert all(r.code == "import_rejected" and r.error for r in failed)
        assert all(emu.contact(r.email) is None for r in failed)
        assert all(emu.contact(r.email) is not None for r in results if r.ok)

    run(body, {"import_threshold": 10})


def test_threshold_follows_measured_import_cost() -> None:
    """A faster import than assumed lowers the size from which imports are quicker."""

    async def body(connector: BrevoConnector, emu: BrevoEmulator, clock: VirtualClock) -> None:
        await connector.prepare(SCHEMA.fields, TAGS)
        before = connector.cost.quicker_threshold()
        await connector.write(
            [
                ContactChange(email=f"t{i}@example.com", create=True, fields={"first_name": "T"})
                for i in range(before)
            ]
        )
        after = connector.cost.quicker_threshold()

        assert emu.log.count("POST", re.compile("/contacts/import$")) == 1
        assert after < before

    run(body)


@pytest.mark.slow
def test_polling_stays_inside_the_hourly_budget() -> None:
    """Many quick imports wait for the 100-an-hour bucket of /processes instead of a 429."""

    async def body(connector: BrevoConnector, emu: BrevoEmulator, clock: VirtualClock) -> None:
        await connector.prepare(SCHEMA.fields, TAGS)
        for batch in range(110):
            results = await connector.write(
                [
                    ContactChange(
                        email=f"h{batch}-{i}@example.com", create=True, fields={"first_name": "H"}
                    )
                    for i in range(3)
                ]
            )
            assert all(r.ok for r in results)

        polls = [p for m, p, _ in emu.log.entries if m == "GET" and "/processes" in p]
        assert emu.log.count("POST", re.compile("/contacts/import$")) == 110
        assert len(polls) > 100
        assert emu.rate_limited == 0
        assert clock.elapsed > 3600  # the budget made the run wait for the next hour

    run(body, {"import_threshold": 2})


def test_opt_out_blocklists_and_is_never_cleared() -> None:
    """Unsubscribed sets emailBlacklisted; asking subscribed again is refused, nothing sent."""

    async def body(connector: BrevoConnector, emu: BrevoEmulator, clock: VirtualClock) -> None:
        await connector.prepare(SCHEMA.fields, TAGS)
        [result] = await connector.write([full_change(1)])
        await connector.write(
            [
                ContactChange(
                    email=result.email,
                    platform_id=result.platform_id,
                    consent=ConsentStatus.UNSUBSCRIBED,
                )
            ]
        )
        stored = emu.contact(result.email)
        assert stored is not None
        assert stored.email_blacklisted
        [back] = await read_all(connector)
        assert back.consent.status is ConsentStatus.UNSUBSCRIBED
        writes = emu.log.count("PUT")
        [again] = await connector.write(
            [
                ContactChange(
                    email=result.email,
                    platform_id=result.platform_id,
                    consent=ConsentStatus.SUBSCRIBED,
                )
            ]
        )

        assert not again.ok
        assert again.code == "consent_floor"
        assert emu.log.count("PUT") == writes
        assert stored.email_blacklisted
        assert emu.unblocklist_writes == []

    run(body, refuse_unblocklist=True)


def test_bounced_round_trips() -> None:
    """Bounced is blocklisted in Brevo and read back as bounced."""

    async def body(connector: BrevoConnector, emu: BrevoEmulator, clock: VirtualClock) -> None:
        await connector.prepare(SCHEMA.fields, TAGS)
        await connector.write([full_change(1, consent=ConsentStatus.BOUNCED)])
        [back] = await read_all(connector)

        assert back.consent.status is ConsentStatus.BOUNCED
        stored = emu.contact(back.email)
        assert stored is not None
        assert stored.email_blacklisted

    run(body)


def test_new_contacts_default_to_non_subscribed() -> None:
    """A contact created without a consent status is non_subscribed, never subscribed."""

    async def body(connector: BrevoConnector, emu: BrevoEmulator, clock: VirtualClock) -> None:
        await connector.prepare(SCHEMA.fields, TAGS)
        await connector.write(
            [ContactChange(email="n@example.com", create=True, tags_add=frozenset({"alpha"}))]
        )
        [back] = await read_all(connector)

        assert back.consent.status is ConsentStatus.NON_SUBSCRIBED

    run(body)


def test_re_opt_in_goes_through_double_opt_in_when_configured() -> None:
    """With double opt-in configured, subscribed for a blocklisted contact asks them again
    (Brevo keeps the blocklist after the click; only the person or an admin lifts it)."""
    config = {"double_opt_in": {"template_id": 7, "redirection_url": "https://example.com/ok"}}

    async def body(connector: BrevoConnector, emu: BrevoEmulator, clock: VirtualClock) -> None:
        await connector.prepare(SCHEMA.fields, TAGS)
        [result] = await connector.write([full_change(1)])
        emu.blocklist(result.email)
        [asked] = await connector.write(
            [
                ContactChange(
                    email=result.email,
                    platform_id=result.platform_id,
                    consent=ConsentStatus.SUBSCRIBED,
                )
            ]
        )
        [pending] = await read_all(connector)
        emu.confirm_double_opt_in(result.email)
        clock.advance(1)
        [confirmed] = await read_all(connector)

        assert asked.ok
        assert asked.code == "double_opt_in"
        assert emu.unblocklist_writes == []
        assert pending.consent.status is ConsentStatus.UNSUBSCRIBED  # until they click
        # confirming does not lift Brevo's blocklist: the opt-out still wins, with its proof
        assert emu.contact(result.email).email_blacklisted  # type: ignore[union-attr]
        assert confirmed.consent.status is ConsentStatus.UNSUBSCRIBED
        assert confirmed.consent.evidence == "emailBlacklisted=true"

    run(body, config)


def test_rename_keeps_the_blocklist() -> None:
    """Changing a blocklisted contact's email keeps it blocklisted (Brevo would clear it)."""

    async def body(connector: BrevoConnector, emu: BrevoEmulator, clock: VirtualClock) -> None:
        await connector.prepare(SCHEMA.fields, TAGS)
        [result] = await connector.write([full_change(1)])
        emu.blocklist(result.email)
        [renamed] = await connector.write(
            [
                ContactChange(
                    email=result.email,
                    platform_id=result.platform_id,
                    new_email="new@example.com",
                )
            ]
        )
        stored = emu.contact("new@example.com")

        assert renamed.ok
        assert stored is not None
        assert stored.email_blacklisted
        assert emu.unblocklist_writes == []

    run(body)


def test_tags_as_a_multiple_choice_attribute() -> None:
    """With `tags: attribute`, tags are options of one attribute, added and removed."""

    async def body(connector: BrevoConnector, emu: BrevoEmulator, clock: VirtualClock) -> None:
        await connector.prepare(SCHEMA.fields, TAGS)
        [result] = await connector.write(
            [
                ContactChange(
                    email="t@example.com",
                    create=True,
                    tags_add=frozenset({"alpha", "beta"}),
                )
            ]
        )
        await connector.write(
            [
                ContactChange(
                    email="t@example.com",
                    platform_id=result.platform_id,
                    tags_add=frozenset({"delta"}),
                    tags_remove=frozenset({"alpha"}),
                )
            ]
        )
        [back] = await read_all(connector)

        assert back.tags == frozenset({"beta", "delta"})
        assert "delta" in emu.attributes["SEGSYNC_TAGS"].options
        assert not any(d["name"].startswith("tag: ") for d in emu.lists.values())

    run(body, {"tags": "attribute"})


def test_incremental_read_with_overlap_reads_each_change_once() -> None:
    """A read from a cursor returns what changed since, including within the overlap."""

    async def body(connector: BrevoConnector, emu: BrevoEmulator, clock: VirtualClock) -> None:
        await connector.prepare(SCHEMA.fields, TAGS)
        await connector.write([full_change(i) for i in range(4)])
        pages = [p async for p in connector.read()]
        cursor = pages[-1].cursor
        clock.advance(10)  # inside the overlap window
        await connector.write(
            [ContactChange(email="person00002@example.com", fields={"first_name": "Changed"})]
        )
        changed = await read_all(connector, cursor)
        nothing = await read_all(connector, [p async for p in connector.read(cursor)][-1].cursor)

        assert [c.email for c in changed] == ["person00002@example.com"]
        assert changed[0].fields["first_name"] == "Changed"
        assert nothing == []
        query = [p for m, p, _ in emu.log.entries if m == "GET" and p.endswith("/contacts")]
        assert query  # reads went through GET /contacts

    run(body)


def test_reads_page_by_page_at_the_maximum() -> None:
    """Reads ask for 1000 contacts a page and yield each page as it arrives (each page after
    the first starts at the previous page's last contact, its anchor, read again)."""

    async def body(connector: BrevoConnector, emu: BrevoEmulator, clock: VirtualClock) -> None:
        for i in range(2500):
            contact = emu._new_contact(f"r{i}@example.com")
            contact.attributes["FIRSTNAME"] = "R"
        sizes = [len(p.contacts) async for p in connector.read()]

        assert sizes == [1000, 999, 501]
        assert [e.path for e in emu.log.entries].count("/v3/contacts") == 3

    run(body)


@pytest.mark.slow
def test_static_segments_are_owned_lists_changed_150_a_call() -> None:
    """ensure_static makes an owned list; membership goes 150 emails a call."""

    async def body(connector: BrevoConnector, emu: BrevoEmulator, clock: VirtualClock) -> None:
        await connector.prepare(SCHEMA.fields, TAGS)
        changes = [
            ContactChange(email=f"s{i}@example.com", create=True, consent=ConsentStatus.SUBSCRIBED)
            for i in range(400)
        ]
        await connector.write(changes)
        ref = await connector.ensure_static("big spenders", None)
        same = await connector.ensure_static("big spenders", ref)
        emails = [c.email.upper() for c in changes[:320]] + ["ghost@example.com"]
        added = await connector.change_static_members(ref, emails, [])
        removed = await connector.change_static_members(ref, [], [c.email for c in changes[:10]])
        members = [e async for e in connector.segment_members(ref)]

        assert same == ref
        assert emu.lists[int(ref)]["name"] == "segment: big spenders"
        assert emu.log.count("POST", re.compile("/contacts/add$")) == 3
        assert [r.ok for r in added].count(False) == 1
        assert all(r.ok for r in removed)
        assert len(members) == 310
        await connector.delete_owned("segment", ref)
        assert int(ref) not in emu.lists

    run(body, {"import_threshold": 10_000})


def test_membership_retry_after_a_lost_answer_counts_as_done() -> None:
    """Adding members already in the list (a repeated call) is a success, not an error."""

    async def body(connector: BrevoConnector, emu: BrevoEmulator, clock: VirtualClock) -> None:
        await connector.prepare(SCHEMA.fields, TAGS)
        await connector.write(
            [
                ContactChange(
                    email=f"m{i}@example.com", create=True, consent=ConsentStatus.SUBSCRIBED
                )
                for i in range(3)
            ]
        )
        ref = await connector.ensure_static("s", None)
        emails = [f"m{i}@example.com" for i in range(3)]
        first = await connector.change_static_members(ref, emails, [])
        second = await connector.change_static_members(ref, emails, [])

        assert all(r.ok for r in first + second)

    run(body)


def test_brevo_segments_are_read() -> None:
    """Brevo's own segments are listed and their members read."""

    async def body(connector: BrevoConnector, emu: BrevoEmulator, clock: VirtualClock) -> None:
        await connector.prepare(SCHEMA.fields, TAGS)
        await connector.write([full_change(i) for i in range(3)])
        segment = emu.add_segment("french", lambda c: c["attributes"].get("COUNTRY") == 1)
        listed = await connector.platform_segments()
        members = [e async for e in connector.segment_members(f"segment:{segment}")]

        assert listed == [{"id": segment, "name": "french", "category": "segsync"}]
        assert members == ["person00000@example.com"]

    run(body)


def test_rate_limit_429_is_waited_out() -> None:
    """Past the budget (a second connector on the account), a 429 is retried after the reset."""

    async def body(connector: BrevoConnector, emu: BrevoEmulator, clock: VirtualClock) -> None:
        for _ in range(10):  # someone else spent this second's budget
            emu.limits[0].hit(clock.monotonic())
        await connector.check()

        assert emu.rate_limited == 1
        assert connector.stats.endpoints["GET /contacts/attributes"].retries == 1

    run(body)


def test_secrets_stay_out_of_reprs_and_errors() -> None:
    """The API key appears in no repr and no error message."""

    async def body(connector: BrevoConnector, emu: BrevoEmulator, clock: VirtualClock) -> None:
        key = emu.api_key
        emu.api_key = "xkeysib-other"
        with pytest.raises(Exception) as raised:  # noqa: PT011 - any ApiError
            await connector.check()

        assert key not in repr(connector) + repr(connector.config) + repr(connector.client)
        assert key not in str(raised.value)
        assert "Key not found" in str(raised.value)

    run(body)


def test_tier_sets_the_budget() -> None:
    """The configured tier sets the connector's rate windows."""
    connector = BrevoConnector({"api_key": "xkeysib-x", "tier": "advanced"})

    windows = {(w.requests, w.seconds, w.scope) for w in connector.budget.windows}

    assert (20, 1.0, "contacts") in windows
    assert (200, 3600.0, "hourly") in windows


def test_subscribed_for_blocklisted_contacts_in_an_import_is_undone_and_reported() -> None:
    """An import cannot check the blocklist first: the read-back finds it, the consent
    attribute is put back, and the result says the consent was not applied."""

    async def body(connector: BrevoConnector, emu: BrevoEmulator, clock: VirtualClock) -> None:
        await connector.prepare(SCHEMA.fields, TAGS)
        await connector.write(
            [ContactChange(email=f"i{i}@example.com", create=True) for i in range(12)]
        )
        emu.blocklist("i3@example.com")
        results = await connector.write(
            [
                ContactChange(
                    email=f"i{i}@example.com",
                    fields={"first_name": "Again"},
                    consent=ConsentStatus.SUBSCRIBED,
                )
                for i in range(12)
            ]
        )
        back = {c.email: c for c in await read_all(connector)}

        # the first import, then (the lookup saw i3 blocklisted) subscribed and the rest apart
        assert emu.log.count("POST", re.compile("/contacts/import$")) == 3
        refused = [r for r in results if r.code == "consent_floor"]
        assert [r.email for r in refused] == ["i3@example.com"]
        assert refused[0].ok
        assert refused[0].partial
        assert back["i3@example.com"].consent.status is ConsentStatus.UNSUBSCRIBED
        assert back["i3@example.com"].fields["first_name"] == "Again"
        assert back["i4@example.com"].consent.status is ConsentStatus.SUBSCRIBED
        assert emu.unblocklist_writes == []

    run(body, {"import_threshold": 10})


def test_other_fields_of_a_refused_resubscribe_are_written() -> None:
    """Fields changed alongside a refused re-subscribe still reach Brevo (a partial result)."""

    async def body(connector: BrevoConnector, emu: BrevoEmulator, clock: VirtualClock) -> None:
        await connector.prepare(SCHEMA.fields, TAGS)
        [created] = await connector.write([full_change(1)])
        emu.blocklist(created.email)
        [result] = await connector.write(
            [
                ContactChange(
                    email=created.email,
                    platform_id=created.platform_id,
                    fields={"first_name": "Still here"},
                    consent=ConsentStatus.SUBSCRIBED,
                )
            ]
        )
        stored = emu.contact(created.email)

        assert result.ok
        assert result.partial
        assert result.code == "consent_floor"
        assert stored is not None
        assert stored.attributes["FIRSTNAME"] == "Still here"
        assert stored.attributes["SEGSYNC_CONSENT"] == 1  # what it was before: not touched
        assert stored.email_blacklisted

    run(body)


def test_an_import_that_never_completes_is_reported() -> None:
    """Changes of an import still running past the timeout are failed results, not lost."""

    async def body(connector: BrevoConnector, emu: BrevoEmulator, clock: VirtualClock) -> None:
        await connector.prepare(SCHEMA.fields, TAGS)
        results = await connector.write(
            [ContactChange(email=f"slow{i}@example.com", create=True) for i in range(4)]
        )

        assert [r.ok for r in results] == [False] * 4
        assert all(r.code == "import_timeout" for r in results)
        assert "did not complete" in (results[0].error or "")

    run(body, {"import_threshold": 2, "import_timeout_seconds": 600}, import_base_seconds=10_000.0)


def test_existing_attribute_types_are_respected() -> None:
    """An attribute the account already has with another type is written in that type."""

    async def body(connector: BrevoConnector, emu: BrevoEmulator, clock: VirtualClock) -> None:
        emu.attributes["COUNTRY"] = type(emu.attributes["FIRSTNAME"])("COUNTRY", "normal", "text")
        await connector.prepare(SCHEMA.fields, TAGS)
        await connector.write(
            [ContactChange(email="x@example.com", create=True, fields={"country": "BE"})]
        )
        [back] = await read_all(connector)

        assert emu.attributes["COUNTRY"].type == "text"
        stored = emu.contact("x@example.com")
        assert stored is not None
        assert stored.attributes["COUNTRY"] == "BE"
        assert back.fields["country"] == "BE"

    run(body)


def test_the_default_mapping_names_the_attributes() -> None:
    """mappings/brevo.yaml places canonical fields (e.g. phone -> SMS)."""
    connector = BrevoConnector({"api_key": "xkeysib-x"})

    assert connector.field_map is not None
    assert connector.attribute_name("phone") == "SMS"
    assert connector.attribute_name("first_name") == "FIRSTNAME"
    assert connector.attribute_name("lifetime_value") == "LIFETIME_VALUE"
    renamed = BrevoConnector({"api_key": "xkeysib-x", "attribute_names": {"phone": "mobile"}})
    assert renamed.attribute_name("phone") == "MOBILE"


def test_a_refused_update_is_a_failed_result_sent_once() -> None:
    """A 4xx (here: an unknown contact) is not retried and keeps Brevo's message."""

    async def body(connector: BrevoConnector, emu: BrevoEmulator, clock: VirtualClock) -> None:
        await connector.prepare(SCHEMA.fields, TAGS)
        sent = emu.log.count("PUT")
        [result] = await connector.write(
            [
                ContactChange(
                    email="ghost@example.com",
                    platform_id="999999",
                    fields={"first_name": "Nobody"},
                )
            ]
        )

        assert not result.ok
        assert result.code == "document_not_found"
        assert result.error == "Contact does not exist"
        assert emu.log.count("PUT") == sent + 1

    run(body)


def test_clearing_values_sends_empty_values() -> None:
    """A field set to None is cleared with an empty value (an empty list for multiple-choice)."""

    async def body(connector: BrevoConnector, emu: BrevoEmulator, clock: VirtualClock) -> None:
        await connector.prepare(SCHEMA.fields, TAGS)
        [created] = await connector.write([full_change(3)])
        await connector.write(
            [
                ContactChange(
                    email=created.email,
                    platform_id=created.platform_id,
                    fields={
                        "first_name": None,
                        "birthday": None,
                        "topics": None,
                        "lifetime_value": None,
                    },
                )
            ]
        )
        [back] = await read_all(connector)

        assert "first_name" not in back.fields
        assert "birthday" not in back.fields
        assert "topics" not in back.fields
        assert "lifetime_value" not in back.fields
        assert back.fields["orders"] == 3

    run(body)


def test_a_tag_list_left_by_the_person_is_an_opt_out_not_an_untagging() -> None:
    """Per-list unsubscription from a tag's list (a list segsync writes, which Brevo
    campaigns go to) is an opt-out naming the list; the tag stays (issue #13)."""

    async def body(connector: BrevoConnector, emu: BrevoEmulator, clock: VirtualClock) -> None:
        await connector.prepare(SCHEMA.fields, TAGS)
        [created] = await connector.write([full_change(2)])  # tags alpha, beta
        alpha = next(i for i, d in emu.lists.items() if d["name"] == "tag: alpha")
        emu.unsubscribe_from_list(created.email, alpha)
        [back] = await read_all(connector)

        assert back.tags == frozenset({"alpha", "beta"})
        assert back.consent.status is ConsentStatus.UNSUBSCRIBED
        assert back.consent.evidence == f"listUnsubscribed={alpha} (tag: alpha)"
        assert back.reachable is True  # not blocklisted: the engine sends the opt-out

    run(body)


@pytest.mark.slow
def test_many_imports_are_polled_50_a_page() -> None:
    """More imports than one page of /processes are polled page by page, not one by one."""

    async def body(connector: BrevoConnector, emu: BrevoEmulator, clock: VirtualClock) -> None:
        await connector.prepare(SCHEMA.fields, TAGS)
        changes = []
        for i in range(60):  # 60 distinct list sets of 150 contacts: 60 imports
            tags = frozenset({f"t{i}"})
            changes += [
                ContactChange(
                    email=f"p{i}-{j}@example.com",
                    create=True,
                    tags_add=tags,
                    consent=ConsentStatus.SUBSCRIBED,
                )
                for j in range(150)
            ]
        results = await connector.write(changes)

        assert all(r.ok for r in results)
        assert emu.log.count("POST", re.compile("/contacts/import$")) == 60
        assert emu.log.count("GET", re.compile("/processes/")) == 0
        assert emu.log.count("GET", re.compile("/processes$")) == 2

    run(body, {"import_threshold": 2})
