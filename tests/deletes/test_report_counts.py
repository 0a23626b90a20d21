"""The run report counts archives and deletions per platform (text, JSON and history), on
lived-in emulated accounts where people delete and archive while segsync runs."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pytest
from deletes_world import ANA, BEN, World

from segsync.cli.runs import _render
from segsync.cli.sync import render_report


@pytest.mark.slow
def test_archives_and_deletions_are_counted_per_platform() -> None:
    """`on_delete: {mailchimp: archive_elsewhere}`: a member archived in Mailchimp counts as
    deleted there and archived on HubSpot and Brevo; a Brevo deletion found by a write counts
    as deleted on Brevo; the text report shows both counts, the run after counts none."""
    world = World(on_delete={"mailchimp": "archive_elsewhere"})
    try:
        world.sync()
        world.user_archives_in_mailchimp(BEN)
        found = world.sync()
        counts = {n: (p.archived, p.deleted) for n, p in found.platforms.items()}
        assert counts == {"mailchimp": (0, 1), "hubspot": (1, 0), "brevo": (1, 0)}
        assert "archived 1, deleted 0" in render_report(found)
        assert found.model_dump(mode="json")["platforms"]["hubspot"]["archived"] == 1
        [stored] = [r for r in world.engine.state.runs(5) if r["run_id"] == found.run_id]
        shown = _render(stored, [], [])  # `segsync runs show`
        assert "hubspot: " in shown
        assert "archived 1, deleted 0, erased 0" in shown

        world.user_deletes_in_brevo(ANA)
        world.user_renames_in_hubspot(ANA, "Anna")
        by_write = world.sync()
        assert by_write.platforms["brevo"].deleted == 1
        assert by_write.errors == []

        after = world.sync()
        assert all((p.archived, p.deleted) == (0, 0) for p in after.platforms.values())
    finally:
        world.close()
