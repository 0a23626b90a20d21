"""Hostile contact data through the engine: invalid, unicode and case-variant emails, and
oversized values, on three in-process platform emulators.

Invalid emails are planted in a platform's read answers (the emulators refuse to store
them); the rest is written on the platforms as a person would. Each must end either synced
consistently everywhere or as a per-record error naming the record's email, and must not
touch what the state store already holds for anyone else.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from answers import READS, CorruptingTransport, Read, json_rewrite, store_contents
from fault_world import (
    PLATFORMS,
    Dump,
    connector_config,
    dump_platform,
    make_connector,
    make_emulator,
    seed_platforms,
)

from segsync.clock import VirtualClock
from segsync.connector import Connector, ContactChange, registry
from segsync.model import normalize_email
from segsync.rules import parse
from segsync.state import SQLiteStateStore
from segsync.sync import Engine, RunReport, SegmentTarget
from segsync.testing.data import DEFAULT_SCHEMA


@dataclasses.dataclass
class World:
    """Three emulators, a connector per platform "on the platform side", and the engine."""

    clock: VirtualClock
    people: dict[str, Connector]
    engine: Engine
    engine_side: dict[str, Connector]
    db: Path

    async def sync(self) -> RunReport:
        report = await self.engine.sync()
        self.clock.advance(60)
        return report

    async def dumps(self) -> dict[str, Dump]:
        return {p: await dump_platform(c) for p, c in self.people.items()}

    async def close(self) -> None:
        for connector in (*self.people.values(), *self.engine_side.values()):
            await connector.aclose()


async def make_world(
    tmp: Path,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    segments: Sequence[SegmentTarget] = (),
) -> World:
    clock = VirtualClock()
    emulators = {p: make_emulator(p, clock, seed=2) for p in PLATFORMS}
    people = {p: make_connector(p, e, clock) for p, e in emulators.items()}
    await seed_platforms(people, 2, 9)
    wrap = transports or {}
    engine_side = {
        p: registry.get(p)(
            connector_config(p, e, "http://127.0.0.1:8080"),
            schema=DEFAULT_SCHEMA,
            transport=wrap.get(p) or e.transport(),
            clock=clock,
        )
        for p, e in emulators.items()
    }
    db = tmp / "state.db"
    engine = Engine(
        engine_side,
        SQLiteStateStore(db, clock=clock),
        schema=DEFAULT_SCHEMA,
        clock=clock,
        segments=segments,
    )
    return World(clock, people, engine, engine_side, db)


async def write(world: World, platform: str, changes: Sequence[ContactChange]) -> None:
    results = await world.people[platform].write(list(changes))
    assert all(r.ok for r in results), results
    world.clock.advance(60)


def field(dump: Dump, email: str, name: str) -> Any:
    return dict(dump.by_email()[normalize_email(email)][1]).get(name)


def test_emails_differing_only_in_case_are_one_contact(tmp_path: Path) -> None:
    """The same address in three casings on three platforms: one contact, fields merged."""

    async def main() -> tuple[list[RunReport], dict[str, Dump]]:
        world = await make_world(tmp_path)
        await write(
            world,
            "mailchimp",
            [
                ContactChange(
                    email="Ada.Lovelace@Example.COM", create=True, fields={"first_name": "Ada"}
                )
            ],
        )
        await write(
            world,
            "hubspot",
            [
                ContactChange(
                    email="ada.lovelace@example.com", create=True, fields={"country": "FR"}
                )
            ],
        )
        await write(
            world,
            "brevo",
            [
                ContactChange(
                    email="ADA.LOVELACE@EXAMPLE.com", create=True, fields={"lifetime_value": 5.0}
                )
            ],
        )
        reports = [await world.sync(), await world.sync()]
        dumps = await world.dumps()
        await world.close()
        return reports, dumps

    reports, dumps = asyncio.run(main())

    assert [r.status for r in reports] == ["ok", "ok"]
    assert reports[1].writes == 0
    for platform, dump in dumps.items():
        assert dump.duplicates == (), platform
        ada = [r for r in dump.records if r[0] == "ada.lovelace@example.com"]
        assert len(ada) == 1, platform
        assert field(dump, "ada.lovelace@example.com", "first_name") == "Ada"
        assert field(dump, "ada.lovelace@example.com", "country") == "FR"
        assert field(dump, "ada.lovelace@example.com", "lifetime_value") == "5.0"


UNICODE_EMAILS = {
    "mailchimp": "zoë@exämple.com",
    "hubspot": "用户@例子.广告",
    "brevo": "müller@bücher.de",
}


def test_unicode_emails_sync_under_one_key(tmp_path: Path) -> None:
    """Unicode local parts and IDN domains reach every platform once, or fail by name."""

    async def main() -> tuple[list[RunReport], dict[str, Dump]]:
        world = await make_world(tmp_path)
        for platform, email in UNICODE_EMAILS.items():
            await write(
                world,
                platform,
                [
                    ContactChange(
                        email=email, create=True, fields={"first_name": f"from {platform}"}
                    )
                ],
            )
        reports = [await world.sync(), await world.sync()]
        dumps = await world.dumps()
        await world.close()
        return reports, dumps

    reports, dumps = asyncio.run(main())

    refused = {(e.platform, normalize_email(e.email or "")) for r in reports for e in r.errors}
    for origin, email in UNICODE_EMAILS.items():
        key = normalize_email(email)
        for platform, dump in dumps.items():
            assert dump.duplicates == (), platform
            held = [r for r in dump.records if r[0] == key]
            if (platform, key) in refused:
                assert held == [], f"{email} refused by {platform} but stored there"
                continue
            assert len(held) == 1, f"{email} (from {origin}) on {platform}: {len(held)} records"
            assert field(dump, email, "first_name") == f"from {origin}"
    assert reports[1].writes == 0


@pytest.mark.parametrize("size", [300, 70_000])
def test_oversized_values_arrive_whole_or_fail_by_name(tmp_path: Path, size: int) -> None:
    """A huge text value is copied exactly, or refused with the record's email: never cut."""
    value = "é" * size

    async def main() -> tuple[list[RunReport], dict[str, Dump]]:
        world = await make_world(tmp_path)
        await write(
            world,
            "hubspot",
            [ContactChange(email="big@example.org", create=True, fields={"first_name": value})],
        )
        reports = [await world.sync(), await world.sync()]
        dumps = await world.dumps()
        await world.close()
        return reports, dumps

    reports, dumps = asyncio.run(main())

    errors = {e.platform: e for r in reports for e in r.errors}
    for platform, dump in dumps.items():
        if platform in errors:
            assert errors[platform].email == "big@example.org", errors[platform]
            continue
        assert field(dump, "big@example.org", "first_name") == value, f"cut on {platform}"
    others = [e for e in errors.values() if e.email != "big@example.org"]
    assert others == []


def set_emails(read: Read, emails: Sequence[str]) -> Any:
    """An answer rewrite: the first items of a read page carry `emails`, in order."""

    def rewrite(read: Read, body: bytes, request: httpx.Request) -> tuple[bytes, dict[str, str]]:
        def change(data: dict[str, Any]) -> None:
            for item, email in zip(data.get(read.items) or [], emails, strict=False):
                holder = item
                for key in read.email[:-1]:
                    holder = holder[key]
                holder[read.email[-1]] = email

        return json_rewrite(body, change), {}

    return rewrite


EMAILLESS_CONTACTS = {
    "hubspot": "a CRM record may have no email; segsync syncs email contacts only",
    "brevo": "a contact may be known by SMS or ext_id alone; segsync syncs email contacts only",
}
"""Platforms whose records may lack an email: such a record is skipped, not an error."""

INVALID_EMAILS = [
    "not-an-email",
    "two@@example.com",
    "spa ce@example.com",
    "x" * 70 + "@example.com",
    "trailing.@example.com",
    "",
]


@pytest.mark.parametrize("platform", list(READS))
def test_invalid_emails_in_an_answer_are_record_errors(tmp_path: Path, platform: str) -> None:
    """Each misread record is reported with its email and id; nothing stored changes for it."""

    async def main() -> tuple[RunReport, dict[str, Any], dict[str, Any], dict[str, Dump]]:
        world = await make_world(tmp_path)
        emulator_transport = world.engine_side[platform].transport
        assert emulator_transport is not None
        corrupting = CorruptingTransport(
            emulator_transport, READS[platform], set_emails(READS[platform], INVALID_EMAILS)
        )
        world.engine_side[platform] = registry.get(platform)(
            world.engine_side[platform].config,
            schema=DEFAULT_SCHEMA,
            transport=corrupting,
            clock=world.clock,
        )
        world.engine.connectors[platform] = world.engine_side[platform]
        first = await world.sync()
        assert first.status == "ok", first.errors
        # a person edits every contact on the platform: the next read carries them all
        remotes = [c async for page in world.people[platform].read(None) for c in page.contacts]
        assert len(remotes) >= len(INVALID_EMAILS)
        edits = [
            ContactChange(
                email=r.email, platform_id=r.platform_id, fields={"last_purchase_at": "2026-02-02"}
            )
            for r in remotes
        ]
        await write(world, platform, edits)
        before = store_contents(world.db)
        corrupting.active = True
        report = await world.sync()
        after = store_contents(world.db)
        assert corrupting.corrupted > 0
        dumps = await world.dumps()
        await world.close()
        return report, before, after, dumps

    report, before, after, dumps = asyncio.run(main())

    expected = [e for e in INVALID_EMAILS if e or platform not in EMAILLESS_CONTACTS]
    invalid = {e.email: e for e in report.errors if e.code == "invalid_email"}
    assert sorted(invalid) == sorted(expected), report.errors
    assert len(report.errors) == len(invalid), report.errors
    for table in ("owned", "ledger", "members"):
        assert after[table] == before[table], table
    assert {r[1] for r in after["canonical"]} == {r[1] for r in before["canonical"]}
    for bad, error in invalid.items():
        assert error.platform == platform
        assert error.platform_id, error
        kept = [row for row in before["base"] if row[1] == platform and row[3] == error.platform_id]
        assert kept, f"the record of {bad!r} was not known before"
        assert kept[0] in after["base"], f"the stored base of the record of {bad!r} changed"
        cid = kept[0][2]
        assert [r for r in after["canonical"] if r[1] == cid] == [
            r for r in before["canonical"] if r[1] == cid
        ]
    for other, dump in dumps.items():
        assert dump.duplicates == (), other
        assert not set(INVALID_EMAILS) & {r[0] for r in dump.records}, other


def test_a_segment_that_explodes_in_dnf_is_materialised_with_a_diagnostic(tmp_path: Path) -> None:
    """2**20 DNF terms: the run does not hang; each platform says why it materialised."""
    rule = " and ".join(f'(first_name = "n{i}" or lifetime_value > {i * 40})' for i in range(20))
    segment = SegmentTarget("wide", parse(rule))

    async def main() -> tuple[RunReport, float]:
        world = await make_world(tmp_path, segments=[segment])
        started = time.monotonic()
        report = await world.sync()
        elapsed = time.monotonic() - started
        await world.close()
        return report, elapsed

    report, elapsed = asyncio.run(main())

    assert report.status == "ok", report.errors
    assert elapsed < 20
    about = [d for d in report.diagnostics if d.get("segment") == "wide"]
    assert {d.get("platform") for d in about} == set(PLATFORMS), about
    assert any("cap" in d.get("message", "") for d in about), about
