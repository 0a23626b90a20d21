"""A deletion found by a membership write in a run selecting some platforms (`--select`) is
recorded and reported as in a full sync, never a record error; on lived-in emulated
accounts where a Brevo user deletes a contact while segsync runs."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pytest
from deletes_world import ANA, CEM, World

from segsync.model import PublishMode
from segsync.rules import parse
from segsync.sync import Engine, SegmentTarget
from segsync.sync.pull import RunScope
from segsync.sync.report import RunReport
from segsync.testing.data import DEFAULT_SCHEMA

SEGMENT = SegmentTarget(
    "annas", parse('first_name = "Anna"'),
    publish={"mailchimp": PublishMode.OFF, "hubspot": PublishMode.OFF,
             "brevo": PublishMode.MATERIALISE},
)


def _run(world: World, *platforms: str) -> RunReport:
    engine = Engine(world.connectors, world.store, config="deletes", policy=world.engine.policy,
                    schema=DEFAULT_SCHEMA, clock=world.clock, segments=[SEGMENT],
                    scope=RunScope(platforms=frozenset(platforms)) if platforms else None)
    world.clock.advance(600)
    return world.loop.run_until_complete(engine.sync())


@pytest.mark.slow
def test_a_brevo_deletion_found_by_a_membership_write_in_a_scoped_run() -> None:
    world = World()
    try:
        first = _run(world)
        assert first.errors == []
        world.user_deletes_in_brevo(ANA)
        world.user_renames_in_hubspot(ANA, "Anna")
        world.user_renames_in_hubspot(CEM, "Anna")  # a member who is still there

        scoped = _run(world, "hubspot", "brevo")
        again = _run(world, "hubspot", "brevo")

        assert scoped.errors == [], [e.message for e in scoped.errors]
        assert scoped.status == "ok"
        notes = [d for d in scoped.diagnostics if d.get("step") == "delete"]
        assert [n["platform"] for n in notes] == ["brevo"]
        assert ANA in notes[0]["message"]
        assert scoped.platforms["brevo"].deleted == 1
        assert again.errors == []
        assert world.holds(ANA)["brevo"] is False
    finally:
        world.close()
