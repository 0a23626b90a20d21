"""`--select`: platforms and segments, on lived-in accounts; and the bad input of
`--select` and `--limit` on the command line.

A run selecting platforms reads and writes only them; the others' records are neither read
nor taken for deleted, and the next full run carries what the selected run read to them. A
run selecting segments publishes, fills or deletes no other segment.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from first_runs_world import World
from typer.testing import CliRunner

from segsync.cli import EXIT_INVALID, app
from segsync.rules import parse
from segsync.sync import SegmentTarget
from segsync.sync.plan import PublicationKind
from segsync.sync.pull import RunScope

runner = CliRunner()


@pytest.mark.slow
def test_selecting_a_platform_leaves_the_others_untouched_until_the_full_run() -> None:
    selected, plain = World(), World()
    before = selected.contents()
    report, _ = selected.sync(RunScope(platforms=frozenset({"mailchimp"})))
    assert report.status == "ok", [e.message for e in report.errors]
    assert set(report.platforms) == {"mailchimp"}
    after = selected.contents()
    assert after["hubspot"] == before["hubspot"]
    assert after["brevo"] == before["brevo"]
    plain.clock.advance(60)
    for world in (selected, plain):
        report, _ = world.sync()
        assert report.status == "ok", [e.message for e in report.errors]
    assert selected.contents() == plain.contents()
    assert selected.plan().write_count == 0


@pytest.mark.slow
def test_a_selected_run_neither_reads_nor_writes_the_others_and_deletes_nothing() -> None:
    """After full runs (the state knows every platform's records), people act on HubSpot;
    a run of Mailchimp alone makes no call to HubSpot or Brevo, takes none of their records
    for deleted, and the next full run carries the HubSpot acts everywhere."""
    world = World()
    world.sync()
    world.sync()
    everyone = {p: set(people) for p, people in world.contents().items()}
    leaver = "person02@crowd.dev"
    world.hs.unsubscribe_all(leaver)
    world.clock.advance(60)

    engine = world.engine(RunScope(platforms=frozenset({"mailchimp"})))
    plan = _plan(engine)
    assert set(plan.platforms) == {"mailchimp"}
    assert engine.connectors["hubspot"].stats.reads == 0
    assert engine.connectors["brevo"].stats.reads == 0
    report, writes = world.sync(RunScope(platforms=frozenset({"mailchimp"})))
    assert writes["hubspot"] == writes["brevo"] == 0
    state = world.store.scoped(world.config)
    assert state.deletions() == []
    held = world.contents()
    assert {p: set(people) for p, people in held.items()} == everyone
    assert held["mailchimp"][leaver][2] == "subscribed"  # HubSpot was not read

    report, _ = world.sync()
    assert report.status == "ok", [e.message for e in report.errors]
    assert not any(row.get("archive") for pp in world.plan().platforms.values()
                   for row in pp.changes)
    after = world.contents()
    assert {p: set(people) for p, people in after.items()} == everyone
    assert after["mailchimp"][leaver][2] != "subscribed"
    assert world.plan().write_count == 0


def _plan(engine: object) -> object:
    import asyncio

    async def go() -> object:
        try:
            return await engine.plan()  # type: ignore[attr-defined]
        finally:
            for connector in engine.connectors.values():  # type: ignore[attr-defined]
                await connector.aclose()

    return asyncio.run(go())


@pytest.mark.slow
def test_selecting_a_segment_publishes_and_deletes_no_other() -> None:
    world = World()
    crowd, lived = world.segments
    world.segments = [crowd, SegmentTarget("ada", parse('first_name = "Ada"'), lived.publish)]
    plan = world.plan(RunScope(segments=frozenset({"crowd"})))
    published = {pub.segment for pp in plan.platforms.values() for pub in pp.publications}
    assert published == {"crowd"}
    assert {m.name for pp in plan.platforms.values() for m in pp.memberships} <= {"crowd"}
    world.sync()
    world.sync()
    member = world.mc.get_member("ada.subscribed@lived.dev")
    assert member is not None
    member.merge_fields["FNAME"] = "Adele"  # hook: she edits her profile: she leaves `ada`
    world.mc._touch(member)
    world.clock.advance(60)
    everything = world.plan()
    assert any(m.name == "ada" and m.remove for pp in everything.platforms.values()
               for m in pp.memberships)  # what an unselected run would do
    world.segments = [crowd]  # and what a run without `ada` configured would do
    assert any(pub.kind is PublicationKind.DELETE for pp in world.plan().platforms.values()
               for pub in pp.publications)
    world.segments = [crowd, SegmentTarget("ada", parse('first_name = "Ada"'), lived.publish)]
    scoped = world.plan(RunScope(segments=frozenset({"crowd"})))
    for pp in scoped.platforms.values():
        assert all(m.name == "crowd" for m in pp.memberships)
        assert not any(pub.kind is PublicationKind.DELETE for pub in pp.publications)
    world.sync(RunScope(segments=frozenset({"crowd"})))
    owned = {(o.platform, o.name) for o in world.store.scoped(world.config).owned()}
    assert {p for p, name in owned if "ada" in name} == {"mailchimp", "hubspot", "brevo"}
    held = world.contents()["mailchimp"]["ada.subscribed@lived.dev"]
    assert "segsync:ada" in held[1]  # still in it: the segment was not selected
    world.sync()
    assert "segsync:ada" not in world.contents()["mailchimp"]["ada.subscribed@lived.dev"][1]


# -- bad input on the command line ------------------------------------------------------------

CONFIG = textwrap.dedent(
    """\
    state: sqlite:///{state}
    platforms:
      hubspot: {{token: pat-FAKE-0000}}
    segments:
      france: {{rule: 'email ends_with ".fr"'}}
      germany: {{rule: 'email ends_with ".de"'}}
    """
)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "segsync.yaml"
    path.write_text(CONFIG.format(state=tmp_path / "state.db"), encoding="utf-8")
    return path


@pytest.mark.parametrize("command", ["plan", "sync"])
def test_an_unknown_select_name_says_did_you_mean_and_exits_2(config: Path, command: str) -> None:
    result = runner.invoke(app, [command, "-c", str(config), "--select", "hubspot,frnace"])
    assert result.exit_code == EXIT_INVALID, result.output
    assert "'frnace' is neither a platform nor a segment" in result.output
    assert "did you mean 'france'?" in result.output


def test_an_unknown_select_name_without_a_close_one_lists_the_names(config: Path) -> None:
    result = runner.invoke(app, ["plan", "-c", str(config), "--select", "zzz", "--json"])
    assert result.exit_code == EXIT_INVALID, result.output
    assert "france, germany, hubspot" in result.output


@pytest.mark.parametrize("limit", ["0", "-3"])
@pytest.mark.parametrize("command", ["plan", "sync"])
def test_a_limit_below_one_is_a_usage_error(config: Path, command: str, limit: str) -> None:
    result = runner.invoke(app, [command, "-c", str(config), f"--limit={limit}"])
    assert result.exit_code == EXIT_INVALID, result.output
    assert f"--limit: {limit} is not a number of contacts; give 1 or more" in result.output


def test_select_takes_repeats_and_comma_lists() -> None:
    from types import SimpleNamespace

    from segsync.sync.build import run_scope

    config = SimpleNamespace(platforms={"hubspot": SimpleNamespace(enabled=True),
                                        "brevo": SimpleNamespace(enabled=True)},
                             segments={"france": None, "germany": None})
    scope = run_scope(config, ["hubspot", "france, germany"], limit=50)
    assert scope == RunScope(platforms=frozenset({"hubspot"}),
                             segments=frozenset({"france", "germany"}), limit=50)
    assert run_scope(config, []) == RunScope()


@pytest.mark.parametrize("command", ["plan", "sync"])
def test_the_command_line_gives_the_engine_its_scope(
    config: Path, command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import segsync.cli.sync as cli_sync

    given: dict[str, object] = {}

    def build(_config: object, **options: object) -> object:
        given.update(options)
        raise cli_sync.StoreError("stop here")

    monkeypatch.setattr(cli_sync, "build_engine", build)
    result = runner.invoke(app, [command, "-c", str(config), "--limit", "5", "--select",
                                 "hubspot", "--select", "france", "--full-refresh"])
    assert result.exit_code == EXIT_INVALID, result.output
    assert given["scope"] == RunScope(platforms=frozenset({"hubspot"}),
                                      segments=frozenset({"france"}), limit=5,
                                      full_refresh=True)
