"""Violations the real-accounts state machine (`test_realworld_machine`) found, each shrunk to
a plain story on the lived-in emulators (`realworld.RealWorld`). Those whose cause lies in
code other engineers are changing are `xfail(strict=True)` with the cause named."""

from __future__ import annotations

import pytest

pytest.importorskip("segsync_mailchimp")
pytest.importorskip("segsync_hubspot")
pytest.importorskip("segsync_brevo.emulator")

from lived_in import World
from realworld import RealWorld

ADA = "ada.subscribed@lived.dev"
CY = "cy.transactional@lived.dev"


def _clean(world: RealWorld) -> None:
    problems = world.sync()
    assert not problems, "\n".join(problems)


def test_a_users_mailchimp_tag_made_between_runs_under_a_segments_name_is_not_adopted(
    world: RealWorld,
) -> None:
    """Mailchimp: a user tags someone `segsync:later` after a run, then the configuration
    gains segment `later`. The connector (long-lived, as in a daemon) named its tag from the
    audience catalog it loaded in the first run, found `segsync:later` free, and adopted the
    user's tag (recorded it as owned; its members were then segsync's to rewrite)."""
    _clean(world)
    assert world.make_named_object("mailchimp", "segsync:later", CY)
    world.add_segment_later()

    problems = world.sync()

    assert not [p for p in problems if p.startswith("[O]")], problems
    state = world.store.scoped(world.config)
    [mine] = [o for o in state.owned("mailchimp") if o.name == "later"]
    lst = world.mc.lists[world.mc.default_list_id]
    assert lst.segments[int(mine.ref)].name == "segsync:later [2]"


def test_a_country_typed_in_lower_case_reaches_every_platform(world: RealWorld) -> None:
    """A Mailchimp user types `fr` in the COUNTRY merge field (text there). The canonical
    view kept `fr`, not the enum option `FR`: HubSpot refused it every run
    (`INVALID_VALUE`, an owed write that never settles) and Brevo's category attribute
    could not hold it. Fixed in `segsync.model.coerce_value` (an enum value in another case
    or padded is that option)."""
    _clean(world)
    assert world.edit("mailchimp", ADA, "country", " fr")

    _clean(world)

    assert world.hs.contact_by_email(ADA)["country"] == "FR"
    assert world.value("brevo", ADA, "country") == (True, "FR")
    _clean(world)
    assert world.last_report is not None
    assert world.last_report.writes == 0


HAL = "hal.subscribed@lived.dev"


def test_an_edit_made_while_a_platform_was_refused_survives_its_rebind(
    world: RealWorld,
) -> None:
    """HubSpot is pointed at a sandbox copy of the portal (same records, another portal
    id): refused. Meanwhile a user edits Ada's first name on Mailchimp; it reaches Brevo.
    `segsync rebind hubspot`; the next run links HubSpot's records by email, and the
    sandbox's old `Ada` replaced the newer `Ada 6` on Mailchimp and Brevo."""
    _clean(world)
    assert world.swap_account("hubspot")
    assert world.edit("mailchimp", ADA, "first_name", "Ada 6")
    _clean(world)  # hubspot refused (account_mismatch); Brevo has Ada 6
    assert world.value("brevo", ADA, "first_name") == (True, "Ada 6")
    assert world.rebind_sandbox()

    world.sync()

    assert world.value("mailchimp", ADA, "first_name") == (True, "Ada 6")
    assert world.value("hubspot", ADA, "first_name") == (True, "Ada 6")


def test_a_brevo_contact_deleted_and_imported_again_is_synced_at_once(
    world: RealWorld,
) -> None:
    """A Brevo user deletes Hal; a run passes (nothing to write to Hal, so the deletion is
    not found); the user imports Hal again with a new first name. The run reports
    `record 15 has the same normalised email as record 8` (record 8 is gone) and does not
    sync the new record: the edit waits a run, with an error the user cannot fix."""
    _clean(world)
    assert world.delete("brevo", HAL)
    _clean(world)
    assert world.reimport("brevo", HAL)
    assert world.edit("brevo", HAL, "first_name", "Hal 2")

    problems = world.sync()

    assert world.last_report is not None
    assert [e.code for e in world.last_report.errors] == []
    assert not problems, problems
    assert world.value("mailchimp", HAL, "first_name") == (True, "Hal 2")


def test_a_quiet_day_writes_nothing(world: RealWorld) -> None:
    """Nobody acts; a day later Mailchimp's full read re-reads Ben (pending). The plan says
    `hubspot: 1 to update ... ~ ben.pending@lived.dev: consent=pending` and the run reports
    one HubSpot update, though no request is sent; the run after it writes nothing."""
    _clean(world)
    _clean(world)
    world.clock.advance(25 * 3600)

    plan = world.loop.run_until_complete(world.make_engine().plan())

    assert plan.is_empty, plan.render()
    assert "No changes" in plan.render()


def test_a_hubspot_contact_archived_and_made_again_is_synced(
    world: RealWorld,
) -> None:
    """A HubSpot user archives Cy; Cy signs up again through a HubSpot form (a new contact,
    no first name). The run reports `record 118 has the same normalised email as record
    107`; the runs after it report nothing and leave the new record without Cy's name
    for good (MC and Brevo say `Cy`)."""
    _clean(world)
    assert world.delete("hubspot", CY)
    _clean(world)
    World.hubspot_subscribe(world, CY)  # the form, past the machine's steering around it

    world.sync()
    world.sync()
    world.sync()

    assert world.value("hubspot", CY, "first_name") == (True, "Cy")


IVY = "ivy.unsubscribed@lived.dev"


def test_a_rebind_does_not_replay_an_old_opt_out(world: RealWorld) -> None:
    """Ivy opted out on HubSpot long ago; she signs up again on Mailchimp's form (pending,
    to confirm). HubSpot is pointed at a sandbox copy and rebound: the next run sets her
    Mailchimp `pending` to `unsubscribed` though nobody acted."""
    _clean(world)
    world.mailchimp_sign_up(IVY)
    _clean(world)
    assert world.mc_status(IVY) == "pending"
    assert world.swap_account("hubspot")
    assert world.rebind_sandbox()

    problems = world.sync()

    assert world.mc_status(IVY) == "pending", problems


def test_a_split_segment_made_native_then_split_again_fills_its_tag_again(
    world: RealWorld,
) -> None:
    """Mailchimp: segment `fr` is split (a saved segment on an owned tag holding Ada), made
    native (the tag deleted), then split again: the tag, made again under the same name,
    started empty while the state and the connector still took Ada for its member, and the
    runs after wrote nothing — the segment held nobody on Mailchimp for good."""
    from segsync.model import PublishMode
    from segsync.rules import parse
    from segsync.sync import SegmentTarget

    def configure(rule: str) -> None:
        world.segments[:] = [SegmentTarget(
            "fr", parse(rule), publish=dict.fromkeys(("mailchimp", "hubspot", "brevo"),
                                                     PublishMode.AUTO))]
        world.acted()

    deep = ('country = "FR" and (tags has "vip" or (first_name starts_with "A"'
            ' and not (country = "BE" or first_name = "Q")))')
    configure('country = "FR"')
    _clean(world)
    assert world.edit("mailchimp", ADA, "country", "FR")
    _clean(world)

    def tag_members() -> list[int]:
        audience = world.mc.lists[world.mc.default_list_id]
        return [len(s.members) for s in audience.segments.values()
                if s.name.startswith("segsync:fr:")]

    for rule in (deep, 'country = "FR"', deep):
        configure(rule)
        _clean(world)
    assert tag_members() == [1]
    world.acted()
    _clean(world)
    assert world.last_report is not None
    assert all(r.members_added == r.members_removed == 0
               for r in world.last_report.platforms.values())
