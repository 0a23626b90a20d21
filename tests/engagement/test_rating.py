"""Mailchimp's `member_rating` filter, differentially: a rating rule published natively on
Mailchimp selects exactly what the evaluator selects on the aggregated view, in a lived-in
account where Mailchimp rates every member it never emailed 2 (segsync's copies among them)
and segsync sees no rating for them; a rule that cannot is materialised with the reason."""

from __future__ import annotations

import pytest
from test_emulators import DAY, PLATFORMS, SCHEMA, World

from segsync.model import normalize_email
from segsync.rules import evaluate, load_rule
from segsync.state import open_store
from segsync.sync import Engine, SegmentTarget, SyncPolicy

#: rule -> whether Mailchimp can hold it natively
RULES = {
    "member_rating < 3": False,
    "member_rating = 2": False,
    "mailchimp.member_rating != 5": False,
    "member_rating > 1": False,
    "not (member_rating = 2)": False,
    "member_rating > 2": True,
    "member_rating = 5": True,
    "member_rating < 2": True,
    "member_rating != 2": True,
    "not (mailchimp.member_rating = 5)": True,
}
RATINGS = {"mc.reader@x.example": 5, "mc.quiet@x.example": 1, "mixed@x.example": 3,
           "ada.subscribed@lived.dev": 2}  # emailed: rated by their engagement


@pytest.mark.slow
def test_a_native_rating_filter_selects_what_the_evaluator_selects() -> None:
    world = World(open_store("sqlite:///:memory:"))
    try:
        members = world.mc.lists[world.mc.default_list_id].members.values()
        for member in members:
            if member.email_address in RATINGS:
                member.member_rating = RATINGS[member.email_address]
        segments = {f"r{i}": load_rule(text, SCHEMA) for i, text in enumerate(RULES)}
        world.engine = Engine(
            world.connectors, world.store, config="engaged",
            policy=SyncPolicy(platforms=PLATFORMS), schema=SCHEMA,
            segments=[SegmentTarget(name, rule, {}) for name, rule in segments.items()],
            clock=world.clock, engagement_refresh=dict.fromkeys(PLATFORMS, DAY))
        world.sync()
        world.clock.advance(60)
        world.sync()

        unrated = [m.email_address for m in members
                   if m.email_address not in RATINGS and m.status != "archived"]
        assert unrated
        assert all(m.member_rating == 2 for m in members
                   if m.email_address in unrated)  # never emailed: Mailchimp's 2
        views = world.views()
        owned = {o.name: o.ref for o in world.store.owned("engaged") if o.platform == "mailchimp"}
        connector = world.connectors["mailchimp"]
        for (name, rule), text in zip(segments.items(), RULES, strict=True):
            compiler = connector.build_compiler(SCHEMA, strictness="ignore")
            assert compiler is not None
            result = compiler.compile(name, rule)
            assert (result.mode == "native") is RULES[text], (text, result.diagnostics)
            if not RULES[text]:
                assert any("never emailed" in d.message for d in result.diagnostics), text

            async def listed(ref: str) -> set[str]:
                return {normalize_email(e) async for e in connector.segment_members(ref)}

            held = world.loop.run_until_complete(listed(owned[name]))
            expected = {
                email for email, found in views.items()
                if evaluate(rule, found["contact"], now=world.clock.now(), schema=SCHEMA)
                and connector.may_hold(name, found["view"].consent)
            }
            assert held == expected, (text, held ^ expected)
    finally:
        world.close()
