"""`segsync sync` interrupted by SIGTERM finishes its batches in flight, records what was
confirmed, stores the run as `interrupted`, prints its report and exits 143; a sync killed
outright (SIGKILL) shows as `abandoned`, not `running` forever.

Emulators on loopback in this process (uvicorn threads, with latency so a run lasts), the
sync a subprocess (`segsync sync -c`).
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from loopback_world import LoopbackWorld, loopback_world, sync_command

from segsync.cli import EXIT_OK, EXIT_SIGNAL_BASE
from segsync.state import SQLiteStateStore

SIZE = 60
LATENCY = 0.03  # seconds added to every answer: the run lasts long enough to interrupt


def slow(world: LoopbackWorld) -> None:
    for emulator in world.emulators.values():
        emulator.latency = LATENCY  # type: ignore[attr-defined]


def held(world: LoopbackWorld) -> dict[str, int]:
    return {name: len(dump.records) for name, dump in world.dumps().items()}


def start_sync(world: LoopbackWorld, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*sync_command(world.config), *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, cwd=world.config.parent,
    )


def after_writes(world: LoopbackWorld, proc: subprocess.Popen[str], writes: int) -> None:
    """Wait until the emulators saw `writes` writes from `proc` (still running)."""
    deadline = time.monotonic() + 60
    while world.writes_seen() < writes:
        assert proc.poll() is None, "the sync ended before it could be interrupted"
        assert time.monotonic() < deadline, "no writes within 60 s"
        time.sleep(0.005)


def status(world: LoopbackWorld) -> dict[str, Any]:
    proc = subprocess.run(
        [sync_command(world.config)[0], "status", "--json", "-c", str(world.config)],
        capture_output=True, text=True, cwd=world.config.parent, timeout=60, check=False,
    )
    assert proc.returncode == EXIT_OK, proc.stderr
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


@pytest.mark.slow
def test_sigterm_mid_apply_prints_the_report_and_records_the_run_interrupted(
    tmp_path: Path,
) -> None:
    with loopback_world(tmp_path, 11, SIZE) as world:
        slow(world)
        before = held(world)
        proc = start_sync(world, "--json")
        after_writes(world, proc, 3)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        writes_when_stopped = world.writes_seen()

        assert proc.returncode == EXIT_SIGNAL_BASE + signal.SIGTERM == 143, err
        report = json.loads(out)
        assert report["status"] == "interrupted"
        assert report["interrupted_by"] == signal.SIGTERM
        assert report["exit_code"] == 143
        assert report["errors"] == []  # what was not sent is owed, not an error
        assert "SIGTERM" in err
        first = {name: r["created"] for name, r in report["platforms"].items()}
        assert sum(first.values()) > 0, "nothing confirmed before the signal"

        state = status(world)
        runs = state["runs"]
        assert (runs[0]["run_id"], runs[0]["status"]) == (report["run_id"], "interrupted")
        # the writes confirmed before the signal were committed: each record segsync
        # created is in the state (the records read there before are too)
        store = SQLiteStateStore(world.config.parent / "state.db")
        try:
            for name in before:
                known = sum(1 for _ in store.base_rows(state["config"], name))
                assert known == before[name] + first[name], name
        finally:
            store.close()

        again = world.run_in_process()  # finishes what was left, once
        assert again.status == "ok", again.errors[:5]
        assert world.writes_seen() > writes_when_stopped, "the first run was not cut short"
        dumps = world.dumps()
        everyone = {r[0] for dump in dumps.values() for r in dump.records}
        for name, dump in dumps.items():
            assert dump.duplicates == (), name
            assert {r[0] for r in dump.records} == everyone, name
        assert world.run_in_process().writes == 0


@pytest.mark.slow
def test_a_killed_sync_shows_as_abandoned_not_running(tmp_path: Path) -> None:
    with loopback_world(tmp_path, 12, SIZE) as world:
        slow(world)
        proc = start_sync(world)
        after_writes(world, proc, 3)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)

        killed = status(world)["runs"][0]
        assert killed["status"] == "abandoned"

        assert world.run_in_process().status == "ok"
        runs = status(world)["runs"]
        assert [r["status"] for r in runs[:2]] == ["ok", "abandoned"]
        assert runs[1]["run_id"] == killed["run_id"]
