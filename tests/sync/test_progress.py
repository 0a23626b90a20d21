"""Progress of a run: the engine's events, the plain lines and the rich bars."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from memory_platform import MemoryConnector, MemoryPlatform
from rich.console import Console

from segsync.clock import VirtualClock
from segsync.http import RateBudget
from segsync.rules import ast
from segsync.state import StateStore
from segsync.sync import Engine, SegmentTarget, SyncPolicy
from segsync.sync.progress import (
    ApplyDone,
    ApplyStarted,
    MembersChanged,
    PageRead,
    PlainProgress,
    ProgressEvent,
    Published,
    PullDone,
    PullStarted,
    RichProgress,
    WriteBatch,
    progress_for,
)

PLATFORMS = ("mc", "hs", "bv")


def of(events: list[ProgressEvent], kind: type, platform: str) -> list[Any]:
    return [e for e in events if isinstance(e, kind) and getattr(e, "platform", None) == platform]


@pytest.fixture
def world(store_factory: Callable[[], StateStore]) -> Any:
    clock = VirtualClock()
    platforms = {n: MemoryPlatform(n, clock) for n in PLATFORMS}
    store = store_factory()

    def engine(**options: Any) -> Engine:
        return Engine(
            {n: MemoryConnector(p) for n, p in platforms.items()},
            store, config="test", policy=SyncPolicy(platforms=PLATFORMS), clock=clock,
            chunk_size=5, **options,
        )

    return SimpleNamespace(clock=clock, platforms=platforms, engine=engine)


def test_the_engine_events_add_up_to_the_report(world: Any) -> None:
    """Pages read, batches written, created/updated: the events sum to the report's counts."""
    for i in range(20):
        world.platforms[PLATFORMS[i % 3]].add(f"p{i}@x.com", {"n": str(i)}, ["t"], "subscribed")
    world.platforms["hs"].fail["p3@x.com"] = "refused"
    events: list[ProgressEvent] = []

    report = asyncio.run(world.engine(progress=events.append).sync())

    assert events[0] == PullStarted(PLATFORMS)
    for name in PLATFORMS:
        counts = report.platforms[name]
        assert sum(e.contacts for e in of(events, PageRead, name)) == counts.read > 0
        assert len(of(events, PageRead, name)) == -(-counts.read // 7)  # pages of 7
        assert of(events, PullDone, name) == [PullDone(name, ok=True)]
        (started,) = of(events, ApplyStarted, name)
        batches = of(events, WriteBatch, name)
        assert sum(b.created for b in batches) == counts.created
        assert sum(b.updated for b in batches) == counts.updated
        assert started.planned == counts.created + counts.updated + counts.errors
        assert sum(b.failed for b in batches) == counts.errors
        assert all(b.created + b.updated + b.failed <= 3 for b in batches)  # batch size
        assert of(events, ApplyDone, name) == [ApplyDone(name)]
        at = {id(e): i for i, e in enumerate(events)}  # equal events are distinct objects
        order = [at[id(e)] for e in (of(events, PullDone, name)[0], started,
                                     *batches, of(events, ApplyDone, name)[0])]
        assert order == sorted(order)
    assert report.platforms["hs"].errors == 1
    assert sum(b.failed for b in of(events, WriteBatch, "hs")) == 1


def test_a_failed_pull_is_an_event_not_ok(world: Any) -> None:
    """A platform whose read fails ends its pull with `ok=False`, the others with `ok=True`."""
    world.platforms["mc"].add("a@x.com")
    engine = world.engine(progress=(events := []).append)

    async def broken(cursor: str | None = None) -> Any:
        raise RuntimeError("down")
        yield  # pragma: no cover

    engine.connectors["bv"].read = broken
    asyncio.run(engine.plan())

    assert of(events, PullDone, "bv") == [PullDone("bv", ok=False)]
    assert of(events, PullDone, "mc") == [PullDone("mc", ok=True)]
    assert not any(isinstance(e, ApplyStarted) for e in events)  # plan only: no apply


def test_segment_publications_and_membership_batches_are_events(world: Any) -> None:
    """A static segment: its publication and its membership batches, counted as reported."""
    for i in range(9):
        world.platforms["mc"].add(f"v{i}@x.com", {}, ["vip"])
    segments = [SegmentTarget("vips", ast.has_tag("vip"), {})]
    events: list[ProgressEvent] = []

    report = asyncio.run(world.engine(segments=segments, progress=events.append).sync())

    assert report.errors == []
    for name in PLATFORMS:
        counts = report.platforms[name]
        published = of(events, Published, name)
        assert len(published) == counts.publications > 0
        assert all(p.ok for p in published)
        changed = of(events, MembersChanged, name)
        assert sum(m.added for m in changed) == counts.members_added
        assert sum(m.removed + m.failed for m in changed) == counts.members_removed == 0
    hs = of(events, MembersChanged, "hs")
    assert [m.added for m in hs] == [4, 4, 1]  # membership batches of 4
    assert of(events, ApplyStarted, "hs")[0].memberships == 9


def test_no_observer_is_a_no_op(world: Any) -> None:
    """Without an observer the engine runs as before."""
    world.platforms["mc"].add("a@x.com")
    assert asyncio.run(world.engine().sync()).platforms["hs"].created == 1


# -- renderers ------------------------------------------------------------------------------


def connector(calls: int = 0, waited: float = 0.0) -> Any:
    """What a renderer reads from a connector: `stats.calls`, `budget.waited_seconds`."""
    return SimpleNamespace(stats=SimpleNamespace(calls=calls),
                           budget=SimpleNamespace(waited_seconds=waited, waits=0))


def test_the_renderers_read_what_a_rate_budget_has() -> None:
    """The attribute the renderers read is the one RateBudget keeps."""
    assert RateBudget().waited_seconds == 0.0


def test_plain_lines_are_throttled_per_platform_with_a_final_line() -> None:
    """At most one line per platform per second, plus each phase's final line."""
    clock = VirtualClock()
    mc, hs = connector(calls=5), connector(calls=2, waited=1.0)
    lines: list[str] = []
    plain = PlainProgress({"mailchimp": mc, "hubspot": hs}, lines.append, clock=clock)

    plain(PullStarted(("mailchimp", "hubspot")))
    for _ in range(4):
        mc.stats.calls += 1
        plain(PageRead("mailchimp", 250))
    plain(PageRead("hubspot", 100))
    clock.advance(1.0)
    plain(PageRead("mailchimp", 250))
    plain(PullDone("mailchimp"))

    assert lines == [
        "mailchimp: pulled 250 contacts (1 calls)",
        "hubspot: pulled 100 contacts (0 calls)",
        "mailchimp: pulled 1250 contacts (4 calls)",
        "mailchimp: pulled 1250 contacts (4 calls, done)",
    ]

    plain(ApplyStarted("hubspot", planned=1200))
    hs.stats.calls += 12
    hs.budget.waited_seconds += 3.0
    plain(WriteBatch("hubspot", created=200, updated=100, failed=0))
    plain(WriteBatch("hubspot", created=100, updated=0, failed=0))  # within the second
    clock.advance(0.5)
    plain(WriteBatch("hubspot", created=0, updated=0, failed=2))
    plain(ApplyDone("hubspot"))

    assert lines[4:] == [
        "hubspot: wrote 300/1200 contacts, 12 calls, waited 3.0 s for rate limits",
        "hubspot: wrote 400/1200 contacts, 2 failed, 12 calls, "
        "waited 3.0 s for rate limits (done)",
    ]


def test_plain_lines_show_a_failed_pull_memberships_and_publications() -> None:
    clock = VirtualClock()
    lines: list[str] = []
    plain = PlainProgress({"bv": connector()}, lines.append, clock=clock, interval=0)

    plain(PullStarted(("bv",)))
    plain(PullDone("bv", ok=False))
    plain(ApplyStarted("bv", planned=0, memberships=8))
    plain(Published("bv", "static", "vips", ok=True))
    plain(MembersChanged("bv", added=3, removed=1, failed=0))

    assert lines == [
        "bv: pull failed after 0 contacts (0 calls)",
        "bv: wrote 0/0 contacts, 0/8 memberships, 1 publications, 0 calls",
        "bv: wrote 0/0 contacts, 4/8 memberships, 1 publications, 0 calls",
    ]


def terminal() -> Console:
    return Console(file=io.StringIO(), force_terminal=True, record=True, width=140,
                   color_system=None)


def test_rich_bars_one_per_platform_and_phase() -> None:
    """On a terminal: a bar per platform per phase, with M/N, calls and rate-limit waits."""
    mc, hs = connector(), connector()
    console = terminal()
    rich = RichProgress({"mailchimp": mc, "hubspot": hs}, console)

    with rich:
        rich(PullStarted(("mailchimp", "hubspot")))
        mc.stats.calls = 4
        rich(PageRead("mailchimp", 1000))
        rich(PullDone("mailchimp"))
        rich(PageRead("hubspot", 700))
        rich(PullDone("hubspot"))
        rich(ApplyStarted("hubspot", planned=1200, memberships=10))
        hs.stats.calls += 12
        hs.budget.waited_seconds = 3.0
        rich(WriteBatch("hubspot", created=200, updated=100, failed=0))
        rich(MembersChanged("hubspot", added=5, removed=0, failed=0))

    text = console.export_text()
    final = text[text.rindex("mailchimp pull"):].splitlines()  # the last frame
    bars = {" ".join(line.split()[:2]): line for line in final if line.strip()}
    assert set(bars) == {"mailchimp pull", "hubspot pull", "hubspot write"}
    assert "1000/1000" in bars["mailchimp pull"]
    assert "4 calls" in bars["mailchimp pull"]
    assert "700/700" in bars["hubspot pull"]
    assert "0 calls" in bars["hubspot pull"]  # the pull's own calls: none, frozen when done
    assert "300/1200" in bars["hubspot write"]
    assert "members 5/10" in bars["hubspot write"]
    assert "12 calls, waited 3.0 s" in bars["hubspot write"]
    assert len(rich.progress.tasks) == 3  # no apply bar for mailchimp: it was not applied


def test_progress_for_picks_bars_on_a_terminal_and_lines_elsewhere() -> None:
    pipe = Console(file=io.StringIO(), force_terminal=False, width=140)
    assert isinstance(progress_for({}, terminal()), RichProgress)
    plain = progress_for({"mc": connector()}, pipe, clock=VirtualClock())
    assert isinstance(plain, PlainProgress)

    with plain:
        plain(PullStarted(("mc",)))
        plain(PageRead("mc", 3))

    assert pipe.file.getvalue() == "mc: pulled 3 contacts (0 calls)\n"  # type: ignore[attr-defined]
