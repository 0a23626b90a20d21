"""Differential test: the emulator's evaluation of compiled segments == the reference evaluator.

Rules are generated over every field type (and every connective, nested, so the ladder's
rewrite, split and materialise steps all run); contacts are generated near the rules'
literals, written through the connector, and every segment published natively (or split,
with its residual tag materialised) must select exactly the contacts `evaluate` selects.
The compiler is the connector's own (`connector.compiler()`), so it sees the connector's
config and mapping: a mapping that moves a field to another merge field is what the saved
segments filter on. Requests are checked against the API description when it is present.
"""

from __future__ import annotations

import asyncio
import collections
from pathlib import Path
from typing import Any

import pytest
from segsync_mailchimp import MailchimpConnector
from segsync_mailchimp.emulator import MailchimpEmulator
from segsync_mailchimp.speccheck import SpecChecker, SpecCheckingTransport, default_spec_dir

from segsync.clock import VirtualClock
from segsync.connector import ContactChange
from segsync.model import FieldSpec, FieldType, Schema
from segsync.rules import ast
from segsync.rules.compiler import Strictness
from segsync.rules.evaluate import evaluate
from segsync.rules.generate import RuleGenerator
from segsync.rules.parser import parse

SCHEMA = Schema(
    fields={
        "first_name": FieldSpec(type=FieldType.TEXT),
        "city": FieldSpec(type=FieldType.TEXT),
        "phone": FieldSpec(type=FieldType.PHONE),
        "country": FieldSpec(type=FieldType.ENUM, options=("FR", "BE", "DE", "US", "GB")),
        "language": FieldSpec(type=FieldType.ENUM),
        "lifetime_value": FieldSpec(type=FieldType.NUMBER),
        "orders": FieldSpec(type=FieldType.INTEGER),
        "vip": FieldSpec(type=FieldType.BOOLEAN),
        "birthday": FieldSpec(type=FieldType.DATE),  # a MM/DD birthday field: never native
        "renewal_on": FieldSpec(type=FieldType.DATE),
        "signup_at": FieldSpec(type=FieldType.DATETIME),
        "interests": FieldSpec(type=FieldType.MULTI_ENUM, options=("news", "offers", "events")),
    }
)


def _differential(
    seed: int,
    rules: int,
    contacts: int,
    depth: int,
    *,
    schema: Schema = SCHEMA,
    mapping: Path | None = None,
    extra_rules: tuple[str, ...] = (),
    definitions: list[dict[str, Any]] | None = None,
) -> collections.Counter[str]:
    """Publish `rules` generated rules (then `extra_rules`) and compare memberships; return
    the modes taken. The connector reads `mapping` (a file) when given; every native
    definition published is appended to `definitions` when given."""
    clock = VirtualClock()
    emulator = MailchimpEmulator(clock=clock, reject_fake_emails=False)
    spec_dir = default_spec_dir()
    transport = emulator.transport()
    checking = (
        SpecCheckingTransport(transport, SpecChecker(spec_dir)) if spec_dir.is_dir() else None
    )
    connector = MailchimpConnector(
        emulator.client_config(),
        schema=schema,
        mapping=mapping,
        transport=checking or transport,
        clock=clock,
    )
    compiler = connector.compiler(Strictness.IGNORE)
    assert compiler is not None
    generator = RuleGenerator(schema, seed=seed, now=clock.now(), max_depth=depth)
    generated = [generator.rule() for _ in range(rules)] + [parse(t) for t in extra_rules]
    people = generator.contacts(contacts, rule=ast.Or(items=tuple(generated)))
    modes: collections.Counter[str] = collections.Counter()

    async def main() -> None:
        tags = sorted(set().union(*(c.tags for c in people)))
        await connector.prepare(schema.fields, tags)
        results = await connector.write(
            [
                ContactChange(
                    email=c.email,
                    create=True,
                    fields=dict(c.fields),
                    consent=c.consent.status,
                    tags_add=c.tags,
                )
                for c in people
            ]
        )
        assert all(r.ok for r in results), [r for r in results if not r.ok][:3]
        for i, rule in enumerate(generated):
            name = f"diff-{i}"
            compiled = compiler.compile(name, rule)
            modes[compiled.mode] += 1
            assert compiled.diagnostics, "every compilation says what it did"
            if compiled.definition is None:
                continue
            if compiled.residual is not None and compiled.residual_tag is not None:
                residual = [
                    c.email
                    for c in people
                    if evaluate(compiled.residual, c, now=clock.now(), schema=schema)
                ]
                ref = await connector.ensure_static(compiled.residual_tag, None)
                await connector.change_static_members(ref, residual, [])
            if definitions is not None:
                definitions.append(dict(compiled.definition))
            ref = await connector.publish_native(name, compiled.definition, None)
            members = {e.lower() async for e in connector.segment_members(ref)}
            expected = {
                c.email for c in people if evaluate(rule, c, now=clock.now(), schema=schema)
            }
            assert members == expected, (
                f"{name}: {ast.rule_to_json(rule)}\n-> {compiled.definition}\n"
                f"only on Mailchimp: {sorted(members - expected)}\n"
                f"only in the evaluator: {sorted(expected - members)}"
            )
        await connector.aclose()

    asyncio.run(main())
    if checking is not None:
        assert not checking.summary(), checking.summary()[:10]
    return modes


@pytest.mark.slow
def test_flat_rules_match_the_reference_evaluator() -> None:
    """Flat rules over every field type: native segments select what the evaluator selects."""
    modes = _differential(seed=1, rules=120, contacts=60, depth=1)

    assert modes["native"] >= 30, modes
    assert sum(modes.values()) == 120


def test_nested_rules_split_or_materialise_and_still_match() -> None:
    """Nested rules go through rewrite and split; what is published still matches exactly."""
    modes = _differential(seed=7, rules=80, contacts=50, depth=3)

    assert modes["split"] > 0, modes
    assert modes["materialised"] > 0, modes
    assert modes["native"] > 0, modes


def test_a_merge_field_renamed_by_the_mapping_is_what_segments_filter_on(tmp_path: Path) -> None:
    """A mapping that moves `company` to the merge field FIRMA: the saved segments filter on
    FIRMA (never on the default COMPANY) and select exactly what the evaluator selects."""
    mapping = tmp_path / "mailchimp.yaml"
    mapping.write_text(
        "platform: mailchimp\n"
        "extends: default\n"
        "fields:\n"
        "  company: {path: merge_fields.FIRMA, type: text, transforms: [trim]}\n"
    )
    schema = Schema(
        fields={
            "company": FieldSpec(type=FieldType.TEXT),
            "city": FieldSpec(type=FieldType.TEXT),
            "orders": FieldSpec(type=FieldType.INTEGER),
        }
    )
    definitions: list[dict[str, Any]] = []

    modes = _differential(
        seed=3,
        rules=40,
        contacts=40,
        depth=1,
        schema=schema,
        mapping=mapping,
        extra_rules=(
            'company = "Acme"',
            'company != "Acme"',
            'company starts_with "Ac" and orders >= 2',
            "company is not set",
        ),
        definitions=definitions,
    )

    fields = {str(c.get("field")) for d in definitions for c in d["conditions"]}
    assert "FIRMA" in fields, definitions
    assert "COMPANY" not in fields, definitions
    assert modes["native"] >= 4, modes
