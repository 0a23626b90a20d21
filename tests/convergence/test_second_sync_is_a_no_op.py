"""One-run convergence as a property: after a first sync, the second one writes nothing.

For each platform emulator, generated values (letter case, empty vs unset, surrounding
whitespace, unicode NFC/NFD forms, dates, numbers, multi-select lists) are written to a
contact on a source platform (or on all three, with the same values, as the canonical side
does); a first sync copies them everywhere; the second sync must find every platform already
holding what the canonical view says: 0 writes reported and 0 write calls to any emulator.

CI runs few examples (`FAST_EXAMPLES`); `SEGSYNC_LONG=1` runs `LONG_EXAMPLES`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
import unicodedata
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from segsync_brevo import BrevoConnector
from segsync_brevo.emulator import BrevoEmulator
from segsync_hubspot import HubSpotConnector, HubSpotEmulator
from segsync_mailchimp import MailchimpConnector, MailchimpEmulator

from segsync.clock import VirtualClock
from segsync.connector import Connector, ContactChange
from segsync.emulator import Emulator
from segsync.model import ConsentStatus, FieldSpec, FieldType, Schema
from segsync.state import SQLiteStateStore
from segsync.sync import Engine

FAST_EXAMPLES = 8
LONG_EXAMPLES = 300
EXAMPLES = LONG_EXAMPLES if os.environ.get("SEGSYNC_LONG") == "1" else FAST_EXAMPLES

PLATFORMS = ("mailchimp", "hubspot", "brevo")
SOURCES = (*PLATFORMS, "everywhere")

SCHEMA = Schema(
    fields={
        "first_name": FieldSpec(type=FieldType.TEXT),
        "city": FieldSpec(type=FieldType.TEXT),
        "country": FieldSpec(type=FieldType.TEXT),
        "score": FieldSpec(type=FieldType.NUMBER),
        "visits": FieldSpec(type=FieldType.INTEGER),
        "joined": FieldSpec(type=FieldType.DATE),
        "topics": FieldSpec(type=FieldType.MULTI_ENUM, options=("News", "Events", "Offers")),
    }
)

#: write calls: whatever is not a GET, nor a POST that only reads
_READ_POSTS = re.compile(r"/search$|/batch/read$")

_WORDS = ["de", "DE", "Fr", "  lyon ", "Zoë", "Zoe\u0308", "Ångström", "A\u030angstro\u0308m",
          "", "   ", "Ünïcode ", "o'Brien", "straße"]


def _text() -> st.SearchStrategy[str | None]:
    unicode_forms = st.sampled_from(_WORDS).flatmap(
        lambda w: st.sampled_from([w, unicodedata.normalize("NFC", w),
                                   unicodedata.normalize("NFD", w), w.upper(), w.lower()])
    )
    return st.one_of(st.none(), unicode_forms)


VALUES = st.fixed_dictionaries(
    {
        "first_name": _text(),
        "city": _text(),
        "country": _text(),
        "score": st.one_of(
            st.none(),
            st.sampled_from([0.0, 1.0, 2.5, 10.0, 0.1, 1234.5678, 99.99, 1e6]),
            st.integers(-1000, 100000).map(lambda n: n / 100),
        ),
        "visits": st.one_of(st.none(), st.integers(0, 100000)),
        "joined": st.one_of(
            st.none(), st.dates(dt.date(1990, 1, 1), dt.date(2030, 12, 31))
        ),
        "topics": st.one_of(
            st.none(),
            st.frozensets(st.sampled_from(("News", "Events", "Offers"))),
        ),
    }
)


def _emulators(clock: VirtualClock) -> dict[str, Emulator]:
    return {
        "mailchimp": MailchimpEmulator(clock=clock, reject_fake_emails=False),
        "hubspot": HubSpotEmulator(clock=clock),
        "brevo": BrevoEmulator(clock=clock),
    }


def _connector(platform: str, emulator: Emulator, clock: VirtualClock) -> Connector:
    base = "http://127.0.0.1:8080" + emulator.base_path
    config: dict[str, Any] = {"api_key": emulator.api_key, "base_url": base}
    cls: type[Connector] = BrevoConnector
    if platform == "mailchimp":
        assert isinstance(emulator, MailchimpEmulator)
        cls, config["list_id"] = MailchimpConnector, emulator.default_list_id
    elif platform == "hubspot":
        cls, config = HubSpotConnector, {"token": emulator.api_key, "base_url": base}
    return cls(config, schema=SCHEMA, transport=emulator.transport(), clock=clock)


def _write_calls(emulator: Emulator, since: int) -> list[str]:
    return [
        f"{m} {p}"
        for m, p, _ in emulator.log.entries[since:]
        if m not in ("GET", "HEAD", "OPTIONS") and not _READ_POSTS.search(p)
    ]


async def _second_sync_writes(
    source: str, values: dict[str, Any]
) -> tuple[int, dict[str, list[str]]]:
    """Seed one contact with `values` on `source`, sync twice; what the second sync wrote."""
    clock = VirtualClock()
    emulators = _emulators(clock)
    seeders = {p: _connector(p, emulators[p], clock) for p in PLATFORMS}
    engine_side = {p: _connector(p, emulators[p], clock) for p in PLATFORMS}
    try:
        fields = {k: v for k, v in values.items() if v is not None}
        for p in PLATFORMS if source == "everywhere" else (source,):
            await seeders[p].prepare(SCHEMA.fields, [])
            change = ContactChange(
                email="person@example.com", create=True, fields=fields,
                consent=ConsentStatus.SUBSCRIBED,
            )
            results = await seeders[p].write([change])
            assert all(r.ok for r in results), results
        clock.advance(60)
        engine = Engine(
            engine_side, SQLiteStateStore(":memory:", clock=clock), schema=SCHEMA, clock=clock
        )
        first = await engine.sync()
        assert first.status == "ok", first.errors
        clock.advance(60)
        marks = {p: len(e.log.entries) for p, e in emulators.items()}
        second = await engine.sync()
        assert second.status == "ok", second.errors
        calls = {p: _write_calls(emulators[p], marks[p]) for p in PLATFORMS}
        return second.writes, {p: c for p, c in calls.items() if c}
    finally:
        for connector in (*seeders.values(), *engine_side.values()):
            await connector.aclose()


@pytest.mark.slow
@pytest.mark.parametrize("source", SOURCES)
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(values=VALUES)
# the defects found so far, always tried: a group left empty read as an empty set, blank text
# cleared by one platform, `country` upper-cased by another, surrounding spaces trimmed
@example(values=dict.fromkeys(SCHEMA.fields))
@example(values={**dict.fromkeys(SCHEMA.fields), "city": "   ", "topics": frozenset()})
@example(values={**dict.fromkeys(SCHEMA.fields), "country": "de"})
@example(values={**dict.fromkeys(SCHEMA.fields), "first_name": "  lyon ", "country": "Fr "})
def test_the_second_sync_writes_nothing(source: str, values: dict[str, Any]) -> None:
    """Whatever the values and wherever they were written first, the second sync is a no-op."""
    writes, calls = asyncio.run(_second_sync_writes(source, values))

    assert (writes, calls) == (0, {}), f"values {values!r} from {source}"
