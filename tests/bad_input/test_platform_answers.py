"""Platform answers that are malformed, truncated or contradict their own paging.

A `CorruptingTransport` wraps an emulator's in-process transport and rewrites the answers
to the contact read of one platform (`READS`, as data). The engine first syncs the three
platforms cleanly; then a few contacts are edited on the corrupted platform and a sync runs
against the corrupted answers. It must end with an error that names the platform and the
endpoint, within a bounded time, and must leave the state store as it was (nothing lost or
half-taken: base snapshots, canonical view, cursors, ids, ledger, ownership). Once the
answers are sound again, the next run takes the edits in: none is lost.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from answers import (
    READS,
    AnswerRewrite,
    CorruptingTransport,
    Read,
    json_rewrite,
    store_contents,
)
from fault_world import (
    PLATFORMS,
    connector_config,
    dump_platform,
    make_connector,
    make_emulator,
    seed_platforms,
)

from segsync.clock import VirtualClock
from segsync.connector import ContactChange, registry
from segsync.state import SQLiteStateStore
from segsync.sync import Engine, RunReport
from segsync.testing.data import DEFAULT_SCHEMA

Corruption = AnswerRewrite


def _json(read: Read, body: bytes, change: Callable[[dict[str, Any]], None]) -> bytes:
    return json_rewrite(body, change)


def invalid_json(read: Read, body: bytes, request: httpx.Request) -> tuple[bytes, dict[str, str]]:
    return b'{"' + read.items.encode() + b'": [{"id": 1,, ]', {}


def truncated(read: Read, body: bytes, request: httpx.Request) -> tuple[bytes, dict[str, str]]:
    return body[: max(1, len(body) // 2)], {}


def html_page(read: Read, body: bytes, request: httpx.Request) -> tuple[bytes, dict[str, str]]:
    return b"<html><body>502 Bad Gateway</body></html>", {"content-type": "text/html"}


def items_not_a_list(
    read: Read, body: bytes, request: httpx.Request
) -> tuple[bytes, dict[str, str]]:
    return _json(read, body, lambda d: d.__setitem__(read.items, {"unexpected": True})), {}


def body_is_a_list(read: Read, body: bytes, request: httpx.Request) -> tuple[bytes, dict[str, str]]:
    return b"[1, 2, 3]", {}


def items_of_wrong_shape(
    read: Read, body: bytes, request: httpx.Request
) -> tuple[bytes, dict[str, str]]:
    def change(data: dict[str, Any]) -> None:
        data[read.items] = [{"unexpected": "shape"}, *data.get(read.items, [])]

    return _json(read, body, change), {}


def _first_page(request: httpx.Request) -> bool:
    if request.method == "GET":
        return request.url.params.get("offset") in (None, "0")
    return str(json.loads(request.content or b"{}").get("after") or "0") == "0"


def pages_end_early(
    read: Read, body: bytes, request: httpx.Request
) -> tuple[bytes, dict[str, str]]:
    """The total stays true, but the pages end after the first record."""

    def change(data: dict[str, Any]) -> None:
        data[read.items] = data.get(read.items, [])[:1] if _first_page(request) else []
        data.pop("paging", None)

    return _json(read, body, change), {}


def cursor_repeats(read: Read, body: bytes, request: httpx.Request) -> tuple[bytes, dict[str, str]]:
    """The next-page cursor is always the first page's: the pages never end."""

    def change(data: dict[str, Any]) -> None:
        data["paging"] = {"next": {"after": "0", "link": "?after=0"}}

    return _json(read, body, change), {}


CORRUPTIONS: dict[str, Corruption] = {
    "invalid_json": invalid_json,
    "truncated": truncated,
    "html_page": html_page,
    "items_not_a_list": items_not_a_list,
    "body_is_a_list": body_is_a_list,
    "items_of_wrong_shape": items_of_wrong_shape,
    "pages_end_early": pages_end_early,
    "cursor_repeats": cursor_repeats,
}

NOT_APPLICABLE = {
    ("mailchimp", "cursor_repeats"): "Mailchimp pages by offset, it has no cursor",
    ("brevo", "cursor_repeats"): "Brevo pages by offset, it has no cursor",
}


@dataclasses.dataclass
class Result:
    report: RunReport | None
    error: BaseException | None
    before: dict[str, list[tuple[Any, ...]]]
    after: dict[str, list[tuple[Any, ...]]]
    corrupted: int
    edits_taken: bool  # the edits reached the other platforms once answers were sound


async def _scenario(platform: str, corruption: Corruption, tmp: Path) -> Result:
    clock = VirtualClock()
    emulators = {p: make_emulator(p, clock, seed=3) for p in PLATFORMS}
    seeders = {p: make_connector(p, emulators[p], clock) for p in PLATFORMS}
    await seed_platforms(seeders, 3, 30)
    # the people's records are readable (search's index lag) when the runs start
    clock.advance(max(float(getattr(e, "read_lag_seconds", 0.0)) for e in emulators.values()))
    corrupting = CorruptingTransport(emulators[platform].transport(), READS[platform], corruption)
    connectors = {
        p: registry.get(p)(
            connector_config(p, e, "http://127.0.0.1:8080"),
            schema=DEFAULT_SCHEMA,
            transport=corrupting if p == platform else e.transport(),
            clock=clock,
        )
        for p, e in emulators.items()
    }
    db = tmp / "state.db"
    engine = Engine(
        connectors, SQLiteStateStore(db, clock=clock), schema=DEFAULT_SCHEMA, clock=clock
    )
    for _ in range(2):  # the second run settles the echoes of the first one's writes
        settled = await engine.sync()
        assert settled.status == "ok", settled.errors
        clock.advance(60)

    remotes = [c async for page in seeders[platform].read(None) for c in page.contacts]
    edited = sorted(remotes, key=lambda r: r.email)[:3]
    changes = [
        ContactChange(
            email=r.email, platform_id=r.platform_id, fields={"first_name": f"Edited {i}"}
        )
        for i, r in enumerate(edited)
    ]
    assert all(r.ok for r in await seeders[platform].write(changes))
    clock.advance(60)

    before = store_contents(db)
    corrupting.active = True
    report: RunReport | None = None
    error: BaseException | None = None
    try:
        report = await asyncio.wait_for(engine.sync(), timeout=30)
    except Exception as exc:  # the test reports what the run raised
        error = exc
    after = store_contents(db)
    corrupting.active = False
    clock.advance(60)

    healed = await engine.sync()
    clock.advance(max(float(getattr(e, "read_lag_seconds", 0.0)) for e in emulators.values()))
    others = [p for p in PLATFORMS if p != platform]
    dumps = {p: (await dump_platform(seeders[p])).by_email() for p in others}
    wanted = {(c.email, c.fields["first_name"]) for c in changes}
    edits_taken = healed.status == "ok" and all(
        (email, ("first_name", name)) in {(e, f) for e, rec in d.items() for f in rec[1]}
        for d in dumps.values()
        for email, name in wanted
    )
    for connector in (*connectors.values(), *seeders.values()):
        await connector.aclose()
    return Result(report, error, before, after, corrupting.corrupted, edits_taken)


CASES = [
    pytest.param(
        platform,
        name,
        id=f"{platform}-{name}",
        marks=[pytest.mark.skip(reason=NOT_APPLICABLE[(platform, name)])]
        if (platform, name) in NOT_APPLICABLE
        else [],
    )
    for platform in READS
    for name in CORRUPTIONS
]


def _but_healthy_cursors(state: dict[str, Any], platform: str) -> dict[str, Any]:
    """The stored state with only `platform`'s cursor among the cursors."""
    return {
        **state,
        "cursors": [row for row in state.get("cursors", []) if row[1] == platform],
    }


@pytest.mark.parametrize(("platform", "name"), CASES)
def test_corrupt_read_answer_is_a_clear_error_and_loses_nothing(
    platform: str, name: str, tmp_path: Path
) -> None:
    """Named error (platform + endpoint), store unchanged, edits taken once answers heal."""
    result = asyncio.run(_scenario(platform, CORRUPTIONS[name], tmp_path))

    assert result.corrupted > 0, "the corruption never applied"
    assert result.error is None, f"the run raised (or hung) instead of reporting: {result.error!r}"
    assert result.report is not None
    mine = [e for e in result.report.errors if e.platform == platform]
    assert mine, f"a corrupt answer from {platform} went unnoticed"
    assert [e.code for e in mine] == ["read_failed"]
    message = mine[0].message
    assert platform in message, message
    assert READS[platform].endpoint in message, f"endpoint not named: {message}"
    # the healthy platforms' reads completed, so their cursors may advance to the time of that
    # read; everything else, and the corrupted platform's cursor, must be exactly as before
    assert _but_healthy_cursors(result.after, platform) == _but_healthy_cursors(
        result.before, platform
    )
    assert result.edits_taken, "an edit made before the corrupt answers was lost"
