"""A sync process killed (SIGKILL) mid-apply is followed by a run that converges.

The platforms persist every write call to JSON files (crash_worker.py), so what a platform
accepted before the kill survives it. After the kill, a person edits a platform; the next
run must create no duplicate, lose no update (neither the edits before the crash nor the one
after), leave every platform agreeing, and the run after it must write nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from memory_platform import MemoryPlatform

from segsync.clock import VirtualClock

WORKER = Path(__file__).resolve().parent / "crash_worker.py"
PLATFORMS = ("mc", "hs", "bv")


def run_worker(state_url: str, folder: Path, kill_after: int) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    return subprocess.run(
        [sys.executable, str(WORKER), state_url, str(folder), str(kill_after)],
        capture_output=True, text=True, timeout=60, check=False, env=env,
    )


def load(folder: Path) -> dict[str, MemoryPlatform]:
    clock = VirtualClock(dt.datetime.fromisoformat((folder / "clock.txt").read_text().strip()))
    out = {}
    for name in PLATFORMS:
        platform = MemoryPlatform(name, clock)
        platform.load_json((folder / f"{name}.json").read_text())
        out[name] = platform
    return out


def save(folder: Path, platforms: dict[str, MemoryPlatform]) -> None:
    for name, platform in platforms.items():
        (folder / f"{name}.json").write_text(platform.to_json())
    clock = next(iter(platforms.values())).clock
    (folder / "clock.txt").write_text(clock.now().isoformat())


def seed(folder: Path) -> dict[str, Any]:
    """Twenty contacts spread over the platforms, some on several with different values."""
    clock = VirtualClock()
    platforms = {n: MemoryPlatform(n, clock) for n in PLATFORMS}
    expected: dict[str, Any] = {}
    for i in range(20):
        email = f"person{i}@example.com"
        home = PLATFORMS[i % 3]
        platforms[home].add(email, {"city": f"city{i}"}, [f"t{i % 4}"], "subscribed")
        expected[email] = {"city": f"city{i}"}
    for i in range(0, 20, 5):  # known on a second platform too, tagged there
        other = PLATFORMS[(i + 1) % 3]
        platforms[other].add(f"person{i}@example.com", {}, ["both"], "non_subscribed")
    save(folder, platforms)
    return expected


@pytest.mark.parametrize("kill_after", [2, 7])
@pytest.mark.slow
def test_killed_mid_apply_then_converges(store_url: str, tmp_path: Path, kill_after: int) -> None:
    """Killed after some write calls, the next run converges: no duplicate, nothing lost."""
    folder = tmp_path / "platforms"
    folder.mkdir()
    expected = seed(folder)

    killed = run_worker(store_url, folder, kill_after)
    assert killed.returncode == -signal.SIGKILL, killed.stderr

    platforms = load(folder)  # what the platforms kept; a person edits one meanwhile
    record = platforms["hs"].find("person0@example.com") or platforms["hs"].add(
        "person0@example.com"
    )
    platforms["hs"].edit(record.id, city="changed after the crash")
    expected["person0@example.com"]["city"] = "changed after the crash"
    save(folder, platforms)

    finished = run_worker(store_url, folder, 0)
    assert finished.returncode == 0, finished.stderr
    report = json.loads(finished.stdout)
    assert report["errors"] == []

    platforms = load(folder)
    for name, platform in platforms.items():
        emails = [r.email for r in platform.live()]
        assert len(emails) == len(set(emails)), f"duplicates on {name}"
        assert sorted(emails) == sorted(expected), name
        for record in platform.live():
            assert record.fields == expected[record.email], (name, record)
            wanted_tags = {f"t{int(record.email[6:-12]) % 4}"}
            if int(record.email[6:-12]) % 5 == 0:
                wanted_tags.add("both")
            assert record.tags == wanted_tags, (name, record)

    again = run_worker(store_url, folder, 0)
    assert again.returncode == 0, again.stderr
    second = json.loads(again.stdout)
    assert [sum(p[k] for k in ("created", "updated")) for p in second["platforms"].values()] == [
        0, 0, 0
    ]
