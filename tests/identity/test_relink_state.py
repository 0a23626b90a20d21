"""The state store's relinking of records (both backends): the id map, the base rows and the
static segment memberships follow a record to its new contact, at once."""

from __future__ import annotations

import json

from segsync.state import StateStore


def payload(email: str, name: str) -> str:
    return json.dumps({"email": email, "k": email, "f": {"name": name}})


def seeded(store: StateStore) -> None:
    """ANNA (record 1, in `subs`) and BERT (record 2) on `bv`; CARL (record 3) on `hs`."""
    state = store.scoped("c")
    state.begin_stage()
    state.stage_pulled("bv", [("1", "anna", "anna@x", payload("anna@x", "Anna"), "", False),
                              ("2", "bert", "bert@x", payload("bert@x", "Bert"), "", False)])
    state.stage_pulled("hs", [("3", "carl", "carl@x", payload("carl@x", "Carl"), "", False)])
    state.stage_planned([(cid, f"{cid}@x", json.dumps({"email": f"{cid}@x"}))
                         for cid in ("anna", "bert", "carl")], plan_id="p")
    state.commit_members("bv", "subs", ["anna"], [])
    state.commit_members("hs", "subs", ["carl"], [])
    state.finish()


def test_a_swap_moves_both_records_with_their_bases_and_memberships(store: StateStore) -> None:
    seeded(store)
    state = store.scoped("c")
    state.begin_stage()
    state.stage_pulled("bv", [("1", "anna", "bert@x", payload("bert@x", "Anna"), "", False),
                              ("2", "bert", "anna@x", payload("anna@x", "Bert"), "", False)])

    moved = state.moved_records()
    state.relink_records([("bv", "1", "bert"), ("bv", "2", "anna")])

    assert [(p, pid, cid, key, json.loads(base)["k"]) for p, pid, cid, key, base in moved] == [
        ("bv", "1", "anna", "bert@x", "anna@x"), ("bv", "2", "bert", "anna@x", "bert@x")]
    assert state.cids_by_platform_id("bv", ["1", "2"]) == {"1": "bert", "2": "anna"}
    assert state.members(["anna", "bert", "carl"]) == {"bert": {"bv": {"subs"}},
                                                       "carl": {"hs": {"subs"}}}
    _, bases, pulled = state.load(["anna", "bert"])
    assert (bases["bert"]["bv"].platform_id, pulled["bert"]["bv"].platform_id) == ("1", "1")
    assert json.loads(bases["bert"]["bv"].payload)["f"] == {"name": "Anna"}  # what it held
    assert (bases["anna"]["bv"].platform_id, pulled["anna"]["bv"].platform_id) == ("2", "2")
    assert state.moved_records() == []  # each record is its contact's now


def test_a_record_moved_to_a_person_who_keeps_their_own_has_no_base(store: StateStore) -> None:
    """BERT keeps record 2 on bv: record 1 is staged under BERT without a base (a duplicate
    the pull sets aside), and ANNA keeps nothing of it."""
    seeded(store)
    state = store.scoped("c")
    state.begin_stage()
    state.stage_pulled("bv", [("1", "anna", "bert@x", payload("bert@x", "Anna"), "", False)])

    state.relink_records([("bv", "1", "bert")])

    assert state.cids_by_platform_id("bv", ["1", "2"]) == {"2": "bert"}
    assert state.members(["anna", "bert"]) == {}
    _, bases, pulled = state.load(["anna", "bert"])
    assert "anna" not in bases
    assert "anna" not in pulled
    assert (bases["bert"]["bv"].platform_id, pulled["bert"]["bv"].platform_id) == ("2", "1")
    assert state.duplicate_records("bv") == [("bert", "1", "2")]
