"""The engine alone: pull (from memory), reconcile and plan N contacts present on three platforms.

Run as its own process so that its peak memory (`ru_maxrss`) is the engine's alone:

    .venv/bin/python bench/engine_pass.py --contacts 1000000 [--state DIR]

Prints one JSON object: contacts, seconds (wall, the whole `Engine.plan()`), cpu_seconds (this
process's CPU time in it, which a loaded machine does not inflate), peak_rss_bytes, and the
plan's counts; with `--measure-source`, also source_cpu_seconds: the CPU time of reading the
three in-memory copies alone (done once before, not part of `seconds`), the stand-in
connectors' share of the figure rather than the engine's.

No network: each platform is an in-memory connector that streams its copy of the audience
page by page (generated on the fly, never held whole), with the real platforms' page sizes
and rule compilers. Every contact is on all three platforms; 1 in 100 has a different company
on one platform (a change to reconcile), the rest agree. The state store is a SQLite file in
a temporary directory, as a deployment would use.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import resource
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dataset import SCHEMA, SEGMENTS, TAGS, audience

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

__all__ = ["MemoryCopy", "engine_pass", "main", "source_cpu_seconds"]

UPDATED = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
CONSENTS = {status: Consent(status=status) for status in ConsentStatus}  # frozen: shared
PLATFORMS: dict[str, int] = {
    # name: read page size — the real connectors' figures (their compilers are the real ones)
    "mailchimp": 1000,
    "hubspot": 200,
    "brevo": 1000,
}


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
        for i, contact in enumerate(audience(self.contacts)):
            fields = dict(contact.fields)
            if i % 100 == 0 and i % 3 == self.variant:
                fields["company"] = "Changed"
            page.append(
                RemoteContact.model_construct(
                    platform_id=f"{self.platform}-{i}",
                    email=contact.email,
                    fields=fields,
                    tags=contact.tags,
                    consent=CONSENTS[contact.consent],
                    engagement={},
                    updated_at=UPDATED,
                    deleted=False,
                )
            )
            if len(page) == self.page_size:
                yield ReadPage(page, str(i))
                page = []
                await asyncio.sleep(0)
        if page:
            yield ReadPage(page, str(self.contacts))

    async def write(self, changes: Sequence[ContactChange]) -> list[ChangeResult]:
        return [ChangeResult(email=c.email, ok=True, platform_id=c.platform_id) for c in changes]

    async def ensure_static(self, name: str, ref: str | None) -> str:
        return ref or name

    async def change_static_members(
        self, ref: str, add: Sequence[str], remove: Sequence[str]
    ) -> list[ChangeResult]:
        return [ChangeResult(email=e, ok=True) for e in [*add, *remove]]

    async def delete_owned(self, kind: str, ref: str) -> None:
        return None


async def source_cpu_seconds(contacts: int) -> float:
    """The CPU time of streaming the three copies with no engine (the connectors' share)."""
    started = time.process_time()
    for n, name in enumerate(PLATFORMS):
        async for _page in MemoryCopy(name, contacts, variant=n).read():
            pass
    return time.process_time() - started


async def engine_pass(contacts: int, state_dir: Path) -> dict[str, Any]:
    """Plan a first sync of `contacts` contacts present on all three platforms."""
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
    )
    started, cpu = time.perf_counter(), time.process_time()
    plan = await engine.plan()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    store.close()
    platforms = {
        name: {
            "read": p.counts.get("read", 0),
            "unchanged": p.counts.get("unchanged", 0),
            "changes": len(p.changes),
            "membership_adds": sum(len(m.add) for m in p.memberships),
        }
        for name, p in plan.platforms.items()
    }
    return {
        "contacts": contacts,
        "tags": list(TAGS),
        "seconds": round(seconds, 3),
        "cpu_seconds": round(cpu, 3),
        "platforms": platforms,
        "errors": len(plan.errors),
    }


def peak_rss_bytes() -> int:
    """This process's peak resident set size (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--state", type=Path, default=None, help="directory of the state file")
    parser.add_argument("--measure-source", action="store_true",
                        help="also time reading the in-memory copies alone")
    args = parser.parse_args()
    source = asyncio.run(source_cpu_seconds(args.contacts)) if args.measure_source else None
    with tempfile.TemporaryDirectory(prefix="segsync-bench-", dir=args.state) as tmp:
        result = asyncio.run(engine_pass(args.contacts, Path(tmp)))
    if source is not None:
        result["source_cpu_seconds"] = round(source, 3)
    result["peak_rss_bytes"] = peak_rss_bytes()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
