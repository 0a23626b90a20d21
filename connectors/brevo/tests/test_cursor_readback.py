"""Brevo read cursors that advance to the start of a completed read, and one read-back pass
for concurrent imports."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import math
import re
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from segsync_brevo import BrevoConnector
from segsync_brevo.emulator import BrevoEmulator

from segsync.clock import VirtualClock
from segsync.connector import ContactChange, ReadPage
from segsync.model import FieldSpec, FieldType, Schema

SCHEMA = Schema(fields={"first_name": FieldSpec(type=FieldType.TEXT)})
LIST_READS = re.compile("^/v3/contacts$")
BULK = 1200  # more than one page of 1000

Body = Callable[[BrevoConnector, BrevoEmulator, VirtualClock], Awaitable[None]]


class RefuseImports(httpx.AsyncBaseTransport):
    """Answers 400 to imports of addresses starting with `refused`; passes the rest on."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/contacts/import") and b'"refused' in request.content:
            body = {"code": "invalid_parameter", "message": "refused by the test"}
            return httpx.Response(400, json=body, request=request)
        return await self.inner.handle_async_request(request)


def run(body: Body, config: dict[str, Any] | None = None) -> None:
    """Run `body` with a connector on a fresh emulator sharing a virtual clock."""
    clock = VirtualClock()
    emulator = BrevoEmulator(clock=clock)

    async def main() -> None:
        connector = BrevoConnector(
            {"api_key": emulator.api_key, "import_threshold": 10, **(config or {})},
            schema=SCHEMA,
            transport=RefuseImports(emulator.transport()),
            clock=clock,
        )
        async with connector:
            await connector.prepare(SCHEMA.fields, ())
            await body(connector, emulator, clock)

    asyncio.run(main())


def changes(prefix: str, count: int) -> list[ContactChange]:
    return [
        ContactChange(email=f"{prefix}{i:05d}@example.com", create=True, fields={"first_name": "N"})
        for i in range(count)
    ]


async def read_all(connector: BrevoConnector, cursor: str | None) -> tuple[list[str], str]:
    """Emails read from `cursor` and the last cursor given (the input one when none)."""
    pages: list[ReadPage] = [p async for p in connector.read(cursor)]
    emails = [c.email for p in pages for c in p.contacts]
    last = next((p.cursor for p in reversed(pages) if p.cursor), cursor)
    assert last is not None
    return emails, last


@pytest.mark.slow
def test_read_an_hour_after_a_bulk_write_rereads_nothing_next_time() -> None:
    """After a sync that read the imported contacts, the next read is one (empty) page."""

    async def body(connector: BrevoConnector, emu: BrevoEmulator, clock: VirtualClock) -> None:
        assert all(r.ok for r in await connector.write(changes("bulk", BULK)))
        clock.advance(3600)
        first, cursor = await read_all(connector, None)
        clock.advance(3600)
        before = emu.log.count("GET", LIST_READS)
        again, _ = await read_all(connector, cursor)
        pages = emu.log.count("GET", LIST_READS) - before

        assert len(first) == BULK
        assert again == []
        assert pages <= 1, f"re-read {pages} pages of the old import"

    run(body)


@pytest.mark.slow
def test_syncs_right_after_a_bulk_write_stop_rereading_it() -> None:
    """A read inside the overlap re-reads the import once (de-duplicated), then never."""

    async def body(connector: BrevoConnector, emu: BrevoEmulator, clock: VirtualClock) -> None:
        await connector.write(changes("bulk", BULK))
        first, cursor = await read_all(connector, None)
        clock.advance(3600)
        second, cursor = await read_all(connector, cursor)
        clock.advance(3600)
        before = emu.log.count("GET", LIST_READS)
        third, _ = await read_all(connector, cursor)
        pages = emu.log.count("GET", LIST_READS) - before

        assert len(first) == BULK
        assert second == []
        assert third == []
        assert pages <= 1, f"the third read re-read {pages} pages"

    run(body)


def test_changes_after_the_read_started_or_inside_the_overlap_are_read_next_time() -> None:
    """A contact changed after a read's start, and one stamped inside the overlap but seen
    only later, both come in the next read, once."""

    async def body(connector: BrevoConnector, emu: BrevoEmulator, clock: VirtualClock) -> None:
        await connector.write(changes("bulk", 3))
        clock.advance(3600)
        started = clock.now()
        _, cursor = await read_all(connector, None)
        clock.advance(1)
        await connector.write(
            [ContactChange(email="bulk00001@example.com", fields={"first_name": "After"})]
        )
        late = emu.contact("bulk00002@example.com")
        assert late is not None
        late.modified_at = started - dt.timedelta(seconds=120)  # a late commit
        clock.advance(3600)
        again, cursor = await read_all(connector, cursor)
        clock.advance(3600)
        after, _ = await read_all(connector, cursor)

        assert sorted(again) == ["bulk00001@example.com", "bulk00002@example.com"]
        assert after == []

    run(body)


def test_old_format_cursors_still_load_and_advance() -> None:
    """A cursor written before the mark could advance still reads from its mark, skipping
    what it saw; the cursor it leaves moves on."""

    async def body(connector: BrevoConnector, emu: BrevoEmulator, clock: VirtualClock) -> None:
        await connector.write(changes("old", 1))
        old = emu.contact("old00000@example.com")
        assert old is not None
        clock.advance(60)
        await connector.write(changes("new", 1))
        stamp = emu.stamp(old.modified_at)
        payload = {"since": stamp, "seen": {stamp: [str(old.id)]}}
        cursor = "v1:" + base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()
        from_old, advanced = await read_all(connector, cursor)
        clock.advance(3600)
        before = emu.log.count("GET", LIST_READS)
        after, _ = await read_all(connector, advanced)

        assert from_old == ["new00000@example.com"]
        assert after == []
        assert emu.log.count("GET", LIST_READS) - before <= 1

    run(body)


@pytest.mark.slow
def test_concurrent_imports_share_one_read_back_pass() -> None:
    """Write batches running at once (as the engine runs them) read back in one pass."""

    async def body(connector: BrevoConnector, emu: BrevoEmulator, clock: VirtualClock) -> None:
        batches = [changes(f"b{n}x", 1000) for n in range(4)]
        before = emu.log.count("GET", LIST_READS)
        results = await asyncio.gather(*(connector.write(b) for b in batches))
        reads = emu.log.count("GET", LIST_READS) - before
        flat = [r for batch in results for r in batch]

        assert emu.log.count("POST", re.compile("/contacts/import$")) == 4
        assert all(r.ok and r.created for r in flat)
        assert len({r.platform_id for r in flat}) == 4000
        for batch, answered in zip(batches, results, strict=True):
            assert [r.email for r in answered] == [c.email for c in batch]
        assert reads == math.ceil(4000 / 1000), f"{reads} read-back pages for 4,000 contacts"

    run(body)


@pytest.mark.slow
def test_a_lone_import_reads_back_once_and_a_failed_one_not_at_all() -> None:
    """One import: one pass of its pages; an import Brevo refuses outright reads nothing."""

    async def body(connector: BrevoConnector, emu: BrevoEmulator, clock: VirtualClock) -> None:
        before = emu.log.count("GET", LIST_READS)
        results = await connector.write(changes("one", BULK))
        reads = emu.log.count("GET", LIST_READS) - before

        assert all(r.ok for r in results)
        assert reads == math.ceil(BULK / 1000)

        clock.advance(3600)  # the read-back covers its own overlap window, not this import
        before = emu.log.count("GET", LIST_READS)
        refused, taken = await asyncio.gather(
            connector.write(changes("refused", 20)), connector.write(changes("two", 20))
        )
        reads = emu.log.count("GET", LIST_READS) - before

        assert not any(r.ok for r in refused)
        assert all(r.ok for r in taken)
        assert reads == 1

        before = emu.log.count("GET", LIST_READS)
        alone = await connector.write(changes("refused", 20))

        assert not any(r.ok for r in alone)
        assert emu.log.count("GET", LIST_READS) == before

    run(body)
