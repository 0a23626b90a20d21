"""Sync processes killed (SIGKILL) at random points of apply, then restarted, converge.

The three emulators run on loopback in this test process (uvicorn threads), so they outlive
every sync process. Each sync is a subprocess, `segsync sync -c segsync.yaml`, with its state
in SQLite in a temporary directory. A process is killed after a random number of writes seen
by the emulators, or a random delay after its first write; the next one resumes. After a
last run that is let finish, every platform must hold exactly what uninterrupted runs (through
the library, on a fresh world of the same seed) reach, without duplicates, and a further run
must write nothing. `SEGSYNC_FAULT_KILLS` sets the number of kills (default 3).
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from fault_world import FAULT_SIZE, SURVIVED
from loopback_world import LoopbackWorld, loopback_world

KILLS = int(os.environ.get("SEGSYNC_FAULT_KILLS", "3"))


@pytest.mark.slow
def test_killed_syncs_converge_to_an_uninterrupted_run(tmp_path: Path) -> None:
    """SIGKILL at random points of apply, restart, finish: the same state as no kill.

    Two phases (the initial sync, then a sync of edits made on every platform), each with
    `SEGSYNC_FAULT_KILLS` / 2 killed processes before one that is let finish.
    """
    seed, size = 5, FAULT_SIZE
    with loopback_world(tmp_path / "reference", seed, size) as reference:
        assert reference.run_in_process().status == "ok"
        initial_writes = reference.writes_seen()
        reference.edit()
        assert reference.run_in_process().status == "ok"
        expected = reference.dumps()
        expected_objects = reference.object_names()
    assert initial_writes > KILLS, "too few writes to kill a run in the middle of them"

    rng = random.Random(seed)
    kills: list[str] = []

    def killed_runs(world: LoopbackWorld, count: int, writes: int) -> None:
        for n in range(count):  # each run has less left to do: kill earlier and earlier
            if n % 2 == 0:
                point = rng.randrange(1, max(2, writes // (n + 2)))
                code, _ = world.run(kill_after_writes=point)
                label = f"after {point} writes"
            else:
                delay = rng.uniform(0.0, 0.2 / n)
                code, _ = world.run(kill_after=delay)
                label = f"{delay:.3f} s after its first write"
            kills.append(label if code is None else f"{label}: finished first (exit {code})")
        code, output = world.run()
        assert code == 0, output

    with loopback_world(tmp_path / "killed", seed, size) as world:
        killed_runs(world, (KILLS + 1) // 2, initial_writes)
        edits = world.edit()
        killed_runs(world, KILLS // 2, len(edits) * 2)
        actual = world.dumps()
        objects = world.object_names()
        writes_before = world.writes()
        assert world.run_in_process().status == "ok"
        extra_writes = {
            p: w[len(writes_before[p]) :]
            for p, w in world.writes().items()
            if w != writes_before[p]
        }

    done = [k for k in kills if ":" not in k]
    summary = f"sync processes killed: {len(done)} of {KILLS} attempts ({'; '.join(kills)})"
    print(summary)
    SURVIVED.append(summary)
    assert len(done) >= KILLS // 2, "most processes finished before they could be killed"
    for platform, dump in actual.items():
        assert dump.duplicates == (), f"{platform}: duplicate contacts {dump.duplicates}"
        assert dump.by_email() == expected[platform].by_email(), platform
    for edit in edits:
        for platform, dump in actual.items():
            _email, fields, _tags, _consent = dump.by_email()[edit.email]
            for name, value in edit.change.fields.items():
                assert (name, str(value)) in fields, f"{edit} lost on {platform}"
    for platform, names in objects.items():  # no segment, list or tag created twice
        assert sorted(set(names)) == names, f"{platform}: {names}"
        assert set(expected_objects[platform]) <= set(names), platform
    assert extra_writes == {}
