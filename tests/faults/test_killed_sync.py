"""Sync processes killed (SIGKILL) at random points of apply, then restarted, converge.

The three emulators run on loopback in this test process (uvicorn threads), so they outlive
every sync process. Each sync is a subprocess — `segsync sync -c segsync.yaml` when the CLI
has that command, else `sync_once.py` (the same run through the library) — with its state in
SQLite in a temporary directory. A process is killed after a random number of writes seen by
the emulators, or after a random delay; the next one resumes. After a last run that is let
finish, every platform must hold exactly what one uninterrupted run reaches on a fresh world
of the same seed, without duplicates, and a further run must write nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fault_world import (
    FAULT_SIZE,
    PLATFORMS,
    Dump,
    Edit,
    connector_config,
    dump_platform,
    edit_platforms,
    is_write,
    make_connector,
    make_emulator,
    seed_platforms,
)

from segsync.clock import SystemClock
from segsync.connector import Connector
from segsync.emulator import Emulator

HERE = Path(__file__).resolve().parent
KILLS = int(os.environ.get("SEGSYNC_FAULT_KILLS", "4"))
RUN_TIMEOUT = 120.0

CONFIG = """\
state: sqlite:///{state}
schema:
  first_name: text
  country: {{type: enum, options: [FR, BE, DE, US, GB]}}
  lifetime_value: number
  last_purchase_at: date
platforms:
{platforms}
sync:
  conflicts: {{default: latest}}
segments:
  french:
    rule: 'country = "FR"'
"""


def sync_command(config: Path) -> list[str]:
    """`segsync sync -c CONFIG` when the CLI has it, else the library stand-in."""
    from segsync.cli import app

    names = {c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands}
    if "sync" in names:
        return [str(Path(sys.executable).with_name("segsync")), "sync", "-c", str(config)]
    return [sys.executable, str(HERE / "sync_once.py"), str(config)]


@dataclasses.dataclass
class LoopbackWorld:
    """Emulators served on loopback, a config pointing at them, and a state directory."""

    emulators: dict[str, Emulator]
    hosts: dict[str, str]
    config: Path

    def writes(self) -> dict[str, list[str]]:
        """The write requests each emulator saw so far, as "METHOD path"."""
        return {
            name: [
                f"{entry.method} {entry.path}"
                for entry in list(emulator.log.entries)
                if is_write(name, entry.method, entry.path)
            ]
            for name, emulator in self.emulators.items()
        }

    def writes_seen(self) -> int:
        return sum(len(w) for w in self.writes().values())

    def edit(self) -> list[Edit]:
        """Edit contacts on every platform (`fault_world.edit_platforms`), over loopback."""

        async def main() -> list[Edit]:
            connectors = self._connectors()
            try:
                return await edit_platforms(connectors)
            finally:
                for connector in connectors.values():
                    await connector.aclose()

        return asyncio.run(main())

    def _connectors(self) -> dict[str, Connector]:
        return {
            name: make_connector(name, emulator, SystemClock(), base_url=self.hosts[name])
            for name, emulator in self.emulators.items()
        }

    def dumps(self) -> dict[str, Dump]:
        async def main() -> dict[str, Dump]:
            out = {}
            for name, emulator in self.emulators.items():
                connector = make_connector(name, emulator, SystemClock(), base_url=self.hosts[name])
                out[name] = await dump_platform(connector)
                await connector.aclose()
            return out

        return asyncio.run(main())

    def run(
        self, *, kill_after_writes: int | None = None, kill_after: float | None = None
    ) -> tuple[int | None, str]:
        """One sync process, killed (SIGKILL) after `kill_after_writes` writes or `kill_after`
        seconds after its first write; returns (exit code, output), code None when killed."""
        before = self.writes_seen()
        started = time.monotonic()
        proc = subprocess.Popen(
            sync_command(self.config),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=self.config.parent,
        )
        killed = False
        first_write: float | None = None
        while proc.poll() is None:
            now = time.monotonic()
            if now - started > RUN_TIMEOUT:
                proc.kill()
                pytest.fail(f"a sync process ran over {RUN_TIMEOUT} s")
            written = self.writes_seen() - before
            if written and first_write is None:
                first_write = now
            due = (kill_after_writes is not None and written >= kill_after_writes) or (
                kill_after is not None
                and first_write is not None
                and now - first_write >= kill_after
            )
            if due:
                proc.send_signal(signal.SIGKILL)
                killed = True
                break
            time.sleep(0.002)
        out, err = proc.communicate(timeout=RUN_TIMEOUT)
        if killed:
            return None, err
        return proc.returncode, out + err


@contextlib.contextmanager
def loopback_world(tmp: Path, seed: int, size: int) -> Iterator[LoopbackWorld]:
    """Seeded emulators on loopback and a segsync.yaml for them (state in `tmp`)."""
    emulators = {p: make_emulator(p, SystemClock(), seed=seed, loopback=True) for p in PLATFORMS}
    with contextlib.ExitStack() as stack:
        hosts = {}
        for name, emulator in emulators.items():
            url = stack.enter_context(emulator.serving())
            hosts[name] = url.removesuffix(emulator.base_path)
        blocks = "\n".join(
            f"  {name}: {json.dumps(connector_config(name, emu, hosts[name], loopback=True))}"
            for name, emu in emulators.items()
        )
        tmp.mkdir(parents=True, exist_ok=True)
        config = tmp / "segsync.yaml"
        config.write_text(CONFIG.format(state=tmp / "state.db", platforms=blocks))

        async def seed_them() -> None:
            connectors = {
                p: make_connector(p, e, SystemClock(), base_url=hosts[p])
                for p, e in emulators.items()
            }
            await seed_platforms(connectors, seed, size)
            for connector in connectors.values():
                await connector.aclose()

        asyncio.run(seed_them())
        for emulator in emulators.values():
            emulator.log.clear()
        yield LoopbackWorld(emulators, hosts, config)


def test_killed_syncs_converge_to_an_uninterrupted_run(tmp_path: Path) -> None:
    """SIGKILL at random points of apply, restart, finish: the same state as no kill.

    Two phases (the initial sync, then a sync of edits made on every platform), each with
    `SEGSYNC_FAULT_KILLS` / 2 killed processes before one that is let finish.
    """
    seed, size = 5, FAULT_SIZE
    with loopback_world(tmp_path / "reference", seed, size) as reference:
        code, output = reference.run()
        assert code == 0, output
        initial_writes = reference.writes_seen()
        reference.edit()
        code, output = reference.run()
        assert code == 0, output
        expected = reference.dumps()
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
        writes_before = world.writes()
        code, output = world.run()
        assert code == 0, output
        extra_writes = {
            p: w[len(writes_before[p]) :]
            for p, w in world.writes().items()
            if w != writes_before[p]
        }

    done = [k for k in kills if ":" not in k]
    print(f"sync processes killed: {len(done)} of {KILLS} attempts")
    for k in kills:
        print("  killed", k)
    assert len(done) >= KILLS // 2, "most processes finished before they could be killed"
    for platform, dump in actual.items():
        assert dump.duplicates == (), f"{platform}: duplicate contacts {dump.duplicates}"
        assert dump.by_email() == expected[platform].by_email(), platform
    for edit in edits:
        for platform, dump in actual.items():
            _email, fields, _tags, _consent = dump.by_email()[edit.email]
            for name, value in edit.change.fields.items():
                assert (name, str(value)) in fields, f"{edit} lost on {platform}"
    assert extra_writes == {}
