"""A segment switching how it is published (materialised <-> native) on lived-in accounts:
segsync's own object of the old kind is retired before the new one takes its name, and a
name a person's object holds still gets a distinct one."""

from __future__ import annotations

import logging

import pytest

pytest.importorskip("segsync_mailchimp")
pytest.importorskip("segsync_hubspot")
pytest.importorskip("segsync_brevo.emulator")

from realworld import PLATFORMS, RealWorld

from segsync.model import PublishMode
from segsync.rules import parse
from segsync.sync import SegmentTarget

LIST = "segsync: fr"


def _clean(world: RealWorld) -> None:
    problems = world.sync()
    assert not problems, "\n".join(problems)
    assert world.last_report is not None
    assert not world.last_report.errors, world.last_report.errors


def _publish(world: RealWorld, mode: PublishMode) -> None:
    """Segment `fr` published on HubSpot as `mode` (materialised elsewhere)."""
    publish = {**dict.fromkeys(PLATFORMS, PublishMode.MATERIALISE), "hubspot": mode}
    world.segments[:] = [SegmentTarget("fr", parse('country = "FR"'), publish=publish)]
    world.acted()


def _live(world: RealWorld) -> list[tuple[str, str, int]]:
    """HubSpot's live lists named like segment `fr`: (name, processing type, members)."""
    return sorted((r.name, r.processing_type, len(r.members))
                  for r in world.hs.lists.values()
                  if not r.deleted and r.name.startswith(LIST))


def _ownership_notes(world: RealWorld) -> list[str]:
    assert world.last_report is not None
    return [d["message"] for d in world.last_report.diagnostics
            if d.get("step") == "ownership" and d.get("platform") == "hubspot"]


def _with_french(world: RealWorld, n: int = 6) -> None:
    for i, email in enumerate(sorted(world.all_emails())[:n]):
        assert world.edit(PLATFORMS[i % 3], email, "country", "FR")


def test_hubspot_takes_back_its_list_name_when_a_segment_switches_kind(
    world: RealWorld, caplog: pytest.LogCaptureFixture
) -> None:
    """HubSpot list names are unique: the MANUAL list `segsync: fr` of a materialised
    segment made native gave its name to nobody (the DYNAMIC list became `segsync: fr [2]`
    with a warning that segsync's own list was someone else's). Both ways now keep the name."""
    _publish(world, PublishMode.MATERIALISE)
    _clean(world)
    _with_french(world)
    _clean(world)
    assert _live(world) == [(LIST, "MANUAL", 6)]

    for mode, kind in ((PublishMode.NATIVE, "DYNAMIC"), (PublishMode.MATERIALISE, "MANUAL")):
        _publish(world, mode)
        with caplog.at_level(logging.WARNING):
            _clean(world)
        assert _live(world) == [(LIST, kind, 6)], mode
        assert _ownership_notes(world) == []
        assert "not created by segsync" not in caplog.text
        world.acted()
        _clean(world)  # settled: nothing more to publish
        assert world.last_report is not None
        assert world.last_report.platforms["hubspot"].publications == 0


def test_a_persons_list_under_the_name_still_gets_a_distinct_one_across_a_switch(
    world: RealWorld,
) -> None:
    """A person's list `segsync: fr` is never adopted: the segment's list is `[2]` as
    materialised and as native, the report names the person's list, which keeps its
    member."""
    email = sorted(world.all_emails())[0]
    assert world.make_named_object("hubspot", LIST, email)
    _publish(world, PublishMode.MATERIALISE)
    _clean(world)
    _with_french(world)
    _clean(world)
    assert _live(world) == [(LIST, "MANUAL", 1), (f"{LIST} [2]", "MANUAL", 6)]

    _publish(world, PublishMode.NATIVE)
    _clean(world)
    assert _live(world) == [(LIST, "MANUAL", 1), (f"{LIST} [2]", "DYNAMIC", 6)]
    notes = _ownership_notes(world)
    assert len(notes) == 1, notes
    assert "was not created by segsync" in notes[0]


def test_a_switch_whose_old_list_cannot_be_deleted_waits_for_the_next_run(
    world: RealWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The old MANUAL list's deletion fails: the DYNAMIC list is not created under a
    distinct name beside it; the next run retires the old list and takes the name."""
    _publish(world, PublishMode.MATERIALISE)
    _clean(world)
    _with_french(world)
    _clean(world)
    connector = world.connectors["hubspot"]
    delete = connector.delete_owned

    async def refused(kind: str, ref: str) -> None:
        raise RuntimeError("list deletion refused")

    monkeypatch.setattr(connector, "delete_owned", refused)
    _publish(world, PublishMode.NATIVE)
    world.sync()
    assert world.last_report is not None
    assert [e.message for e in world.last_report.errors] == [
        "delete 'fr': list deletion refused"]
    assert _live(world) == [(LIST, "MANUAL", 6)]

    monkeypatch.setattr(connector, "delete_owned", delete)
    world.acted()
    _clean(world)
    assert _live(world) == [(LIST, "DYNAMIC", 6)]
    assert _ownership_notes(world) == []
