"""The demo: a full sync between in-process platform emulators, with a report a user can trust.

`run_demo(options)` builds a world in a working directory (a temporary one unless
`options.keep` names one): the emulator of every demo platform (`demo_platforms()`: the
installed connectors whose emulator, found through `emulator_path`, declares a `demo_port`),
all on one `VirtualClock` so rate-limit waits cost no wall time; a synthetic audience seeded
through the connectors themselves *before* segsync's state exists (overlaps, conflicting
edits, unsubscribes, bounces, emails differing only by case, tags and an interest group); a
`segsync.yaml` built from each emulator's `client_config()`, with publish modes and conflict
priorities derived from the connectors' capabilities, whose `base_url`s point at the
emulators (`load_config` validates it, and the engine is built from it, its connectors
reaching the emulators through in-process transports). It then plans, applies, plans and
applies again, and checks the result by reading every platform back: `DemoReport.aligned`,
`consent_violations` (against the opt-outs the seed planted as well as the canonical view),
`second_sync_writes`, and `segments_match` (each published segment's members as the platform
lists them, against the reference evaluator). `trusted(report)` is all four.

`render_report(report)` is the text view; `DemoReport.model_dump(mode="json")` the JSON one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import random
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from segsync.clock import VirtualClock
from segsync.config import Config, example_publish_mode, load_config
from segsync.connector import (
    Connector,
    ContactChange,
    RemoteContact,
    SegmentRepresentation,
    load_object,
    registry,
)
from segsync.emulator import Emulator
from segsync.emulator.base import EngagementHook, record_engagement
from segsync.model import CONSENT_OPT_OUTS, ConsentStatus, normalize_email
from segsync.rules import evaluate
from segsync.state.base import OwnedObject
from segsync.sync import Engine, Plan
from segsync.sync.build import build_connectors, build_engine
from segsync.sync.segments import contact_of
from segsync.sync.snapshot import CanonicalView, PlatformRecord

__all__ = [
    "DemoOptions",
    "DemoReport",
    "PlatformOutcome",
    "SegmentOutcome",
    "consent_violations",
    "country_priority",
    "demo_platforms",
    "record_differences",
    "render_report",
    "run_demo",
    "trusted",
]

log = logging.getLogger("segsync.demo")

DEMO_START = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
"""Emulated time at the start of the demo (a Monday morning)."""

#: How much a platform's native segments can say; the demo settles the country by platform
#: priority, the platform whose segments say the most (where an audience is curated) first.
SEGMENT_EXPRESSIVENESS: Mapping[SegmentRepresentation, int] = {
    SegmentRepresentation.DYNAMIC_LIST: 2,
    SegmentRepresentation.SAVED_SEGMENT: 1,
    SegmentRepresentation.NONE: 0,
}

TAGS = ("vip", "newsletter", "webinar", "customer", "partner")
INTERESTS = ("running", "cycling", "swimming", "hiking")
COUNTRIES = ("FR", "DE", "BE", "ES", "IT", "NL", "GB", "US")
LANGUAGES = {"FR": "fr", "DE": "de", "BE": "fr", "ES": "es", "IT": "it", "NL": "nl", "GB": "en",
             "US": "en"}
FIRST_NAMES = ("Anna", "Louis", "Emma", "Jonas", "Lucia", "Marco", "Sofia", "Noah", "Chloé",
               "Lars", "Inès", "Pedro", "Hannah", "Tom", "Mia", "Hugo", "Elena", "Finn", "Zoé",
               "Ravi", "Aiko", "Omar", "Nora", "Paul")
LAST_NAMES = ("Martin", "Müller", "Rossi", "García", "Janssens", "de Vries", "Smith", "Dubois",
              "Schmidt", "Bianchi", "López", "Peeters", "Bakker", "Brown", "Lefèvre", "Weber",
              "Romano", "Fernández", "Maes", "Visser", "Taylor", "Moreau", "Wagner", "Ricci")
COMPANIES = ("Acme Outdoor", "Northwind", "Blue Fjord", "Pédale & Co", "Sierra Gear",
             "Kettle Labs", "Orbit Sports", "Lumen Retail")
DOMAINS = ("mail.segsync.test", "post.segsync.test", "inbox.segsync.test")

DEMO_CONFIG = """\
# segsync demo configuration, written by `segsync demo`.
# The platforms are segsync's emulators: serve them with `segsync emulate PLATFORM --port N`
# (ports below) to point segsync at them over loopback; the keys are the emulators' test keys.
state: {state}

schema:
  first_name: text
  last_name: text
  country: {{type: enum, options: [{countries}], description: ISO 3166 two-letter code}}
  language: text
  company: text
  interest: {{type: enum, options: [{interests}], description: the interest group}}
  lifetime_value: {{type: number, description: total spent (EUR)}}
  last_purchase_at: {{type: date, description: the day of the last purchase}}

platforms:
{platforms}
# Every platform's opens and clicks are re-read daily, also where that costs one call a
# contact (a connector that refreshes only when asked): the demo's `actif` needs them all.
engagement:
  platforms: {{{refreshed}}}

sync:
  conflicts:
    # The newest change wins, except the country, settled by platform priority: the
    # platform whose native segments say the most (where the audience is curated) first.
    default: latest
    fields: {{country: [{priority}]}}
  strictness: warn

segments:
  vip_france:
    description: VIP customers in France (native where the platform has native segments).
    rule: 'country = "FR" and tags has "vip"'
  newsletter_europe:
    description: Subscribed newsletter readers in the EU (split where consent is not native).
    rule: >-
      country in ["FR", "DE", "BE", "ES", "IT", "NL"] and tags has "newsletter"
      and consent = subscribed
  high_value:
    description: RFM-style top tier (an OR of ANDs).
    rule: '(lifetime_value >= 500 and tags has "vip") or lifetime_value >= 1500'
  recent_buyers:
    description: Bought in the last 90 days ('within' is materialised where not native).
    rule: 'last_purchase_at within 90 days and interest in ["running", "cycling"]'
    publish: {{{publish}}}
  actif:
    description: >-
      Engaged readers, whichever platform emails them (engagement aggregated across
      platforms: materialised everywhere).
    rule: 'open_rate > 0.5 and last_interaction within 7 days'
"""


class DemoOptions(BaseModel):
    """What `segsync demo` runs: audience size, seed, where to work, which platforms."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    contacts: int = Field(default=3000, gt=0, le=200_000, description="people in the audience")
    seed: int = Field(default=7, description="seed of the synthetic audience")
    keep: Path | None = Field(default=None, description="work (and stay) in this directory")
    platforms: tuple[str, ...] = Field(
        default_factory=lambda: demo_platforms(),
        description="connector names, in seeding order (default: every demo platform)",
    )


class PlatformOutcome(BaseModel):
    """One platform after the demo: what was seeded, what the sync did, what it holds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seeded: int
    contacts: int
    aligned: bool
    mismatches: list[str] = Field(default_factory=list, description="the first differences")
    created: int
    updated: int
    opt_outs_written: int
    api_calls_first_sync: int
    api_calls_second_sync: int
    rate_limited: int = Field(description="429 answers received (each waited out and retried)")
    paced_seconds: float = Field(
        description="emulated seconds requests waited for the rate budget, summed over requests"
    )
    consent_violations: int


class SegmentOutcome(BaseModel):
    """How one segment ended up on one platform, and why."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    segment: str
    platform: str
    published: str = Field(description="native, split, materialised or refused")
    reasons: list[str] = Field(default_factory=list)
    members: int | None = Field(default=None, description="members the platform holds")
    expected_members: int = Field(description="members by segsync's reference evaluator")


class DemoReport(BaseModel):
    """The demo's outcome; the fields a user (and CI) checks are at the top."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    contacts: dict[str, int] = Field(description="contacts per platform after sync")
    aligned: dict[str, bool] = Field(description="platform matches the canonical view")
    consent_violations: int = Field(
        description="records subscribed on a platform although the person opted out somewhere"
    )
    second_sync_writes: int
    segments_match: bool = Field(
        description="every published segment holds the members the reference evaluator selects"
    )
    api_calls: dict[str, int] = Field(description="API calls of both syncs, per platform")
    emulated_seconds: float = Field(description="emulated time the syncs took")
    wall_seconds: float = Field(description="wall-clock time of the whole demo")
    people: int
    seed: int
    workdir: str | None = Field(description="the kept working directory (None: removed)")
    planted: dict[str, int] = Field(description="what the seed planted to be settled")
    conflicts_settled: int
    conflict_policy: str
    conflict_examples: list[str] = Field(description="conflicting edits and how they settled")
    opt_outs_propagated: int
    platforms: dict[str, PlatformOutcome]
    segments: list[SegmentOutcome]
    first_sync: dict[str, Any] = Field(description="the engine's report of the first sync")
    record_errors: list[str] = Field(default_factory=list)
    plan_text: str = Field(description="the first plan, as `segsync plan` prints it")
    second_plan_text: str


# -- the synthetic audience --------------------------------------------------------------------


@dataclasses.dataclass
class _Person:
    key: str
    fields: dict[str, Any]
    tags: set[str]
    on: list[str]
    emails: dict[str, str]
    consent: dict[str, ConsentStatus]
    extra_tags: dict[str, set[str]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class _Conflict:
    key: str
    field: str
    edits: tuple[tuple[str, Any], ...]  # (platform, value), oldest first, a day apart


@dataclasses.dataclass
class _Audience:
    people: list[_Person]
    creates: dict[str, list[ContactChange]]
    edits: list[dict[str, list[ContactChange]]]
    planted: dict[str, int]
    opted_out: set[str]
    conflicts: list[_Conflict]


def _person(i: int, rng: random.Random, platforms: Sequence[str]) -> _Person:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    local = f"{first}.{last}".lower().replace(" ", "").replace("é", "e").replace("è", "e")
    local = local.replace("ü", "u").replace("í", "i").replace("á", "a") + f"{i}"
    email = f"{local}@{rng.choice(DOMAINS)}"
    country = rng.choices(COUNTRIES, weights=(30, 22, 8, 10, 8, 8, 8, 6))[0]
    spent = round(rng.lognormvariate(5.0, 1.1), 2)
    fields: dict[str, Any] = {
        "first_name": first,
        "last_name": last,
        "country": country,
        "language": LANGUAGES[country],
        "company": rng.choice(COMPANIES),
        "interest": rng.choice(INTERESTS),
        "lifetime_value": spent,
        "last_purchase_at": (DEMO_START - dt.timedelta(days=rng.randint(1, 400))).date(),
    }
    tags = {t for t, p in zip(TAGS, (0.15, 0.55, 0.2, 0.4, 0.05), strict=True) if rng.random() < p}
    weights = {platforms[0]: 0.7, **dict.fromkeys(platforms[1:], 0.55)}
    on = [p for p in platforms if rng.random() < weights[p]] or [rng.choice(list(platforms))]
    consent = {
        p: rng.choices(
            (ConsentStatus.SUBSCRIBED, ConsentStatus.NON_SUBSCRIBED), weights=(85, 15)
        )[0]
        for p in on
    }
    return _Person(email, fields, tags, on, dict.fromkeys(on, email), consent)


def _edited(name: str, person: _Person, rng: random.Random) -> Any:
    """A new value of `name` for `person`, as someone editing it on a platform would type it."""
    if name == "company":
        return rng.choice(COMPANIES) + rng.choice((" SA", " GmbH", " Ltd", " BV"))
    if name == "first_name":
        return f"{person.fields['first_name']} {rng.choice('ABCDEFGHJKLMNPR')}."
    if name == "country":
        return rng.choice(COUNTRIES)
    return round(person.fields["lifetime_value"] * rng.uniform(1.1, 2.0), 2)


def synthetic_audience(n: int, seed: int, platforms: Sequence[str]) -> _Audience:
    """`n` people spread over `platforms`, with the situations a real audience has.

    Round 0 creates every copy; rounds 1 and 2 are later edits made on the platforms
    (conflicting field edits, unsubscribes, bounces), so the newest change is known.
    """
    rng = random.Random(seed)
    people = [_person(i, rng, platforms) for i in range(n)]
    planted = dict.fromkeys(
        ("on_several_platforms", "on_every_platform", "conflicting_edits", "unsubscribes",
         "bounces", "case_variants", "tag_differences"), 0)
    # per round, per platform, per email: the change's fields (merged when several)
    edits: list[dict[str, dict[str, dict[str, Any]]]] = [
        {p: {} for p in platforms} for _ in range(2)
    ]

    def edit(round_: int, platform: str, email: str, **change: Any) -> None:
        merged = edits[round_][platform].setdefault(email, {"fields": {}})
        merged["fields"].update(change.pop("fields", {}))
        merged.update(change)

    opted_out: set[str] = set()
    conflicts: list[_Conflict] = []
    for person in people:
        several = len(person.on) > 1
        planted["on_several_platforms"] += several
        planted["on_every_platform"] += len(person.on) == len(platforms)
        roll = rng.random()
        if several and roll < 0.04:  # the same person, typed with capitals on one platform
            p = rng.choice(person.on[1:])
            local, _, domain = person.key.partition("@")
            person.emails[p] = local.title() + "@" + domain.upper()
            planted["case_variants"] += 1
        if several and rng.random() < 0.15:  # a tag only one platform knows
            p = rng.choice(person.on)
            extra = rng.choice([t for t in TAGS if t not in person.tags] or list(TAGS))
            person.extra_tags[p] = {extra}
            planted["tag_differences"] += 1
        if several and rng.random() < 0.2:  # edited on two platforms since: a conflict
            first, second = rng.sample(person.on, 2)
            name = rng.choice(("company", "first_name", "country", "lifetime_value"))
            values = (_edited(name, person, rng), _edited(name, person, rng))
            edit(0, first, person.emails[first], fields={name: values[0]})
            edit(1, second, person.emails[second], fields={name: values[1]})
            conflicts.append(
                _Conflict(person.key, name, ((first, values[0]), (second, values[1])))
            )
            planted["conflicting_edits"] += 1
        opt = rng.random()
        if opt < 0.07:  # unsubscribed on one platform, through its footer link
            p = rng.choice(person.on)
            edit(rng.randrange(2), p, person.emails[p], consent=ConsentStatus.UNSUBSCRIBED)
            planted["unsubscribes"] += 1
            opted_out.add(person.key)
        elif opt < 0.09:  # hard bounce on one platform
            p = rng.choice(person.on)
            edit(rng.randrange(2), p, person.emails[p], consent=ConsentStatus.BOUNCED)
            planted["bounces"] += 1
            opted_out.add(person.key)
    creates = {
        p: [
            ContactChange(
                email=person.emails[p],
                create=True,
                fields=dict(person.fields),
                consent=person.consent[p],
                tags_add=frozenset(person.tags | person.extra_tags.get(p, set())),
            )
            for person in people
            if p in person.on
        ]
        for p in platforms
    }
    rounds = [
        {p: [ContactChange(email=e, **c) for e, c in by_email.items()]
         for p, by_email in round_.items()}
        for round_ in edits
    ]
    return _Audience(people, creates, rounds, planted, opted_out, conflicts)


# -- the world ---------------------------------------------------------------------------------


@contextmanager
def _workdir(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep.resolve()
        return
    with tempfile.TemporaryDirectory(prefix="segsync-demo-") as tmp:
        yield Path(tmp)


def _emulator_class(connector: type[Connector]) -> type[Emulator] | None:
    """The emulator class `connector` names in `emulator_path` (None: none, or it fails)."""
    if connector.emulator_path is None:
        return None
    try:
        cls: type[Emulator] = load_object(connector.emulator_path)
    except (ImportError, AttributeError, ValueError) as exc:
        log.warning("%s: emulator %s unavailable: %s", connector.name, connector.emulator_path, exc)
        return None
    return cls


def demo_platforms() -> tuple[str, ...]:
    """The installed connectors whose emulator declares a `demo_port`, by port: the
    platforms the demo syncs, in seeding order."""
    found = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an unavailable connector is left out
        connectors = registry.available()
    for connector in connectors:
        emulator = _emulator_class(connector)
        if emulator is not None and emulator.demo_port is not None:
            found.append((emulator.demo_port, connector.name))
    return tuple(name for _port, name in sorted(found))


def _emulators(platforms: Sequence[str], clock: VirtualClock, seed: int) -> dict[str, Emulator]:
    emulators = {}
    for name in platforms:
        cls = _emulator_class(registry.get(name))
        if cls is None:
            raise LookupError(f"connector {name!r} ships no emulator; the demo needs one")
        emulators[name] = cls(clock=clock, seed=seed)
    return emulators


def _base_url(emulator: Emulator) -> str:
    return f"http://127.0.0.1:{emulator.demo_port or 8000}{emulator.base_path}"


def country_priority(platforms: Sequence[str]) -> list[str]:
    """The demo's platform priority for the country: the most expressive native segments
    first (`SEGMENT_EXPRESSIVENESS`), ties in seeding order."""

    def expressiveness(name: str) -> int:
        return SEGMENT_EXPRESSIVENESS[registry.get(name).capabilities.native_segments]

    return sorted(platforms, key=expressiveness, reverse=True)


def write_demo_config(
    path: Path, emulators: Mapping[str, Emulator], state_path: Path
) -> Path:
    """Write the demo's segsync.yaml: each emulator's `client_config()` with a loopback
    `base_url` on its `demo_port`; publish modes and priorities from the connectors."""
    blocks = []
    for name, emulator in emulators.items():
        entries = {**emulator.client_config(), "base_url": _base_url(emulator)}
        blocks.append(f"  {name}:")
        blocks.extend(f"    {key}: {json.dumps(value)}" for key, value in entries.items())
    publish = {name: example_publish_mode(registry.get(name)).value for name in emulators}
    path.write_text(
        DEMO_CONFIG.format(
            state=f"sqlite:///{state_path}",
            countries=", ".join(COUNTRIES),
            interests=", ".join(INTERESTS),
            platforms="\n".join(blocks) + "\n",
            priority=", ".join(country_priority(list(emulators))),
            publish=", ".join(f"{name}: {mode}" for name, mode in publish.items()),
            refreshed=", ".join(f"{name}: 24h" for name in emulators),
        ),
        encoding="utf-8",
    )
    return path


# -- reading back ------------------------------------------------------------------------------


async def _read_all(connector: Connector) -> dict[str, RemoteContact]:
    out: dict[str, RemoteContact] = {}
    async for page in connector.read(None):
        for contact in page.contacts:
            if not contact.deleted:
                out[normalize_email(contact.email)] = contact
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float | int) and isinstance(b, float | int):
        return abs(float(a) - float(b)) < 1e-6
    if isinstance(a, dt.date | dt.datetime) or isinstance(b, dt.date | dt.datetime):
        return str(a)[:10] == str(b)[:10]
    return ((a in (None, "")) and (b in (None, ""))) or a == b


def record_differences(
    canonical: CanonicalView,
    remote: RemoteContact,
    fields: Sequence[str],
    synced_tag: Callable[[str], bool],
) -> list[str]:
    """How a platform record differs from the canonical view.

    Compares `fields`, the synced tags, and whether consent is an opt-out (platforms name
    the other statuses differently). Empty when the record is aligned.
    """
    out = []
    for name in fields:
        want = canonical.fields.get(name)
        if not _same(want, remote.fields.get(name)):
            out.append(f"{name}: {remote.fields.get(name)!r} != {want!r}")
    want_tags = {t for t in canonical.tags if synced_tag(t)}
    have_tags = {t for t in remote.tags if synced_tag(t)}
    if want_tags != have_tags:
        out.append(f"tags: {sorted(have_tags)} != {sorted(want_tags)}")
    want_out = canonical.consent in CONSENT_OPT_OUTS
    if want_out != (remote.consent.status in CONSENT_OPT_OUTS):
        out.append(f"consent: {remote.consent.status} vs canonical {canonical.consent}")
    return out


def consent_violations(
    held: Mapping[str, RemoteContact], opted_out: set[str]
) -> list[str]:
    """Emails a platform holds as subscribed although the person opted out (anywhere)."""
    return sorted(
        email for email, remote in held.items()
        if remote.consent.status == ConsentStatus.SUBSCRIBED and email in opted_out
    )


# -- the run -----------------------------------------------------------------------------------


async def _seed(
    audience: _Audience, connectors: Mapping[str, Connector], config: Config,
    clock: VirtualClock,
) -> dict[str, int]:
    """Seed every platform as its users would have filled it; returns records seeded."""
    schema = config.canonical_schema()
    fields = {k: v for k, v in schema.fields.items() if k in config.schema_fields}
    seeded = {}
    for name, connector in connectors.items():
        await connector.prepare(fields, list(TAGS))
        results = await connector.write(audience.creates[name])
        failed = [r for r in results if not r.ok]
        if failed:
            raise RuntimeError(f"seeding {name} failed: {failed[0].error} ({len(failed)} records)")
        seeded[name] = len(results)
    for round_ in audience.edits:
        clock.advance(86_400.0)  # a day later, people changed things on the platforms
        for name, changes in round_.items():
            if changes:
                results = await connectors[name].write(changes)
                failed = [r for r in results if not r.ok]
                if failed:
                    raise RuntimeError(f"editing {name} failed: {failed[0].error}")
    clock.advance(3_600.0)
    return seeded


def _seed_engagement(
    audience: _Audience, emulators: Mapping[str, Emulator], now: dt.datetime, seed: int
) -> dict[str, int]:
    """Email people from their platforms, as the platforms' own campaigns did before
    segsync: some from one platform only (each platform in turn), some from several, most
    from none; readers open most emails, others few; the latest campaign went out 2 days or
    3 weeks and more before `now` (never near the `within 7 days` boundary). Returns how
    many people were emailed from one platform, from several, and per platform."""
    rng = random.Random(seed + 15)
    emailers = {p: emu for p, emu in emulators.items() if isinstance(emu, EngagementHook)}
    counts = {"emailed_from_one_platform": 0, "emailed_from_several_platforms": 0}
    for person in audience.people:
        emailed = [p for p in person.on if p in emailers and rng.random() < 0.5]
        if not emailed:
            continue
        counts["emailed_from_one_platform" if len(emailed) == 1
               else "emailed_from_several_platforms"] += 1
        reads = rng.choice((0.15, 0.4, 0.85))
        latest = now - dt.timedelta(days=rng.choice((2, 21, 45)))
        for platform in emailed:
            counts[f"emailed_from_{platform}"] = counts.get(f"emailed_from_{platform}", 0) + 1
            emulator, email = emailers[platform], person.emails[platform]
            sends = rng.randint(2, 6)
            for n in range(sends):
                at = latest - dt.timedelta(days=7 * (sends - 1 - n))
                campaign = f"campaign {n}"
                record_engagement(emulator, email, "send", campaign, at=at)
                if rng.random() < reads:
                    record_engagement(emulator, email, "open", campaign,
                                      at=at + dt.timedelta(hours=2))
                    if rng.random() < 0.3:
                        record_engagement(emulator, email, "click", campaign,
                                          at=at + dt.timedelta(hours=2, minutes=5))
    return counts


def _publication_outcomes(
    plan: Plan, engine: Engine, members: Mapping[tuple[str, str], int | None],
    expected: Mapping[tuple[str, str], int],
) -> list[SegmentOutcome]:
    steps: dict[tuple[str, str], list[dict[str, str]]] = {}
    for diag in plan.diagnostics:
        steps.setdefault((diag["segment"], diag["platform"]), []).append(diag)
    labels = {"native": "native", "rewrite": "native", "split": "split",
              "materialise": "materialised", "refuse": "refused"}
    out = []
    for target in engine.segments:
        for platform in engine.connectors:
            diags = steps.get((target.name, platform), [])
            # the ladder's last step (other notes, e.g. on the objects a connector owns,
            # say nothing of how the segment is published)
            ladder = [d for d in diags if d["step"] in labels]
            last = ladder[-1]["step"] if ladder else "native"
            reasons = [d["message"] for d in diags if d.get("level") != "info"] or [
                d["message"] for d in diags if d["step"] == last
            ]
            if not reasons and last == "native":
                reasons = ["the rule fits the platform's native filter"]
            if not reasons:
                mode = target.publish.get(platform)
                reasons = [f"publish: {mode} in the configuration" if mode else "materialised"]
            out.append(
                SegmentOutcome(
                    segment=target.name,
                    platform=platform,
                    published=labels.get(last, last),
                    reasons=reasons,
                    members=members.get((target.name, platform)),
                    expected_members=expected.get((target.name, platform), 0),
                )
            )
    return out


async def _segment_members(engine: Engine) -> dict[tuple[str, str], int | None]:
    """Members each platform holds in each published segment (None: not listable)."""
    out: dict[tuple[str, str], int | None] = {}
    owned = engine.store.owned(engine.config)
    for target in engine.segments:
        for platform, connector in engine.connectors.items():
            refs = [o for o in owned if o.platform == platform and o.name == target.name]
            if not refs:
                continue
            try:
                emails = {normalize_email(e) async for e in connector.segment_members(refs[0].ref)}
            except NotImplementedError:
                out[(target.name, platform)] = None
                continue
            out[(target.name, platform)] = len(emails)
    return out


def _expected_members(engine: Engine, plan: Plan) -> dict[tuple[str, str], int]:
    """Members of each segment on each platform by the reference evaluator over the canonical
    view; where the segment is materialised, only the people the platform may hold
    (`Connector.may_hold`: a list that makes people reachable needs an opt-in)."""
    materialised = {
        (d["segment"], d["platform"]) for d in plan.diagnostics if d["step"] == "materialise"
    }
    counts = {(s.name, p): 0 for s in engine.segments for p in engine.connectors}
    now = engine.clock.now()
    # each platform's own engagement, aggregated as the engine does (segsync.engagement)
    records: dict[str, dict[str, PlatformRecord]] = {}
    for platform in engine.connectors:
        for row in engine.store.base_rows(engine.config, platform):
            if not row.deleted:
                records.setdefault(row.cid, {})[platform] = PlatformRecord.loads(row.payload)
    for cid, payload, _dirty in engine.store.canonical_contacts(engine.config):
        view = CanonicalView.decode(payload)
        contact = contact_of(view, records.get(cid, {}), engine.schema)
        for target in engine.segments:
            if not evaluate(target.rule, contact, now=now, schema=engine.schema):
                continue
            for platform, connector in engine.connectors.items():
                if (target.name, platform) not in materialised or connector.may_hold(
                    target.name, view.consent
                ):
                    counts[(target.name, platform)] += 1
    return counts


def _conflict_examples(
    conflicts: Sequence[_Conflict], canonical: Mapping[str, CanonicalView], engine: Engine
) -> list[str]:
    """A few planted conflicts, each with the value it settled on and the rule that chose it.

    One where the newest change decides and one decided by platform priority, when planted.
    """
    picked: dict[bool, _Conflict] = {}
    for conflict in conflicts:
        by_priority = engine.policy.priority(conflict.field) is not None
        picked.setdefault(by_priority, conflict)
    lines = []
    for by_priority, conflict in sorted(picked.items()):
        view = canonical.get(conflict.key)
        settled = view.fields.get(conflict.field) if view is not None else None
        edits = " then ".join(f"{value!r} on {platform}" for platform, value in conflict.edits)
        order = engine.policy.priority(conflict.field) or ()
        rule = f"{conflict.field} by priority {' > '.join(order)}" if by_priority else (
            "the newest record wins")
        lines.append(f"{conflict.key}: {conflict.field} edited {edits} -> {settled!r} on "
                     f"every platform ({rule})")
    return lines


async def run_demo(
    options: DemoOptions | None = None,
    *,
    progress: Callable[[str], None] | None = None,
) -> DemoReport:
    """Run the demo (see the module docstring); `progress` receives one line per step."""
    options = options or DemoOptions()
    if not options.platforms:
        raise LookupError("no installed connector ships an emulator with a demo_port")

    def say(line: str) -> None:
        log.info("demo: %s", line)
        if progress is not None:
            progress(line)

    wall_started = time.perf_counter()
    with _workdir(options.keep) as workdir:
        clock = VirtualClock(start=DEMO_START)
        emulators = _emulators(options.platforms, clock, options.seed)
        transports = {name: emu.transport() for name, emu in emulators.items()}
        config_path = write_demo_config(
            workdir / "segsync.yaml", emulators, workdir / ".segsync" / "state.db"
        )
        (workdir / ".segsync").mkdir(mode=0o700, exist_ok=True)  # private, as the store wants
        for stale in (workdir / ".segsync").glob("state.db*"):  # an earlier demo's state
            stale.unlink()
        config = load_config(config_path, env={})
        say(f"wrote {config_path} ({len(config.platforms)} platforms, "
            f"{len(config.segments)} segments)")

        audience = synthetic_audience(options.contacts, options.seed, options.platforms)
        seeders = build_connectors(config, transports=transports, clock=clock)
        try:
            seeded = await _seed(audience, seeders, config, clock)
            # the containers the seeding made (a folder, tag lists) are segsync's, as an
            # earlier run's would be (the state records them: `Connector.made`)
            made = {name: c.made() for name, c in seeders.items()}
        finally:
            for connector in seeders.values():
                await connector.aclose()
        say("seeded " + ", ".join(f"{n} {name}" for name, n in seeded.items()) + " contacts")
        emailed = _seed_engagement(audience, emulators, clock.now(), options.seed)
        audience.planted.update(emailed)
        # the platforms' reads lag their writes (a search index) by at most this long
        read_lag = max(
            (float(getattr(emu, "read_lag_seconds", 0.0) or 0.0) for emu in emulators.values()),
            default=0.0,
        )
        clock.advance(read_lag)  # the campaigns went out; the first run starts later
        say(f"emailed {emailed['emailed_from_one_platform']} people from one platform, "
            f"{emailed['emailed_from_several_platforms']} from several")

        engine = build_engine(config, transports=transports, clock=clock)
        connectors = engine.connectors
        for name, objects in made.items():
            for kind, object_name, ref in objects:
                engine.store.set_owned(engine.config, OwnedObject(name, kind, object_name, ref),
                                       at=clock.now().isoformat())
        try:
            return await _sync_and_check(
                engine, config, audience, seeded, options, workdir, clock, wall_started, say,
                read_lag,
            )
        finally:
            for connector in connectors.values():
                await connector.aclose()
            engine.store.close()


async def _sync_and_check(
    engine: Engine,
    config: Config,
    audience: _Audience,
    seeded: Mapping[str, int],
    options: DemoOptions,
    workdir: Path,
    clock: VirtualClock,
    wall_started: float,
    say: Callable[[str], None],
    read_lag: float = 0.0,
) -> DemoReport:
    sync_started = clock.monotonic()
    calls0 = {n: c.stats.calls for n, c in engine.connectors.items()}
    paced0 = {n: c.budget.waited_seconds for n, c in engine.connectors.items()}
    async with engine.locked():
        plan = await engine.plan()
        say("planned the first sync")
        first = await engine.apply(plan)
    say(f"first sync: {first.writes} writes, status {first.status}")
    calls1 = {n: c.stats.calls for n, c in engine.connectors.items()}
    clock.advance(read_lag)  # the next scheduled run starts once the platforms show the writes
    async with engine.locked():
        plan2 = await engine.plan()
        second = await engine.apply(plan2)
    say(f"second sync: {second.writes} writes")
    calls2 = {n: c.stats.calls for n, c in engine.connectors.items()}
    emulated = clock.monotonic() - sync_started
    clock.advance(read_lag)  # read back once the platforms show every write

    canonical = {
        normalize_email(view.email): view
        for view in (
            CanonicalView.decode(payload)
            for _cid, payload, _d in engine.store.canonical_contacts(engine.config)
        )
    }
    outcomes: dict[str, PlatformOutcome] = {}
    field_names = sorted(config.schema_fields)
    for name, connector in engine.connectors.items():
        held = await _read_all(connector)
        mismatches = [f"missing on {name}: {email}" for email in sorted(set(canonical) - set(held))]
        mismatches += [f"not canonical: {email}" for email in sorted(set(held) - set(canonical))]
        for email in sorted(set(held) & set(canonical)):
            mismatches += [f"{email} {d}" for d in record_differences(
                canonical[email], held[email], field_names, engine.policy.synced_tag)]
        opted_out = audience.opted_out | {
            email for email, view in canonical.items() if view.consent in CONSENT_OPT_OUTS
        }
        violations = len(consent_violations(held, opted_out))
        platform_report = first.platforms.get(name)
        pplan = plan.platforms.get(name)
        outcomes[name] = PlatformOutcome(
            seeded=seeded.get(name, 0),
            contacts=len(held),
            aligned=not mismatches,
            mismatches=mismatches[:5],
            created=platform_report.created if platform_report else 0,
            updated=platform_report.updated if platform_report else 0,
            opt_outs_written=sum(
                1 for c in (pplan.changes if pplan else ())
                if c.get("consent") in CONSENT_OPT_OUTS
            ),
            api_calls_first_sync=calls1[name] - calls0[name],
            api_calls_second_sync=calls2[name] - calls1[name],
            rate_limited=connector.stats.rate_limited,
            paced_seconds=round(connector.budget.waited_seconds - paced0[name], 3),
            consent_violations=violations,
        )
    members = await _segment_members(engine)
    segments = _publication_outcomes(plan, engine, members, _expected_members(engine, plan))
    priority = engine.policy.fields
    how = "the newest change wins" + "".join(
        f"; {f} by priority {' > '.join(order)}" for f, order in priority.items()
        if not isinstance(order, str)
    ) + "; an opt-out anywhere wins everywhere"
    return DemoReport(
        segments_match=all(s.members in (None, s.expected_members) for s in segments),
        contacts={n: o.contacts for n, o in outcomes.items()},
        aligned={n: o.aligned for n, o in outcomes.items()},
        consent_violations=sum(o.consent_violations for o in outcomes.values()),
        second_sync_writes=second.writes + plan2.write_count,
        api_calls={n: calls2[n] - calls0[n] for n in engine.connectors},
        emulated_seconds=round(emulated, 3),
        wall_seconds=round(time.perf_counter() - wall_started, 3),
        people=options.contacts,
        seed=options.seed,
        workdir=str(workdir) if options.keep is not None else None,
        planted=audience.planted,
        conflicts_settled=plan.conflicts,
        conflict_policy=how,
        conflict_examples=_conflict_examples(audience.conflicts, canonical, engine),
        opt_outs_propagated=sum(o.opt_outs_written for o in outcomes.values()),
        platforms=outcomes,
        segments=segments,
        first_sync=first.model_dump(mode="json", exclude={"errors", "diagnostics"}),
        record_errors=[f"[{e.platform}] {e.email or e.platform_id}: {e.message}"
                       for e in [*first.errors, *second.errors]][:20],
        plan_text=plan.render(rows=3),
        second_plan_text=plan2.render(rows=3),
    )


def _check(ok: bool) -> str:
    return "yes" if ok else "NO"


def render_report(report: DemoReport) -> str:
    """The demo's report as text: what happened, and whether it can be trusted."""
    lines = [
        f"segsync demo: {report.people} people (seed {report.seed}) on "
        f"{', '.join(report.platforms)}",
        "",
        "Seeded before segsync existed: " + ", ".join(
            f"{name} {o.seeded}" for name, o in report.platforms.items()),
        "  " + ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in report.planted.items()),
        "",
        "The plan of the first sync:",
        *("  " + line for line in report.plan_text.splitlines()),
        "",
        "After the first sync:",
    ]
    for name, o in report.platforms.items():
        lines.append(
            f"  {name:<10} {o.contacts:>6} contacts, aligned: {_check(o.aligned)}; "
            f"{o.created} created, {o.updated} updated, {o.opt_outs_written} opt-outs written; "
            f"{o.api_calls_first_sync} API calls"
            + (f" (requests held {o.paced_seconds:.0f} s in all by its rate limits)"
               if o.paced_seconds else "")
            + (f" ({o.rate_limited} answered 429, waited out)" if o.rate_limited else "")
        )
        lines.extend(f"      ! {m}" for m in o.mismatches)
    lines += [
        f"  conflicts settled: {report.conflicts_settled} ({report.conflict_policy})",
        *(f"    e.g. {example}" for example in report.conflict_examples),
        f"  opt-outs propagated: {report.opt_outs_propagated} consent changes written; "
        f"consent violations: {report.consent_violations}",
        "",
        "Segments:",
    ]
    for seg in report.segments:
        held = "?" if seg.members is None else str(seg.members)
        wrong = seg.members not in (None, seg.expected_members)
        lines.append(
            f"  {seg.segment:<18} {seg.platform:<10} {seg.published:<12} "
            f"{held} members (expected {seg.expected_members})" + ("  <- WRONG" if wrong else "")
        )
        if seg.published != "native":
            lines.extend(f"      because {reason}" for reason in seg.reasons[:1])
    lines += [
        "",
        f"Second sync: {report.second_sync_writes} writes ("
        + ", ".join(f"{n} {o.api_calls_second_sync} API calls"
                    for n, o in report.platforms.items()) + ")",
        "API calls, both syncs: " + ", ".join(f"{n} {c}" for n, c in report.api_calls.items()),
        f"Time: {report.emulated_seconds:.1f} s emulated (rate limits honoured on a virtual "
        f"clock), {report.wall_seconds:.1f} s wall",
    ]
    if report.record_errors:
        lines += ["", "Record errors:", *("  " + e for e in report.record_errors)]
    if report.workdir:
        lines += ["", f"Kept in {report.workdir} (segsync.yaml, .segsync/state.db)"]
    checks = {
        "every platform aligned": all(report.aligned.values()),
        "no consent violated": report.consent_violations == 0,
        "the second sync wrote nothing": report.second_sync_writes == 0,
        "every segment holds the right members": report.segments_match,
    }
    lines.append("")
    lines.extend(f"{'ok  ' if ok else 'FAIL'} {check}" for check, ok in checks.items())
    return "\n".join(lines)


def trusted(report: DemoReport) -> bool:
    """Whether every check of the demo passed (the CLI's exit code)."""
    return (
        all(report.aligned.values())
        and report.consent_violations == 0
        and report.second_sync_writes == 0
        and report.segments_match
    )
