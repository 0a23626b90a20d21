"""Materialised segments whose rule depends on the clock are re-evaluated on every contact.

`last_purchase_at within 7 days` changes as time passes though no contact does: each run
evaluates such a segment on every contact (streamed from the store in chunks), while a
segment on data only stays incremental (evaluated for the contacts changed in the run).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from memory_platform import MemoryConnector, MemoryPlatform

import segsync.rules
import segsync.sync.segments
from segsync.clock import VirtualClock
from segsync.rules import ast, parse
from segsync.state import SQLiteStateStore
from segsync.sync import Engine, RunReport, SegmentTarget
from segsync.sync.segments import depends_on_clock
from segsync.testing.data import DEFAULT_SCHEMA

RECENT = SegmentTarget("recent", parse("last_purchase_at within 7 days"))
FRENCH = SegmentTarget("french", parse('country = "FR"'))


class TimeWorld:
    """One in-memory platform, one store, engines over them."""

    def __init__(self, tmp_path: Path) -> None:
        self.clock = VirtualClock()
        self.platform = MemoryPlatform("mc", self.clock)
        self.store = SQLiteStateStore(tmp_path / "state.db", clock=self.clock)

    def sync(self, **options: object) -> RunReport:
        engine = Engine(
            {"mc": MemoryConnector(self.platform)},
            self.store,
            config="t",
            schema=DEFAULT_SCHEMA,
            clock=self.clock,
            chunk_size=4,
            segments=[RECENT, FRENCH],
            **options,  # type: ignore[arg-type]
        )
        return asyncio.run(engine.sync())

    def members(self, name: str) -> set[str]:
        (static,) = [s for s in self.platform.statics.values() if s["name"] == name]
        by_id = {r.id: r.email for r in self.platform.live()}
        return {by_id[i] for i in static["members"]}


def _day(clock: VirtualClock, days_ago: int) -> str:
    return (clock.now() - dt.timedelta(days=days_ago)).date().isoformat()


def test_a_within_segment_follows_time_without_any_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = TimeWorld(tmp_path)
    for i in range(10):  # contacts 0-4 bought 2 days ago, 5-9 bought 20 days ago
        world.platform.add(
            f"p{i}@x.com",
            {
                "last_purchase_at": _day(world.clock, 2 if i < 5 else 20),
                "country": "FR" if i % 2 else "DE",
            },
        )
    first = world.sync()
    assert first.errors == []
    assert world.members("recent") == {f"p{i}@x.com" for i in range(5)}
    assert world.members("french") == {f"p{i}@x.com" for i in range(1, 10, 2)}

    evaluated: list[str] = []
    real = segsync.rules.evaluate
    real_compile = segsync.sync.segments.compile_rule

    def counting(rule: ast.Rule, *args: object, **kwargs: object) -> bool:
        evaluated.append("recent" if depends_on_clock(rule) else "other")
        return real(rule, *args, **kwargs)  # type: ignore[arg-type]

    def compiling(rule: ast.Rule, *args: Any, **kwargs: Any) -> Any:
        compiled = real_compile(rule, *args, **kwargs)
        kind = "recent" if depends_on_clock(rule) else "other"

        def counted(*call: Any) -> Any:
            evaluated.append(kind)
            return compiled(*call)

        return counted

    monkeypatch.setattr(segsync.rules, "evaluate", counting)
    monkeypatch.setattr(segsync.sync.segments, "compile_rule", compiling)
    world.clock.advance(6 * 86_400)  # 8 days since the purchases of contacts 0-4
    later = world.sync()

    assert later.errors == []
    assert world.members("recent") == set(), "every recent buyer left as time passed"
    assert later.platforms["mc"].members_removed == 5
    assert world.members("french") == {f"p{i}@x.com" for i in range(1, 10, 2)}
    # the clock-dependent segment saw every contact once; the other one only the contacts
    # read again (the incremental read's overlap), not everyone
    assert evaluated.count("recent") == 10
    assert evaluated.count("other") <= 2

    evaluated.clear()
    world.platform.edit(world.platform.find("p0@x.com").id, last_purchase_at=_day(world.clock, 0))
    again = world.sync()

    assert world.members("recent") == {"p0@x.com"}
    assert again.platforms["mc"].members_added == 1
    assert 1 <= evaluated.count("other") <= 2, "a segment on data stays incremental"
    assert evaluated.count("recent") == 10


def test_depends_on_clock_finds_within_at_any_depth() -> None:
    assert depends_on_clock(parse('country = "FR" and not (last_open within 2 hours)'))
    assert depends_on_clock(parse('country = "FR" or (tags has "a" and last_open within 1 days)'))
    assert not depends_on_clock(parse('last_purchase_at after "2025-01-01" and country = "FR"'))
