"""`--limit N`: a deterministic sample of contacts, on lived-in accounts.

A limited run writes, creates, unsubscribes and publishes nobody outside its sample, never
takes an unsampled record for a deleted one, commits no cursor (the next unlimited run reads
everything this one read, including the changes people made outside the sample), and the
next unlimited run ends where a run without `--limit` would have.
"""

from __future__ import annotations

import asyncio

import pytest
from first_runs_world import World, crowd_email, expected_sample, rank, written_cids

from segsync.state.base import erasure_hash
from segsync.sync.pull import RunScope, ScopeError
from segsync.sync.report import RunReport

PLATFORMS = ("mailchimp", "hubspot", "brevo")


@pytest.mark.slow
def test_a_limited_plan_writes_only_the_sample_and_draws_the_same_one_each_time() -> None:
    world = World()
    sample = expected_sample(world.everyone(), 5)
    first = world.plan(RunScope(limit=5))
    again = world.plan(RunScope(limit=5))
    assert first.scope == {"limit": 5}
    assert "scope: limit 5" in first.render()
    assert written_cids(first) <= sample
    assert len(written_cids(first)) >= 3  # new people there: created on the other platforms
    assert written_cids(again) == written_cids(first)
    bigger = world.plan(RunScope(limit=8))  # a bigger sample holds the smaller one
    assert written_cids(first) <= written_cids(bigger) <= expected_sample(world.everyone(), 8)


@pytest.mark.slow
def test_a_limited_sync_touches_nobody_outside_the_sample_and_commits_no_cursor() -> None:
    world = World()
    before = world.contents()
    sample = expected_sample(world.everyone(), 6)
    report, _ = world.sync(RunScope(limit=6))
    assert report.status == "ok", [e.message for e in report.errors]
    after = world.contents()
    created = 0
    for platform, people in before.items():
        for email, held in people.items():
            assert email in after[platform], f"{email} gone from {platform}"
            if email not in sample:
                assert after[platform][email] == held, (platform, email)
        new = set(after[platform]) - set(people)
        assert new <= sample, (platform, new - sample)
        created += len(new)
    assert created >= 3
    state = world.store.scoped(world.config)
    assert {p: state.cursor(p) for p in PLATFORMS} == dict.fromkeys(PLATFORMS)


@pytest.mark.slow
def test_the_next_unlimited_run_ends_where_a_run_without_limit_would() -> None:
    limited, plain = World(), World()
    limited.sync(RunScope(limit=6))
    plain.clock.advance(60)  # the same clock as the limited world's
    for world in (limited, plain):
        report, _ = world.sync()
        assert report.status == "ok", [e.message for e in report.errors]
    assert limited.contents() == plain.contents()
    again = limited.plan()
    assert again.write_count == 0, again.render()


@pytest.mark.slow
def test_changes_outside_the_sample_read_by_a_limited_run_reach_the_next_run(
    store_url: str,
) -> None:
    """After a first full run (cursors set), people act outside the sample; a limited run
    reads their acts and leaves them; the next unlimited run still carries them (SQLite and
    PostgreSQL state)."""
    world = World(store_url)
    report, _ = world.sync()
    assert report.status == "ok", [e.message for e in report.errors]
    crowd = sorted((crowd_email(i) for i in range(0, 24, 2)), key=rank)  # on MC and HubSpot
    renamed, leaver = crowd[-1], crowd[-2]  # the last of the order: outside a sample of 3
    member = world.mc.get_member(renamed)
    assert member is not None
    member.merge_fields["FNAME"] = "Renamed"  # hook: the person edits their profile
    world.mc._touch(member)
    world.hs.unsubscribe_all(leaver)
    world.clock.advance(60)

    report, _ = world.sync(RunScope(limit=3))
    assert report.status == "ok", [e.message for e in report.errors]
    held = world.contents()
    assert ("first_name", "Renamed") not in held["hubspot"][renamed][0]
    assert held["mailchimp"][leaver][2] == "subscribed"  # not carried by the limited run

    report, _ = world.sync()
    assert report.status == "ok", [e.message for e in report.errors]
    after = world.contents()
    for platform in PLATFORMS:
        assert ("first_name", "Renamed") in after[platform][renamed][0], platform
    assert after["mailchimp"][leaver][2] != "subscribed"
    assert world.plan().write_count == 0


@pytest.mark.slow
def test_a_limited_run_after_a_full_one_publishes_no_segment_with_only_its_sample() -> None:
    """A new static segment needs everyone's membership: a limited run after a full run
    (the next read is incremental) leaves it to the next unlimited run, which publishes it
    whole: the accounts end as without the limited run."""
    limited, plain = World(), World()
    for world in (limited, plain):
        kept = world.segments
        world.segments = kept[:1]
        world.sync()
        world.sync()  # reads the echoes of the first run's writes: the next read is quiet
        world.segments = kept  # `lived` is new
    plan = limited.plan(RunScope(limit=4))
    assert not any(p.segment == "lived" for pp in plan.platforms.values()
                   for p in pp.publications)
    assert any("not published by a run limited to a sample" in d["message"]
               for d in plan.diagnostics)
    limited.sync(RunScope(limit=4))
    plain.clock.advance(120)  # the limited world's plan and sync
    for world in (limited, plain):
        report, _ = world.sync()
        assert report.status == "ok", [e.message for e in report.errors]
    tagged = {e for e, held in limited.contents()["mailchimp"].items()
              if "segsync:lived" in held[1]}
    assert len(tagged) > 4
    assert limited.contents() == plain.contents()


@pytest.mark.slow
def test_a_limited_run_erases_nobody_again() -> None:
    """`sync.erasure: enforce` erases again the erased people a platform holds; a sample's
    run reports them and leaves that to the next unlimited run."""
    world = World()
    world.sync()
    state = world.store.scoped(world.config)
    victim = crowd_email(4)  # on Mailchimp and HubSpot, created on Brevo by the first run
    state.add_tombstone(erasure_hash(state.erasure_key(), victim), at="2026-01-01T00:00:00Z")
    engine = world.engine(RunScope(limit=2))
    engine.enforce_erasure = True

    async def go() -> RunReport:
        try:
            return await engine.sync()
        finally:
            for connector in engine.connectors.values():
                await connector.aclose()

    report = asyncio.run(go())
    assert any(e.code == "erased_person" for e in report.errors)  # read, and reported
    held = world.contents()
    assert all(victim in held[p] for p in ("hubspot", "brevo")), held.keys()


@pytest.mark.slow
def test_a_limited_run_refuses_to_drop_a_deletion_awaiting_an_unlimited_run() -> None:
    """A write of the last run found a person deleted on HubSpot; the next run applies the
    `on_delete` policy to them. A sample without them would mark that done undone: refused."""
    world = World()
    world.sync()
    world.sync()
    who = "person22@crowd.dev"
    gone = [cid for cid, c in world.hs.contacts.items() if c.properties.get("email") == who]
    del world.hs.contacts[gone[0]]  # hook: deleted without any read telling it
    member = world.mc.get_member(who)
    assert member is not None
    member.merge_fields["FNAME"] = "Moved"  # the next write to HubSpot finds the deletion
    world.mc._touch(member)
    world.clock.advance(60)
    world.sync()
    state = world.store.scoped(world.config)
    assert [d.cid for d in state.deletions(pending=True)] == [who]
    assert who not in expected_sample(world.everyone(), 3)
    with pytest.raises(ScopeError, match=r"1 deletion\(s\) found by the last run await"):
        world.plan(RunScope(limit=3, full_refresh=True))
    assert [d.cid for d in state.deletions(pending=True)] == [who]
