"""An erased person a platform user re-imports stands until the record is gone.

On lived-in accounts (`world`), ZOE is synced everywhere and erased. A Brevo user then
re-imports her into the user's own list. The run reading it reports her (`erased_person`);
the runs after it do not read the record again, yet it stands: each of them, and `plan`,
reports it with its fix and exits 1, while nothing is linked, merged or written for her and
the state never holds her address. Without `sync.erasure: enforce` segsync never erases her
itself. Once the record is gone (the user removes it, or `segsync erase` runs again), the
next run no longer reports her.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from world import ZOE, ZOE_KEY, World, state_rows_naming

from segsync.cli.sync import exit_code
from segsync.state.base import erasure_hash
from segsync.sync.plan import RecordError
from segsync.sync.report import RunReport


@pytest.fixture
def world() -> Iterator[World]:
    w = World()
    yield w
    w.close()


def _flagged(errors: list[RecordError]) -> list[RecordError]:
    return [e for e in errors if e.code == "erased_person"]


def _reimported(world: World) -> tuple[str, str, RunReport]:
    """ZOE synced, erased, then re-imported on Brevo; the run reading her. Returns her
    tombstone label, the re-imported record's id and that run's report."""
    world.sync()
    world.sync()
    assert world.erase(ZOE).confirmed
    world.sync()
    world.bv.seed_contact(ZOE_KEY, lists=(world.bv_customers,), attributes={"FIRSTNAME": "Z"})
    contact = world.bv.contact(ZOE_KEY)
    assert contact is not None
    label = "erased:" + erasure_hash(world.store.erasure_key(), ZOE_KEY)
    return label, str(contact.id), world.sync()


def _brevo_delete(world: World, email: str) -> None:
    """A Brevo user deletes a contact (`DELETE /contacts/{email}`)."""

    async def go() -> None:
        async with httpx.AsyncClient(transport=world.bv.transport(),
                                     base_url="http://127.0.0.1:9" + world.bv.base_path,
                                     headers={"api-key": world.bv.api_key}) as client:
            response = await client.delete(f"/contacts/{email}",
                                           params={"identifierType": "email_id"})
            response.raise_for_status()

    world.loop.run_until_complete(go())


def test_a_reimported_erased_person_is_reported_by_every_run_and_plan(world: World) -> None:
    label, pid, first = _reimported(world)
    assert [(e.platform, e.platform_id) for e in _flagged(first.errors)] == [("brevo", pid)]
    assert "erase again or remove the re-imported record" in _flagged(first.errors)[0].message
    before = world.bv.contact(ZOE_KEY)
    assert before is not None
    held = (dict(before.attributes), set(before.list_ids), before.email_blacklisted)

    for _ in range(2):  # the next runs read nothing of her, yet she stands
        report = world.sync()
        flagged = _flagged(report.errors)
        assert [(e.platform, e.platform_id) for e in flagged] == [("brevo", pid)], report.errors
        assert label in flagged[0].message
        assert "standing since" in flagged[0].message
        assert f"erase again or remove the re-imported record {pid}" in flagged[0].message
        assert ZOE_KEY not in flagged[0].message
        assert flagged[0].email is None
        assert exit_code(report) == 1
        assert report.platforms["brevo"].erased == 0  # never erased without enforce

    plan = world.loop.run_until_complete(world.engine.plan())
    assert [(e.platform, e.platform_id) for e in _flagged(plan.errors)] == [("brevo", pid)]
    text = plan.render()
    assert "No changes" not in text
    assert "match the canonical view" not in text
    assert label in text
    # nothing was written to her record, nor re-created elsewhere; the state never names her
    after = world.bv.contact(ZOE_KEY)
    assert after is not None
    assert (dict(after.attributes), set(after.list_ids), after.email_blacklisted) == held
    assert world.holds(ZOE_KEY) == {"mailchimp": False, "hubspot": False, "brevo": True}
    assert state_rows_naming(world.store, ZOE_KEY) == []
    standing = world.engine.state.standing()
    assert [(s.platform, s.platform_id, s.kind, s.ref, s.cid) for s in standing] == [
        ("brevo", pid, "erased_person", label.removeprefix("erased:"), None)]


def test_a_removed_reimport_is_no_longer_reported(world: World) -> None:
    _, pid, _ = _reimported(world)
    assert [e.platform_id for e in _flagged(world.sync().errors)] == [pid]  # she stands
    _brevo_delete(world, ZOE_KEY)  # the Brevo user removes the re-imported record

    report = world.sync()

    assert _flagged(report.errors) == []
    assert world.engine.state.standing() == []
    assert exit_code(report) == 0, report.errors
    assert _flagged(world.sync().errors) == []


def test_erasing_again_ends_the_report(world: World) -> None:
    _, pid, _ = _reimported(world)
    assert [e.platform_id for e in _flagged(world.sync().errors)] == [pid]  # she stands
    assert world.erase(ZOE).confirmed  # the fix the report names

    report = world.sync()

    assert world.holds(ZOE_KEY)["brevo"] is False
    assert _flagged(report.errors) == []
    assert world.engine.state.standing() == []
    assert state_rows_naming(world.store, ZOE_KEY) == []


def test_status_lists_the_standing_problem_never_the_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import json

    from typer.testing import CliRunner

    import segsync.cli.core as cli_core
    from segsync.cli import EXIT_OK, app
    from segsync.state import open_store

    db = tmp_path / "state.db"
    world = World(open_store(f"sqlite:///{db}"))
    try:
        label, pid, _ = _reimported(world)
        world.sync()
        config = tmp_path / "segsync.yaml"
        config.write_text(f"state: sqlite:///{db}\nschema:\n  first_name: text\nplatforms:\n"
                          "  brevo:\n    api_key: xkeysib-unused\n")
        monkeypatch.setattr(cli_core, "config_name", lambda _c: "erasure")
        runner = CliRunner()
        status = runner.invoke(app, ["status", "-c", str(config)])
        assert status.exit_code == EXIT_OK, status.output
        assert "1 standing problem(s)" in status.output
        assert f"[brevo] brevo holds {label}" in status.output
        as_json = runner.invoke(app, ["status", "-c", str(config), "--json"])
        [problem] = json.loads(as_json.output)["standing"]
        assert (problem["platform"], problem["platform_id"], problem["code"]) == (
            "brevo", pid, "erased_person")
        for out in (status.output, as_json.output):
            assert ZOE_KEY not in out.lower()
    finally:
        world.close()
