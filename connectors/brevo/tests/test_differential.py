"""Segments on Brevo select exactly what the reference evaluator selects.

Brevo cannot hold rules, so the compiled form is always a materialised list: segsync
evaluates each rule on the contacts as read back from Brevo and pushes the members. This
checks both halves: values survive the trip through Brevo's attributes unchanged for the
evaluator, and the owned list ends up with exactly the evaluator's members.
"""

from __future__ import annotations

import asyncio
import random

import pytest
from segsync_brevo import BrevoConnector
from segsync_brevo.compiler import BrevoCompiler
from segsync_brevo.emulator import BrevoEmulator

from segsync.clock import VirtualClock
from segsync.model import Contact, FieldSpec, FieldType, Schema
from segsync.rules.compiler import Step
from segsync.testing import change_for

generate = pytest.importorskip("segsync.rules.generate")
evaluate = pytest.importorskip("segsync.rules.evaluate")

SCHEMA = Schema(
    fields={
        "first_name": FieldSpec(type=FieldType.TEXT),
        "country": FieldSpec(type=FieldType.ENUM, options=("FR", "BE", "DE", "US")),
        "lifetime_value": FieldSpec(type=FieldType.NUMBER),
        "orders": FieldSpec(type=FieldType.INTEGER),
        "vip": FieldSpec(type=FieldType.BOOLEAN),
        "last_purchase_at": FieldSpec(type=FieldType.DATE),
        "interests": FieldSpec(type=FieldType.MULTI_ENUM, options=("news", "offers", "events")),
    }
)


def test_materialised_segments_match_the_reference_evaluator() -> None:
    """For generated rules and contacts, list members == evaluator's selection."""
    clock = VirtualClock()
    emulator = BrevoEmulator(clock=clock)
    rng = random.Random(11)
    now = clock.now()
    contacts = generate.generate_contacts(SCHEMA, 60, rng, now=now)
    rules = [generate.generate_rule(SCHEMA, rng, now=now) for _ in range(15)]
    compiler = BrevoCompiler(SCHEMA)

    async def main() -> None:
        connector = BrevoConnector(
            {"api_key": emulator.api_key},
            schema=SCHEMA,
            transport=emulator.transport(),
            clock=clock,
        )
        async with connector:
            tags = sorted({t for c in contacts for t in c.tags})
            await connector.prepare(SCHEMA.fields, tags)
            results = await connector.write([change_for(c) for c in contacts])
            assert all(r.ok for r in results), [r for r in results if not r.ok][:3]
            back = {
                r.email: Contact(email=r.email, fields=r.fields, tags=r.tags, consent=r.consent)
                async for page in connector.read()
                for r in page.contacts
            }
            assert set(back) == {c.email for c in contacts}
            for i, rule in enumerate(rules):
                compiled = compiler.compile(f"rule-{i}", rule)
                assert compiled.mode == "materialised"
                assert compiled.diagnostics[0].step is Step.MATERIALISE
                expected = {
                    c.email for c in contacts if evaluate.evaluate(rule, c, now=now, schema=SCHEMA)
                }
                selected = {
                    e for e, c in back.items() if evaluate.evaluate(rule, c, now=now, schema=SCHEMA)
                }
                assert selected == expected, f"values changed on the way through Brevo: {rule}"
                ref = await connector.ensure_static(f"rule-{i}", None)
                await connector.change_static_members(ref, sorted(selected), [])
                members = {e async for e in connector.segment_members(ref)}
                assert members == expected, f"rule {rule!r}"

    asyncio.run(main())
