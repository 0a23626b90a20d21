"""Split segments on HubSpot: the residual's members carry the residual TAG on the platform.

The HubSpot compiler splits a rule it cannot express whole into a native DYNAMIC list whose
filter includes `tags has "<residual tag>"` (the `segsync_tags` property); the engine must
write the residual as that tag on each member's record, so the list holds exactly what the
reference evaluator selects, run after run.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest
from memory_platform import MemoryConnector, MemoryPlatform

from segsync.clock import VirtualClock
from segsync.connector import ContactChange, RemoteContact
from segsync.model import ConsentStatus, Contact, PublishMode
from segsync.rules import ast, evaluate, parse
from segsync.rules.compiler import CompilerCapabilities, RuleCompiler
from segsync.state import SQLiteStateStore, open_store
from segsync.state.base import OwnedObject
from segsync.sync import Engine, RunReport, SegmentTarget
from segsync.testing.data import DEFAULT_SCHEMA, change_for, sample_contacts

hubspot = pytest.importorskip("segsync_hubspot")

SEGMENTS = {
    # `not ends_with` has no HubSpot operator: the residual
    "nordic": 'country in ["FR", "DE", "BE"] and not (email ends_with "0@example.com")',
    # a condition on the whole tag set is never native (segsync's tags share the property)
    "tagged": 'country in ["FR", "DE", "BE", "GB"] and tags is set',
}


def test_split_segments_on_hubspot_hold_what_the_evaluator_selects() -> None:
    clock = VirtualClock()
    emulator = hubspot.HubSpotEmulator(clock=clock)
    connector = hubspot.HubSpotConnector(
        {"token": emulator.default_api_key, "base_url": "http://127.0.0.1:9"},
        schema=DEFAULT_SCHEMA,
        transport=emulator.transport(),
        clock=clock,
    )
    rules = {name: parse(text) for name, text in SEGMENTS.items()}
    contacts = sample_contacts(DEFAULT_SCHEMA, 24, random.Random(4))
    engine = Engine(
        {"hubspot": connector},
        open_store("sqlite:///:memory:", clock=clock),
        schema=DEFAULT_SCHEMA,
        clock=clock,
        segments=[SegmentTarget(n, r, {"hubspot": PublishMode.AUTO}) for n, r in rules.items()],
    )

    async def holds() -> dict[str, set[str]]:
        """segment -> emails its HubSpot list holds."""
        refs = {
            o.name: o.ref
            for o in engine.store.owned(engine.config, "hubspot")
            if o.kind == "native"
        }
        return {
            name: {e.lower() async for e in connector.segment_members(refs[name])} for name in rules
        }

    async def expected() -> dict[str, set[str]]:
        """segment -> emails the reference evaluator selects among HubSpot's contacts."""
        everyone = []
        async for page in connector.read(None):
            everyone += [r for r in page.contacts if not r.deleted]
        out: dict[str, set[str]] = {}
        for name, rule in rules.items():
            out[name] = set()
            for r in everyone:
                if evaluate(rule, _contact(r), now=clock.now(), schema=DEFAULT_SCHEMA):
                    out[name].add(r.email.lower())
        return out

    async def main() -> dict[str, Any]:
        await connector.prepare(DEFAULT_SCHEMA.fields, ["alpha", "beta", "gamma"])
        await connector.write([change_for(c) for c in contacts])
        clock.advance(emulator.read_lag_seconds)  # the people's records are searchable
        out: dict[str, Any] = {"first": await engine.sync()}
        clock.advance(emulator.read_lag_seconds)
        out["first_holds"], out["first_expected"] = await holds(), await expected()
        clock.advance(60)
        out["rerun"] = await engine.sync()

        ids: dict[str, str] = {}
        async for page in connector.read(None):
            ids.update({r.email.lower(): r.platform_id for r in page.contacts})
        by_email = {c.email: c for c in contacts}
        gb = next(e for e, c in by_email.items() if c.fields.get("country") == "GB")
        tagged = next(e for e, c in by_email.items() if c.fields.get("country") == "DE" and c.tags)
        clock.advance(60)
        await connector.write(
            [
                ContactChange(email=gb, platform_id=ids[gb], fields={"country": "FR"}),
                ContactChange(
                    email=tagged, platform_id=ids[tagged], tags_remove=by_email[tagged].tags
                ),
            ]
        )
        clock.advance(60)
        out["edited"] = await engine.sync()
        clock.advance(emulator.read_lag_seconds)
        out["edited_holds"], out["edited_expected"] = await holds(), await expected()
        out["lists"] = [
            (x.name, x.processing_type) for x in emulator.lists.values() if not x.deleted
        ]
        await connector.aclose()
        return out

    out = asyncio.run(main())
    first: RunReport = out["first"]
    assert first.status == "ok", [e.message for e in first.errors]
    assert all(out["first_expected"].values()), "each segment selects someone"
    assert out["first_holds"] == out["first_expected"]
    assert first.platforms["hubspot"].members_added > 0  # residual tags written
    assert out["rerun"].writes == 0, out["rerun"].platforms
    edited: RunReport = out["edited"]
    assert edited.status == "ok", [e.message for e in edited.errors]
    assert out["edited_holds"] == out["edited_expected"]
    assert out["edited_holds"] != out["first_holds"]
    assert edited.platforms["hubspot"].members_removed >= 1  # the untagged contact's tag
    # the residual is a tag, not a MANUAL list: only the two DYNAMIC lists exist
    assert sorted(kind for _name, kind in out["lists"]) == ["DYNAMIC", "DYNAMIC"], out["lists"]


def _contact(remote: RemoteContact) -> Contact:
    """The canonical contact of a HubSpot record (segsync's own tags are not its tags)."""
    return Contact(
        email=remote.email,
        fields={k: v for k, v in remote.fields.items() if v is not None},
        tags=frozenset(t for t in remote.tags if not t.startswith("segsync:")),
        consent=remote.consent,
        engagement=dict(remote.engagement),
    )


class TagAndCompiler(RuleCompiler):
    """A native compiler for `tags has X` conjunctions only: anything else is a residual."""

    platform = "memory"
    CAPS = CompilerCapabilities(node_types=frozenset({"has", "and"}), max_depth=2)

    def emit(self, rule: ast.Rule) -> dict[str, Any]:
        items = rule.items if isinstance(rule, ast.And) else (rule,)
        return {"match": "all", "conditions": [{"tag": i.value} for i in items]}  # type: ignore[union-attr]


class ListStaticsConnector(MemoryConnector):
    """A memory platform whose static segments are lists (HubSpot-like), not tags."""

    capabilities = MemoryConnector.capabilities.model_copy(update={"static_segments": "list"})


def test_residual_membership_is_a_tag_on_every_platform(tmp_path: Path) -> None:
    """Tag-statics and list-statics platforms alike: residual members carry the tag."""
    clock = VirtualClock()
    platforms = {"mc": MemoryPlatform("mc", clock), "hs": MemoryPlatform("hs", clock)}
    for i in range(8):
        platforms["mc"].add(
            f"p{i}@x.com", {"country": "FR" if i % 2 else "DE"}, ["vip"] if i < 4 else []
        )
    rule = parse('tags has "vip" and country = "FR"')
    store = SQLiteStateStore(tmp_path / "state.db", clock=clock)

    def sync() -> RunReport:
        engine = Engine(
            {"mc": MemoryConnector(platforms["mc"]), "hs": ListStaticsConnector(platforms["hs"])},
            store,
            config="t",
            schema=DEFAULT_SCHEMA,
            clock=clock,
            chunk_size=3,
            segments=[SegmentTarget("fr_vips", rule)],
            compilers={"mc": TagAndCompiler(DEFAULT_SCHEMA), "hs": TagAndCompiler(DEFAULT_SCHEMA)},
        )
        return asyncio.run(engine.sync())

    def selected(name: str) -> set[str]:
        """Who the platform's native segment selects (every condition's tag on the record)."""
        (native,) = platforms[name].natives.values()
        tags = {c["tag"] for c in native["definition"]["conditions"]}
        return {r.email for r in platforms[name].live() if tags <= r.tags}

    def expected() -> set[str]:
        return {
            r.email
            for r in platforms["mc"].live()
            if evaluate(rule, _memory_contact(r), now=clock.now(), schema=DEFAULT_SCHEMA)
        }

    first = sync()
    assert first.errors == []
    owned = {(o.platform, o.kind) for o in store.owned("t") if o.name.startswith("segsync:")}
    assert owned == {("mc", "static"), ("hs", "tag")}
    assert platforms["hs"].statics == {}, "no list for a residual on a list-statics platform"
    assert expected() == {"p1@x.com", "p3@x.com"}
    assert selected("mc") == selected("hs") == expected()
    residual = next(o.name for o in store.owned("t") if o.name.startswith("segsync:"))
    fr = {r.email for r in platforms["hs"].live() if r.fields.get("country") == "FR"}
    assert {r.email for r in platforms["hs"].live() if residual in r.tags} == fr
    clock.advance(60)
    assert sync().writes == 0

    clock.advance(60)
    platforms["mc"].edit(platforms["mc"].find("p1@x.com").id, country="DE")
    edited = sync()
    assert edited.errors == []
    assert edited.platforms["hs"].members_removed == 1
    assert selected("mc") == selected("hs") == expected() == {"p3@x.com"}
    assert all(residual not in r.tags for r in platforms["hs"].live() if r.email == "p1@x.com")


def _memory_contact(record: Any) -> Contact:
    return Contact(
        email=record.email,
        fields=dict(record.fields),
        tags=frozenset(t for t in record.tags if not t.startswith("segsync:")),
    )


def test_split_segment_on_mailchimp_holds_what_the_evaluator_selects() -> None:
    """Mailchimp: static segments are tags, so the residual tag is its owned static segment
    and the members carry it; the saved segment holds exactly the evaluator's selection."""
    mailchimp = pytest.importorskip("segsync_mailchimp")
    clock = VirtualClock()
    emulator = mailchimp.MailchimpEmulator(clock=clock, reject_fake_emails=False)
    connector = mailchimp.MailchimpConnector(
        {
            "api_key": emulator.default_api_key,
            "list_id": emulator.default_list_id,
            "base_url": "http://127.0.0.1:9" + emulator.base_path,
        },
        schema=DEFAULT_SCHEMA,
        transport=emulator.transport(),
        clock=clock,
    )
    rule = parse('consent = subscribed and country = "BE"')
    contacts = sample_contacts(DEFAULT_SCHEMA, 24, random.Random(5))
    store = open_store("sqlite:///:memory:", clock=clock)
    engine = Engine(
        {"mailchimp": connector},
        store,
        schema=DEFAULT_SCHEMA,
        clock=clock,
        segments=[SegmentTarget("subscribed_eu", rule)],
    )

    async def holds() -> set[str]:
        (ref,) = [o.ref for o in store.owned(engine.config, "mailchimp") if o.kind == "native"]
        return {e.lower() async for e in connector.segment_members(ref)}

    async def expected() -> set[str]:
        out = set()
        async for page in connector.read(None):
            for r in page.contacts:
                if not r.deleted and evaluate(
                    rule, _contact(r), now=clock.now(), schema=DEFAULT_SCHEMA
                ):
                    out.add(r.email.lower())
        return out

    async def main() -> dict[str, Any]:
        await connector.prepare(DEFAULT_SCHEMA.fields, ["alpha", "beta", "gamma"])
        await connector.write([change_for(c) for c in contacts])
        out: dict[str, Any] = {"first": await engine.sync()}
        out["first_holds"], out["first_expected"] = await holds(), await expected()
        ids: dict[str, str] = {}
        async for page in connector.read(None):
            ids.update({r.email.lower(): r.platform_id for r in page.contacts})
        leaving = sorted(out["first_holds"])[0]
        clock.advance(60)
        await connector.write(
            [
                ContactChange(
                    email=leaving, platform_id=ids[leaving], consent=ConsentStatus.UNSUBSCRIBED
                )
            ]
        )
        clock.advance(60)
        out["edited"] = await engine.sync()
        out["edited_holds"], out["edited_expected"] = await holds(), await expected()
        out["leaving"] = leaving
        await connector.aclose()
        return out

    out = asyncio.run(main())
    assert out["first"].status == "ok", [e.message for e in out["first"].errors]
    owned = {(o.kind, o.name.startswith("segsync:")) for o in store.owned(engine.config)}
    assert owned == {("native", False), ("static", True)}
    assert out["first_expected"], "the segment selects someone"
    assert out["first_holds"] == out["first_expected"]
    assert out["edited"].status == "ok", [e.message for e in out["edited"].errors]
    assert out["edited_holds"] == out["edited_expected"]
    assert out["leaving"] not in out["edited_holds"]
    assert out["edited"].platforms["mailchimp"].members_removed == 1


def test_a_residual_held_as_a_list_by_an_earlier_version_moves_to_the_tag(
    tmp_path: Path,
) -> None:
    """State from before residuals were tags: an owned list with members. The list is
    deleted and every residual member gets the tag (the list's members are not the tag's)."""
    clock = VirtualClock()
    platform = MemoryPlatform("hs", clock)
    for i in range(6):
        platform.add(f"p{i}@x.com", {"country": "FR" if i % 2 else "DE"}, ["vip"])
    rule = parse('tags has "vip" and country = "FR"')
    compiler = TagAndCompiler(DEFAULT_SCHEMA)
    residual = compiler.compile("fr_vips", rule).residual_tag
    assert residual is not None
    store = SQLiteStateStore(tmp_path / "state.db", clock=clock)

    def sync(*segments: SegmentTarget) -> RunReport:
        engine = Engine(
            {"hs": ListStaticsConnector(platform)},
            store,
            config="t",
            schema=DEFAULT_SCHEMA,
            clock=clock,
            segments=list(segments),
            compilers={"hs": compiler},
        )
        return asyncio.run(engine.sync())

    sync()
    fr = {f"p{i}@x.com" for i in (1, 3, 5)}
    platform.statics["static-1"] = {
        "name": residual,
        "members": {r.id for r in platform.live() if r.email in fr},
    }
    store.set_owned("t", OwnedObject("hs", "static", residual, "static-1"), at="2026-01-01")
    store.commit_members("t", "hs", residual, sorted(fr), [])
    clock.advance(60)

    report = sync(SegmentTarget("fr_vips", rule))

    assert report.errors == []
    assert platform.statics == {}
    assert {r.email for r in platform.live() if residual in r.tags} == fr
    assert [(o.kind, o.name) for o in store.owned("t", "hs") if o.kind != "native"] == [
        ("tag", residual)
    ]
