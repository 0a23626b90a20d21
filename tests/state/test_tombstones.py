"""Tombstones and forgetting a person (erasure), on both backends."""

from __future__ import annotations

from collections.abc import Callable

from segsync.state import LedgerEntry, StateStore
from segsync.state.base import erasure_hash

CONFIG = "brevo+mailchimp"
ERASED = "zoé.erase@x.com"  # non-ASCII: JSON reports spell it escaped
KEPT = "kept@x.com"
TABLES = ("meta", "base", "canonical", "cursors", "pulled", "planned", "owned", "ledger",
          "runs", "run_errors", "run_diagnostics", "locks", "members", "tombstones",
          "state_keys")


def rows_naming(store: StateStore, email: str) -> list[str]:
    """Every table row (as text) of the state that contains `email`, plain or JSON-escaped."""
    escaped = email.encode("ascii", "backslashreplace").decode().replace("\\x", "\\u00")
    found = []
    with store.transaction() as tx:
        for table in TABLES:
            for row in tx.execute(f"SELECT * FROM {table}"):
                text = " ".join(str(v) for v in row).lower()
                if email in text or escaped in text:
                    found.append(f"{table}: {text}")
    return found


def lived_in(store: StateStore) -> None:
    """Two people synced on two platforms, with ledger rows, segment membership and a run
    whose report, errors and diagnostics name them."""
    store.begin_stage(CONFIG)
    for platform in ("mc", "bv"):
        store.stage_pulled(CONFIG, platform, [
            (f"{platform}-1", ERASED, ERASED, f'{{"k":"{ERASED}"}}', "", False),
            (f"{platform}-2", KEPT, KEPT, f'{{"k":"{KEPT}"}}', "", False),
        ])
    store.stage_planned(CONFIG, [(ERASED, ERASED, "{}"), (KEPT, KEPT, "{}")], plan_id="p1")
    store.finish(CONFIG)
    store.commit_members(CONFIG, "bv", "vip", [ERASED, KEPT], [])
    store.add_ledger(CONFIG, [
        LedgerEntry(cid, cid, "bv", "2026-01-01T00:00:00", None, "subscribed", "sync")
        for cid in (ERASED, KEPT)
    ])
    store.start_run(CONFIG, "r1", at="2026-01-01T00:00:00")
    store.end_run("r1", at="2026-01-01T00:01:00", status="errors",
                  report={"errors": [{"email": ERASED.upper()}, {"email": KEPT}]},
                  errors=[("bv", ERASED, "bv-1", "x", f"{ERASED} refused")],
                  diagnostics=[("bv", None, "warn", f"about {ERASED}")])


def test_the_erasure_key_is_made_once_per_state(store_factory: Callable[[], StateStore]) -> None:
    store = store_factory()

    key = store.erasure_key()

    assert len(key) == 32
    assert store.erasure_key() == key
    assert store.has_tombstones(CONFIG) is False


def test_tombstones_hold_a_keyed_hash_per_configuration(store: StateStore) -> None:
    digest = erasure_hash(store.erasure_key(), ERASED)

    store.add_tombstone(CONFIG, digest, at="2026-01-01T00:00:00")
    store.add_tombstone(CONFIG, digest, at="2026-02-01T00:00:00")

    assert store.tombstones(CONFIG) == [(digest, "2026-01-01T00:00:00")]
    assert store.tombstoned(CONFIG, [digest, "other"]) == {digest}
    assert store.has_tombstones(CONFIG)
    assert not store.has_tombstones("other")
    assert store.tombstoned("other", [digest]) == set()
    assert rows_naming(store, ERASED) == []


def test_purge_forgets_the_person_and_keeps_their_ledger_rows_under_the_tombstone(
    store: StateStore,
) -> None:
    lived_in(store)
    assert store.erasure_targets(CONFIG, ERASED) == {"mc": "mc-1", "bv": "bv-1"}
    assert rows_naming(store, ERASED)  # the scan sees the address where it is

    forgotten = store.purge_person(CONFIG, ERASED, "erased:abc")

    assert forgotten == 1
    assert rows_naming(store, ERASED) == []
    assert store.erasure_targets(CONFIG, ERASED) == {}
    assert [(e.cid, e.email) for e in store.ledger(CONFIG)] == [
        ("erased:abc", "erased:abc"), (KEPT, KEPT)
    ]
    assert [r.cid for r in store.base_rows(CONFIG, "bv")] == [KEPT]
    assert store.members(CONFIG, [KEPT]) == {KEPT: {"bv": {"vip"}}}
    assert rows_naming(store, KEPT)  # the other person is untouched
    assert store.purge_person(CONFIG, ERASED, "erased:abc") == 0  # idempotent


def test_purge_starts_the_engagement_refreshes_over(store: StateStore) -> None:
    """An engagement refresh cursor may tally per member (Mailchimp's: by the hash of the
    address): erasing a person drops those cursors, so nothing of theirs stays; the read
    cursors stay (an erasure is no reason to read every record again)."""
    lived_in(store)
    store.set_pending_cursor(CONFIG, "mc", "2026-03-01T00:00:00+00:00")
    store.set_pending_cursor(CONFIG, "mc#engagement", '{"at": "x", "cursor": "tallies"}')
    store.finish(CONFIG)
    assert store.cursor(CONFIG, "mc#engagement") is not None

    store.purge_person(CONFIG, ERASED, "erased:abc")

    assert store.cursor(CONFIG, "mc#engagement") is None
    assert store.cursor(CONFIG, "mc") == "2026-03-01T00:00:00+00:00"
