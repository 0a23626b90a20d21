"""Recurring dates on HubSpot: `birthday within N days` has no native list filter, so it is
materialised with the operator HubSpot lacks named; the emulator refuses the undocumented
date filters instead of reading them another way; and the list segsync keeps in a lived-in
portal holds, run after run as the days pass (year end, 29 February), exactly the people the
reference evaluator selects.

What HubSpot documents (../shared/reference/hubspot.md §5.4 and the Lists v3 spec): the date
operations TIME_POINT / TIME_RANGED read the property through `propertyParser` VALUE or
UPDATED_AT; CALENDAR_DATE and the legacy ROLLING_DATE_RANGE count the full date from today;
ANNIVERSARY is only a `referenceType` of a PROPERTY_REFERENCED time point, listed without a
meaning and without an offset.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from segsync_hubspot import HubSpotConnector, HubSpotEmulator
from segsync_hubspot.emulator.records import ListRecord
from segsync_hubspot.filters import FilterError, validate_branch

from segsync.clock import VirtualClock
from segsync.connector import registry
from segsync.model import Contact, FieldSpec, FieldType, PublishMode, Schema
from segsync.rules import evaluate, load_rule
from segsync.state import open_store
from segsync.sync import Engine, SegmentTarget, SyncPolicy

SCHEMA = Schema(fields={
    "first_name": FieldSpec(type=FieldType.TEXT),
    "country": FieldSpec(type=FieldType.TEXT),
    "birthday": FieldSpec(type=FieldType.DATE, recurring=True),
    "renewal": FieldSpec(type=FieldType.DATE, recurring=True),
})
MISSING_OPERATOR = (
    "HubSpot's list filters have no anniversary operator (TIME_POINT and TIME_RANGED "
    "compare the full date, propertyParser VALUE or UPDATED_AT; CALENDAR_DATE and "
    "ROLLING_DATE_RANGE place the full date around today; ANNIVERSARY is only a "
    "referenceType of a PROPERTY_REFERENCED time point, undocumented and without offset)"
)


def compile_on_hubspot(text: str) -> Any:
    compiler = registry.get("hubspot").build_compiler(SCHEMA, strictness="ignore")
    assert compiler is not None
    return compiler.compile("birthdays", load_rule(text, SCHEMA), PublishMode.AUTO)


# -- the compiler: materialised, saying which operator is missing ---------------------------


@pytest.mark.parametrize(("text", "window"), [
    ("birthday within 7 days", "birthday within 7 days"),
    ("renewal within 0 days", "renewal within 0 days"),  # a custom date property
    ("not birthday within 30 days", "birthday within 30 days"),
    ('birthday within 7 days or country = "FR"', "birthday within 7 days"),
])
def test_a_birthday_window_is_materialised_naming_the_missing_operator(
    text: str, window: str
) -> None:
    compiled = compile_on_hubspot(text)

    assert compiled.mode == "materialised"
    assert compiled.definition is None
    expected = (f"materialised: '{window}' is a yearly anniversary window moving with today: "
                f"{MISSING_OPERATOR}")
    assert expected in [d.message for d in compiled.diagnostics]


def test_the_rest_of_an_and_stays_native_and_only_the_window_is_materialised() -> None:
    compiled = compile_on_hubspot('country = "FR" and birthday within 7 days')

    assert compiled.mode == "split"
    assert compiled.residual == load_rule("birthday within 7 days", SCHEMA)
    [branch] = compiled.definition["filterBranch"]["filterBranches"]
    assert sorted(f["property"] for f in branch["filters"]) == ["country", "segsync_tags"]
    assert any(MISSING_OPERATOR in d.message for d in compiled.diagnostics)


def test_other_conditions_on_a_recurring_date_compare_the_full_date_natively() -> None:
    compiled = compile_on_hubspot("renewal after 2020-01-01")

    assert compiled.mode == "native", compiled.diagnostics
    assert "propertyParser': 'VALUE'" in str(compiled.definition)


# -- the emulator: the undocumented date filters are refused, never read another way --------


def _ranged(low: dict[str, Any], high: dict[str, Any], **extra: Any) -> dict[str, Any]:
    operation = {"operationType": "TIME_RANGED", "type": "TIME_RANGED", "operator": "IS_BETWEEN",
                 "lowerBoundTimePoint": low, "upperBoundTimePoint": high,
                 "includeObjectsWithNoValueSet": False, **extra}
    return {"filterBranchType": "OR", "filters": [], "filterBranches": [
        {"filterBranchType": "AND", "filterBranches": [], "filters": [
            {"filterType": "PROPERTY", "property": "renewal", "operation": operation}]}]}


TODAY = {"timeType": "INDEXED", "indexReference": {"referenceType": "TODAY"}, "zoneId": "UTC"}
IN_7_DAYS = {**TODAY, "offset": {"days": 7}}
ANNIVERSARY = {"timeType": "PROPERTY_REFERENCED", "property": "renewal",
               "referenceType": "ANNIVERSARY", "zoneId": "UTC"}


@pytest.mark.parametrize(("branch", "refusal"), [
    (_ranged(TODAY, IN_7_DAYS, propertyParser="ANNIVERSARY"),
     "propertyParser 'ANNIVERSARY' is not supported by this emulator"),
    (_ranged(ANNIVERSARY, IN_7_DAYS), "PROPERTY_REFERENCED time points (referenceType "
     "'ANNIVERSARY') are not supported by this emulator"),
    (_ranged(TODAY, {**TODAY, "offset": {"months": 1}}), "offset months is not supported"),
    (_ranged({**TODAY, "indexReference": {"referenceType": "YEAR"}}, IN_7_DAYS),
     "indexReference 'YEAR' is not supported"),
    (_ranged({**TODAY, "indexReference": {"referenceType": "TODAY", "hour": 9}}, IN_7_DAYS),
     "indexReference hour is not supported"),
    (_ranged(TODAY, IN_7_DAYS, upperBoundEndpointBehavior="INCLUDED"),
     "upperBoundEndpointBehavior 'INCLUDED' is not valid"),
    (_ranged(TODAY, {**IN_7_DAYS, "zoneId": "Mars/Olympus"}), "is not a time zone"),
    (_ranged({"timeType": "DATE", "year": 2027, "month": 2, "day": 29, "zoneId": "UTC"},
             IN_7_DAYS), "is not a date"),
])
def test_the_emulator_refuses_date_filters_hubspot_does_not_document(
    branch: dict[str, Any], refusal: str
) -> None:
    with pytest.raises(FilterError, match=refusal.replace("(", r"\(").replace(")", r"\)")):
        validate_branch(branch, lambda _name: "date", lambda _id: True)


def test_the_documented_window_shapes_are_accepted() -> None:
    validate_branch(_ranged(TODAY, IN_7_DAYS, propertyParser="VALUE"),
                    lambda _name: "date", lambda _id: True)
    validate_branch(_ranged({**TODAY, "offset": {"days": -7, "hours": 3}}, TODAY,
                            propertyParser="UPDATED_AT"), lambda _name: "date", lambda _id: True)


async def _create_list(emulator: HubSpotEmulator, branch: dict[str, Any]) -> httpx.Response:
    """A person's script: make the date property `renewal`, then a DYNAMIC list on it."""
    async with httpx.AsyncClient(
        transport=emulator.transport(), base_url="http://127.0.0.1:9",
        headers={"Authorization": f"Bearer {emulator.default_api_key}"},
    ) as client:
        made = await client.post("/crm/v3/properties/contacts", json={
            "name": "renewal", "label": "Renewal", "type": "date", "fieldType": "date",
            "groupName": "contactinformation"})
        assert made.status_code == 201, made.text
        return await client.post("/crm/v3/lists", json={
            "name": "renewals soon", "objectTypeId": "0-1", "processingType": "DYNAMIC",
            "filterBranch": branch})


def test_a_list_filtering_on_an_anniversary_is_refused_when_created() -> None:
    """Through the API: 400 at creation, not a list read as if ANNIVERSARY were VALUE."""
    emulator = HubSpotEmulator(clock=VirtualClock(dt.datetime(2026, 12, 28, tzinfo=dt.UTC)))
    before = dict(emulator.lists)

    response = asyncio.run(_create_list(
        emulator, _ranged(TODAY, IN_7_DAYS, propertyParser="ANNIVERSARY")))

    assert response.status_code == 400
    assert "propertyParser 'ANNIVERSARY' is not supported" in response.json()["message"]
    assert emulator.lists == before


# -- the materialised list in a lived-in portal, day after day ------------------------------

RULE = load_rule("birthday within 7 days", SCHEMA)
#: what people typed in HubSpot's own `date_of_birth` (a text property): dates, and values
#: that are no date (unset for segsync, so in no window)
TYPED = ["1990-12-30", "1985-01-02", "2000-02-29", "1999-02-28", "1970-03-01", "2001-12-28",
         "1960-01-04", "", "soon", "1988-07-14"]
#: the days the runs happen on: across the year end, then 29 February without and with one
DAYS = [dt.date(2026, 12, 26), dt.date(2026, 12, 28), dt.date(2027, 1, 3),
        dt.date(2027, 2, 21), dt.date(2027, 2, 28), dt.date(2028, 2, 23)]


class Portal:
    """A lived-in HubSpot portal (people with their own birthdays and a list of their own),
    synced by the engine with the segment `birthdays` published AUTO (so materialised)."""

    def __init__(self, typed: list[str], start: dt.date) -> None:
        self.clock = VirtualClock(dt.datetime.combine(start, dt.time(9), tzinfo=dt.UTC))
        self.hs = HubSpotEmulator(clock=self.clock, search_delay_seconds=0.0)
        self.ids = {
            f"p{i}@lived.dev": self.hs.seed_contact(
                {"email": f"p{i}@lived.dev", "firstname": f"P{i}", "date_of_birth": value})
            for i, value in enumerate(typed)
        }
        self.theirs = str(9000 + len(self.hs.lists))
        self.hs.lists[self.theirs] = ListRecord(  # the portal owner's own birthday list
            self.theirs, "Birthdays (marketing)", "MANUAL", None,
            self.clock.now(), self.clock.now(), self.clock.now(),
            members={self.ids["p0@lived.dev"]: self.clock.now()})
        self.connector = HubSpotConnector(
            {"token": self.hs.default_api_key, "base_url": "http://127.0.0.1:9"},
            schema=SCHEMA, transport=self.hs.transport(), clock=self.clock)
        self.store = open_store("sqlite:///:memory:", clock=self.clock)
        self.engine = Engine(
            {"hubspot": self.connector}, self.store, config="birthdays",
            policy=SyncPolicy(platforms=("hubspot",)), schema=SCHEMA, clock=self.clock,
            segments=[SegmentTarget("birthdays", RULE, {"hubspot": PublishMode.AUTO})])
        self.loop = asyncio.new_event_loop()

    def run_on(self, day: dt.date) -> None:
        self.clock.set(dt.datetime.combine(day, dt.time(9), tzinfo=dt.UTC))
        report = self.loop.run_until_complete(self.engine.sync())
        assert report.status == "ok", (report.status, report.errors[:3])

    def members(self) -> set[str]:
        """The emails in the list segsync keeps for the segment."""
        [list_id] = [k for k, v in self.hs.lists.items()
                     if v.name == "segsync: birthdays" and not v.deleted]
        emails = {i: e for e, i in self.ids.items()}
        return {emails[i] for i in self.hs.list_members(list_id)}

    def selected(self) -> set[str]:
        """Whom the reference evaluator selects today, from what people typed."""
        spec = SCHEMA.fields["birthday"]
        out = set()
        for email, record_id in self.ids.items():
            raw = self.hs.contacts[record_id].properties.get("date_of_birth") or ""
            try:
                day = spec.coerce(raw) if raw else None
            except ValueError:
                day = None
            contact = Contact(email=email, fields={"birthday": day})
            if evaluate(RULE, contact, now=self.clock.now(), schema=SCHEMA):
                out.add(email)
        return out

    def close(self) -> None:
        self.loop.run_until_complete(self.connector.aclose())
        self.loop.close()
        self.store.close()


@pytest.fixture
def portal() -> Iterator[Portal]:
    p = Portal(TYPED, DAYS[0])
    yield p
    p.close()


def test_the_list_follows_the_window_across_the_year_end_and_29_february(portal: Portal) -> None:
    """Each run (no contact changed between most of them) moves the list with today; a person
    who edits their birthday in HubSpot is moved by the next run; the owner's list is left
    as it is."""
    expected = {
        dt.date(2026, 12, 26): {"p0", "p1", "p5"},  # 30 Dec, 2 Jan (next year), 28 Dec
        dt.date(2026, 12, 28): {"p0", "p1", "p5", "p6"},  # + 4 Jan; the window crosses
        dt.date(2027, 1, 3): {"p6"},  # 4 Jan
        dt.date(2027, 2, 21): {"p2", "p3"},  # 29 Feb on 28 Feb in 2027, 28 Feb; not 1 Mar
        dt.date(2027, 2, 28): {"p2", "p3", "p4"},  # + 1 Mar
        dt.date(2028, 2, 23): {"p2", "p3", "p4"},  # 29 Feb 2028 itself
    }
    for day in DAYS:
        if day == dt.date(2027, 1, 3):  # someone corrects their birthday in HubSpot
            portal.hs.modify_contact(portal.ids["p9@lived.dev"], {"date_of_birth": "1988-01-05"})
            expected[day] |= {"p9"}
        portal.run_on(day)

        want = {f"{p}@lived.dev" for p in expected[day]}
        assert portal.selected() == want, day
        assert portal.members() == want, day
    assert portal.hs.list_members(portal.theirs) == {portal.ids["p0@lived.dev"]}


_BIRTHDAYS = st.dates(dt.date(1940, 1, 1), dt.date(2012, 12, 31)) | st.sampled_from(
    [dt.date(1996, 2, 29), dt.date(1990, 12, 31), dt.date(1990, 1, 1), dt.date(1991, 3, 1)])


@pytest.mark.slow
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_BIRTHDAYS, min_size=1, max_size=8),
       st.lists(st.dates(dt.date(2026, 1, 1), dt.date(2029, 12, 31)), min_size=1, max_size=3,
                unique=True).map(sorted))
@example([dt.date(1990, 1, 2), dt.date(1990, 12, 28), dt.date(1990, 1, 5)],
         [dt.date(2026, 12, 28)])  # Dec 28 + 7 days wraps into January
@example([dt.date(1996, 2, 29), dt.date(1990, 3, 1), dt.date(1990, 2, 27)],
         [dt.date(2027, 2, 21), dt.date(2027, 2, 28), dt.date(2028, 2, 22)])
def test_the_materialised_list_is_the_evaluator_s_selection(
    birthdays: list[dt.date], days: list[dt.date]
) -> None:
    """For generated birthdays and days, after each run the list holds exactly whom the
    evaluator selects that day."""
    portal = Portal([b.isoformat() for b in birthdays], days[0])
    try:
        for day in days:
            portal.run_on(day)
            assert portal.members() == portal.selected(), day
    finally:
        portal.close()
