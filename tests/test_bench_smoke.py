"""Smoke test of the benchmark script: it runs end to end at a tiny size and prints its JSON.

Not a timed test: the figures are not checked against the targets, only the document's shape
and the invariants that hold at any size.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "bench" / "run.py"
PHASES = ("initial", "unchanged", "changed")
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
    assert len(results) == 6
    assert set(results.values()) <= {"pass", "miss"}
