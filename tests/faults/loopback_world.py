"""Emulators served on loopback (they outlive sync processes) and `segsync sync` runs.

`loopback_world(tmp, seed, size)` serves the three emulators from this process (uvicorn
threads), seeds them, writes a `segsync.yaml` pointing at them (state in SQLite in `tmp`)
and yields a `LoopbackWorld`: run `segsync sync -c` as a subprocess (and kill it at a chosen
point), sync through the library, edit the platforms, dump them. `rewrites` makes an
emulator rewrite some of its answers (a corrupted platform, over real HTTP).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from fault_world import (
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
from starlette.types import Message, Receive, Scope, Send

from segsync.clock import SystemClock
from segsync.config import load_config
from segsync.connector import Connector
from segsync.emulator import Emulator
from segsync.state import OwnedObject, open_store
from segsync.sync import RunReport
from segsync.sync.build import build_engine, config_name

__all__ = ["CONFIG", "AnswerRewriter", "LoopbackWorld", "loopback_world", "sync_command"]

RUN_TIMEOUT = 120.0

AnswerRewriter = Callable[[str, str, bytes], bytes | None]
"""(method, path, body of a 200 answer) -> the body to send instead, or None to leave it."""

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
"""
# No segment: a kill between a segment's creation and its ownership record is a known gap,
# tested deterministically (and marked) in test_killed_publication.py.


def sync_command(config: Path) -> list[str]:
    """`segsync sync -c CONFIG`, with this interpreter's console script."""
    return [str(Path(sys.executable).with_name("segsync")), "sync", "-c", str(config)]


@dataclasses.dataclass
class LoopbackWorld:
    """Emulators served on loopback, a config pointing at them, and a state directory."""

    emulators: dict[str, Emulator]
    hosts: dict[str, str]
    config: Path
    size: int  # contacts seeded

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

    def corrupt(self, on: bool) -> None:
        """Turn the `rewrites` of `loopback_world` on or off."""
        for emulator in self.emulators.values():
            if hasattr(emulator, "rewrite"):
                emulator.corrupt = on  # type: ignore[attr-defined]

    def object_names(self) -> dict[str, list[str]]:
        """The segments, lists and tags each platform holds, by name (sorted, repeats kept)."""
        return {
            name: sorted(PLATFORMS[name].object_names(emulator))
            for name, emulator in self.emulators.items()
        }

    def writes_seen(self) -> int:
        return sum(len(w) for w in self.writes().values())

    def edit(self) -> list[Edit]:
        """Edit contacts on every platform (`fault_world.edit_platforms`), over loopback."""

        async def main() -> list[Edit]:
            connectors = self._connectors()
            try:
                return await edit_platforms(connectors, self.size)
            finally:
                for connector in connectors.values():
                    await connector.aclose()

        return asyncio.run(main())

    def _connectors(self) -> dict[str, Connector]:
        return {
            name: make_connector(name, emulator, SystemClock(), base_url=self.hosts[name])
            for name, emulator in self.emulators.items()
        }

    def run_in_process(self) -> RunReport:
        """One uninterrupted sync through the library (`build_engine`, as the CLI does)."""

        async def main() -> RunReport:
            engine = build_engine(load_config(self.config), clock=SystemClock())
            try:
                return await engine.sync()
            finally:
                for connector in engine.connectors.values():
                    await connector.aclose()
                engine.store.close()

        return asyncio.run(main())

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
                raise AssertionError(f"a sync process ran over {RUN_TIMEOUT} s")
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
def loopback_world(
    tmp: Path, seed: int, size: int, rewrites: Mapping[str, AnswerRewriter] | None = None
) -> Iterator[LoopbackWorld]:
    """Seeded emulators on loopback and a segsync.yaml for them (state in `tmp`).

    `rewrites[platform]` rewrites that emulator's answers once `LoopbackWorld.corrupt` is set.
    """
    emulators = {p: make_emulator(p, SystemClock(), seed=seed, loopback=True) for p in PLATFORMS}
    for platform, rewrite in (rewrites or {}).items():
        emulators[platform].__class__ = _rewriting(type(emulators[platform]))
        emulators[platform].rewrite = rewrite  # type: ignore[attr-defined]
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
            # the containers the seeding made (a folder, tag lists) are segsync's, as an
            # earlier run's would be: the state records them (`Connector.made`)
            store = open_store(f"sqlite:///{tmp / 'state.db'}")
            for p, connector in connectors.items():
                for kind, name, ref in connector.made():
                    store.set_owned(config_name(emulators), OwnedObject(p, kind, name, ref),
                                    at="seeded")
            store.close()
            for connector in connectors.values():
                await connector.aclose()

        asyncio.run(seed_them())
        for emulator in emulators.values():
            emulator.log.clear()
        yield LoopbackWorld(emulators, hosts, config, size)


def _rewriting(cls: type[Emulator]) -> type[Emulator]:
    """`cls`, whose 200 answers go through `self.rewrite` while `self.corrupt` is set."""

    class Rewriting(cls):  # type: ignore[valid-type, misc]
        corrupt = False
        rewrite: AnswerRewriter

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http" or not self.corrupt:
                await super().__call__(scope, receive, send)
                return
            start: dict[str, Any] = {}
            chunks: list[bytes] = []

            async def capture(message: Message) -> None:
                if message["type"] == "http.response.start":
                    start.update(message)
                    return
                if message["type"] != "http.response.body":
                    await send(message)
                    return
                chunks.append(message.get("body", b""))
                if message.get("more_body"):
                    return
                body = b"".join(chunks)
                if start.get("status") == 200:
                    body = self.rewrite(scope["method"], scope["path"], body) or body
                headers = [(k, v) for k, v in start.get("headers", []) if k != b"content-length"]
                headers.append((b"content-length", str(len(body)).encode()))
                await send({**start, "headers": headers})
                await send({"type": "http.response.body", "body": body})

            await super().__call__(scope, receive, capture)

    Rewriting.__name__ = f"Rewriting{cls.__name__}"
    return Rewriting
