"""A connector that cannot tell its account is not bound (said once); an account identity that
cannot be read stops that platform only."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "sync"))

from accounts_world import BOB, World
from memory_platform import MemoryConnector, MemoryPlatform
from segsync_brevo import BrevoConnector

from segsync.clock import VirtualClock
from segsync.state import open_store
from segsync.sync import Engine, SyncPolicy
from segsync.testing.data import DEFAULT_SCHEMA


def test_a_connector_without_identity_is_not_bound_and_it_is_said_once() -> None:
    clock = VirtualClock()
    platforms = {n: MemoryPlatform(n, clock) for n in ("aa", "bb")}
    platforms["aa"].add("p@x.com", {"n": "1"}, [], "subscribed")
    store = open_store("sqlite:///:memory:", clock=clock)

    def plan() -> list[dict[str, str]]:
        engine = Engine({n: MemoryConnector(p) for n, p in platforms.items()}, store,
                        config="t", policy=SyncPolicy(platforms=tuple(platforms)), clock=clock)
        result = asyncio.run(engine.sync())
        assert not result.errors
        return [d for d in result.diagnostics if "cannot tell which account" in d["message"]]

    first = plan()
    assert sorted(d["platform"] for d in first) == ["aa", "bb"]
    assert plan() == []
    binding = store.binding("t", "aa")
    assert binding is not None
    assert binding.account_id is None
    assert binding.checked is not None
    assert [r.email for r in platforms["bb"].live()] == ["p@x.com"]


def test_an_identity_that_cannot_be_read_stops_that_platform_only() -> None:
    world = World()
    try:
        world.sync()
        world.replace("brevo", BrevoConnector(
            {"api_key": "xkeysib-" + "9" * 64 + "-revoked000001"},
            transport=world.bv.transport(), schema=DEFAULT_SCHEMA, clock=world.clock,
        ))
        world.hs.modify_contact(world.hs._find_email(BOB).id, {"firstname": "Bobby"})
        first_run = world.bv.log.count("GET", "/v3/contacts")  # its read and engagement refresh

        report = world.sync()

        [error] = [e for e in report.errors if e.platform == "brevo"]
        assert error.code in ("read_failed", "auth_failed")
        assert "identity" in error.message
        assert "9" * 64 not in error.message
        if error.code == "auth_failed":  # the setting to fix is named, never its value
            assert "check `platforms.brevo.api_key`" in error.message
        assert world.bv.log.count("GET", "/v3/contacts") == first_run  # the first run's only
        assert world.mc.get_member(BOB).merge_fields["FNAME"] == "Bobby"
    finally:
        world.close()
