"""The sync phases of the benchmark: initial sync, unchanged re-sync, 1% changed re-sync.

The audience before the first sync (documented in bench/README.md):

- HubSpot, the CRM, holds all N contacts with their fields, tags (the multi-checkbox
  property) and subscription statuses;
- Mailchimp already holds the first `overlap` of them, identical (an audience that was
  exported once): segsync must match them by email and write nothing to them;
- Brevo is empty.

So the initial sync reads N from HubSpot and `overlap` from Mailchimp, creates N - overlap
members on Mailchimp and N contacts on Brevo with their tags, and publishes the segment:
natively on Mailchimp and HubSpot, as a list of its members on Brevo. Between the second and
the third sync, 1% of the contacts are edited on Mailchimp (a new company and the `vip` tag
toggled), by a separate client whose calls are not counted.

Platforms named in `emulated` run in this process on one shared `VirtualClock` (their time
is emulated time); the others are served on loopback in their own processes and reached over
real sockets (their time is wall time).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime as dt
import functools
import re
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dataset import DOMAIN, SCHEMA, SEGMENTS, TAGS, audience, changed
from minimum import FACTS, Workload, floor_seconds, largest_async_write, minimum_calls
from platforms import (
    PLATFORMS,
    Role,
    ServedEmulator,
    ShiftedClock,
    TimedTransport,
    in_process,
    make_connector,
    new_offset,
    serve,
)

from segsync.clock import Clock, VirtualClock
from segsync.connector import Connector, ContactChange
from segsync.model import Contact
from segsync.rules import evaluate, load_rule
from segsync.state import SQLiteStateStore
from segsync.sync import Engine, RunReport, SegmentTarget, SyncPolicy
from segsync.sync.timing import PhaseTimer, profiling

__all__ = ["READ_ENDPOINT", "Scenario", "roles", "workloads"]

READ_ENDPOINT = re.compile(r"^(GET|HEAD) |search|batch/read")
"""Endpoint labels that read (HubSpot's search and batch reads are POSTs)."""

EVALUATED_AT = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
SOURCE = "hubspot"
OVERLAP_PLATFORM = "mailchimp"
EDITED_ON = "mailchimp"


def roles(contacts: int, overlap: int) -> dict[str, Role]:
    """What each platform holds before the first sync."""
    held = {name: Role() for name in PLATFORMS}
    held[SOURCE] = Role(count=contacts)
    held[OVERLAP_PLATFORM] = Role(count=min(overlap, contacts))
    return held


@functools.cache
def _segment_rule() -> Any:
    return load_rule(next(iter(SEGMENTS.values())), SCHEMA)


def _in_segment(tags: Iterable[str], fields: Mapping[str, str]) -> bool:
    """Whether a contact is in the benchmark's segment (by the reference evaluator)."""
    rule = _segment_rule()
    contact = Contact(email=f"someone@{DOMAIN}", fields=dict(fields), tags=frozenset(tags))
    return bool(evaluate(rule, contact, now=EVALUATED_AT, schema=SCHEMA))


def workloads(contacts: int, overlap: int, fraction: float) -> dict[str, dict[str, Workload]]:
    """Per phase, per platform, what the phase asks (computed from the audience itself)."""
    tag_all: collections.Counter[str] = collections.Counter()
    tag_new: collections.Counter[str] = collections.Counter()
    sets_all: collections.Counter[frozenset[str]] = collections.Counter()
    members = 0
    subscribed_new = 0
    for i, c in enumerate(audience(contacts)):
        tag_all.update(c.tags)
        # Brevo lists only contacts with opt-in: the others are one bulk write of their own
        sets_all[c.tags if c.consent.value == "subscribed" else frozenset({"(no opt-in)"})] += 1
        if i >= overlap:
            tag_new.update(c.tags)
            subscribed_new += c.consent.value == "subscribed"
        members += _in_segment(c.tags, c.fields)
    edits = changed(contacts, fraction)
    adds: collections.Counter[str] = collections.Counter()
    removes: collections.Counter[str] = collections.Counter()
    sets_edit: collections.Counter[frozenset[str]] = collections.Counter()
    seg_add = seg_remove = losing_tags = unconsented = 0
    for i, after in edits:
        before = next(audience(1, start=i))
        losing_tags += bool(before.tags - after.tags)
        if after.consent.value != "subscribed":
            # Brevo: no list for someone without opt-in; tags ride in the record's attribute
            unconsented += 1
            continue
        adds.update(after.tags - before.tags)
        removes.update(before.tags - after.tags)
        sets_edit[frozenset(after.tags - before.tags)] += 1
        was, now = _in_segment(before.tags, before.fields), _in_segment(after.tags, after.fields)
        seg_add += now and not was
        seg_remove += was and not now
    natives = {"mailchimp": 1, "hubspot": 1, "brevo": 0}
    statics = {"mailchimp": 0, "hubspot": 0, "brevo": 1}
    created = {"mailchimp": contacts - overlap, "hubspot": 0, "brevo": contacts}
    first = {"first_run": True, "recheck": True, "engagement": True}
    initial = {
        "mailchimp": Workload(
            read=overlap,
            created=created["mailchimp"],
            tag_adds=dict(tag_new),
            native_segments=natives["mailchimp"],
            **first,
        ),
        "hubspot": Workload(
            read=contacts,
            native_segments=natives["hubspot"],
            consent_reads=contacts,  # no opt-out among them: each one's status is read
            **first,
        ),
        "brevo": Workload(
            read=0,
            created=contacts,
            tag_adds=dict(tag_all),
            tag_sets=dict(sets_all),
            static_segments=statics["brevo"],
            static_adds=members,
            # the owned folder, a list per tag, the base list, the temporary import list
            containers_created=3 + len(tag_all),
            containers_deleted=1,
            # the engagement refresh reads every list: the account's first and the tag
            # lists the setup made
            engagement_lists=1 + len(TAGS),
            **first,
        ),
    }
    unchanged = {name: Workload(read=created[name]) for name in PLATFORMS}
    edited = len(edits)
    after_edit = {
        "mailchimp": Workload(read=edited, recheck=True),
        "hubspot": Workload(updated=edited, updated_tag_removes=losing_tags, recheck=True),
        "brevo": Workload(
            updated=edited,
            tag_adds=dict(adds),
            tag_removes=dict(removes),
            tag_sets=dict(sets_edit),
            static_adds=seg_add,
            static_removes=seg_remove,
            # an import of contacts without opt-in lands in a temporary list, then deleted
            containers_created=1 if unconsented else 0,
            containers_deleted=1 if unconsented else 0,
            recheck=True,
        ),
    }
    return {"initial": initial, "unchanged": unchanged, "changed": after_edit}


def _calls(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, int]:
    out = {}
    for name, data in after.items():
        delta = int(data["calls"] - before.get(name, {}).get("calls", 0))
        if delta:
            out[name] = delta
    return out


@dataclasses.dataclass
class Scenario:
    """The three platforms, their connectors, and the engine; `run_phase` measures one sync."""

    contacts: int
    overlap: int
    latency_ms: float
    emulated: frozenset[str]
    fraction: float = 0.01
    #: seconds between two syncs (a sync scheduled hourly)
    interval: float = 3600.0
    #: measure each sync's engine phases (`segsync.sync.timing`)
    profile: bool = False

    def __post_init__(self) -> None:
        self.virtual = VirtualClock()
        self.offset = new_offset()
        self.system = ShiftedClock(self.offset)
        self.served: dict[str, ServedEmulator] = {}
        self.emulators: dict[str, Any] = {}
        self.transports: dict[str, TimedTransport] = {}
        self.connectors: dict[str, Connector] = {}
        self.setup_calls: dict[str, dict[str, int]] = {}
        self._tmp = tempfile.TemporaryDirectory(prefix="segsync-bench-")

    def clock_of(self, name: str) -> Clock:
        return self.virtual if name in self.emulated else self.system

    def start(self) -> None:
        """Seed and start the emulators (loopback ones in parallel processes)."""
        held = roles(self.contacts, self.overlap)
        pending = {}
        for name in PLATFORMS:
            if name not in self.emulated:
                pending[name] = serve(name, held[name], self.latency_ms, self.offset)
        for name in PLATFORMS:
            if name in self.emulated:
                self.emulators[name] = in_process(name, held[name], self.latency_ms, self.virtual)
        for name, starting in pending.items():
            self.served[name] = starting.wait()
        for name in PLATFORMS:
            clock = self.clock_of(name)
            if name in self.emulated:
                emulator = self.emulators[name]
                inner: httpx.AsyncBaseTransport = emulator.transport()
                timed = TimedTransport(inner, clock)
                connector = make_connector(
                    PLATFORMS[name], emulator, "http://127.0.0.1:9", transport=timed, clock=clock
                )
            else:
                timed = TimedTransport(httpx.AsyncHTTPTransport(), clock)
                connector = self.served[name].connector(timed, clock)
            self.transports[name] = timed
            self.connectors[name] = connector

    async def setup(self) -> None:
        """`prepare` on every platform (fields, tag containers): counted apart."""
        for name, connector in self.connectors.items():
            before = connector.stats.as_dict()
            await connector.prepare(SCHEMA.fields, TAGS)
            self.setup_calls[name] = _calls(before, connector.stats.as_dict())
        store = SQLiteStateStore(Path(self._tmp.name) / "state.db")
        segments = [SegmentTarget(n, load_rule(r, SCHEMA)) for n, r in SEGMENTS.items()]
        self.engine = Engine(
            self.connectors,
            store,
            config="bench",
            policy=SyncPolicy(platforms=tuple(self.connectors)),
            schema=SCHEMA,
            segments=segments,
            clock=self.system,
        )

    def pass_time(self, seconds: float) -> None:
        """Let `seconds` pass on every clock (the time between two scheduled syncs)."""
        self.offset.value += seconds
        self.virtual.advance(seconds)

    async def run_phase(self, phase: str, work: Mapping[str, Workload]) -> dict[str, Any]:
        """One `Engine.sync()`, measured per platform beside its minimum and floor."""
        self.pass_time(self.interval)
        before = {n: c.stats.as_dict() for n, c in self.connectors.items()}
        started = {n: self.clock_of(n).monotonic() for n in self.connectors}
        cpu = {n: s.cpu_seconds() for n, s in self.served.items()}
        own_cpu = time.process_time()
        wall = time.perf_counter()
        timer = PhaseTimer()
        with profiling(timer) if self.profile else contextlib.nullcontext(timer):
            report: RunReport = await self.engine.sync()
        wall = time.perf_counter() - wall
        own_cpu = time.process_time() - own_cpu
        cpu = {n: round(s.cpu_seconds() - cpu[n], 1) for n, s in self.served.items()}
        platforms: dict[str, Any] = {}
        for name, connector in self.connectors.items():
            by_endpoint = _calls(before[name], connector.stats.as_dict())
            reads = sum(v for k, v in by_endpoint.items() if READ_ENDPOINT.search(k))
            calls = sum(by_endpoint.values())
            caps, facts = connector.capabilities, FACTS[name]
            items = minimum_calls(caps, facts, work[name])
            largest = largest_async_write(caps, work[name])
            floor = floor_seconds(
                caps, facts, items, self.latency_ms / 1000, largest_async_write=largest
            )
            minimum = sum(i.calls for i in items)
            elapsed = max(0.0, self.transports[name].last_answer - started[name])
            counts = report.platforms.get(name)
            platforms[name] = {
                "clock": "emulated" if name in self.emulated else "wall",
                "calls": calls,
                "reads": reads,
                "writes": calls - reads,
                "minimum_calls": minimum,
                "minimum_by_kind": {i.kind: i.calls for i in items if i.calls},
                "calls_ratio": round(calls / minimum, 3) if minimum else None,
                "seconds": round(elapsed, 3),
                **floor,
                "time_ratio": round(elapsed / floor["floor_s"], 3) if floor["floor_s"] else None,
                # beside the floor: the CPU of this process (engine and connectors, shared by
                # every platform of the sync) and of the platform's emulator (None: in-process,
                # so counted in the engine's)
                "engine_cpu_s": round(own_cpu, 1),
                "emulator_cpu_s": cpu.get(name),
                "records_written": (counts.created + counts.updated) if counts else 0,
                "members_changed": (counts.members_added + counts.members_removed) if counts else 0,
                "records_read": counts.read if counts else 0,
                "rate_limited_429": connector.stats.rate_limited
                - sum(int(v.get("rate_limited", 0)) for v in before[name].values()),
                "by_endpoint": dict(sorted(by_endpoint.items())),
            }
        return {
            "phase": phase,
            "status": report.status,
            "errors": len(report.errors),
            "first_errors": [e.message for e in report.errors[:3]],
            "wall_seconds": round(wall, 3),
            "cpu_seconds": {
                "engine_and_connectors": round(own_cpu, 1),
                **{f"{n}_emulator": v for n, v in cpu.items()},
            },
            "record_writes": report.writes,
            "platforms": platforms,
            **({"profile": timer.as_dict()} if self.profile else {}),
        }

    async def edit(self) -> int:
        """Edit `fraction` of the contacts on `EDITED_ON` through a separate, uncounted client."""
        name = EDITED_ON
        clock = self.clock_of(name)
        if name in self.emulated:
            emulator = self.emulators[name]
            editor = make_connector(
                PLATFORMS[name],
                emulator,
                "http://127.0.0.1:9",
                transport=emulator.transport(),
                clock=clock,
            )
        else:
            editor = self.served[name].connector(httpx.AsyncHTTPTransport(), clock)
        edits = changed(self.contacts, self.fraction)
        originals = {i: next(audience(1, start=i)) for i, _ in edits}
        batch = [
            ContactChange(
                email=after.email,
                fields={"company": after.fields["company"]},
                tags_add=frozenset(after.tags - originals[i].tags),
                tags_remove=frozenset(originals[i].tags - after.tags),
            )
            for i, after in edits
        ]
        async with editor:
            await editor.prepare(SCHEMA.fields, TAGS)
            results = await editor.write(batch)
        failed = [r for r in results if not r.ok]
        if failed:
            raise RuntimeError(f"editing {name} failed: {failed[0].error}")
        return len(batch)

    async def close(self) -> None:
        for connector in self.connectors.values():
            await connector.aclose()
        for served in self.served.values():
            served.stop()
        self._tmp.cleanup()
