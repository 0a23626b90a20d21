"""Compiled segments, evaluated by the emulator as HubSpot would, select exactly what the
reference evaluator selects, on generated contacts and rules of every native node type."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from segsync_hubspot import HubSpotConnector, HubSpotEmulator

from segsync.clock import VirtualClock
from segsync.http import RateBudget
from segsync.mapping import PlatformMapping, load_mapping
from segsync.model import Contact, Schema
from segsync.rules import ast, generate
from segsync.rules.evaluate import evaluate
from segsync.rules.parser import parse
from segsync.testing import change_for

Wrap = Callable[[httpx.AsyncBaseTransport], httpx.AsyncBaseTransport]
NOW = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.UTC)
# `language` would map onto HubSpot's hs_language, whose options are fixed (an unknown
# language is refused, as HubSpot does); the open enum is kept as a custom property here.
SCHEMA = Schema(
    fields={
        ("lang" if k == "language" else k): v for k, v in generate.EXAMPLE_SCHEMA.fields.items()
    }
)


async def _differential(
    seed: int,
    n_rules: int,
    n_contacts: int,
    checked: Wrap,
    *,
    settings: Mapping[str, Any] | None = None,
    mapping: PlatformMapping | None = None,
    definitions: list[str] | None = None,
    fixed: Sequence[ast.Rule] = (),
) -> tuple[int, int]:
    """(drawn rules published natively, rules drawn); the connector gets `settings` (added to
    its config) and `mapping`, and its own compiler compiles the rules: the `fixed` ones
    (each must be native), then `n_rules` drawn ones. Each native definition is appended to
    `definitions` as JSON when a list is given."""
    clock = VirtualClock(start=NOW)
    emulator = HubSpotEmulator(clock=clock, enforce_rate_limits=False)
    connector = HubSpotConnector(
        {
            "token": HubSpotEmulator.default_api_key,
            "base_url": "http://127.0.0.1:9",
            **(settings or {}),
        },
        schema=SCHEMA,
        mapping=mapping,
        transport=checked(emulator.transport()),
        clock=clock,
        budget=RateBudget(max_concurrency=10, clock=clock),  # no pacing: time stands at NOW
    )
    rng = random.Random(seed)
    compiler = connector.compiler("warn")
    assert compiler is not None
    contacts: list[Contact] = generate.generate_contacts(SCHEMA, n_contacts, rng, now=NOW)
    writable = {k for k, v in SCHEMA.fields.items() if not v.read_only}
    tags = sorted({t for c in contacts for t in c.tags})
    await connector.prepare({k: v for k, v in SCHEMA.fields.items() if k in writable}, tags)
    results = await connector.write(
        [
            change_for(
                c.model_copy(
                    update={"fields": {k: v for k, v in c.fields.items() if k in writable}}
                )
            )
            for c in contacts
        ]
    )
    assert all(r.ok for r in results), [r for r in results if not r.ok][:3]
    for contact in contacts:  # engagement is read-only through the API: set it as HubSpot would
        when = SCHEMA.fields["last_open"].coerce(contact.value("last_open"))
        if isinstance(when, dt.datetime):
            emulator.set_engagement(
                contact.email, hs_email_last_open_date=str(round(when.timestamp() * 1000))
            )
    native = 0
    drawn = [
        generate.generate_rule(SCHEMA, rng, node_types=sorted(compiler.CAPS.node_types), now=NOW)
        for _ in range(n_rules)
    ]
    for i, rule in enumerate([*fixed, *drawn]):
        compiled = compiler.compile(f"d{i}", rule)
        assert i >= len(fixed) or compiled.mode == "native", compiled.diagnostics
        if compiled.mode != "native":
            reasons = " ".join(d.message for d in compiled.diagnostics)
            assert any(known in reasons for known in PLATFORM_LIMITS), reasons
            continue
        native += 1
        assert compiled.definition is not None
        if definitions is not None:
            definitions.append(json.dumps(compiled.definition))
        ref = await connector.publish_native(f"d{i}", compiled.definition, None)
        members = {e async for e in connector.segment_members(ref)}
        assert clock.now() == NOW
        expected = {c.email for c in contacts if evaluate(rule, c, now=NOW, schema=SCHEMA)}
        assert members == expected, (
            f"{ast.rule_to_json(rule)}\n{compiled.definition}\n"
            f"only on HubSpot: {sorted(members - expected)}\n"
            f"only in the evaluator: {sorted(expected - members)}"
        )
    await connector.aclose()
    return native - len(fixed), n_rules


PLATFORM_LIMITS = (
    "HubSpot's string property date_of_birth",  # birthday maps onto a text property
    "consent conditions",  # other than `consent = subscribed`
    "statuses other than OPT_IN",  # `not subscribed`
    "consent statuses have no order",
    "HubSpot has no negated",  # not starts_with / not ends_with
    "HubSpot reports no",  # open_rate, member_rating: no HubSpot property
    "AND branches",  # a DNF over segsync's cap of 64 branches
    "whole tag set",  # `tags is (not) set`: segsync's marker tags share segsync_tags
)
"""Why a generated rule may be materialised: what HubSpot's list filters cannot say."""


@pytest.mark.slow
def test_compiled_segments_match_the_reference_evaluator(checked: Wrap) -> None:
    """For 400 generated rules on 80 generated contacts, HubSpot's members == the evaluator's."""
    native, total = asyncio.run(_differential(seed=6, n_rules=400, n_contacts=80, checked=checked))

    assert native >= total * 0.35, f"only {native} of {total} rules compiled natively"


RENAMED_MAPPING = """\
platform: hubspot
value_encoding: string
clear_value: ""
fields:
  city: {path: stadt, type: text}
"""
"""A user's mapping that keeps `city` in a custom property `stadt` instead of HubSpot's own."""

RENAMED_RULES = (
    'tags has "vip"',
    'city = "Paris"',
    'tags has "news" and not city contains "a"',
    'not tags has "b2b" or city is not set',
)
"""Rules on the renamed tags property and the mapped field, each native on HubSpot."""


@pytest.mark.slow
def test_compiled_segments_filter_on_the_configured_tags_property_and_mapped_properties(
    checked: Wrap, tmp_path: Path
) -> None:
    """With `tags_property: my_tags` and `city` mapped to `stadt`, the connector writes tags
    and cities there, and its DYNAMIC lists filter on them: HubSpot's members == the
    evaluator's, and no definition names `segsync_tags` or HubSpot's own `city`."""
    path = tmp_path / "hubspot.yaml"
    path.write_text(RENAMED_MAPPING, encoding="utf-8")
    definitions: list[str] = []

    native, total = asyncio.run(
        _differential(
            seed=12,
            n_rules=200,
            n_contacts=60,
            checked=checked,
            settings={"tags_property": "my_tags"},
            mapping=load_mapping("hubspot", path),
            definitions=definitions,
            fixed=[parse(source) for source in RENAMED_RULES],
        )
    )

    assert native >= total * 0.35, f"only {native} of {total} rules compiled natively"
    named = [json.loads(d) for d in definitions]
    properties = {p for d in named for p in _filter_properties(d)}
    assert {"my_tags", "stadt"} <= properties
    assert not {"segsync_tags", "city"} & properties


def _filter_properties(node: Any) -> set[str]:
    """The properties every PROPERTY filter in a definition names."""
    if isinstance(node, dict):
        own = {str(node["property"])} if node.get("filterType") == "PROPERTY" else set()
        return own.union(*(_filter_properties(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_filter_properties(v) for v in node))
    return set()
