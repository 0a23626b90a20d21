"""The three platforms of the benchmark: emulators served on loopback, seeded, and connectors.

Each platform is a row of `PLATFORMS` (emulator, connector, the config that points one at the
other, how the audience is seeded on it). Nothing below branches on a platform's name.

An emulator is seeded before it serves, in its own process, without touching the request log
or the rate limits the benchmark measures: the fields, properties and tag containers are
created by the platform's own connector (`prepare`) and the contacts are written directly
into the emulator's state (HubSpot, as a CRM holding the audience) or through the connector
in-process (the Mailchimp overlap). Then the log and the limits are reset and the emulator
serves on 127.0.0.1 with the benchmark's latency.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import multiprocessing
import multiprocessing.connection
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dataset import SCHEMA, TAGS, audience

from segsync.clock import Clock, SystemClock
from segsync.connector import Connector, load_object, registry
from segsync.emulator import Emulator

__all__ = [
    "PLATFORMS",
    "PlatformSpec",
    "Role",
    "ServedEmulator",
    "ShiftedClock",
    "StartingEmulator",
    "TimedTransport",
    "in_process",
    "make_connector",
    "new_offset",
    "serve",
]


@dataclasses.dataclass(frozen=True)
class Role:
    """What a platform holds before the first sync: contacts [start, start + count)."""

    count: int = 0
    start: int = 0


def _seed_hubspot(emulator: Any, role: Role) -> None:
    """Write the audience into HubSpot's state as a CRM holds it (properties + statuses)."""
    for contact in audience(role.count, start=role.start):
        emulator.seed_contact(
            {
                "email": contact.email,
                "firstname": contact.fields["first_name"],
                "lastname": contact.fields["last_name"],
                "company": contact.fields["company"],
                "segsync_tags": ";".join(sorted(contact.tags)),
            }
        )
        if contact.consent.value == "subscribed":
            emulator.set_subscription(contact.email, subscribed=True)


@dataclasses.dataclass(frozen=True)
class PlatformSpec:
    """One platform: its connector (from the registry), the settings the benchmark adds to
    its emulator's `client_config()`, and how contacts are seeded on it."""

    name: str
    #: settings added to the emulator's client config (e.g. an account tier)
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: direct seeding into the emulator's state (None: seed through the connector)
    seed_direct: Callable[[Any, Role], None] | None = None

    def connector_class(self) -> type[Connector]:
        return registry.get(self.name)

    def emulator_class(self) -> type[Emulator]:
        """The emulator the connector names in `emulator_path` (imported only here)."""
        path = self.connector_class().emulator_path
        if path is None:
            raise LookupError(f"connector {self.name!r} ships no emulator")
        cls: type[Emulator] = load_object(path)
        return cls

    def config(self, emulator: Emulator, base_url: str) -> dict[str, Any]:
        """The connector config that reaches `emulator` at `base_url`."""
        return {**emulator.client_config(), **self.settings, "base_url": base_url}


PLATFORMS: dict[str, PlatformSpec] = {
    spec.name: spec
    for spec in (
        PlatformSpec("mailchimp"),
        PlatformSpec("hubspot", settings={"tier": "starter"}, seed_direct=_seed_hubspot),
        PlatformSpec("brevo"),
    )
}


def make_connector(
    spec: PlatformSpec,
    emulator: Any,
    base_url: str,
    *,
    transport: httpx.AsyncBaseTransport | None,
    clock: Clock,
) -> Connector:
    """A connector of `spec` pointed at `emulator` (at `base_url`, or through `transport`)."""
    cls = spec.connector_class()
    return cls(spec.config(emulator, base_url), schema=SCHEMA, transport=transport, clock=clock)


async def _seed(spec: PlatformSpec, emulator: Emulator, role: Role) -> None:
    """Create fields and tag containers, then the role's contacts, with no latency."""
    connector = make_connector(
        spec, emulator, "http://127.0.0.1:9", transport=emulator.transport(), clock=emulator.clock
    )
    async with connector:
        await connector.prepare(SCHEMA.fields, TAGS)
        if role.count and spec.seed_direct is not None:
            spec.seed_direct(emulator, role)
        elif role.count:
            chunk = 10_000
            for start in range(role.start, role.start + role.count, chunk):
                size = min(chunk, role.start + role.count - start)
                changes = [c.change() for c in audience(size, start=start)]
                results = await connector.write(changes)
                failed = [r for r in results if not r.ok]
                if failed:
                    raise RuntimeError(f"seeding {spec.name} failed: {failed[0].error}")


class ShiftedClock:
    """The system clock plus a shared offset: moving the offset is time passing between syncs.

    The offset lives in shared memory (`multiprocessing.Value`), so the emulator processes and
    the benchmark's connectors and engine see the same jump ("the next sync, an hour later").
    """

    def __init__(self, offset: Any) -> None:
        self.offset = offset
        self._system = SystemClock()

    def now(self) -> dt.datetime:
        return self._system.now() + dt.timedelta(seconds=self.offset.value)

    def monotonic(self) -> float:
        return float(self._system.monotonic() + self.offset.value)

    async def sleep(self, seconds: float) -> None:
        await self._system.sleep(seconds)


class SeedingClock:
    """The clock an emulator seeds on: from `days` before `clock`'s now, 1 s a reading.

    Seeded records thus look modified over the past, not in the seconds before the first sync
    (incremental reads re-read a recent overlap, which a fresh seed would fill entirely).
    """

    def __init__(self, clock: Clock, days: float = 365.0) -> None:
        self._clock = clock
        self._at = clock.now() - dt.timedelta(days=days)

    def now(self) -> dt.datetime:
        self._at += dt.timedelta(seconds=1)
        return self._at

    def monotonic(self) -> float:
        return self._clock.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)


def seeded_emulator(spec: PlatformSpec, role: Role, clock: Clock) -> Emulator:
    """An emulator of `spec` on `clock`, seeded with `role`; log and limits reset."""
    emulator = spec.emulator_class()(clock=SeedingClock(clock))
    asyncio.run(_seed(spec, emulator, role))
    emulator.clock = clock
    emulator.log.clear()
    emulator.reset_limits()
    emulator.rate_limited = 0
    return emulator


def _serve_child(
    name: str,
    role: Role,
    latency_ms: float,
    conn: multiprocessing.connection.Connection,
    offset: Any,
) -> None:
    """Child process: seed, then serve on loopback; send (base_url, config) once listening."""
    spec = PLATFORMS[name]
    emulator = seeded_emulator(spec, role, ShiftedClock(offset))
    emulator.latency = latency_ms / 1000.0

    def ready(url: str) -> None:
        conn.send({"base_url": url, "config": spec.config(emulator, url)})

    emulator.serve(host="127.0.0.1", port=0, on_ready=ready)


@dataclasses.dataclass
class ServedEmulator:
    """An emulator serving in a child process; `config` points a connector at it."""

    name: str
    process: multiprocessing.process.BaseProcess
    base_url: str
    config: dict[str, Any]
    offset: Any = None

    def connector(self, transport: httpx.AsyncBaseTransport, clock: Clock) -> Connector:
        cls = PLATFORMS[self.name].connector_class()
        return cls(self.config, schema=SCHEMA, transport=transport, clock=clock)

    def cpu_seconds(self) -> float:
        """User + system CPU time the emulator process has used so far (Linux /proc)."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        ticks = int(fields[11]) + int(fields[12])
        return ticks / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        """Stop the emulator process (killed if it has not exited 10 s after SIGTERM)."""
        if self.process.is_alive():
            self.process.terminate()
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(10)


@dataclasses.dataclass
class StartingEmulator:
    """An emulator process seeding itself; `wait()` returns it once it listens."""

    name: str
    process: multiprocessing.process.BaseProcess
    conn: multiprocessing.connection.Connection
    timeout: float
    #: the shared clock offset, kept alive while the child runs
    offset: Any = None

    def wait(self) -> ServedEmulator:
        if not self.conn.poll(self.timeout):
            self.process.terminate()
            raise RuntimeError(f"the {self.name} emulator did not start in {self.timeout:.0f} s")
        info = self.conn.recv()
        return ServedEmulator(
            self.name, self.process, info["base_url"], info["config"], self.offset
        )


def new_offset() -> Any:
    """A shared clock offset (seconds) for `ShiftedClock`s in this and the emulator processes."""
    return multiprocessing.get_context("spawn").Value("d", 0.0, lock=False)


def serve(
    name: str, role: Role, latency_ms: float, offset: Any = None, *, timeout: float = 900.0
) -> StartingEmulator:
    """Start `name`'s emulator in its own process, seeded with `role` (`wait()` for it)."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    offset = offset if offset is not None else new_offset()
    process = ctx.Process(
        target=_serve_child,
        args=(name, role, latency_ms, child, offset),
        name=f"emulator-{name}",
        daemon=True,
    )
    process.start()
    child.close()
    return StartingEmulator(name, process, parent, timeout, offset)


def in_process(name: str, role: Role, latency_ms: float, clock: Clock) -> Emulator:
    """`name`'s emulator in this process on `clock` (an emulated clock), seeded with `role`."""
    emulator = seeded_emulator(PLATFORMS[name], role, clock)
    emulator.latency = latency_ms / 1000.0
    return emulator


class TimedTransport(httpx.AsyncBaseTransport):
    """Passes requests on and remembers when the last answer arrived, on `clock`."""

    def __init__(self, inner: httpx.AsyncBaseTransport, clock: Clock) -> None:
        self.inner = inner
        self.clock = clock
        self.last_answer = clock.monotonic()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await self.inner.handle_async_request(request)
            await response.aread()
            return response
        finally:
            self.last_answer = self.clock.monotonic()

    async def aclose(self) -> None:
        await self.inner.aclose()


def iter_platforms() -> Iterator[PlatformSpec]:
    """The platforms in benchmark order."""
    return iter(PLATFORMS.values())
