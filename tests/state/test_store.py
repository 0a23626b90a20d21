"""The state store contract, on SQLite and PostgreSQL alike (see store_backends.py)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from segsync.state import (
    MIGRATIONS,
    BaseRow,
    LedgerEntry,
    OwnedObject,
    RunLocked,
    StateStore,
    StoreError,
    open_store,
)

CONFIG = "mc+hs"


def test_schema_is_migrated_to_the_latest_version(store: StateStore) -> None:
    """A new store applies every migration and records the version."""

    assert store.schema_version() == len(MIGRATIONS)


def test_reopening_keeps_data_and_does_not_migrate_again(
    store_factory: Callable[[], StateStore],
) -> None:
    """A second store on the same database sees the data of the first."""
    first = store_factory()
    first.set_owned(CONFIG, OwnedObject("mc", "static", "vip", "ref-1"), at="2026-01-01")
    first.close()

    second = store_factory()

    assert second.schema_version() == len(MIGRATIONS)
    assert second.owned(CONFIG) == [OwnedObject("mc", "static", "vip", "ref-1")]


def test_second_run_lock_fails_fast_naming_the_holder(
    store_factory: Callable[[], StateStore],
) -> None:
    """While one store holds the run lock, another gets RunLocked saying who holds it."""
    first, second = store_factory(), store_factory()

    with first.lock(CONFIG), pytest.raises(RunLocked) as caught, second.lock(CONFIG):
        pass

    assert caught.value.config == CONFIG
    assert "pid" in caught.value.holder
    with second.lock(CONFIG):  # released: the next run gets it
        pass


def test_locks_are_per_configuration(store_factory: Callable[[], StateStore]) -> None:
    """Two configurations run at once."""
    first, second = store_factory(), store_factory()

    with first.lock("a+b"), second.lock("c+d"):
        held = True

    assert held


def test_pull_stage_finish_moves_reads_to_base_and_commits_cursors(store: StateStore) -> None:
    """Staged reads and pending cursors become base and cursor only at finish."""
    store.begin_stage(CONFIG)
    store.stage_pulled(
        CONFIG, "mc", [("id1", "a@x.com", "a@x.com", '{"c":"subscribed"}', "", False)]
    )
    store.set_pending_cursor(CONFIG, "mc", "2026-01-01T00:00:00")
    store.stage_planned(CONFIG, [("a@x.com", "a@x.com", '{"email":"a@x.com"}')], plan_id="p1")

    assert store.cursor(CONFIG, "mc") is None
    assert list(store.base_rows(CONFIG, "mc")) == []

    store.finish(CONFIG)

    assert store.cursor(CONFIG, "mc") == "2026-01-01T00:00:00"
    rows = list(store.base_rows(CONFIG, "mc"))
    assert [(r.cid, r.platform_id, json.loads(r.payload)) for r in rows] == [
        ("a@x.com", "id1", {"c": "subscribed"})
    ]
    assert [(cid, view) for cid, view, _ in store.canonical_contacts(CONFIG)] == [
        ("a@x.com", {"email": "a@x.com"})
    ]
    assert store.cids_by_platform_id(CONFIG, "mc", ["id1", "nope"]) == {"id1": "a@x.com"}
    assert store.cids_by_email(CONFIG, ["a@x.com"]) == {"a@x.com": "a@x.com"}


def test_an_unfinished_run_leaves_no_trace(store: StateStore) -> None:
    """A new stage discards what a killed run staged; its cursor never moved."""
    store.begin_stage(CONFIG)
    store.stage_pulled(CONFIG, "mc", [("id1", "a@x.com", "a@x.com", "{}", "", False)])
    store.set_pending_cursor(CONFIG, "mc", "c1")

    store.begin_stage(CONFIG)
    store.finish(CONFIG)

    assert store.cursor(CONFIG, "mc") is None
    assert list(store.base_rows(CONFIG, "mc")) == []


def test_commit_writes_advances_only_confirmed_records(store: StateStore) -> None:
    """Confirmed records get the written base; failed ones the read base and a retry mark."""
    store.begin_stage(CONFIG)
    store.stage_pulled(CONFIG, "mc", [
        ("id1", "a@x.com", "a@x.com", '{"v":"read-a"}', "", False),
        ("id2", "b@x.com", "b@x.com", '{"v":"read-b"}', "", False),
    ])
    store.stage_planned(
        CONFIG,
        [("a@x.com", "a@x.com", '{"email":"a@x.com"}'),
         ("b@x.com", "b@x.com", '{"email":"b@x.com"}')],
        plan_id="p1",
    )
    entry = LedgerEntry("a@x.com", "a@x.com", "mc", "2026-01-01T00:00:00", "subscribed",
                        "unsubscribed", "sync", "consent", "run-1")

    store.commit_writes(
        CONFIG, "mc", [BaseRow("mc", "a@x.com", "id1", '{"v":"written-a"}')], ["b@x.com"], [entry]
    )
    store.finish(CONFIG)

    bases = {r.cid: json.loads(r.payload) for r in store.base_rows(CONFIG, "mc")}
    assert bases == {"a@x.com": {"v": "written-a"}, "b@x.com": {"v": "read-b"}}
    dirty = {cid: flag for cid, _, flag in store.canonical_contacts(CONFIG)}
    assert dirty == {"a@x.com": False, "b@x.com": True}
    assert store.ledger(CONFIG) == [entry]
    assert list(store.worklist(CONFIG, 10)) == [["b@x.com"]]


def test_a_consent_change_recorded_twice_is_one_entry(store: StateStore) -> None:
    """A run that re-reads a change after a crash does not duplicate the ledger."""
    entry = LedgerEntry("a@x.com", "a@x.com", "hs", "2026-01-01T00:00:00", "subscribed",
                        "unsubscribed", "hs")

    store.add_ledger(CONFIG, [entry])
    store.add_ledger(CONFIG, [entry])

    assert store.ledger(CONFIG) == [entry]


def test_generation_moves_with_every_commit(store: StateStore) -> None:
    """Sealing a plan and committing writes each bump the generation."""
    start = store.generation(CONFIG)
    store.begin_stage(CONFIG)
    sealed = store.seal_plan(CONFIG, "p1")

    assert sealed > start
    assert store.plan_id(CONFIG) == "p1"

    store.commit_writes(CONFIG, "mc", [], [])

    assert store.generation(CONFIG) > sealed


def test_duplicate_records_on_one_platform_are_found(store: StateStore) -> None:
    """Two live staged records of one contact on one platform: the linked one is kept."""
    store.begin_stage(CONFIG)
    store.stage_pulled(CONFIG, "mc", [("id1", "a@x.com", "a@x.com", "{}", "", False)])
    store.stage_planned(CONFIG, [("a@x.com", "a@x.com", "{}")], plan_id="p")
    store.finish(CONFIG)
    store.begin_stage(CONFIG)
    store.stage_pulled(CONFIG, "mc", [
        ("id0", "a@x.com", "a@x.com", "{}", "", False),
        ("id1", "a@x.com", "a@x.com", "{}", "", False),
    ])

    assert store.duplicate_records(CONFIG, "mc") == [("a@x.com", "id0", "id1")]


def test_a_transaction_that_fails_changes_nothing(store: StateStore) -> None:
    """An error inside a commit rolls the whole batch back."""
    store.begin_stage(CONFIG)
    good = BaseRow("mc", "a@x.com", "id1", "{}")

    with pytest.raises(Exception):  # noqa: B017, PT011 - either driver's integrity error
        store.commit_writes(CONFIG, "mc", [good], [], [
            LedgerEntry("a@x.com", "a@x.com", "mc", "t", None, None, "sync")  # type: ignore[arg-type]
        ])

    assert list(store.base_rows(CONFIG, "mc")) == []


def test_owned_objects_and_members(store: StateStore) -> None:
    """Owned objects are recorded, updated and forgotten; members added and removed."""
    store.set_owned(CONFIG, OwnedObject("mc", "native", "fr", "seg-1", "h1"), at="t")
    store.set_owned(CONFIG, OwnedObject("mc", "native", "fr", "seg-1", "h2"), at="t")
    store.commit_members(CONFIG, "mc", "fr", ["a@x.com", "b@x.com"], [])
    store.commit_members(CONFIG, "mc", "fr", [], ["a@x.com"])

    assert store.owned(CONFIG, "mc") == [OwnedObject("mc", "native", "fr", "seg-1", "h2")]
    assert store.members(CONFIG, ["a@x.com", "b@x.com"]) == {"b@x.com": {"mc": {"fr"}}}

    store.forget_owned(CONFIG, "mc", "native", "fr")

    assert store.owned(CONFIG) == []


def test_runs_are_stored_with_report_and_errors(store: StateStore) -> None:
    """A run's report, errors and diagnostics are kept and listed newest first."""
    store.start_run(CONFIG, "r1", at="2026-01-01T00:00:00")
    store.end_run("r1", at="2026-01-01T00:00:05", status="errors", report={"n": 1},
                  errors=[("mc", "a@x.com", "id1", "400", "Invalid Resource")],
                  diagnostics=[("mc", "fr", "warning", "materialised")])
    store.start_run(CONFIG, "r2", at="2026-01-02T00:00:00")

    runs = store.runs(CONFIG)

    assert [r["run_id"] for r in runs] == ["r2", "r1"]
    assert runs[1]["report"] == {"n": 1}
    assert store.run_errors("r1") == [{"platform": "mc", "email": "a@x.com",
                                       "platform_id": "id1", "code": "400",
                                       "message": "Invalid Resource"}]


def test_unknown_state_url_is_refused() -> None:
    """A URL that is neither SQLite nor PostgreSQL is a clear error."""
    with pytest.raises(StoreError, match="unknown state URL scheme"):
        open_store("mysql://x")


def test_unreachable_postgres_is_a_store_error_without_password() -> None:
    """A connection failure names the server, never the password."""
    with pytest.raises(StoreError) as caught:
        open_store("postgresql://user:hunter2@127.0.0.1:1/db")

    assert "hunter2" not in str(caught.value)
    assert "127.0.0.1:1" in str(caught.value)


def test_worklist_merges_staged_and_dirty_contacts_in_order(store: StateStore) -> None:
    """Chunks list each staged or dirty contact once, by contact id, across chunk edges."""
    store.begin_stage(CONFIG)
    store.stage_planned(
        CONFIG, [(cid, cid, json.dumps({"email": cid})) for cid in ("b@x", "d@x", "f@x")],
        plan_id="p1", retry=True,  # a platform sat out: these stay dirty
    )
    store.finish(CONFIG)
    store.begin_stage(CONFIG)
    rows = [
        (f"{platform}-{cid}", cid, cid, "{}", "", False)
        for cid in ("a@x", "c@x", "d@x", "e@x")
        for platform in ("1", "2")
    ]
    store.stage_pulled(CONFIG, "mc", rows)

    chunks = list(store.worklist(CONFIG, 2))

    assert chunks == [["a@x", "b@x"], ["c@x", "d@x"], ["e@x", "f@x"]]


def test_a_scoped_state_reads_and_writes_its_configuration_only(store: StateStore) -> None:
    """`store.scoped(config)` binds the configuration once; another one is left alone."""
    state, other = store.scoped(CONFIG), store.scoped("other")

    state.set_owned(OwnedObject("mc", "static", "vip", "ref-1"), at="2026-01-01")

    assert store.owned(CONFIG) == [OwnedObject("mc", "static", "vip", "ref-1")]
    assert state.owned("mc") == [OwnedObject("mc", "static", "vip", "ref-1")]
    assert other.owned() == []
    assert state.generation() == store.generation(CONFIG)
