"""Re-check before apply where the change listing lags: HubSpot's records read by id.

HubSpot's search index lags its writes (the emulator's strict default), so an edit a person
makes in HubSpot seconds before the re-check is not in the re-check's search. The re-check
also reads the records the plan writes there by id (`Connector.read_by_id`): such an edit
defers its contact; a record archived during the run defers nothing, and the write records
it deleted, never re-creating it. Every test runs the engine over the three lived-in
emulated accounts of `lived_in.World`, people editing their own records around segsync's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

pytest.importorskip("segsync_mailchimp")
pytest.importorskip("segsync_hubspot")
pytest.importorskip("segsync_brevo.emulator")

from lived_in import PLATFORMS, World

import segsync.sync.engine
from segsync.sync.recheck import Recheck, RecheckResult
from segsync.sync.report import RunReport

ADA = "ada.subscribed@lived.dev"  # on the three platforms
BEN = "ben.pending@lived.dev"  # on the three platforms
JON = "jon.unspecified@lived.dev"  # HubSpot's own contact


@pytest.fixture
def world() -> Iterator[World]:
    w = World()
    sync(w)
    sync(w)  # synced everywhere, converged
    yield w
    w.close()


def sync(w: World) -> RunReport:
    report: RunReport = w.loop.run_until_complete(w.engine.sync())
    w.clock.advance(600)
    return report


def hs_id(w: World, email: str) -> str:
    return str(next(i for i, r in w.hs.contacts.items() if r.properties.get("email") == email))


def mc_edit(w: World, email: str, **merge: Any) -> None:
    """A Mailchimp user edits the member's merge fields."""
    member = w.mc.get_member(email)
    assert member is not None
    member.merge_fields.update(merge)
    member.last_changed = w.clock.now()


def names(w: World, email: str, mc: str, hs: str, bv: str) -> dict[str, Any]:
    """One field of `email` on each platform (merge field, property, attribute)."""
    member = w.mc.get_member(email)
    contact = w.hs.contact_by_email(email)
    brevo = w.bv.contact(email)
    return {
        "mailchimp": member.merge_fields.get(mc) if member else None,
        "hubspot": contact.get(hs) if contact else None,
        "brevo": brevo.attributes.get(bv) if brevo else None,
    }


def first(w: World, email: str) -> dict[str, Any]:
    return names(w, email, "FNAME", "firstname", "FIRSTNAME")


def country(w: World, email: str) -> tuple[Any, Any]:
    """The country on HubSpot and Brevo (Mailchimp's is read, never written; Brevo holds
    an option's id)."""
    found = names(w, email, "-", "country", "COUNTRY")
    return found["hubspot"], found["brevo"]


def notes(report: RunReport) -> list[str]:
    return [f"{d['platform']}: {d['message']}" for d in report.diagnostics
            if d.get("step") == "recheck"]


Act = Callable[[World, Callable[[], None]], None]


@pytest.fixture
def before_recheck(monkeypatch: pytest.MonkeyPatch) -> Act:
    """`arm(w, act)`: the next run's re-check first runs `act` (a person acting in a
    platform half a second before the re-check reads it), once."""

    def arm(w: World, act: Callable[[], None]) -> None:
        pending = [act]

        class Acting(Recheck):
            async def run(self) -> RecheckResult:
                while pending:
                    w.clock.advance(0.5)
                    pending.pop()()
                return await super().run()

        monkeypatch.setattr(segsync.sync.engine, "Recheck", Acting)

    return arm


def test_a_hubspot_edit_within_the_lag_before_the_recheck_is_kept(
    world: World, before_recheck: Act
) -> None:
    """Mailchimp's user renames Ada 'Adeline' and Ben 'Benedict'; HubSpot's user gave Ben a
    country a minute before the run (search lists it: the pull reads it). Half a
    second before the re-check, well within the index lag, HubSpot's user types 'Adda' on
    Ada's record and edits Jon's own record. The run writes Ben (his HubSpot record, read
    again by id, is the one it merged) but nothing of Ada: 'Adda' is not overwritten and
    'Adeline' reaches no platform; Jon's record is left as he made it. The next runs spread
    'Adda' (the latest edit)."""
    w = world
    ada, jon = hs_id(w, ADA), hs_id(w, JON)
    mc_edit(w, ADA, FNAME="Adeline")
    mc_edit(w, BEN, FNAME="Benedict")
    w.hs.modify_contact(hs_id(w, BEN), {"country": "BE"})
    w.clock.advance(60)

    def people_edit() -> None:
        w.hs.modify_contact(ada, {"firstname": "Adda"})
        w.hs.modify_contact(jon, {"lastname": "Jonsson"})

    before_recheck(w, people_edit)
    report = sync(w)
    assert notes(report) == [
        "hubspot: 1 contact(s) changed on hubspot during this run; deferred to the next run"]
    assert first(w, ADA)["hubspot"] == "Adda", "the edit made within the lag is kept"
    assert first(w, ADA)["brevo"] == "Ada", "no write of the stale merge"
    assert first(w, BEN) == dict.fromkeys(PLATFORMS, "Benedict"), "the rest is written"
    hs_country, bv_country = country(w, BEN)
    assert hs_country == "BE"
    assert bv_country is not None, "Ben's HubSpot edit spread"
    assert w.hs.contact_by_email(JON)["lastname"] == "Jonsson"
    assert report.platforms["hubspot"].recheck_calls == 1 + 2  # a search; Ben's and Ada's
    # records in one batch read by id and their statuses in one read
    sync(w)
    sync(w)
    assert first(w, ADA) == dict.fromkeys(PLATFORMS, "Adda")
    assert w.hs.contact_by_email(JON)["lastname"] == "Jonsson"
    quiet = sync(w)
    assert notes(quiet) == []


def test_a_planned_record_archived_during_the_run_is_recorded_not_recreated(
    world: World, before_recheck: Act
) -> None:
    """Mailchimp's user renames Ada 'Adeline'; half a second before the re-check, HubSpot's
    user archives Ada's record (search never shows an archived record). Its read by id
    answers it gone: that changes nothing of the merge, so nothing is deferred; the write
    finds it gone and records it deleted (reported once), never re-creating it, and
    'Adeline' reaches Brevo in this run. Later runs are quiet: the deletion is not met
    again, and nothing is planned on HubSpot for her."""
    w = world
    ada = hs_id(w, ADA)
    contacts = len(w.hs.contacts)
    mc_edit(w, ADA, FNAME="Adeline")
    w.clock.advance(60)
    before_recheck(w, lambda: w.hs.archive_contact(ada))
    report = sync(w)
    assert notes(report) == []
    assert report.platforms["hubspot"].recheck_calls == 1 + 1  # a search; the batch read
    # by id answers her record gone (no status to read)
    assert first(w, ADA) == {"mailchimp": "Adeline", "hubspot": None, "brevo": "Adeline"}
    assert report.platforms["hubspot"].deleted == 1
    gone = [d for d in w.store.deletions(w.config) if d.platform == "hubspot"]
    assert [(d.platform_id, d.found_by) for d in gone] == [(ada, "write")]
    assert w.hs.contact_by_email(ADA) is None, "not re-created"
    assert len(w.hs.contacts) == contacts
    assert w.hs.contacts[ada].archived
    for _ in range(2):
        later = sync(w)
        assert notes(later) == []
        assert later.platforms["hubspot"].recheck_calls == 0
        assert later.platforms["hubspot"].deleted == 0
    assert w.hs.contact_by_email(ADA) is None
    assert first(w, ADA) == {"mailchimp": "Adeline", "hubspot": None, "brevo": "Adeline"}


def test_engagement_that_changes_within_the_lag_defers_nobody(
    world: World, before_recheck: Act
) -> None:
    """Mailchimp's user renames Ada 'Adeline'; half a second before the re-check HubSpot
    emails her and she opens it: HubSpot's calculated engagement properties change (the
    engagement refresh reads them), nobody edited her record. Nothing is deferred, and
    'Adeline' is written everywhere in this run, then stays."""
    w = world
    mc_edit(w, ADA, FNAME="Adeline")
    w.clock.advance(60)

    def emailed() -> None:
        w.hs.record_email(ADA, "send")
        w.hs.record_email(ADA, "open")

    before_recheck(w, emailed)
    report = sync(w)
    assert notes(report) == []
    assert first(w, ADA) == dict.fromkeys(PLATFORMS, "Adeline")
    again = sync(w)
    assert notes(again) == []
    assert first(w, ADA) == dict.fromkeys(PLATFORMS, "Adeline")
