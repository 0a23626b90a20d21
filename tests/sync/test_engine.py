"""The sync engine over in-memory platforms and a real state store (both backends)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from memory_platform import MemoryConnector, MemoryPlatform

from segsync.clock import VirtualClock
from segsync.model import PublishMode
from segsync.rules import ast
from segsync.rules.compiler import CompilerCapabilities, RuleCompiler
from segsync.state import RunLocked, StateStore
from segsync.sync import Engine, Plan, PlanStale, SegmentTarget, SyncPolicy

PLATFORMS = ("mc", "hs", "bv")
ENGINE_ONLY = ("cid", "consent_source", "consent_evidence")  # plan row keys never sent


class World:
    """Three platforms on one virtual clock, and engines over them."""

    def __init__(self, store_factory: Callable[[], StateStore]) -> None:
        self.clock = VirtualClock()
        self.platforms = {n: MemoryPlatform(n, self.clock) for n in PLATFORMS}
        self.store_factory = store_factory
        self.store = store_factory()

    def engine(self, store: StateStore | None = None, **options: Any) -> Engine:
        policy = options.pop("policy", SyncPolicy(platforms=PLATFORMS))
        return Engine(
            {n: MemoryConnector(p) for n, p in self.platforms.items()},
            store or self.store,
            config="test",
            policy=policy,
            clock=self.clock,
            chunk_size=5,
            **options,
        )

    def sync(self, **options: Any) -> Any:
        return asyncio.run(self.engine(**options).sync())

    def emails(self, name: str) -> list[str]:
        return sorted(r.email for r in self.platforms[name].live())


@pytest.fixture
def world(store_factory: Callable[[], StateStore]) -> World:
    return World(store_factory)


def test_a_run_after_a_run_writes_nothing(world: World) -> None:
    """segsync's own writes come back as reads but are not changes (echo suppression)."""
    for i in range(12):
        world.platforms[PLATFORMS[i % 3]].add(f"p{i}@x.com", {"n": str(i)}, ["t"], "subscribed")
    first = world.sync()
    writes = [len(p.writes) for p in world.platforms.values()]

    second = world.sync()

    assert first.writes == 24
    assert second.writes == 0
    assert [len(p.writes) for p in world.platforms.values()] == writes
    assert all(r.unchanged == r.read > 0 for r in second.platforms.values())  # echoes only


def test_an_email_changed_on_one_platform_is_an_update_everywhere(world: World) -> None:
    """The id map links the renamed record: the others are renamed, nobody is created."""
    record = world.platforms["mc"].add("old@x.com", {"city": "Lyon"})
    world.sync()

    world.platforms["mc"].rename(record.id, "New@X.com")
    report = world.sync()

    assert {n: world.emails(n) for n in PLATFORMS} == {
        "mc": ["New@X.com"], "hs": ["new@x.com"], "bv": ["new@x.com"]
    }
    assert sum(r.created for r in report.platforms.values()) == 0


def test_two_records_with_one_email_on_a_platform_are_reported_not_merged(world: World) -> None:
    """Bob@x.com and bob@x.com on one platform: one is synced, the other reported."""
    world.platforms["mc"].add("bob@x.com", {"city": "A"})
    world.platforms["mc"].add("Bob@X.com", {"city": "B"})

    report = world.sync()

    assert [(e.platform, e.code) for e in report.errors] == [("mc", "duplicate")]
    assert "same normalised email" in report.errors[0].message
    assert world.emails("hs") == ["bob@x.com"]
    assert report.status == "errors"


def test_invalid_emails_are_reported_per_record(world: World) -> None:
    """A record whose email cannot be normalised is reported, never silently dropped."""
    world.platforms["mc"].add("not an email")
    world.platforms["mc"].add("ok@x.com")

    report = world.sync()

    assert [(e.platform, e.email, e.code) for e in report.errors] == [
        ("mc", "not an email", "invalid_email")
    ]
    assert world.emails("bv") == ["ok@x.com"]


def test_a_saved_plan_applied_later_makes_exactly_its_writes(
    world: World, tmp_path: Any
) -> None:
    """plan -> file -> a new engine and store connection applies exactly what it listed."""
    world.platforms["mc"].add("a@x.com", {"city": "Lyon"}, ["vip"], "subscribed")
    world.platforms["hs"].add("b@x.com", {"city": "Nice"}, [], "unsubscribed")
    world.sync()
    world.platforms["hs"].edit(world.platforms["hs"].find("a@x.com").id, city="Paris")
    world.platforms["bv"].set_consent(world.platforms["bv"].find("a@x.com").id, "unsubscribed")
    world.platforms["mc"].add("c@x.com", {"city": "Metz"})
    before = {n: len(p.writes) for n, p in world.platforms.items()}

    plan = asyncio.run(world.engine().plan())
    (tmp_path / "plan.json").write_text(plan.to_json())
    assert {n: len(p.writes) for n, p in world.platforms.items()} == before  # plan writes nothing

    later = world.engine(store=world.store_factory())
    asyncio.run(later.apply(Plan.from_json((tmp_path / "plan.json").read_text())))

    for name, platform in world.platforms.items():
        made = platform.writes[before[name]:]
        listed = [
            {k: v for k, v in change.items()
             if k not in ENGINE_ONLY and v not in (None, False, [], {})}
            for change in plan.platforms[name].changes
        ]
        assert sorted(made, key=json.dumps) == sorted(listed, key=json.dumps), name
    assert plan.write_count == 2 + 3  # c created on hs and bv; a updated on each platform


def test_a_plan_is_refused_once_the_state_moved(world: World) -> None:
    """Applying an old plan after a run that wrote its records is refused, naming them."""
    world.platforms["mc"].add("a@x.com")
    old = asyncio.run(world.engine().plan())
    world.sync()

    with pytest.raises(PlanStale, match=r"\[hs\] a@x.com: record created since the plan"):
        asyncio.run(world.engine().apply(old))


def test_writes_are_batched_and_concurrent_within_the_budget(world: World) -> None:
    """Batches never exceed write_batch_size; at most max_concurrency calls in flight."""
    for i in range(20):
        world.platforms["mc"].add(f"p{i}@x.com")
    engine = world.engine()

    asyncio.run(engine.sync())

    hs = engine.connectors["hs"]
    assert isinstance(hs, MemoryConnector)
    assert hs.stats.endpoints["POST /contacts/batch"].calls == 7  # 20 creates in batches of 3
    assert hs.max_in_flight == hs.capabilities.max_concurrency == 2


def test_a_refused_record_is_reported_and_retried_next_run(world: World) -> None:
    """A per-record error carries the platform's message; the others go through."""
    world.platforms["mc"].add("a@x.com", {"city": "Lyon"})
    world.platforms["mc"].add("b@x.com", {"city": "Nice"})
    world.platforms["hs"].fail["b@x.com"] = "Invalid Resource: b@x.com looks fake"

    report = world.sync()

    assert [(e.platform, e.email, e.message) for e in report.errors] == [
        ("hs", "b@x.com", "Invalid Resource: b@x.com looks fake")
    ]
    assert world.emails("hs") == ["a@x.com"]
    assert world.store.counts("test")["dirty"] == 1

    del world.platforms["hs"].fail["b@x.com"]
    again = world.sync()

    assert again.errors == []
    assert world.emails("hs") == ["a@x.com", "b@x.com"]
    assert world.sync().writes == 0


def test_consent_floor_across_platforms(world: World) -> None:
    """An unsubscribe propagates in the run, is in the ledger, and is never undone."""
    world.platforms["mc"].add("a@x.com", {}, [], "subscribed")
    world.sync()
    world.platforms["hs"].set_consent(world.platforms["hs"].find("a@x.com").id, "unsubscribed")

    world.sync()

    assert {n: p.find("a@x.com").consent for n, p in world.platforms.items()} == {
        "mc": "unsubscribed", "hs": "unsubscribed", "bv": "unsubscribed"
    }
    ledger = [(e.platform, e.previous, e.new, e.source)
              for e in world.store.ledger("test", "a@x.com")]
    assert ("hs", "subscribed", "unsubscribed", "hs") in ledger
    assert ("canonical", "subscribed", "unsubscribed", "hs") in ledger
    assert ("mc", "subscribed", "unsubscribed", "sync") in ledger

    # a newer opt-in on one platform: pending where re-confirmation is configured, else kept
    world.platforms["bv"].set_consent(world.platforms["bv"].find("a@x.com").id, "subscribed")
    report = world.sync(policy=SyncPolicy(platforms=PLATFORMS, reconfirm=frozenset({"mc"})))

    assert report.errors == []
    assert {n: p.find("a@x.com").consent for n, p in world.platforms.items()} == {
        "mc": "pending", "hs": "unsubscribed", "bv": "subscribed"
    }


def test_conflicts_follow_the_priority_list(world: World) -> None:
    """Two platforms edit one field: the configured priority wins."""
    world.platforms["mc"].add("a@x.com", {"city": "Lyon"})
    world.sync()
    world.platforms["hs"].edit(world.platforms["hs"].find("a@x.com").id, city="Paris")
    world.platforms["bv"].edit(world.platforms["bv"].find("a@x.com").id, city="Nice")

    report = world.sync(policy=SyncPolicy(platforms=PLATFORMS, fields={"city": ("hs",)}))

    assert {p.find("a@x.com").fields["city"] for p in world.platforms.values()} == {"Paris"}
    assert report.conflicts == 1


def test_the_run_lock_fails_fast_or_waits(world: World) -> None:
    """A second run fails with RunLocked, or with wait=True waits until the lock is free."""
    world.platforms["mc"].add("a@x.com")
    other = world.store_factory()

    with other.lock("test"), pytest.raises(RunLocked, match="locked by pid"):
        world.sync()

    held = other.lock("test")
    held.__enter__()

    class ReleasingClock(VirtualClock):
        async def sleep(self, seconds: float) -> None:
            held.__exit__(None, None, None)  # the other run finishes while we wait
            await super().sleep(seconds)

    world.clock.__class__ = ReleasingClock
    report = world.sync(wait=True, lock_poll=2.0)

    assert report.status == "ok"
    assert world.emails("bv") == ["a@x.com"]


def test_a_platform_that_cannot_be_read_sits_the_run_out(world: World) -> None:
    """A read failure is reported; the other platforms sync; nothing is written to it."""
    world.platforms["mc"].add("a@x.com")
    engine = world.engine()
    broken = engine.connectors["hs"]

    async def fail(cursor: str | None = None) -> Any:
        raise ConnectionError("hs is down")
        yield

    broken.read = fail  # type: ignore[method-assign]
    report = asyncio.run(engine.sync())

    assert [(e.platform, e.code) for e in report.errors] == [("hs", "read_failed")]
    assert world.emails("bv") == ["a@x.com"]
    assert world.emails("hs") == []
    assert world.sync().platforms["hs"].created == 1  # back next run


def test_the_report_is_stored_as_json(world: World) -> None:
    """Every run's report is in the state, with per-platform counts."""
    world.platforms["mc"].add("a@x.com", {}, ["vip"])

    report = world.sync()

    stored = world.store.runs("test")[0]
    assert stored["run_id"] == report.run_id
    assert stored["report"]["platforms"]["hs"]["created"] == 1
    assert stored["report"]["platforms"]["hs"]["tags_added"] == 1
    assert stored["report"]["platforms"]["mc"]["read"] == 1
    assert stored["report"]["platforms"]["hs"]["api_calls"] >= 1


class TagOnlyCompiler(RuleCompiler):
    """A native compiler that can express `tags has X` only."""

    platform = "mc"
    CAPS = CompilerCapabilities(node_types=frozenset({"has"}), max_depth=1)

    def emit(self, rule: ast.Rule) -> dict[str, Any]:
        assert isinstance(rule, ast.Has)
        return {"match": "all", "conditions": [{"tag": rule.value}]}


def test_segments_materialised_and_native(world: World) -> None:
    """Native where it compiles (published once), materialised elsewhere, membership diffed."""
    a = world.platforms["mc"].add("a@x.com", {}, ["vip"])
    world.platforms["mc"].add("b@x.com")
    segments = [SegmentTarget("vips", ast.has_tag("vip"), {"bv": PublishMode.OFF})]
    options = {"segments": segments, "compilers": {"mc": TagOnlyCompiler()}}

    first = world.sync(**options)

    assert first.errors == []
    assert [v["definition"] for v in world.platforms["mc"].natives.values()] == [
        {"match": "all", "conditions": [{"tag": "vip"}]}
    ]
    (static,) = world.platforms["hs"].statics.values()
    assert static["name"] == "vips"
    assert static["members"] == {world.platforms["hs"].find("a@x.com").id}
    assert world.platforms["bv"].statics == {}
    assert any(d["step"] == "materialise" for d in first.diagnostics)

    world.platforms["mc"].tag(a.id, remove=["vip"])
    second = world.sync(**options)

    assert static["members"] == set()
    assert second.platforms["hs"].members_removed == 1
    assert second.platforms["mc"].publications == 0  # the definition did not change
    assert world.sync(**options).writes == 0


def test_segsync_only_deletes_what_it_created(world: World) -> None:
    """A segment dropped from the config is deleted; objects segsync did not create stay."""
    world.platforms["mc"].add("a@x.com", {}, ["vip"])
    world.platforms["hs"].statics["user-list"] = {"name": "theirs", "members": set()}
    segments = [SegmentTarget("vips", ast.has_tag("vip"), {})]
    world.sync(segments=segments)
    assert len(world.platforms["hs"].statics) == 2

    report = world.sync(segments=[])

    assert report.errors == []
    assert list(world.platforms["hs"].statics) == ["user-list"]
    assert world.store.owned("test", "hs") == []


def test_consent_written_by_segsync_is_in_the_ledger_under_the_persons_email(
    world: World,
) -> None:
    """The ledger row of a consent segsync wrote names the person, not a tag delta."""
    world.platforms["mc"].add("a@x.com", {}, ["vip"], "subscribed")
    world.sync()
    world.platforms["hs"].set_consent(world.platforms["hs"].find("a@x.com").id, "unsubscribed")

    world.sync()

    written = [e for e in world.store.ledger("test", "a@x.com") if e.source == "sync"]
    statuses = {(e.platform, e.new) for e in written}
    assert {("mc", "unsubscribed"), ("bv", "unsubscribed")} <= statuses
    assert {e.email for e in written} == {"a@x.com"}


def test_consent_evidence_read_is_kept_in_the_base(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The evidence a platform gives for a status is stored with its record (key `ce`), and
    a record read again with the same evidence is still an echo."""
    platform = world.platforms["mc"]
    plain = platform._remote

    def with_evidence(record: Any) -> Any:
        remote = plain(record)
        consent = remote.consent.model_copy(update={"evidence": f"status={record.consent}"})
        return remote.model_copy(update={"consent": consent})

    monkeypatch.setattr(platform, "_remote", with_evidence)
    platform.add("a@x.com", {"n": "1"}, [], "subscribed")
    world.sync()

    bases = {r.platform: json.loads(r.payload) for p in PLATFORMS
             for r in world.store.base_rows("test", p)}
    assert bases["mc"]["ce"] == "status=subscribed"
    assert "ce" not in bases["hs"]  # written by segsync: no evidence of its own
    assert world.sync().writes == 0
