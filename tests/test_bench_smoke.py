"""Smoke test of the benchmark script: it runs end to end at a tiny size and prints its JSON.

Not a timed test: the figures are not checked against the targets, only the document's shape
and the invariants that hold at any size; the verdicts (a target measured below its goal's
size is never a pass) are checked on given figures.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "bench" / "run.py"
PHASES = ("initial", "unchanged", "changed")
NOT_AT_SIZE = "not measured at size"
ENGINE_TARGETS = ("engine pass", "unchanged re-sync: engine")
PLATFORMS = {"mailchimp", "hubspot", "brevo"}
PLATFORM_KEYS = {
    "clock",
    "calls",
    "reads",
    "writes",
    "minimum_calls",
    "minimum_by_kind",
    "calls_ratio",
    "seconds",
    "floor_s",
    "time_ratio",
    "by_endpoint",
}


@pytest.mark.timeout(240)
@pytest.mark.slow
def test_bench_runs_at_a_tiny_size_and_prints_its_json(tmp_path: Path) -> None:
    """`bench/run.py` completes on 60 contacts and prints JSON of the documented shape."""
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--contacts", "60",
            "--latency-ms", "1",
            "--engine-contacts", "200",
            "--baseline-contacts", "4",
            "--changed", "0.05",
            "--json-out", str(out),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=220,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    printed = json.loads(done.stdout.strip().splitlines()[-1])
    saved = json.loads(out.read_text())

    assert printed == saved
    assert saved["config"]["contacts"] == 60
    assert set(saved["config"]["emulated_clock"]) <= PLATFORMS
    for phase in PHASES:
        data = saved["syncs"][phase]
        assert data["status"] == "ok", data["first_errors"]
        assert set(data["platforms"]) == PLATFORMS
        for name, platform in data["platforms"].items():
            assert set(platform) >= PLATFORM_KEYS, (phase, name)
            assert platform["calls"] == sum(platform["by_endpoint"].values())
            assert platform["minimum_calls"] >= 1
        assert data["totals"]["calls"] == sum(p["calls"] for p in data["platforms"].values())
    assert saved["syncs"]["initial"]["record_writes"] > 0
    assert saved["syncs"]["changed"]["contacts_edited"] == 3
    assert saved["engine"]["contacts"] == 200
    assert saved["engine"]["seconds"] > 0
    assert saved["engine"]["peak_rss_bytes"] > 0
    assert set(saved["baseline"]["platforms"]) == PLATFORMS
    assert all(p["calls"] >= 4 for p in saved["baseline"]["platforms"].values())
    assert saved["baseline"]["extrapolated_to"] == 60
    results = {t["target"]: t["result"] for t in saved["targets"]}
    assert len(results) == 7
    assert set(results.values()) <= {"pass", "miss", NOT_AT_SIZE}
    engine_results = [r for name, r in results.items() if name.startswith(ENGINE_TARGETS)]
    assert len(engine_results) == 3
    assert "pass" not in engine_results  # 200 contacts is not the goal's 1,000,000
    assert saved["engine"]["resync"]["writes"] == 0
    for platform in saved["syncs"]["initial"]["platforms"].values():
        assert platform["engine_cpu_s"] >= 0
        assert platform["emulator_cpu_s"] is None or platform["emulator_cpu_s"] >= 0


def _run_module() -> Any:
    """bench/run.py as a module (its helpers are imported from the bench directory)."""
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        return importlib.import_module("run")
    finally:
        sys.path.remove(str(SCRIPT.parent))


def test_a_target_measured_on_fewer_contacts_than_its_goal_is_never_a_pass() -> None:
    """Below the goal's size: "not measured at size" with the extrapolation beside it;
    at size: pass or miss; a figure over the limit already on fewer contacts: a miss."""
    run = _run_module()
    small = run.sized_target("t", "g", 1.5, 60.0, size=50_000, goal_size=1_000_000)
    assert small["result"] == NOT_AT_SIZE
    assert small["extrapolated"] == pytest.approx(30.0)
    assert "within the limit" in small["note"]
    assert "1000000" in small["note"]
    over = run.sized_target("t", "g", 13.6, 60.0, size=50_000, goal_size=1_000_000)
    assert over["result"] == NOT_AT_SIZE
    assert over["extrapolated"] == pytest.approx(272.0)
    assert "over the limit" in over["note"]
    assert run.sized_target("t", "g", 61.0, 60.0, size=50_000, goal_size=10**6)["result"] == "miss"
    assert run.sized_target("t", "g", 59.0, 60.0, size=10**6, goal_size=10**6)["result"] == "pass"
    at_size = run.sized_target("t", "g", 61.0, 60.0, size=10**6, goal_size=10**6)
    assert at_size["result"] == "miss"
    assert "extrapolated" not in at_size
    # what does not grow with the size (the interpreter's memory) is not multiplied
    memory = run.sized_target("m", "g", 0.3, 1.0, size=100_000, goal_size=10**6, unit="GiB",
                              fixed=0.1)
    assert memory["extrapolated"] == pytest.approx(2.1)


def test_engine_targets_judge_time_memory_and_the_unchanged_resync_at_size() -> None:
    """The engine pass's JSON gives three targets; an unchanged re-sync that plans writes
    misses whatever its time; its CPU is the engine's (the copies' own CPU taken out)."""
    run = _run_module()
    engine = {
        "contacts": 1_000_000, "seconds": 42.0, "peak_rss_bytes": 900 * 1024**2,
        "start_rss_bytes": 60 * 1024**2, "source_cpu_seconds": 9.0,
        "resync": {"seconds": 30.0, "cpu_seconds": 25.0, "writes": 0},
    }
    verdicts = {t["target"]: t for t in run.engine_targets(engine)}
    assert [t["result"] for t in verdicts.values()] == ["pass", "pass", "pass"]
    assert verdicts["unchanged re-sync: engine CPU"]["measured"] == pytest.approx(16.0)
    engine["resync"] = {"seconds": 1.0, "cpu_seconds": 1.0, "writes": 3}
    resync = run.engine_targets(engine)[2]
    assert resync["result"] == "miss"
    assert "3 writes" in resync["note"]
    engine["contacts"] = 50_000
    assert {t["result"] for t in run.engine_targets(engine)} <= {NOT_AT_SIZE, "miss"}


@pytest.mark.timeout(120)
@pytest.mark.slow
def test_profile_prints_where_the_engine_time_goes() -> None:
    """`--profile`: the engine pass's JSON holds each pass's phases, and the table shows
    them (pull, reconcile, apply, commit...)."""
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--skip", "sync,baseline", "--engine-contacts", "150",
         "--profile"],
        capture_output=True, text=True, timeout=110, cwd=ROOT, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    engine = json.loads(done.stdout.strip().splitlines()[-1])["engine"]
    profile = engine["profile"]
    assert set(profile) == {"plan", "apply", "resync"}
    assert {"pull", "staging", "reconcile", "plan"} <= set(profile["plan"])
    assert {"recheck", "apply", "commit"} <= set(profile["apply"])
    for phases in profile.values():
        assert sum(p["share"] for p in phases.values()) == pytest.approx(1.0, abs=0.01)
    plan_cpu = sum(p["cpu_seconds"] for p in profile["plan"].values())
    assert plan_cpu <= engine["cpu_seconds"] + 0.01
    assert "engine pass (plan): engine phases" in done.stderr
    assert "reconcile" in done.stderr
