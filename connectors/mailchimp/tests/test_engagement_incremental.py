"""The Mailchimp engagement refresh, incremental by campaign and `since`, in a lived-in
audience: a later refresh reads only the activity after the last one and gives what a full
read gives, whatever people do between two refreshes and between two pages of one; its cost
is the documented formula."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import functools
from collections.abc import Awaitable, Callable
from typing import Any
from unittest import mock

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from segsync_mailchimp import MailchimpConnector, MailchimpEmulator
from segsync_mailchimp import engagement as engagement_module
from segsync_mailchimp.api import iso_time
from segsync_mailchimp.engagement import RefreshCursor, listing_calls
from segsync_mailchimp.responsecheck import response_validator
from segsync_mailchimp.speccheck import SpecChecker, SpecCheckingTransport, default_spec_dir

from segsync.clock import VirtualClock
from segsync.http import ApiError
from segsync.testing.responses import ResponseCheckingTransport

KEY = MailchimpEmulator.default_api_key
LIST = MailchimpEmulator.default_list_id
SPEC_DIR = default_spec_dir()
T0 = dt.datetime(2026, 3, 2, 9, 0, 0, 250_000, tzinfo=dt.UTC)  # not on a second
DAY = 86_400.0
OVERLAP = MailchimpConnector.OVERLAP
READERS = [f"reader{i}@example.com" for i in range(6)]


class BetweenPages(httpx.AsyncBaseTransport):
    """Runs the queued actions of people, one after each page of an email-activity or
    members listing is answered (before the client asks for the next); keeps the requests."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.queue: list[Callable[[], None]] = []
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        self.requests.append(request)
        path = request.url.path
        if self.queue and path.endswith(("/email-activity", "/members")):
            self.queue.pop(0)()
        return response

    def since_read(self) -> set[str]:
        """The campaigns whose activity was asked `since` (and forget the requests)."""
        out = {r.url.path.split("/")[-2] for r in self.requests
               if r.url.path.endswith("/email-activity") and "since" in r.url.params}
        self.requests.clear()
        return out


@dataclasses.dataclass
class World:
    clock: VirtualClock
    emu: MailchimpEmulator
    hook: BetweenPages
    connector: MailchimpConnector

    async def refresh(self, cursor: str | None) -> tuple[dict[str, dict[str, Any]], str]:
        """One refresh: values by platform id, and the cursor it ends with."""
        values: dict[str, dict[str, Any]] = {}
        last = None
        async for page in self.connector.read_engagement(cursor):
            values.update({k: dict(v) for k, v in page.values.items()})
            last = page.cursor or last
        assert last is not None
        return values, last


def lived_in(clock: VirtualClock) -> MailchimpEmulator:
    """An audience in use for years: members in every status, readers signed up by form,
    two campaigns sent before segsync ran, opened, clicked and bounced by their readers."""
    emu = MailchimpEmulator(clock=clock)
    emu.seed_lived_in()
    for email in READERS:
        emu.seed_member(email, "subscribed", source="Hosted Signup Form")
    now = clock.now()
    for n, days in enumerate((40, 20)):
        campaign = emu.record_campaign(sent_at=now - dt.timedelta(days=days))
        for email in ["ada.subscribed@lived.dev", *READERS]:
            emu.record_send(email, campaign)
        emu.record_open(READERS[n], campaign, at=now - dt.timedelta(days=days - 1))
        emu.record_open(READERS[n], campaign, at=now - dt.timedelta(days=days - 2))
        emu.record_click(READERS[n + 1], campaign, at=now - dt.timedelta(days=days - 1))
        emu.record_open("ada.subscribed@lived.dev", campaign, at=now - dt.timedelta(days=3))
        if n == 0:
            emu.record_bounce(READERS[4], campaign, at=now - dt.timedelta(days=days))
    return emu


def run(body: Callable[[World], Awaitable[None]], *, checked: bool = True) -> None:
    """`body` on a lived-in emulator; `checked`: every request and answer must fit the API
    description (when it is here)."""
    clock = VirtualClock(T0)
    emu = lived_in(clock)
    hook = BetweenPages(emu.transport())
    transport: httpx.AsyncBaseTransport = hook
    answer_check = request_check = None
    if checked:
        answers = response_validator()
        if answers is not None:
            answer_check = ResponseCheckingTransport(transport, answers)
            transport = answer_check
        if SPEC_DIR.is_dir():
            request_check = SpecCheckingTransport(transport, SpecChecker(SPEC_DIR))
            transport = request_check
    connector = MailchimpConnector({"api_key": KEY, "list_id": LIST}, transport=transport,
                                   clock=clock)

    async def main() -> None:
        async with connector:
            await body(World(clock, emu, hook, connector))

    asyncio.run(main())
    assert request_check is None or request_check.summary() == []
    assert answer_check is None or answer_check.problems == []


def contact_id(emu: MailchimpEmulator, email: str) -> str:
    member = emu.get_member(email)
    assert member is not None
    return str(member.contact_id)


def known_campaigns(cursor: str | None) -> set[str]:
    """The campaigns a refresh cursor has read."""
    state = RefreshCursor.loads(cursor)
    return set() if state is None else set(state.tally.campaigns)


def tallies(cursor: str) -> dict[str, tuple[Any, ...]]:
    """The cursor's per-member tally with campaigns by id (ordinals differ by read order)."""
    state = RefreshCursor.loads(cursor)
    assert state is not None
    ids = state.tally.campaigns
    return {
        h: (m.received, {ids[o] for o in m.opened}, {ids[o] for o in m.clicked},
            {ids[o] for o in m.bounced}, m.last_open, m.last_click)
        for h, m in state.tally.members.items()
    }


def test_since_lists_only_actions_strictly_after_it_and_refuses_a_malformed_time() -> None:
    """The emulator's `since`: a recipient is listed only with actions after `since`
    (strictly: an action at `since` is not), with those actions only; no action after it, not
    listed. A `since` or `since_send_time` that is no time is a 400 naming it."""

    async def body(world: World) -> None:
        emu, client = world.emu, world.connector.client
        campaign = emu.record_campaign()
        at = world.clock.now().replace(microsecond=0) + dt.timedelta(hours=1)
        for email in READERS[:3]:
            emu.record_send(email, campaign)
        emu.record_open(READERS[0], campaign, at=at)
        emu.record_open(READERS[1], campaign, at=at - dt.timedelta(seconds=1))
        emu.record_click(READERS[1], campaign, at=at + dt.timedelta(seconds=1))
        path = f"/reports/{campaign}/email-activity"

        async def listed(since: dt.datetime) -> dict[str, list[str]]:
            got = await client.get_json(path, endpoint="x", params={"since": iso_time(since)})
            assert got["total_items"] == len(got["emails"])
            return {e["email_address"]: [a["action"] for a in e["activity"]]
                    for e in got["emails"]}

        assert await listed(at) == {READERS[1]: ["click"]}
        assert await listed(at - dt.timedelta(seconds=1)) == {
            READERS[0]: ["open"], READERS[1]: ["click"]}
        assert await listed(at - dt.timedelta(seconds=2)) == {
            READERS[0]: ["open"], READERS[1]: ["open", "click"]}
        whole = await client.get_json(path, endpoint="x", params={})
        assert whole["total_items"] == 3  # every recipient, READERS[2] with no action
        for name, route in (("since", path), ("since_send_time", "/campaigns")):
            with pytest.raises(ApiError) as refused:
                await client.get_json(route, endpoint="x", params={name: "last tuesday"})
            assert refused.value.status == 400
            assert name in str(refused.value)

    run(body, checked=False)  # the malformed times do not fit the description, on purpose


def test_a_later_refresh_reads_since_its_last_and_equals_a_full_read() -> None:
    """After a first (full) refresh, people act: a reader opens again an email already
    opened (counted once), another opens an old campaign late (reported with a time before
    the last refresh, within the overlap), a click, a bounce, one unsubscribes, one is
    archived, a new campaign goes out. The next refresh asks the known campaigns `since`
    the last one, reads the new one whole, and its values and tallies equal a full read's."""

    async def body(world: World) -> None:
        emu, clock = world.emu, world.clock
        first, second = sorted(emu.campaigns, key=lambda c: emu.campaigns[c].send_time)
        values, cursor = await world.refresh(None)
        assert world.hook.since_read() == set()  # the first refresh reads whole
        reader0 = contact_id(emu, READERS[0])
        assert values[reader0]["opens"] == 1  # opened twice: one email
        assert contact_id(emu, "ben.pending@lived.dev") not in values  # never emailed
        started = clock.now()

        clock.advance(DAY + 0.5)
        emu.record_open(READERS[0], first)  # again: still one email opened
        late = started - OVERLAP + dt.timedelta(seconds=0.5)  # reported late, in the overlap
        emu.record_open(READERS[3], first, at=late)
        emu.record_click(READERS[4], second)
        emu.record_bounce(READERS[5], second)
        emu.unsubscribe(READERS[2])
        archived = emu.get_member(READERS[1])
        assert archived is not None
        archived.status = "archived"
        third = emu.record_campaign()
        for email in READERS[2:]:
            emu.record_send(email, third)
        emu.record_open(READERS[4], third)

        later, cursor2 = await world.refresh(cursor)
        assert world.hook.since_read() == {first, second}
        full, cursor_full = await world.refresh(None)
        assert later == full
        assert tallies(cursor2) == tallies(cursor_full)
        assert later[reader0]["opens"] == 1  # opened again: still one email
        assert later[contact_id(emu, READERS[3])]["opens"] == 1
        assert later[contact_id(emu, READERS[3])]["last_open"] == late.replace(microsecond=0)
        reader4 = later[contact_id(emu, READERS[4])]
        assert (reader4["opens"], reader4["clicks"], reader4["emails_delivered"]) == (1, 1, 2)
        assert later[contact_id(emu, READERS[5])]["emails_delivered"] == 2  # 3 sent, 1 bounce
        assert contact_id(emu, READERS[1]) not in later  # archived: not listed

        clock.advance(DAY)
        quiet, cursor3 = await world.refresh(cursor2)
        assert quiet == full
        assert len(cursor3) == len(cursor2)  # no action, no growth

    run(body)


def test_a_deleted_campaign_an_older_cursor_and_a_week_make_a_full_read() -> None:
    """What `since` cannot show makes the refresh read whole: a campaign deleted since
    (its opens leave the figures), a cursor of the previous format, `FULL_EVERY` passed."""

    async def body(world: World) -> None:
        emu, clock = world.emu, world.clock
        first = min(emu.campaigns, key=lambda c: emu.campaigns[c].send_time)
        _, cursor = await world.refresh(None)
        world.hook.since_read()
        clock.advance(DAY)
        del emu.campaigns[first]
        values, cursor = await world.refresh(cursor)
        assert world.hook.since_read() == set()
        assert values[contact_id(emu, READERS[0])]["opens"] == 0
        assert values == (await world.refresh(None))[0]
        world.hook.since_read()

        _, cursor = await world.refresh(cursor)
        assert len(world.hook.since_read()) == 1  # incremental again
        await world.refresh(iso_time(clock.now()))  # what the previous version kept
        assert world.hook.since_read() == set()
        clock.advance(6 * DAY)
        _, cursor = await world.refresh(cursor)
        assert len(world.hook.since_read()) == 1  # 6 days after the full read
        clock.advance(DAY)
        await world.refresh(cursor)
        assert world.hook.since_read() == set()  # 7 days: read whole

    run(body)


def test_an_incremental_refresh_with_one_new_open_costs_the_formula() -> None:
    """Pages of 4: the first refresh costs L(C) + sum of L(recipients) + L(members); after one
    open, a refresh costs L(C) + C + L(members), L = `listing_calls` (measured by the
    connector's request count, what the run report shows)."""

    async def body(world: World) -> None:
        emu, clock = world.emu, world.clock
        for n in range(12):
            emu.seed_member(f"extra{n}@example.com", "subscribed", source="Hosted Signup Form")
        campaign = emu.record_campaign()
        for email in [*READERS, *(f"extra{n}@example.com" for n in range(12))]:
            emu.record_send(email, campaign)
        campaigns = list(emu.campaigns.values())
        members = [m for m in emu.lists[LIST].members.values() if m.status != "archived"]
        stats = world.connector.stats
        before = stats.calls
        _, cursor = await world.refresh(None)
        first = stats.calls - before
        assert first == listing_calls(len(campaigns)) + sum(
            listing_calls(len(c.recipients)) for c in campaigns) + listing_calls(len(members))
        clock.advance(DAY)
        emu.record_open("extra7@example.com", campaign)
        before = stats.calls
        values, _ = await world.refresh(cursor)
        later = stats.calls - before
        assert later == listing_calls(len(campaigns)) + len(campaigns) + listing_calls(
            len(members))
        assert later < first
        assert values[contact_id(emu, "extra7@example.com")]["opens"] == 1

    with mock.patch.object(engagement_module, "MAX_PAGE", 4):
        run(body)


# -- the property: any sequence of people's actions, incremental == full -------------------

MEMBER = st.integers(0, 9)
CAMPAIGN = st.integers(0, 7)
LAG = st.floats(0, 3600, exclude_max=True)  # an action reported within the overlap
ACT = st.one_of(
    st.tuples(st.just("send"), st.integers(1, 1023)),
    st.tuples(st.sampled_from(["open", "click"]), MEMBER, CAMPAIGN, LAG),
    st.tuples(st.just("bounce"), MEMBER, CAMPAIGN),
    st.tuples(st.sampled_from(["unsubscribe", "archive", "come back"]), MEMBER),
)
STEP = st.one_of(
    ACT,
    st.tuples(st.just("wait"), st.floats(0, 3 * DAY)),
    st.tuples(st.just("delete campaign"), CAMPAIGN),
    st.tuples(st.just("refresh"), st.lists(ACT, max_size=3)),
)


def _people(emu: MailchimpEmulator) -> list[str]:
    return sorted(m.email_address for m in emu.lists[LIST].members.values())


def _act(emu: MailchimpEmulator, act: tuple[Any, ...]) -> None:
    """A person's action (skipped where it cannot happen: an open of an email not sent)."""
    people, now = _people(emu), emu.clock.now()
    campaigns = sorted(emu.campaigns, key=lambda c: emu.campaigns[c].web_id)
    kind = act[0]
    if kind == "send":
        subscribed = [p for i, p in enumerate(people) if act[1] >> i & 1
                      and (m := emu.get_member(p)) is not None and m.status == "subscribed"]
        if subscribed:
            campaign = emu.record_campaign()
            for email in subscribed:
                emu.record_send(email, campaign)
        return
    email = people[act[1] % len(people)]
    member = emu.get_member(email)
    assert member is not None
    if kind in ("open", "click", "bounce"):
        if not campaigns:
            return
        campaign = campaigns[act[2] % len(campaigns)]
        if member.id not in emu.campaigns[campaign].recipients:
            return
        if kind == "open":
            emu.record_open(email, campaign, at=now - dt.timedelta(seconds=act[3]))
        elif kind == "click":
            emu.record_click(email, campaign, at=now - dt.timedelta(seconds=act[3]))
        else:
            emu.record_bounce(email, campaign)
    elif kind == "unsubscribe" and member.status == "subscribed":
        emu.unsubscribe(email)
    elif kind == "archive" and member.status != "archived":
        member.status = "archived"
        member.last_changed = now
    elif kind == "come back" and member.status == "archived":
        member.status = "subscribed"
        member.last_changed = now


@pytest.mark.slow
@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(steps=st.lists(STEP, max_size=14))
def test_incremental_refreshes_equal_a_full_read_whatever_people_do(
    steps: list[tuple[Any, ...]],
) -> None:
    """Generated sequences of sends, opens (some reported late), clicks, bounces,
    unsubscriptions, archives and returns, campaigns deleted, time passing and refreshes,
    with people acting between two pages of a refresh (pages of 3): every refresh that no
    one acted during gives exactly a full read's values and tallies, and each refresh reads
    the campaigns it knew `since` unless a full read is due (first, deleted campaign, week)."""

    async def body(world: World) -> None:
        emu, clock = world.emu, world.clock
        cursor: str | None = None
        full_at: dt.datetime | None = None
        for step in [*steps, ("refresh", [])]:
            kind = step[0]
            if kind == "wait":
                clock.advance(step[1])
            elif kind == "delete campaign":
                campaigns = sorted(emu.campaigns, key=lambda c: emu.campaigns[c].web_id)
                if campaigns:
                    del emu.campaigns[campaigns[step[1] % len(campaigns)]]
            elif kind == "refresh":
                world.hook.queue = [functools.partial(_act, emu, a) for a in step[1]]
                known, now = known_campaigns(cursor), clock.now()
                full = (full_at is None or bool(known - set(emu.campaigns))
                        or now >= full_at + dt.timedelta(days=7))
                values, cursor = await world.refresh(cursor)
                asked = world.hook.since_read()
                assert asked == (set() if full else known), (full, asked, known)
                full_at = now if full else full_at
                event("a full read" if full else "an incremental refresh")
                if len(world.hook.queue) < len(step[1]):
                    event("people acted between two pages")
                world.hook.queue = []
                if not step[1]:  # no one acted during the refresh
                    expected, expected_cursor = await world.refresh(None)
                    world.hook.since_read()
                    assert values == expected
                    assert tallies(cursor) == tallies(expected_cursor)
            else:
                _act(emu, step)

    with mock.patch.object(engagement_module, "MAX_PAGE", 3):
        run(body, checked=False)
