"""Account bindings and forgetting one platform's account (`segsync rebind`), on both
backends."""

from __future__ import annotations

from segsync.state import Binding, LedgerEntry, OwnedObject, StateStore

CONFIG = "brevo+mailchimp"


def bound(binding: Binding | None) -> Binding:
    assert binding is not None
    return binding

OTHER = "hubspot"


def synced(store: StateStore) -> None:
    """Two people on two platforms: ids, snapshots, cursors, owned lists, membership, ledger,
    a tombstone; and another configuration's state of the same platform."""
    for config in (CONFIG, OTHER):
        store.begin_stage(config)
        for platform in ("mc", "bv"):
            store.stage_pulled(config, platform, [
                (f"{platform}-1", "a@x.com", "a@x.com", '{"k":1}', "", False),
                (f"{platform}-2", "b@x.com", "b@x.com", '{"k":2}', "", False),
            ])
            store.set_pending_cursor(config, platform, f"{platform}-cursor")
        store.stage_planned(config, [("a@x.com", "a@x.com", "{}"), ("b@x.com", "b@x.com", "{}")],
                            plan_id="p1")
        store.finish(config)
        for platform in ("mc", "bv"):
            store.commit_members(config, platform, "vip", ["a@x.com"], [])
            store.set_owned(config, OwnedObject(platform, "static", "vip", f"{platform}-ref"),
                            at="2026-01-01T00:00:00")
            store.bind(config, platform, f"{platform}-account", f"{platform} label",
                       at="2026-01-01T00:00:00")
    store.add_ledger(CONFIG, [LedgerEntry("a@x.com", "a@x.com", "bv", "2026-01-01T00:00:00",
                                          None, "subscribed", "bv")])
    store.add_tombstone(CONFIG, "f" * 64, at="2026-01-01T00:00:00")


def test_a_binding_and_the_checked_fingerprint_are_kept_apart(store: StateStore) -> None:
    assert store.binding(CONFIG, "bv") is None

    store.set_checked(CONFIG, "bv", "fp-1")
    assert bound(store.binding(CONFIG, "bv")).account_id is None  # checked, not bound

    store.bind(CONFIG, "bv", "org:1", "Customer Ltd", at="2026-01-01T00:00:00")
    store.set_checked(CONFIG, "bv", "fp-2")
    store.bind(CONFIG, "bv", "org:1", "Customer Ltd (renamed)", at="2026-01-02T00:00:00")

    binding = bound(store.binding(CONFIG, "bv"))
    assert (binding.account_id, binding.label, binding.checked) == (
        "org:1", "Customer Ltd (renamed)", "fp-2"
    )
    assert store.binding(OTHER, "bv") is None


def test_forgetting_a_platform_keeps_the_others_the_ledger_and_the_tombstones(
    store: StateStore,
) -> None:
    synced(store)
    generation = store.generation(CONFIG)

    preview = store.forget_platform(CONFIG, "bv", dry_run=True)
    assert preview == {"records": 2, "owned": 1, "memberships": 1, "cursor": 1, "binding": 1,
                       "owed": 0, "deletions": 0}
    assert len(list(store.base_rows(CONFIG, "bv"))) == 2

    assert store.forget_platform(CONFIG, "bv") == preview

    assert list(store.base_rows(CONFIG, "bv")) == []
    assert store.cids_by_platform_id(CONFIG, "bv", ["bv-1", "bv-2"]) == {}
    assert store.owned(CONFIG, "bv") == []
    assert store.cursor(CONFIG, "bv") is None
    assert store.binding(CONFIG, "bv") is None
    assert "bv" not in store.members(CONFIG, ["a@x.com"]).get("a@x.com", {})
    # the other platform, the other configuration, the ledger and the tombstones stay
    assert len(list(store.base_rows(CONFIG, "mc"))) == 2
    assert store.cursor(CONFIG, "mc") == "mc-cursor"
    assert bound(store.binding(CONFIG, "mc")).account_id == "mc-account"
    assert len(list(store.base_rows(OTHER, "bv"))) == 2
    assert store.binding(OTHER, "bv") is not None
    assert len(store.ledger(CONFIG)) == 1
    assert store.tombstones(CONFIG) == [("f" * 64, "2026-01-01T00:00:00")]
    # every contact is reconciled again, and a staged plan made on the old ids is stale
    assert store.counts(CONFIG)["contacts"] == 2
    assert store.counts(CONFIG)["dirty"] == 2
    assert store.generation(CONFIG) > generation
    assert store.plan_id(CONFIG) is None
