"""Consent is evidence (issue 13) on a lived-in Brevo account.

Every test starts from an account people already used: their own lists with contacts in
them, per-list unsubscribes, blocklisted contacts, attributes they made; and people act in
Brevo between runs (an admin deletes an attribute, a person unsubscribes from one list).
"""

from __future__ import annotations

import logging
import re

import pytest
from segsync_brevo.emulator import BrevoEmulator

from segsync.clock import VirtualClock
from segsync.connector import ContactChange, RemoteContact
from segsync.http import ApiError
from segsync.model import ConsentStatus

from .test_connector import SCHEMA, TAGS, BrevoConnector, read_all, run


def lived_in(emu: BrevoEmulator) -> dict[str, int]:
    """What people made before segsync came: lists, contacts in them, statuses."""
    folder = emu.seed_folder("Marketing")
    lists = {
        "newsletter": emu.seed_list("Newsletter (double opt-in form)", folder),
        "customers": emu.seed_list("Customers 2019 import", folder),
        "segsync-like": emu.seed_list("tag: alpha", folder),  # a person's list, segsync's name
    }
    emu.seed_attribute("LOYALTY", "category", labels=("gold", "silver"))
    emu.seed_contact("optin@example.com", lists=(lists["newsletter"],))
    emu.seed_contact(
        "customer@example.com",
        lists=(lists["customers"], lists["segsync-like"]),
        attributes={"LOYALTY": 1},
    )
    emu.seed_contact(
        "left-newsletter@example.com",
        lists=(lists["customers"],),
        unsubscribed_lists=(lists["newsletter"],),
    )
    emu.seed_contact("blocked@example.com", lists=(lists["newsletter"],), blocklisted=True)
    emu.seed_contact("confirmed@example.com", attributes={"DOUBLE_OPT-IN": 1})
    return lists


def by_email(contacts: list[RemoteContact]) -> dict[str, RemoteContact]:
    return {c.email: c for c in contacts}


def owned_lists(emu: BrevoEmulator) -> set[int]:
    folder = next(i for i, name in emu.folders.items() if name == "segsync")
    return {i for i, d in emu.lists.items() if d["folderId"] == folder}


def test_membership_of_the_users_own_lists_is_not_consent() -> None:
    """Without declared consent lists, Brevo contributes opt-outs only: a contact in the
    user's own lists is unknown (non_subscribed, no evidence), not subscribed."""

    async def body(connector: BrevoConnector, emu: BrevoEmulator, clock: VirtualClock) -> None:
        lived_in(emu)
        back = by_email(await read_all(connector))

        for email in ("optin@example.com", "customer@example.com", "confirmed@example.com"):
            assert back[email].consent.status is ConsentStatus.NON_SUBSCRIBED, email
            assert back[email].consent.evidence is None, email
        blocked = back["blocked@example.com"].consent
        assert blocked.status is ConsentStatus.UNSUBSCRIBED
        assert blocked.evidence == "emailBlacklisted=true"
        # an undeclared list's per-list unsubscribe is no opt-out either: unknown
        assert back["left-newsletter@example.com"].consent.evidence is None
        # a person's list named like segsync's is not segsync's tag
        assert back["customer@example.com"].tags == frozenset()

    run(body)


def test_declared_consent_lists_and_double_opt_in_are_the_evidence() -> None:
    """A declared consent list: membership is an opt-in, `listUnsubscribed` an opt-out; a
    confirmed double opt-in attribute is an opt-in; the blocklist wins over both."""

    async def body(connector: BrevoConnector, emu: BrevoEmulator, clock: VirtualClock) -> None:
        assert lived_in(emu)["newsletter"] == 2  # the first list a person makes
        emu.seed_contact(
            "both@example.com", lists=(2,), attributes={"DOUBLE_OPT-IN": 1}, blocklisted=True
        )
        back = by_email(await read_all(connector))

        def seen(email: str) -> tuple[ConsentStatus, str | None]:
            return back[email].consent.status, back[email].consent.evidence

        assert seen("optin@example.com") == (ConsentStatus.SUBSCRIBED, "listIds=2")
        assert seen("left-newsletter@example.com") == (
            ConsentStatus.UNSUBSCRIBED,
            "listUnsubscribed=2",
        )
        assert seen("confirmed@example.com") == (ConsentStatus.SUBSCRIBED, "DOUBLE_OPT-IN=1")
        assert seen("blocked@example.com") == (ConsentStatus.UNSUBSCRIBED, "emailBlacklisted=true")
        assert seen("both@example.com") == (ConsentStatus.UNSUBSCRIBED, "emailBlacklisted=true")
        assert seen("customer@example.com") == (ConsentStatus.NON_SUBSCRIBED, None)

    run(body, {"consent": {"lists": [2], "double_opt_in_attribute": "DOUBLE_OPT-IN"}})


def test_a_per_list_unsubscribe_between_runs_is_an_opt_out() -> None:
    """A person unsubscribes from the declared consent list in Brevo: read as an opt-out."""

    async def body(connector: BrevoConnector, emu: BrevoEmulator, clock: VirtualClock) -> None:
        lists = lived_in(emu)
        first = by_email(await read_all(connector))
        clock.advance(60)
        emu.unsubscribe_from_list("optin@example.com", lists["newsletter"])
        again = by_email(await read_all(connector))

        assert first["optin@example.com"].consent.status is ConsentStatus.SUBSCRIBED
        consent = again["optin@example.com"].consent
        assert consent.status is ConsentStatus.UNSUBSCRIBED
        assert consent.evidence == f"listUnsubscribed={lists['newsletter']}"

    run(body, {"consent": {"lists": [2]}})


def test_a_consent_list_opt_out_is_reachable_until_segsync_blocklists_it() -> None:
    """`listUnsubscribed` on a consent list is an opt-out that leaves the contact in the
    user's other lists, un-blocklisted: read as `reachable`. The opt-out written back (the
    status Brevo already reads) blocklists her; then she is no longer reachable (issue 13,
    A). The blocklist read as such carries no `reachable` (its status says it all)."""

    async def body(connector: BrevoConnector, emu: BrevoEmulator, clock: VirtualClock) -> None:
        lived_in(emu)
        email = "left-newsletter@example.com"
        first = by_email(await read_all(connector))
        assert first[email].consent.status is ConsentStatus.UNSUBSCRIBED
        assert first[email].reachable is True
        assert first["blocked@example.com"].reachable is None
        # every un-blocklisted contact is reachable by campaigns (issue #13, finding 4)
        assert first["optin@example.com"].reachable is True

        results = await connector.write(
            [ContactChange(email=email, platform_id=first[email].platform_id,
                           consent=ConsentStatus.UNSUBSCRIBED)]
        )
        clock.advance(60)
        again = by_email(await read_all(connector))

        assert [r.ok for r in results] == [True]
        record = emu.contact(email)
        assert record is not None
        assert record.email_blacklisted
        # every opt-out signal is named: a later per-list act changes the evidence
        assert again[email].consent.evidence == "emailBlacklisted=true; listUnsubscribed=2"
        assert again[email].reachable is None

    run(body, {"consent": {"lists": [2]}})


def test_deleting_segsyncs_consent_attribute_never_yields_subscribed() -> None:
    """segsync wrote subscribed (an echo, no evidence); an admin deletes SEGSYNC_CONSENT:
    the contact is still in segsync's tag lists, and is read as unknown, not subscribed."""

    async def body(connector: BrevoConnector, emu: BrevoEmulator, clock: VirtualClock) -> None:
        lived_in(emu)
        await connector.prepare(SCHEMA.fields, TAGS)
        await connector.write(
            [
                ContactChange(
                    email="copied@example.com",
                    create=True,
                    consent=ConsentStatus.SUBSCRIBED,
                    tags_add=frozenset({"alpha"}),
                )
            ]
        )
        echo = by_email(await read_all(connector))["copied@example.com"].consent
        emu.delete_attribute("SEGSYNC_CONSENT")
        clock.advance(60)
        emu.add_to_list("copied@example.com", 1)  # and a person adds them to their own list
        connector._attributes = None  # a new run reads the attributes again
        after = by_email(await read_all(connector))["copied@example.com"]

        assert echo.status is ConsentStatus.SUBSCRIBED
        assert echo.evidence is None  # segsync's own write is never proof
        assert after.consent.status is ConsentStatus.NON_SUBSCRIBED
        assert after.consent.evidence is None
        assert after.tags == frozenset({"alpha"})  # kept, moved out of the list
        record = emu.contact("copied@example.com")
        assert record is not None
        assert not record.list_ids & owned_lists(emu)  # no longer reachable through segsync
        assert 1 in record.list_ids  # the person's own list is theirs

    run(body)


def test_unconsented_people_end_in_no_segsync_list_after_an_import() -> None:
    """An import with non_subscribed, pending and subscribed contacts: only the subscribed
    are in segsync's lists afterwards; the others keep their tags (in the tags attribute),
    no temporary list is left, and nobody's blocklist is cleared."""
    statuses = (ConsentStatus.SUBSCRIBED, ConsentStatus.NON_SUBSCRIBED, ConsentStatus.PENDING)

    async def body(connector: BrevoConnector, emu: BrevoEmulator, clock: VirtualClock) -> None:
        lists = lived_in(emu)
        await connector.prepare(SCHEMA.fields, TAGS)
        changes = [
            ContactChange(
                email=f"n{i}@example.com",
                create=True,
                fields={"first_name": f"N{i}"},
                consent=statuses[i % 3],
                tags_add=frozenset(TAGS[: 1 + i % 2]),
            )
            for i in range(30)
        ] + [  # people already in the user's own lists, now written by segsync
            ContactChange(email="customer@example.com", tags_add=frozenset({"beta"})),
        ]
        results = await connector.write(changes)
        lists_after_write = {c.email: set(c.list_ids) for c in emu.contacts.values() if c.email}
        back = by_email(await read_all(connector))

        assert all(r.ok for r in results)
        assert emu.log.count("POST", re.compile("/contacts/import$")) >= 1
        owned = owned_lists(emu)
        assert not any(emu.lists[i]["name"].startswith("import (temporary)") for i in emu.lists)
        for i, change in enumerate(changes[:30]):
            record = emu.contact(change.email)
            assert record is not None
            if statuses[i % 3] is ConsentStatus.SUBSCRIBED:
                assert record.list_ids & owned, change.email
            else:  # in no list at all, from the end of the write on
                assert not lists_after_write[change.email], change.email
            assert back[change.email].tags == change.tags_add
        customer = emu.contact("customer@example.com")
        assert customer is not None
        assert not lists_after_write["customer@example.com"] & owned
        assert lists["customers"] in customer.list_ids  # the user's lists are untouched
        assert back["customer@example.com"].tags == frozenset({"beta"})
        assert emu.unblocklist_writes == []

    run(body, {"import_threshold": 10})


def test_a_person_who_stops_being_subscribed_leaves_segsyncs_lists() -> None:
    """Subscribed contacts in tag and segment lists: one is written non_subscribed, one is
    blocklisted in Brevo. After a write and a read, neither is in a segsync list; tags stay."""

    async def body(connector: BrevoConnector, emu: BrevoEmulator, clock: VirtualClock) -> None:
        lived_in(emu)
        await connector.prepare(SCHEMA.fields, TAGS)
        emails = ["a@example.com", "b@example.com", "c@example.com"]
        await connector.write(
            [
                ContactChange(
                    email=e,
                    create=True,
                    consent=ConsentStatus.SUBSCRIBED,
                    tags_add=frozenset({"alpha", "beta"}),
                )
                for e in emails
            ]
        )
        ref = await connector.ensure_static("vip", None)
        added = await connector.change_static_members(ref, emails, [])
        assert all(r.ok for r in added)
        await read_all(connector)
        await connector.write(
            [ContactChange(email="a@example.com", consent=ConsentStatus.NON_SUBSCRIBED)]
        )
        written = emu.contact("a@example.com")
        assert written is not None
        assert not written.list_ids & owned_lists(emu)  # the write itself took them out
        emu.blocklist("b@example.com")
        clock.advance(60)
        back = by_email(await read_all(connector))

        owned = owned_lists(emu)
        for email in ("a@example.com", "b@example.com"):
            record = emu.contact(email)
            assert record is not None
            assert not record.list_ids & owned, email
            assert back[email].tags == frozenset({"alpha", "beta"}), email
        record = emu.contact("c@example.com")
        assert record is not None
        assert int(ref) in record.list_ids
        assert back["b@example.com"].consent.evidence == "emailBlacklisted=true"
        assert emu.unblocklist_writes == []
        again = await connector.change_static_members(ref, ["a@example.com"], [])
        assert [(r.ok, r.partial, r.code) for r in again] == [(True, True, "unconsented")]
        assert int(ref) not in (emu.contact("a@example.com") or written).list_ids

    run(body)


def test_lists_allowed_for_unconsented_contacts_take_them_and_warn(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """`allow_unconsented_in_lists` lets the named segsync list hold them, with a warning."""

    async def body(connector: BrevoConnector, emu: BrevoEmulator, clock: VirtualClock) -> None:
        with caplog.at_level(logging.WARNING, logger="segsync.brevo"):
            await connector.prepare(SCHEMA.fields, TAGS)
        await connector.write(
            [
                ContactChange(
                    email="t@example.com", create=True, tags_add=frozenset({"alpha", "beta"})
                )
            ]
        )
        record = emu.contact("t@example.com")
        assert record is not None
        names = {emu.lists[i]["name"] for i in record.list_ids}
        [back] = await read_all(connector)

        assert names == {"tag: alpha"}
        assert back.tags == frozenset({"alpha", "beta"})
        assert "allow_unconsented_in_lists" in caplog.text

    run(body, {"consent": {"allow_unconsented_in_lists": ["tag: alpha"]}})


def test_check_names_a_consent_list_the_account_lacks() -> None:
    """A declared consent list id that does not exist is a `check` error naming it."""

    async def body(connector: BrevoConnector, emu: BrevoEmulator, clock: VirtualClock) -> None:
        assert emu.seed_list("News") == 2
        with pytest.raises(ApiError) as caught:
            await connector.check()
        assert "brevo.consent.lists: list 999 does not exist" in caught.value.message
        assert "fix:" in caught.value.message
        assert caught.value.code == "consent_list_not_found"

    run(body, {"consent": {"lists": [2, 999]}})


def test_bad_consent_config_is_a_clear_error() -> None:
    """A list id that is not a positive integer is refused where it is written."""
    with pytest.raises(ValueError, match="positive integers"):
        BrevoConnector({"api_key": BrevoEmulator.default_api_key, "consent": {"lists": [0]}})


def test_a_per_list_unsubscribe_by_a_blocklisted_person_is_a_new_opt_out_act() -> None:
    """Every opt-out signal is named in the evidence, so a blocklisted person who later also
    unsubscribes from the consent list reads with new evidence: a new opt-out act, which the
    engine carries everywhere even over a newer opt-in made elsewhere in between (found by
    the foreign-actor campaign)."""

    async def body(connector: BrevoConnector, emu: BrevoEmulator, clock: VirtualClock) -> None:
        lists = lived_in(emu)
        before = by_email(await read_all(connector))["blocked@example.com"].consent
        emu.unsubscribe_from_list("blocked@example.com", lists["newsletter"])
        clock.advance(60)
        after = by_email(await read_all(connector))["blocked@example.com"].consent

        assert before.evidence == "emailBlacklisted=true"
        assert after.status is ConsentStatus.UNSUBSCRIBED
        assert after.evidence == f"emailBlacklisted=true; listUnsubscribed={lists['newsletter']}"

    run(body, {"consent": {"lists": [2]}})
