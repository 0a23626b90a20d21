"""`--full-refresh`: every platform read from the start, the snapshots rebuilt, and what
differed from the state reported per platform (counts and a few examples), on lived-in
accounts changed behind segsync's back (no incremental read can see those changes)."""

from __future__ import annotations

import pytest
from first_runs_world import World

from segsync.sync.pull import RunScope

HIDDEN = "person03@crowd.dev"  # on Mailchimp only before the first run


def _refresh_notes(plan: object) -> dict[str, dict[str, str]]:
    return {d["platform"]: d for d in plan.diagnostics  # type: ignore[attr-defined]
            if d.get("step") == "refresh"}


@pytest.mark.slow
def test_full_refresh_reads_everything_and_reports_what_differed(store_url: str) -> None:
    world = World(store_url)
    world.sync()
    world.sync()
    member = world.mc.get_member(HIDDEN)
    assert member is not None
    member.merge_fields["FNAME"] = "Hidden"  # hook: changed without moving last_changed
    gone = [cid for cid, c in world.hs.contacts.items()
            if c.properties.get("email") == "person04@crowd.dev"]
    assert len(gone) == 1
    del world.hs.contacts[gone[0]]  # hook: gone without any read telling it
    world.clock.advance(60)

    quiet = world.plan()
    assert quiet.write_count == 0
    assert not _refresh_notes(quiet)

    plan = world.plan(RunScope(full_refresh=True))
    notes = _refresh_notes(plan)
    assert set(notes) == {"mailchimp", "hubspot", "brevo"}
    assert notes["mailchimp"]["changed"] == "1"
    assert f"1 differed from the state ({HIDDEN})" in notes["mailchimp"]["message"]
    assert notes["hubspot"]["unread"] == "1"
    assert "person04@crowd.dev" in notes["hubspot"]["message"]
    assert notes["brevo"]["message"].startswith("full refresh: ")
    assert notes["brevo"]["level"] == "info"
    assert "all as the state held them" in notes["brevo"]["message"]
    held = world.contents()
    read = plan.platforms["mailchimp"].counts["read"]
    assert read >= len(held["mailchimp"]) > quiet.platforms["mailchimp"].counts["read"]
    assert any(row["email"] == HIDDEN and (row.get("fields") or {}).get("first_name") == "Hidden"
               for row in plan.platforms["brevo"].changes)
    assert "scope: full_refresh True" in plan.render()

    report, _ = world.sync(RunScope(full_refresh=True))
    assert report.status == "ok", [e.message for e in report.errors]
    after = world.contents()
    assert ("first_name", "Hidden") in after["brevo"][HIDDEN][0]
    again = world.plan()
    assert again.write_count == 0, again.render()
    assert not _refresh_notes(again)
    refreshed = world.plan(RunScope(full_refresh=True))  # the snapshots were rebuilt
    assert refreshed.write_count == 0
    assert _refresh_notes(refreshed)["mailchimp"]["changed"] == "0"
