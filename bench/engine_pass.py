"""The engine alone: pull (from memory), reconcile and plan N contacts present on three platforms.

Run as its own process so that its peak memory (`ru_maxrss`) is the engine's alone:

    .venv/bin/python bench/engine_pass.py --contacts 1000000 [--state DIR] [--resync]
        [--profile] [--measure-source] [--workers N]

Prints one JSON object: contacts, seconds (wall, the whole `Engine.plan()`), cpu_seconds (this
process's CPU time in it, which a loaded machine does not inflate, with that of the merge's
worker processes: `worker_cpu_seconds` per pass, their largest peak `worker_peak_rss_bytes`;
`--workers 1` merges in this process alone), peak_rss_bytes (the
whole process; peak_rss_bytes_after: its peak once each pass was done; start_rss_bytes: the
interpreter with its imports, before any work), and the plan's counts;
with `--measure-source`, also source_cpu_seconds: the CPU time of reading the three in-memory
copies alone (done once before, not part of `seconds`), the stand-in
connectors' share of the figure rather than the engine's. With `--resync`, the plan is then
applied (`apply`: the re-check reads every platform again) and a second plan is made with
nothing changed (`resync`: an unchanged re-sync, whose plan writes nothing). With
`--profile`, `profile` holds each pass's time per engine phase (`segsync.sync.timing`).

No network: each platform is an in-memory connector that streams its copy of the audience
page by page (generated on the fly, never held whole), with the real platforms' page sizes
and rule compilers. Every contact is on all three platforms; 1 in 100 has a different company
on one platform (a change to reconcile), the rest agree; each platform's opt-ins rest on its
own evidence, as the real connectors read them. The state store is a SQLite file in
a temporary directory, as a deployment would use.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import datetime as dt
import json
import resource
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dataset import SCHEMA, SEGMENTS, TAGS, BenchContact, audience

from segsync.clock import SystemClock
from segsync.connector import (
    Capabilities,
    ChangeResult,
    Connector,
    ConnectorConfig,
    ContactChange,
    ReadPage,
    RemoteContact,
    TagRepresentation,
    registry,
)
from segsync.http import RequestStats
from segsync.model import Consent, ConsentStatus, FieldSpec
from segsync.rules import load_rule
from segsync.rules.compiler import RuleCompiler, Strictness
from segsync.state import SQLiteStateStore
from segsync.sync import Engine, SegmentTarget, SyncPolicy
from segsync.sync.plan import Plan
from segsync.sync.timing import PhaseTimer, profiling

__all__ = ["MemoryCopy", "engine_pass", "main", "source_cpu_seconds"]

UPDATED = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
# frozen: shared. A platform's opt-in rests on its own evidence (as the real connectors read
# it); an opt-in without evidence would be no proof, and every copy would be written down
CONSENTS = {
    status: Consent(
        status=status,
        evidence=None if status is ConsentStatus.NON_SUBSCRIBED else f"status={status.value}",
    )
    for status in ConsentStatus
}
T = TypeVar("T")
PLATFORMS: dict[str, int] = {
    # name: read page size — the real connectors' figures (their compilers are the real ones)
    "mailchimp": 1000,
    "hubspot": 200,
    "brevo": 1000,
}


_REMOTE_FIELDS = frozenset(RemoteContact.model_fields)
_new_remote = RemoteContact.__new__
_set = object.__setattr__


def _remote(values: dict[str, Any]) -> RemoteContact:
    """`RemoteContact.model_construct(**values)` given every field (as `model_construct`
    leaves it, without its per-field default lookups): the stand-in's share stays small."""
    remote = _new_remote(RemoteContact)
    _set(remote, "__dict__", values)
    _set(remote, "__pydantic_fields_set__", _REMOTE_FIELDS)
    _set(remote, "__pydantic_extra__", None)
    _set(remote, "__pydantic_private__", None)
    return remote


_BLOCK = 1000
_SHARED: collections.OrderedDict[tuple[int, int], list[BenchContact]] = (
    collections.OrderedDict())
"""The blocks of the audience generated last (each copy reads them in turn): a few."""


def _shared_audience(contacts: int) -> Iterator[BenchContact]:
    """`audience(contacts)`, each block of it generated once for the copies reading it in
    step (the stand-in's own time is not the engine's)."""
    for start in range(0, contacts, _BLOCK):
        key = (contacts, start)
        block = _SHARED.get(key)
        if block is None:
            block = list(audience(min(_BLOCK, contacts - start), start=start))
            _SHARED[key] = block
            while len(_SHARED) > 8:
                _SHARED.popitem(last=False)
        yield from block


class MemoryCopy(Connector):
    """One platform's copy of the audience, streamed from memory; writes are not expected."""

    name: ClassVar[str] = "memory"
    title: ClassVar[str] = "in-memory copy"
    config_model: ClassVar[type[ConnectorConfig]] = ConnectorConfig
    capabilities: ClassVar[Capabilities] = Capabilities(
        write_batch_size=1000,
        read_page_size=1000,
        membership_batch_size=1000,
        max_concurrency=1,
        tags=TagRepresentation.TAGS,
        static_segments="tag",
    )

    def __init__(self, platform: str, contacts: int, *, variant: int) -> None:
        super().__init__({}, schema=SCHEMA, clock=SystemClock())
        self.platform = platform
        self.contacts = contacts
        self.variant = variant
        self.page_size = PLATFORMS[platform]
        self._stats = RequestStats()
        #: what segsync wrote, per record: read back from then on (as a platform would)
        self.written: dict[str, tuple[dict[str, Any], frozenset[str], frozenset[str]]] = {}

    def compiler(self, strictness: Strictness | str) -> RuleCompiler | None:
        """The real platform connector's compiler (built by that connector)."""
        return registry.get(self.platform).build_compiler(self.schema, strictness=strictness)

    @property
    def stats(self) -> RequestStats:
        return self._stats

    async def check(self) -> None:
        return None

    async def prepare(self, fields: Mapping[str, FieldSpec], tags: Sequence[str]) -> None:
        return None

    async def read(self, cursor: str | None = None) -> AsyncIterator[ReadPage]:
        page: list[RemoteContact] = []
        # one page of the largest size a round, whatever a platform's page size: the three
        # copies read in step, sharing the contacts they generate (`_SHARED`)
        rounds = max(1, max(PLATFORMS.values()) // self.page_size)
        for i, contact in enumerate(_shared_audience(self.contacts)):
            fields = dict(contact.fields)
            if i % 100 == 0 and i % 3 == self.variant:
                fields["company"] = "Changed"
            platform_id, tags = f"{self.platform}-{i}", contact.tags
            if platform_id in self.written:
                written, added, removed = self.written[platform_id]
                fields.update(written)
                tags = (tags | added) - removed
            page.append(_remote({
                "platform_id": platform_id, "email": contact.email, "fields": fields,
                "tags": tags, "consent": CONSENTS[contact.consent], "engagement": {},
                "updated_at": UPDATED, "deleted": False, "reachable": None,
                "unread": frozenset(), "aliases": frozenset(),
            }))
            if len(page) == self.page_size:
                yield ReadPage(page, str(i))
                page = []
                for _ in range(rounds):
                    await asyncio.sleep(0)
        if page:
            yield ReadPage(page, str(self.contacts))

    async def write(self, changes: Sequence[ContactChange]) -> list[ChangeResult]:
        for c in changes:
            if c.platform_id is not None:
                fields, added, removed = self.written.get(
                    c.platform_id, ({}, frozenset(), frozenset()))
                self.written[c.platform_id] = (
                    {**fields, **{k: v for k, v in c.fields.items() if v is not None}},
                    (added - c.tags_remove) | c.tags_add,
                    (removed - c.tags_add) | c.tags_remove,
                )
        return [ChangeResult(email=c.email, ok=True, platform_id=c.platform_id) for c in changes]

    async def ensure_static(self, name: str, ref: str | None) -> str:
        return ref or name

    async def publish_native(
        self, name: str, definition: Mapping[str, Any], ref: str | None
    ) -> str:
        return ref or name

    async def change_static_members(
        self, ref: str, add: Sequence[str], remove: Sequence[str]
    ) -> list[ChangeResult]:
        return [ChangeResult(email=e, ok=True) for e in [*add, *remove]]

    async def delete_owned(self, kind: str, ref: str) -> None:
        return None


async def source_cpu_seconds(contacts: int) -> float:
    """The CPU time of streaming the three copies with no engine (the connectors' share),
    read together as the pull reads them."""

    async def drain(copy: MemoryCopy) -> None:
        async for _page in copy.read():
            pass

    started = time.process_time()
    await asyncio.gather(*(drain(MemoryCopy(name, contacts, variant=n))
                           for n, name in enumerate(PLATFORMS)))
    return time.process_time() - started


def _counts(plan: Plan) -> dict[str, dict[str, int]]:
    return {
        name: {
            "read": p.counts.get("read", 0),
            "unchanged": p.counts.get("unchanged", 0),
            "changes": len(p.changes),
            "membership_adds": sum(len(m.add) for m in p.memberships),
        }
        for name, p in plan.platforms.items()
    }


async def engine_pass(
    contacts: int, state_dir: Path, *, resync: bool = False, profile: bool = False,
    merge_workers: int | None = None,
) -> dict[str, Any]:
    """Plan a first sync of `contacts` contacts present on all three platforms; with
    `resync`, apply it, then plan again with nothing changed (an unchanged re-sync); with
    `profile`, where each pass spends its time (`segsync.sync.timing` phases)."""
    store = SQLiteStateStore(state_dir / "state.db")
    connectors = {name: MemoryCopy(name, contacts, variant=n) for n, name in enumerate(PLATFORMS)}
    segments = [SegmentTarget(name, load_rule(rule, SCHEMA)) for name, rule in SEGMENTS.items()]
    # imported before the clock starts, and so that a broken compiler fails at once
    compilers = {
        name: compiler
        for name in PLATFORMS
        if (compiler := registry.get(name).build_compiler(SCHEMA, strictness="warn")) is not None
    }
    engine = Engine(
        connectors,
        store,
        config="bench",
        policy=SyncPolicy(platforms=tuple(PLATFORMS)),
        schema=SCHEMA,
        segments=segments,
        compilers=compilers,
        clock=SystemClock(),
        workers=merge_workers,
    )
    timers: dict[str, PhaseTimer] = {}
    peaks: dict[str, int] = {}
    workers: dict[str, float] = {}  # the CPU time of the merge's worker processes, per pass

    async def measured(name: str, step: Awaitable[T]) -> tuple[T, float, float]:
        timer = timers.setdefault(name, PhaseTimer())
        with profiling(timer) if profile else contextlib.nullcontext(timer):
            started, cpu, forked = time.perf_counter(), time.process_time(), workers_cpu()
            done = await step
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
            forked = workers_cpu() - forked
            peaks[name] = peak_rss_bytes()  # the process's peak so far: after this pass
            if forked:
                workers[name] = round(forked, 3)
            return done, seconds, cpu + forked

    plan, seconds, cpu = await measured("plan", engine.plan())
    result: dict[str, Any] = {
        "contacts": contacts,
        "tags": list(TAGS),
        "seconds": round(seconds, 3),
        "cpu_seconds": round(cpu, 3),
        "platforms": _counts(plan),
        "errors": len(plan.errors),
    }
    if resync:
        report, seconds, cpu = await measured("apply", engine.apply(plan))
        result["apply"] = {"seconds": round(seconds, 3), "cpu_seconds": round(cpu, 3),
                           "status": report.status, "records_written": report.writes,
                           "errors": len(report.errors)}
        again, seconds, cpu = await measured("resync", engine.plan())
        result["resync"] = {"seconds": round(seconds, 3), "cpu_seconds": round(cpu, 3),
                            "platforms": _counts(again), "errors": len(again.errors),
                            "writes": again.write_count}
    result["peak_rss_bytes_after"] = peaks
    if workers:
        result["worker_cpu_seconds"] = workers  # counted in cpu_seconds
        result["worker_peak_rss_bytes"] = workers_peak_rss_bytes()
    if profile:
        result["profile"] = {name: timer.as_dict() for name, timer in timers.items()}
    store.close()
    return result


def rss_bytes() -> int:
    """This process's resident set size now (Linux; 0 where it cannot be read)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0
    return pages * resource.getpagesize()


def peak_rss_bytes() -> int:
    """This process's peak resident set size (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def workers_cpu() -> float:
    """The CPU time of this process's children that ended (the merge's workers)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def workers_peak_rss_bytes() -> int:
    """The largest peak resident set of this process's children that ended (each worker
    shares the pages it inherited with this process until either writes them)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--state", type=Path, default=None, help="directory of the state file")
    parser.add_argument("--measure-source", action="store_true",
                        help="also time reading the in-memory copies alone")
    parser.add_argument("--resync", action="store_true",
                        help="also apply the plan, then time an unchanged re-sync's plan")
    parser.add_argument("--profile", action="store_true",
                        help="where each pass spends its time, per engine phase")
    parser.add_argument("--workers", type=int, default=None,
                        help="processes merging the worklist (default: the engine's choice)")
    args = parser.parse_args()
    start_rss = rss_bytes()  # the interpreter and imports: what does not grow with N
    source = asyncio.run(source_cpu_seconds(args.contacts)) if args.measure_source else None
    with tempfile.TemporaryDirectory(prefix="segsync-bench-", dir=args.state) as tmp:
        result = asyncio.run(
            engine_pass(args.contacts, Path(tmp), resync=args.resync, profile=args.profile,
                        merge_workers=args.workers)
        )
    if source is not None:
        result["source_cpu_seconds"] = round(source, 3)
    result["peak_rss_bytes"] = peak_rss_bytes()
    result["start_rss_bytes"] = start_rss
    print(json.dumps(result))


if __name__ == "__main__":
    main()
