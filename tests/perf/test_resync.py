"""An unchanged re-sync on the bench's in-memory platforms (`bench/engine_pass.py`): nobody is
reconciled or evaluated again, nothing is planned; and a materialised segment added later
still gets every member, the unchanged contacts included."""

from __future__ import annotations

import asyncio
import importlib
import sys
from pathlib import Path
from typing import Any

import pytest

from segsync.rules import load_rule
from segsync.state import SQLiteStateStore
from segsync.sync import Engine, SegmentTarget, SyncPolicy
from segsync.sync.timing import PhaseTimer, profiling

BENCH = Path(__file__).resolve().parents[2] / "bench"
N = 120


def _bench(name: str) -> Any:
    sys.path.insert(0, str(BENCH))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(BENCH))


def _engine(store: SQLiteStateStore, connectors: dict[str, Any], rules: dict[str, str]) -> Engine:
    ep = _bench("engine_pass")
    return Engine(
        connectors, store, config="bench", policy=SyncPolicy(platforms=tuple(ep.PLATFORMS)),
        schema=ep.SCHEMA, segments=[SegmentTarget(n, load_rule(r, ep.SCHEMA))
                                    for n, r in rules.items()],
    )


@pytest.mark.slow
def test_an_unchanged_resync_reconciles_nobody_and_a_new_segment_gets_everyone(
    tmp_path: Path,
) -> None:
    ep, dataset = _bench("engine_pass"), _bench("dataset")
    store = SQLiteStateStore(tmp_path / "state.db")
    connectors = {name: ep.MemoryCopy(name, N, variant=n) for n, name in enumerate(ep.PLATFORMS)}

    async def main() -> tuple[Any, Any, PhaseTimer]:
        engine = _engine(store, connectors, dataset.SEGMENTS)
        first = await engine.plan()
        await engine.apply(first)
        timer = PhaseTimer()
        with profiling(timer):
            again = await engine.plan()
        await engine.apply(again)
        # a materialised segment configured after the contacts were synced
        later = _engine(store, connectors, {**dataset.SEGMENTS, "b2b_only": 'tags has "b2b"'})
        return again, await later.plan(), timer

    again, later, timer = asyncio.run(main())
    store.close()
    assert again.write_count == 0
    assert all(p.counts["unchanged"] == N for p in again.platforms.values())
    # materialised memberships (Brevo's) were not evaluated contact by contact again
    assert "segments" not in timer.calls or timer.calls["segments"] <= 2  # the laps only
    b2b = sum("b2b" in c.tags for c in dataset.audience(N))
    assert b2b > 0
    (added,) = [m for m in later.platforms["brevo"].memberships if m.name == "b2b_only"]
    assert len(added.add) == b2b
    assert not added.remove
    assert all(not p.changes for p in later.platforms.values())


@pytest.mark.parametrize("platforms", [1, 3])
def test_snapshot_loads_find_every_platform_base(tmp_path: Path, platforms: int) -> None:
    """The merge's load finds each contact's base on every platform holding one (looked up
    by platform, never by a scan of the whole base)."""
    store = SQLiteStateStore(tmp_path / "state.db")
    names = ["alpha", "beta", "gamma"][:platforms]
    with store.transaction():
        for p in names:
            store.stage_pulled("c", p, [(f"{p}-{i}", f"c{i}", f"c{i}@x.dev", "{}", "h", False)
                                        for i in range(5)])
    store.finish("c")
    _, bases, pulled = store.load("c", ["c1", "c3", "nobody"])
    assert set(bases) == {"c1", "c3"}
    assert all(set(rows) == set(names) for rows in bases.values())
    assert bases["c1"][names[0]].platform_id == f"{names[0]}-1"
    assert pulled == {}
    assert store.load("other", ["c1"])[1] == {}
    store.close()


def test_only_rules_on_synced_fields_let_an_unchanged_contact_keep_its_verdicts() -> None:
    """Engagement and read-only fields change with an engagement refresh, which the content
    hash leaves out: a rule reading them is evaluated again on contacts read unchanged."""
    from segsync.mapping import ENGAGEMENT_FIELDS
    from segsync.model import FieldSpec, FieldType, Schema
    from segsync.sync.segments import reads_only_view

    schema = Schema(fields={**ENGAGEMENT_FIELDS,
                            "company": FieldSpec(type=FieldType.TEXT)})
    assert reads_only_view(load_rule('tags has "vip" and company = "Acme"', schema), schema)
    assert reads_only_view(load_rule('not consent = "subscribed"', schema), schema)
    some_engagement = next(iter(ENGAGEMENT_FIELDS))
    assert schema.fields[some_engagement].read_only
    assert not reads_only_view(
        load_rule(f'company = "Acme" or {some_engagement} is set', schema), schema)
    from segsync.rules import ast

    platform_engagement = ast.FieldRef("mailchimp.open_rate") > 0.5
    assert not reads_only_view(ast.And(items=(platform_engagement,)), schema)
