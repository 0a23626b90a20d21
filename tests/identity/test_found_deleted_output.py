"""A write finding its record deleted is no failure, and the sync's text says so.

On lived-in accounts (`swap_world`): a Brevo user deletes BERT's contact; then BERT's first
name changes on Mailchimp. The run's write to Brevo is answered "not found": the record is
recorded deleted (a warning diagnostic), the progress counts it as no failed write, and the
text report of `segsync sync` shows the warning, not only `segsync runs show`.
"""

from __future__ import annotations

from segsync_mailchimp.api import subscriber_hash
from swap_world import BERT, PLATFORMS, SUBS, SwapWorld

from segsync.cli.sync import render_report
from segsync.sync import Engine, SyncPolicy
from segsync.sync.progress import ProgressEvent, WriteBatch
from segsync.testing.data import DEFAULT_SCHEMA


def test_a_record_found_deleted_by_a_write_is_shown_and_not_failed() -> None:
    world = SwapWorld()
    try:
        world.sync()
        world.sync()
        world._call(world.bv, {"api-key": world.bv.api_key}, "DELETE", f"/contacts/{BERT}")
        world._call(world.mc, {"Authorization": f"Bearer {world.mc.api_key}"}, "PATCH",
                    f"/lists/{world.mc.default_list_id}/members/{subscriber_hash(BERT)}",
                    json={"merge_fields": {"FNAME": "Bertram"}})
        events: list[ProgressEvent] = []
        world.clock.advance(600)
        engine = Engine(world.connectors, world.store, config="identity",
                        policy=SyncPolicy(platforms=PLATFORMS), schema=DEFAULT_SCHEMA,
                        segments=(SUBS,), clock=world.clock, progress=events.append)
        report = world.loop.run_until_complete(engine.sync())
    finally:
        world.close()

    assert report.platforms["brevo"].deleted == 1
    assert report.platforms["brevo"].errors == 0
    failed = sum(e.failed for e in events if isinstance(e, WriteBatch) and e.platform == "brevo")
    assert failed == 0
    text = render_report(report)
    assert f"[brevo] {BERT}: deleted or archived on brevo" in text
