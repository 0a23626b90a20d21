"""Segments on Brevo select exactly what the reference evaluator selects.

Brevo cannot hold rules, so the compiled form is always a materialised list: segsync
evaluates each rule on the contacts as read back from Brevo and pushes the members. This
checks both halves: values survive the trip through Brevo's attributes unchanged for the
evaluator, and the owned list ends up with exactly the evaluator's members.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest
from segsync_brevo import BrevoConnector
from segsync_brevo.compiler import BrevoCompiler
from segsync_brevo.emulator import BrevoEmulator

from segsync.clock import VirtualClock
from segsync.mapping import PlatformMapping, load_mapping
from segsync.model import ConsentStatus, Contact, FieldSpec, FieldType, PublishMode, Schema
from segsync.rules import ast
from segsync.rules.compiler import PlatformCannotExpress, Step, Strictness
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
    subscribed = {c.email for c in contacts if c.consent.status is ConsentStatus.SUBSCRIBED}
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
                # only subscribed contacts may be in a segsync list (a list makes them reachable)
                assert members == expected & subscribed, f"rule {rule!r}"

    asyncio.run(main())


def _renamed_by_mapping(tmp_path: Path) -> dict[str, Any]:
    """A user mapping that moves `country` to the attribute PAYS."""
    path = tmp_path / "brevo.yaml"
    path.write_text(
        "platform: brevo\nextends: default\nfields:\n"
        "  country: {path: attributes.PAYS, type: text, transforms: [trim, uppercase]}\n"
    )
    return {"mapping": load_mapping("brevo", path)}


def _renamed_by_config(tmp_path: Path) -> dict[str, Any]:
    """The config's `attribute_names` moves `country` to the attribute PAYS."""
    return {"config": {"attribute_names": {"country": "PAYS"}}}


@pytest.mark.parametrize("renamed", [_renamed_by_mapping, _renamed_by_config])
def test_renamed_attribute_segments_match_under_raise(renamed: Any, tmp_path: Path) -> None:
    """With `country` stored in PAYS (by the mapping or the config) and strictness raise, the
    connector's own compiler materialises every `auto` segment with its diagnostic, refuses
    `native` with Brevo's reason, and each owned list holds exactly the evaluator's members."""
    clock = VirtualClock()
    emulator = BrevoEmulator(clock=clock)
    rng = random.Random(12)
    now = clock.now()
    contacts = generate.generate_contacts(SCHEMA, 40, rng, now=now)
    subscribed = {c.email for c in contacts if c.consent.status is ConsentStatus.SUBSCRIBED}
    rules = [ast.field("country") == "FR", ast.field("country").in_("BE", "DE")]
    rules += [generate.generate_rule(SCHEMA, rng, now=now) for _ in range(8)]
    options = renamed(tmp_path)
    mapping = options.get("mapping")
    assert mapping is None or isinstance(mapping, PlatformMapping)

    async def main() -> None:
        connector = BrevoConnector(
            {"api_key": emulator.api_key, **options.get("config", {})},
            schema=SCHEMA,
            mapping=mapping,
            transport=emulator.transport(),
            clock=clock,
        )
        compiler = connector.compiler(Strictness.RAISE)
        assert isinstance(compiler, BrevoCompiler)
        async with connector:
            await connector.prepare(SCHEMA.fields, sorted({t for c in contacts for t in c.tags}))
            results = await connector.write([change_for(c) for c in contacts])
            assert all(r.ok for r in results), [r for r in results if not r.ok][:3]
            stored = [c for c in emulator.contacts.values() if c.email]
            assert any("PAYS" in c.attributes for c in stored)
            assert not any("COUNTRY" in c.attributes for c in stored)
            back = {
                r.email: Contact(email=r.email, fields=r.fields, tags=r.tags, consent=r.consent)
                async for page in connector.read()
                for r in page.contacts
            }
            for i, rule in enumerate(rules):
                name = f"renamed-{i}"
                with pytest.raises(PlatformCannotExpress, match="cannot create segments"):
                    compiler.compile(name, rule, PublishMode.NATIVE)
                compiled = compiler.compile(name, rule)
                assert compiled.mode == "materialised"
                assert [(d.step, d.level) for d in compiled.diagnostics] == [
                    (Step.MATERIALISE, "info")
                ]
                expected = {
                    c.email for c in contacts if evaluate.evaluate(rule, c, now=now, schema=SCHEMA)
                }
                selected = {
                    e for e, c in back.items() if evaluate.evaluate(rule, c, now=now, schema=SCHEMA)
                }
                ref = await connector.ensure_static(name, None)
                await connector.change_static_members(ref, sorted(selected), [])
                members = {c.email for c in emulator.contacts.values() if int(ref) in c.list_ids}
                assert members == expected & subscribed, f"rule {rule!r}"
            assert len({c.fields.get("country") for c in contacts}) > 1

    asyncio.run(main())
