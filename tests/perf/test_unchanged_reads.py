"""Records read as their base was read are left unstaged (`segsync.sync.pull.Unstaged`): a
re-sync stages only what changed, counts the rest unchanged, and plans what it planned when
everything was staged; the checks of the staging still see a contact's every record."""

from __future__ import annotations

import asyncio
import importlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from segsync.connector import ReadPage, RemoteContact
from segsync.model import FieldSpec, FieldType, Schema
from segsync.rules import load_rule
from segsync.state import SQLiteStateStore
from segsync.sync import Engine, SegmentTarget, SyncPolicy
from segsync.sync.plan import Plan

BENCH = Path(__file__).resolve().parents[2] / "bench"
N = 60


def _bench(name: str) -> Any:
    sys.path.insert(0, str(BENCH))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(BENCH))


EP, DATASET = _bench("engine_pass"), _bench("dataset")


class Copy(EP.MemoryCopy):  # type: ignore[misc,name-defined]
    """The bench's in-memory copy, with records edited, added or readdressed on demand."""

    def __init__(self, platform: str, contacts: int, *, variant: int) -> None:
        super().__init__(platform, contacts, variant=variant)
        self.edits: dict[str, dict[str, Any]] = {}  # platform id -> RemoteContact fields
        self.extra: list[RemoteContact] = []

    async def read(self, cursor: str | None = None) -> AsyncIterator[ReadPage]:
        async for page in super().read(cursor):
            contacts = [
                RemoteContact.model_construct(**{**r.__dict__, **self.edits[r.platform_id]})
                if r.platform_id in self.edits else r
                for r in page.contacts
            ]
            yield ReadPage(contacts, page.cursor)
        if self.extra:
            yield ReadPage(list(self.extra), None)


def _engine(store: SQLiteStateStore, connectors: dict[str, Copy], rule: str | None = None,
            schema: Schema | None = None) -> Engine:
    schema = schema or EP.SCHEMA
    rules = EP.SEGMENTS if rule is None else {"s": rule}
    return Engine(connectors, store, config="bench",
                  policy=SyncPolicy(platforms=tuple(EP.PLATFORMS)), schema=schema,
                  segments=[SegmentTarget(n, load_rule(r, schema)) for n, r in rules.items()])


def _setup(tmp_path: Path) -> tuple[SQLiteStateStore, dict[str, Copy]]:
    store = SQLiteStateStore(tmp_path / "state.db")
    connectors = {name: Copy(name, N, variant=n) for n, name in enumerate(EP.PLATFORMS)}
    return store, connectors


def _staged(store: SQLiteStateStore) -> dict[str, int]:
    with store.transaction() as tx:
        rows = tx.execute("SELECT platform, COUNT(*) FROM pulled GROUP BY platform")
    return dict(rows)


def _synced(engine: Engine) -> Plan:
    """A first sync, a second (reading back what the first wrote: those records' bases
    are segsync's writes, not reads), then a plan."""

    async def run() -> Plan:
        for _ in range(2):
            await engine.apply(await engine.plan())
        return await engine.plan()

    return asyncio.run(run())


def test_a_resync_stages_only_what_changed_and_plans_the_same(tmp_path: Path) -> None:
    store, connectors = _setup(tmp_path)
    engine = _engine(store, connectors)
    again = _synced(engine)
    assert _staged(store) == {}  # nothing changed: nothing staged
    assert again.write_count == 0
    assert all(p.counts["unchanged"] == N for p in again.platforms.values())
    # two people edited on HubSpot: staged there alone, carried to the other two
    for i in (3, 7):
        connectors["hubspot"].edits[f"hubspot-{i}"] = {"fields": {
            "first_name": "Ada", "last_name": f"Number{i}", "company": "Edited"}}
    plan = asyncio.run(engine.plan())
    assert _staged(store) == {"hubspot": 2}
    counts = {name: p.counts["unchanged"] for name, p in plan.platforms.items()}
    # the edited ones match the view they made; the others are written the edit
    assert counts == {"hubspot": N, "mailchimp": N - 2, "brevo": N - 2}
    for name in ("mailchimp", "brevo"):
        written = {row["cid"]: row["fields"] for row in plan.platforms[name].changes
                   if row.get("fields")}
        assert {cid: f["company"] for cid, f in written.items()} == {
            DATASET.email_of(3): "Edited", DATASET.email_of(7): "Edited"}
    store.close()


def test_a_record_at_an_address_its_contact_does_not_hold_is_staged(tmp_path: Path) -> None:
    """A record linked to a contact whose address it does not hold (its platform is not read
    for the email) is staged every run: the checks of identity see it."""
    store, connectors = _setup(tmp_path)
    engine = Engine(connectors, store, config="bench", schema=EP.SCHEMA,
                    policy=SyncPolicy(platforms=tuple(EP.PLATFORMS),
                                      directions={"email": {"brevo": "destination-only"}}))
    _synced(engine)
    connectors["brevo"].edits["brevo-5"] = {"email": "renamed@segsync.dev"}
    asyncio.run(engine.apply(asyncio.run(engine.plan())))
    asyncio.run(engine.plan())
    assert _staged(store) == {"brevo": 1}  # read unchanged since, yet staged
    store.close()


def test_a_new_record_next_to_an_unchanged_one_is_still_a_duplicate(tmp_path: Path) -> None:
    store, connectors = _setup(tmp_path)
    engine = _engine(store, connectors)
    _synced(engine)
    twin = RemoteContact(platform_id="mailchimp-twin", email=DATASET.email_of(4),
                         updated_at=EP.UPDATED)
    connectors["mailchimp"].extra.append(twin)
    plan = asyncio.run(engine.plan())
    (dup,) = [e for e in plan.errors if e.code == "duplicate"]
    assert dup.platform_id == "mailchimp-twin"
    assert "mailchimp-4" in dup.message
    assert _staged(store) == {"mailchimp": 1}  # the unchanged one, staged for the check
    store.close()


def test_rules_reading_engagement_stage_every_record(tmp_path: Path) -> None:
    from segsync.mapping import ENGAGEMENT_FIELDS

    schema = Schema(fields={**EP.SCHEMA.fields, **ENGAGEMENT_FIELDS,
                            "company": FieldSpec(type=FieldType.TEXT)})
    some = next(iter(ENGAGEMENT_FIELDS))
    store, connectors = _setup(tmp_path)
    again = _synced(_engine(store, connectors, f"{some} is set", schema))
    assert _staged(store) == dict.fromkeys(EP.PLATFORMS, N)
    assert again.write_count == 0
    store.close()


def test_a_state_of_the_previous_version_migrates_and_reads_everything_once(
    tmp_path: Path,
) -> None:
    """An existing state gains the read hashes: its snapshots hold none, so the next run
    stages every record (and records their hashes); the run after leaves them unstaged."""
    import sqlite3

    from segsync.state.base import MIGRATIONS

    store, connectors = _setup(tmp_path)
    engine = _engine(store, connectors)
    _synced(engine)  # the previous version's run, as far as the snapshots go
    store.close()
    db = sqlite3.connect(tmp_path / "state.db")
    version = next(i for i, m in enumerate(MIGRATIONS) if any("rhash" in st for st in m))
    for statement in [st for m in MIGRATIONS[version + 1:] for st in m][::-1]:
        # the later migrations' tables, indices and columns, undone
        words = statement.split()
        if words[:2] == ["CREATE", "TABLE"]:
            db.execute(f"DROP TABLE {words[2]}")
        elif words[:2] == ["CREATE", "INDEX"]:
            db.execute(f"DROP INDEX {words[2]}")
        elif words[:1] == ["ALTER"] and words[3:5] == ["ADD", "COLUMN"]:
            db.execute(f"ALTER TABLE {words[2]} DROP COLUMN {words[5]}")
    for table in ("base", "pulled"):
        db.execute(f"ALTER TABLE {table} DROP COLUMN rhash")
    db.execute("DROP INDEX pulled_cid")
    db.execute("CREATE INDEX pulled_cid ON pulled (config, cid)")
    db.execute("UPDATE schema_version SET version = ?", (version,))
    db.commit()
    db.close()

    store = SQLiteStateStore(tmp_path / "state.db")
    assert store.schema_version() == len(MIGRATIONS)
    engine = _engine(store, connectors)
    first = asyncio.run(engine.plan())
    assert _staged(store) == dict.fromkeys(EP.PLATFORMS, N)
    assert first.write_count == 0
    asyncio.run(engine.apply(first))
    asyncio.run(engine.plan())
    assert _staged(store) == {}
    store.close()


def test_merge_workers_make_the_plan_one_process_makes(tmp_path: Path) -> None:
    """Two forked workers merging alternate chunks give the plan a merge in this process
    gives: the same changes in the same order, counts, consent changes, memberships."""
    plans = []
    for workers in (1, 2):
        store, connectors = _setup(tmp_path / str(workers))
        for i in (3, 40):  # people edited on HubSpot before the first run
            connectors["hubspot"].edits[f"hubspot-{i}"] = {"tags": frozenset({"vip"})}
        engine = _engine(store, connectors)
        engine.workers, engine.chunk_size = workers, 7
        plan = asyncio.run(engine.plan())
        plans.append(plan)
        with store.transaction() as tx:
            assert tx.execute("SELECT COUNT(*) FROM planned")[0][0] == N
        store.close()
    serial, forked = plans
    assert len(serial.consent_events) > N
    assert list(forked.consent_events) == list(serial.consent_events)
    for name in EP.PLATFORMS:
        one, two = serial.platforms[name], forked.platforms[name]
        assert two.changes == one.changes
        assert two.counts == one.counts
        assert two.memberships == one.memberships
    assert forked.conflicts == serial.conflicts
    assert serial.platforms["brevo"].memberships  # a materialised segment was filled


def test_a_failing_merge_worker_fails_the_plan(tmp_path: Path, monkeypatch: Any) -> None:
    import pytest

    from segsync.sync import merge as merging

    def broken(self: Any, cids: list[str]) -> Any:
        raise ValueError("no merge today")

    store, connectors = _setup(tmp_path)
    engine = _engine(store, connectors)
    engine.workers = 2
    monkeypatch.setattr(merging.Merge, "chunk_delta", broken)
    with pytest.raises(merging.MergeWorkerFailed, match="no merge today"):
        asyncio.run(engine.plan())
    store.close()


def test_a_platform_read_as_its_base_merges_as_one_not_read() -> None:
    """What leaving a record unstaged rests on: reconciling a contact with a platform's
    record read exactly as its base gives what reconciling it without that read gives."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from segsync.model import ConsentStatus
    from segsync.sync.reconcile import reconcile
    from segsync.sync.snapshot import CanonicalView, PlatformRecord

    names = ("a", "b", "c")
    times = st.sampled_from([None, "2026-01-01T00:00:00+00:00", "2026-02-01T00:00:00+00:00"])
    records = st.builds(
        lambda pid, key, company, tags, consent, evidence, at, updated, deleted: PlatformRecord(
            pid, key, key, {"company": company} if company else {}, tuple(sorted(tags)),
            consent, at, None, evidence, updated, deleted),
        st.sampled_from(["1", "2"]), st.sampled_from(["p@x.dev", "q@x.dev"]),
        st.sampled_from([None, "Acme", "Initech"]),
        st.frozensets(st.sampled_from(["vip", "b2b"])), st.sampled_from(list(ConsentStatus)),
        st.sampled_from([None, "status=subscribed", "optout=true"]), times, times,
        st.booleans(),
    )
    views = st.none() | st.builds(
        lambda company, consent, source, at: CanonicalView(
            "p@x.dev", {"company": company} if company else {}, ("vip",), consent, source, at),
        st.sampled_from([None, "Acme"]), st.sampled_from(list(ConsentStatus)),
        st.sampled_from([None, "a", "b"]), times)

    @settings(max_examples=500, deadline=None)
    @given(views, st.fixed_dictionaries({}, optional=dict.fromkeys(names, records)),
           st.fixed_dictionaries({}, optional=dict.fromkeys(names, records)),
           st.sampled_from(names))
    def check(view: Any, bases: dict[str, Any], reads: dict[str, Any], same: str) -> None:
        if same not in bases:
            return
        policy = SyncPolicy(platforms=names)
        without = {p: r for p, r in reads.items() if p != same}
        one = reconcile("p@x.dev", view, bases, {**without, same: bases[same]}, policy)
        two = reconcile("p@x.dev", view, bases, without, policy)
        assert one.view == two.view
        assert one.writes == two.writes
        assert one.events == two.events
        assert sorted(one.conflicts) == sorted(two.conflicts)
        assert one.deleted == two.deleted
        assert one.archived == two.archived

    check()
