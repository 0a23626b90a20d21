"""A sync run in its own process, over in-memory platforms persisted to JSON files.

    python crash_worker.py STATE_URL PLATFORM_DIR KILL_AFTER

Every platform is loaded from PLATFORM_DIR/<name>.json and saved back after every write call
(atomically), like a real platform that keeps what it accepted. With KILL_AFTER > 0 the
process kills itself with SIGKILL right after that many write calls, mid-apply. The virtual
clock resumes from PLATFORM_DIR/clock.txt so time never goes backwards between processes.
Prints the run report as JSON when it finishes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from memory_platform import MemoryConnector, MemoryPlatform

from segsync.clock import VirtualClock
from segsync.state import open_store
from segsync.sync import Engine, SyncPolicy

PLATFORMS = ("mc", "hs", "bv")


def main() -> None:
    state_url, folder, kill_after = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    clock_file = folder / "clock.txt"
    clock = VirtualClock(dt.datetime.fromisoformat(clock_file.read_text().strip()))
    writes = 0

    def persist(platform: MemoryPlatform) -> None:
        nonlocal writes
        tmp = folder / f"{platform.name}.json.tmp"
        tmp.write_text(platform.to_json())
        tmp.replace(folder / f"{platform.name}.json")
        clock_file.write_text(clock.now().isoformat())
        writes += 1
        if kill_after and writes >= kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    platforms = {}
    for name in PLATFORMS:
        platform = MemoryPlatform(name, clock, page_size=5)
        platform.load_json((folder / f"{name}.json").read_text())
        platform.after_write = persist
        platforms[name] = platform
    engine = Engine(
        {n: MemoryConnector(p) for n, p in platforms.items()},
        open_store(state_url, clock=clock),
        config="crash",
        policy=SyncPolicy(platforms=PLATFORMS),
        clock=clock,
        chunk_size=8,
    )
    report = asyncio.run(engine.sync())
    clock_file.write_text(clock.now().isoformat())
    for name, platform in platforms.items():  # what the user did since is kept too
        (folder / f"{name}.json").write_text(platform.to_json())
    print(report.model_dump_json())


if __name__ == "__main__":
    main()
