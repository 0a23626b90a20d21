"""Saved plans stay applicable until a record they write moves (docs/sync.md, "Saved plans").

A plan records, per record it writes, the content hash of the snapshot it was planned on.
Another plan made in between, or a change on a record the plan does not write, leaves it
applicable; a record it writes that a later read saw changed, or that a run wrote since,
makes `apply` refuse it and name the record. A file that is not a plan of this version is a
located error, never the validator's text.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from memory_platform import MemoryConnector, MemoryPlatform

from segsync.clock import VirtualClock
from segsync.state import StateStore
from segsync.sync import Engine, Plan, PlanStale, SyncPolicy
from segsync.sync.plan import PLAN_FORMAT, PlanFileError

PLATFORMS = ("mc", "hs")


class World:
    def __init__(self, store_factory: Callable[[], StateStore]) -> None:
        self.clock = VirtualClock()
        self.platforms = {n: MemoryPlatform(n, self.clock) for n in PLATFORMS}
        self.store = store_factory()

    def engine(self) -> Engine:
        return Engine({n: MemoryConnector(p) for n, p in self.platforms.items()}, self.store,
                      config="plans", policy=SyncPolicy(platforms=PLATFORMS), clock=self.clock,
                      chunk_size=5)

    def plan(self) -> Plan:
        return asyncio.run(self.engine().plan())

    def apply(self, plan: Plan) -> Any:
        # through the file, as `segsync plan --out` then `segsync apply` do
        return asyncio.run(self.engine().apply(Plan.from_json(plan.to_json())))

    def sync(self) -> Any:
        return asyncio.run(self.engine().sync())

    def on(self, platform: str, email: str) -> Any:
        record = self.platforms[platform].find(email)
        assert record is not None, (platform, email)
        return record


@pytest.fixture
def world(store_factory: Callable[[], StateStore]) -> World:
    w = World(store_factory)
    for email in ("a@x.com", "b@x.com", "c@x.com"):
        w.platforms["mc"].add(email, {"n": "0"})
    assert w.sync().errors == []
    w.clock.advance(60)
    return w


def test_a_plan_applies_after_another_plan_and_an_unrelated_change(world: World) -> None:
    """An unrelated change (b edited on hs) read by a newer plan does not stale the plan
    that writes a; applying it writes a, and the next run writes b and nothing more."""
    world.platforms["mc"].edit(world.on("mc", "a@x.com").id, n="1")
    saved = world.plan()
    world.clock.advance(60)
    world.platforms["hs"].edit(world.on("hs", "b@x.com").id, n="2")
    newer = world.plan()  # the staging is now this plan's (it reads b's change)
    assert newer.plan_id != saved.plan_id

    report = world.apply(saved)

    assert report.errors == []
    assert report.platforms["hs"].updated == 1
    assert world.on("hs", "a@x.com").fields["n"] == "1"
    world.clock.advance(60)
    follow = world.sync()
    assert follow.errors == []
    assert world.on("mc", "b@x.com").fields["n"] == "2"  # the newer plan's read was not lost
    assert follow.platforms["mc"].updated == 1
    assert follow.platforms["hs"].updated == 0  # a is not written twice
    assert world.sync().writes == 0


def test_a_plan_whose_record_moved_on_the_platform_is_refused_naming_it(
    world: World,
) -> None:
    """A person edits the record the plan writes; a later read sees it: apply refuses,
    names the record, and writes nothing."""
    world.platforms["mc"].edit(world.on("mc", "a@x.com").id, n="1")
    world.platforms["mc"].edit(world.on("mc", "c@x.com").id, n="1")
    saved = world.plan()
    world.clock.advance(60)
    world.platforms["hs"].edit(world.on("hs", "a@x.com").id, n="hand-made")
    world.plan()
    writes_before = len(world.platforms["hs"].writes)

    with pytest.raises(PlanStale) as refused:
        world.apply(saved)

    message = str(refused.value)
    assert "[hs] a@x.com: record changed since the plan" in message
    assert "c@x.com" not in message  # c did not move
    assert len(world.platforms["hs"].writes) == writes_before
    assert world.on("hs", "a@x.com").fields["n"] == "hand-made"


def test_a_plan_applied_twice_is_refused_the_second_time(world: World) -> None:
    world.platforms["mc"].edit(world.on("mc", "a@x.com").id, n="1")
    saved = world.plan()
    assert world.apply(saved).errors == []

    with pytest.raises(PlanStale, match=r"\[hs\] a@x.com: record changed since the plan"):
        world.apply(saved)


def test_a_plan_whose_record_a_run_wrote_is_refused(world: World) -> None:
    world.platforms["mc"].edit(world.on("mc", "a@x.com").id, n="1")
    saved = world.plan()
    world.sync()

    with pytest.raises(PlanStale, match=r"1 record\(s\) it writes moved"):
        world.apply(saved)


# -- plan files ---------------------------------------------------------------------------


def _saved(world: World) -> str:
    world.platforms["mc"].edit(world.on("mc", "a@x.com").id, n="1")
    return world.plan().to_json()


@pytest.mark.parametrize(
    ("mangle", "where"),
    [
        (lambda t: t[: len(t) // 2], r"line 1 column \d+: truncated"),
        (lambda t: "{not json", r"line 1 column 2: not JSON"),
        (lambda t: "[1, 2]", r"top level: not a segsync plan"),
        (lambda t: t.replace(f'"format":{PLAN_FORMAT}', '"format":1'),
         r"format: 1 is another version of segsync's plan"),
        (lambda t: t.replace('"email":"a@x.com"', '"email":7'),
         r"platforms\.hs\.changes\.0\.email"),
        (lambda t: t.replace('"generation":', '"generations":'), r"generation: Field required"),
    ],
)
def test_a_bad_plan_file_is_a_located_error(
    world: World, mangle: Callable[[str], str], where: str
) -> None:
    text = mangle(_saved(world))

    with pytest.raises(PlanFileError, match=where) as bad:
        Plan.from_json(text)

    assert "pydantic" not in str(bad.value)
    assert "http" not in str(bad.value)


def test_the_cli_names_the_file_and_exits_2(world: World, tmp_path: Any) -> None:
    from typer.testing import CliRunner

    from segsync.cli import EXIT_INVALID, app

    path = tmp_path / "plan.json"
    path.write_text(json.dumps({**json.loads(_saved(world)), "generation": "x"}))

    result = CliRunner().invoke(app, ["apply", str(path)])

    assert result.exit_code == EXIT_INVALID
    assert str(path) in result.output
    assert "generation: Input should be a valid integer" in result.output
    assert "errors.pydantic.dev" not in result.output
