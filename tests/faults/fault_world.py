"""A three-platform world for the fault suite: emulators, connectors, a scenario, a dump.

`PLATFORMS` says, as data, how each built-in platform's emulator is made and how a connector
is configured for it. `Scenario` is one seeded story (seed the platforms, sync, edit on the
platforms, sync again, then one run with the faults off); `run_scenario` plays it against
fresh in-process emulators through the engine's library API and returns the `Outcome`:
a normalised dump of every platform's contacts, the edits made, and the faults injected.

The dump reads each platform back through a fresh connector of its own (faults off), in
canonical terms: normalised email, synced fields, tags, consent. Ids and timestamps are left
out, so two worlds compare equal exactly when they hold the same people in the same state.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import random
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from segsync.clock import Clock, VirtualClock
from segsync.connector import Connector, ContactChange, RemoteContact, load_object, registry
from segsync.emulator import Emulator, FaultPlan
from segsync.emulator.base import FAULT_KINDS
from segsync.model import ConsentStatus, normalize_email
from segsync.state import OwnedObject, SQLiteStateStore
from segsync.sync import Engine, RunReport
from segsync.testing.data import DEFAULT_SCHEMA, DEFAULT_TAGS, change_for, sample_contacts

__all__ = [
    "FAULT_RATE",
    "FAULT_SIZE",
    "PLATFORMS",
    "SURVIVED",
    "Dump",
    "Outcome",
    "PlatformSetup",
    "Scenario",
    "connector_config",
    "dump_platform",
    "edit_platforms",
    "edits_for",
    "is_write",
    "make_connector",
    "make_emulator",
    "run_scenario",
    "seed_platforms",
]

FAULT_SIZE = int(os.environ.get("SEGSYNC_FAULT_SIZE", "60"))
"""Contacts in a scenario (CI runs the default; larger runs set SEGSYNC_FAULT_SIZE)."""

FAULT_RATE = float(os.environ.get("SEGSYNC_FAULT_RATE", "0.1"))
"""Probability that a request draws a fault."""

ALL_KINDS: tuple[str, ...] = FAULT_KINDS

SURVIVED: list[str] = []
"""What each test survived (faults injected, processes killed): printed after the run."""


@dataclasses.dataclass(frozen=True)
class PlatformSetup:
    """How a platform's emulator is made and its connector configured, as data."""

    emulator_path: str
    secret_key: str  # the config key holding the API key or token
    emulator_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    extra_config: Mapping[str, str] = dataclasses.field(default_factory=dict)  # attr of emulator
    #: the names of the segments, lists and tags the emulator holds, read from its own state
    object_names: Callable[[Any], list[str]] = lambda emulator: []
    #: POST endpoints that only read (path regexes): not counted as writes
    read_posts: tuple[str, ...] = ()
    #: emulator settings on loopback, where the wall clock runs (no waits that cost seconds)
    loopback_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    #: connector settings on loopback (the fastest documented tier: waits cost wall time)
    loopback_config: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    #: connector settings everywhere
    connector_config: Mapping[str, Any] = dataclasses.field(default_factory=dict)


PLATFORMS: dict[str, PlatformSetup] = {
    "mailchimp": PlatformSetup(
        "segsync_mailchimp:MailchimpEmulator",
        "api_key",
        # the scenario's addresses are at example.com, which real Mailchimp refuses as fake
        {"reject_fake_emails": False},
        {"list_id": "default_list_id"},
        object_names=lambda e: [s.name for a in e.lists.values() for s in a.segments.values()],
        # tag edits do not move `last_changed` (the emulator's strict reading): the edits the
        # scenario makes between runs reach the next run through the periodic full read
        connector_config={"tag_refresh_seconds": 1.0},
    ),
    "hubspot": PlatformSetup(
        "segsync_hubspot:HubSpotEmulator",
        "token",
        read_posts=(r"/search$", r"/batch/read$"),
        object_names=lambda e: [x.name for x in e.lists.values() if not x.deleted],
        # served on the system clock, search's index lag would cost wall-clock seconds a run
        # (the scenarios sync right after seeding); it is tested on virtual clocks
        loopback_kwargs={"search_delay_seconds": 0.0},
    ),
    "brevo": PlatformSetup(
        "segsync_brevo.emulator:BrevoEmulator",
        "api_key",
        object_names=lambda e: [x["name"] for x in e.lists.values()],
        loopback_kwargs={"import_queue_seconds": 0.0, "import_base_seconds": 0.1},
        loopback_config={"tier": "extended"},
    ),
}


def make_emulator(
    platform: str, clock: Clock, *, seed: int = 0, loopback: bool = False
) -> Emulator:
    """A fresh emulator of `platform` on `clock` (`loopback`: set up to be served)."""
    setup = PLATFORMS[platform]
    cls = load_object(setup.emulator_path)
    kwargs = {**setup.emulator_kwargs, **(setup.loopback_kwargs if loopback else {})}
    if loopback:  # rate limits would cost wall-clock seconds; they are tested in-process
        kwargs["enforce_rate_limits"] = False
    emulator: Emulator = cls(clock=clock, seed=seed, **kwargs)
    return emulator


def is_write(platform: str, method: str, path: str) -> bool:
    """Whether a request changes the platform (GETs and `read_posts` do not)."""
    if method in ("GET", "HEAD", "OPTIONS"):
        return False
    return not any(re.search(p, path) for p in PLATFORMS[platform].read_posts)


def connector_config(
    platform: str, emulator: Emulator, base_url: str, *, loopback: bool = False
) -> dict[str, Any]:
    """The connector config that reaches `emulator` at `base_url` (its host, no base path)."""
    setup = PLATFORMS[platform]
    config: dict[str, Any] = {
        setup.secret_key: emulator.api_key,
        "base_url": base_url + emulator.base_path,
        **setup.connector_config,
        **(setup.loopback_config if loopback else {}),
    }
    for key, attr in setup.extra_config.items():
        config[key] = getattr(emulator, attr)
    return config


def make_connector(
    platform: str, emulator: Emulator, clock: Clock, *, base_url: str | None = None
) -> Connector:
    """A connector on `emulator`: in-process, or over HTTP when `base_url` (its host) is set."""
    cls = registry.get(platform)
    return cls(
        connector_config(
            platform, emulator, base_url or "http://127.0.0.1:8080", loopback=base_url is not None
        ),
        schema=DEFAULT_SCHEMA,
        transport=None if base_url else emulator.transport(),
        clock=clock,
    )


Record = tuple[str, tuple[tuple[str, str], ...], tuple[str, ...], str]
"""One contact in a dump: email, sorted (field, value) pairs, sorted tags, consent."""


@dataclasses.dataclass(frozen=True)
class Dump:
    """A platform's contacts, normalised; `duplicates` are emails held by several records."""

    records: tuple[Record, ...]
    duplicates: tuple[str, ...]

    def by_email(self) -> dict[str, Record]:
        return {r[0]: r for r in self.records}


def _record(remote: RemoteContact) -> Record:
    fields = tuple(sorted((k, str(v)) for k, v in remote.fields.items() if v is not None))
    return (
        normalize_email(remote.email),
        fields,
        tuple(sorted(remote.tags)),
        remote.consent.status.value,
    )


async def dump_platform(connector: Connector) -> Dump:
    """Every contact `connector` reads from scratch, normalised (see the module docstring)."""
    records = [
        _record(c) async for page in connector.read(None) for c in page.contacts if not c.deleted
    ]
    counts = collections.Counter(r[0] for r in records)
    return Dump(tuple(sorted(records)), tuple(sorted(e for e, n in counts.items() if n > 1)))


@dataclasses.dataclass(frozen=True)
class Edit:
    """A change made on one platform between two syncs (what must not be lost)."""

    platform: str
    email: str
    change: ContactChange


@dataclasses.dataclass(frozen=True)
class Scenario:
    """One seeded story; `rate` and `kinds` are the faults of the faulty runs."""

    seed: int = 7
    size: int = FAULT_SIZE
    rate: float = FAULT_RATE
    kinds: tuple[str, ...] = ALL_KINDS
    faulty_runs: int = 2  # runs under faults before the edits (one more after them)

    def fault_free(self) -> Scenario:
        return dataclasses.replace(self, rate=0.0, kinds=ALL_KINDS)


@dataclasses.dataclass
class Outcome:
    """What a scenario left: dumps, edits, injected faults, and every run's report."""

    dumps: dict[str, Dump]
    edits: list[Edit]
    injected: dict[str, collections.Counter[str]]
    reports: list[RunReport]
    seeded_consent: dict[str, str]
    objects: dict[str, list[str]]  # segment, list and tag names per platform (repeats kept)

    def survived(self) -> str:
        """The faults injected, by platform and kind, for the test's output."""
        total: collections.Counter[str] = collections.Counter()
        for counter in self.injected.values():
            total.update(counter)
        lines = [
            f"faults survived: {sum(total.values())} "
            f"({', '.join(f'{k}={v}' for k, v in sorted(total.items())) or 'none'})"
        ]
        lines += [f"  {p}: {dict(sorted(c.items()))}" for p, c in self.injected.items()]
        return "\n".join(lines)


def own_share(index: int, size: int, platforms: int) -> set[str]:
    """The emails seeded on the `index`th platform only (see `seed_platforms`)."""
    share = max(1, size // platforms)
    return {f"contact{j:05d}@example.com" for j in range(index * share, (index + 1) * share)}


def edits_for(platform: str, own: set[str], remotes: Sequence[RemoteContact]) -> list[Edit]:
    """Edits on contacts of `own` (a platform's own share: disjoint across platforms).

    Chosen from what was seeded, not from what syncs have spread, so two worlds of one seed
    make the same edits however far their syncs got.
    """
    mine = sorted((r for r in remotes if normalize_email(r.email) in own), key=lambda r: r.email)
    mine = mine[::3]
    out: list[Edit] = []
    for n, remote in enumerate(mine[:8]):
        kind = n % 4
        if kind == 0:
            change = ContactChange(
                email=remote.email,
                platform_id=remote.platform_id,
                fields={"first_name": f"Edited on {platform} {n}"},
            )
        elif kind == 1:
            change = ContactChange(
                email=remote.email,
                platform_id=remote.platform_id,
                consent=ConsentStatus.UNSUBSCRIBED,
            )
        elif kind == 2:
            change = ContactChange(
                email=remote.email, platform_id=remote.platform_id, tags_add=frozenset({"delta"})
            )
        else:
            removable = sorted(remote.tags)
            if not removable:
                continue
            change = ContactChange(
                email=remote.email,
                platform_id=remote.platform_id,
                tags_remove=frozenset(removable[:1]),
                fields={"lifetime_value": 1234.5},
            )
        out.append(Edit(platform, normalize_email(remote.email), change))
    return out


async def edit_platforms(connectors: Mapping[str, Connector], size: int) -> list[Edit]:
    """Make `edits_for` each platform on it, as a person would between two syncs.

    `size` is the `seed_platforms` size the platforms were seeded with.
    """
    edits: list[Edit] = []
    for i, (platform, connector) in enumerate(connectors.items()):
        remotes = [c async for page in connector.read(None) for c in page.contacts]
        mine = edits_for(platform, own_share(i, size, len(connectors)), remotes)
        results = await connector.write([e.change for e in mine])
        assert all(r.ok for r in results), [r for r in results if not r.ok]
        edits.extend(mine)
    return edits


async def seed_platforms(
    connectors: Mapping[str, Connector], seed: int, size: int
) -> dict[str, str]:
    """Write `size` seeded contacts: each platform its share, plus 3 of the next share.

    Returns the consent each contact was seeded with, by normalised email.
    """
    contacts = sample_contacts(DEFAULT_SCHEMA, size, random.Random(seed))
    share = max(1, size // len(connectors))
    for i, connector in enumerate(connectors.values()):
        await connector.prepare(DEFAULT_SCHEMA.fields, [*DEFAULT_TAGS, "delta"])
        batch = contacts[i * share : (i + 1) * share + 3]
        results = await connector.write([change_for(c) for c in batch])
        assert all(r.ok for r in results), [r for r in results if not r.ok]
    return {normalize_email(c.email): c.consent.status.value for c in contacts}


async def run_scenario(scenario: Scenario) -> Outcome:
    """Play `scenario` on fresh emulators (see the module docstring)."""
    clock = VirtualClock()
    names = list(PLATFORMS)
    emulators = {p: make_emulator(p, clock, seed=scenario.seed) for p in names}
    engine_side = {p: make_connector(p, emulators[p], clock) for p in names}
    platform_side = {p: make_connector(p, emulators[p], clock) for p in names}
    store = SQLiteStateStore(":memory:", clock=clock)
    engine = Engine(engine_side, store, schema=DEFAULT_SCHEMA, clock=clock)
    plans = {
        p: FaultPlan(
            rate=scenario.rate, kinds=scenario.kinds, seed=scenario.seed * 31 + i, enabled=False
        )
        for i, p in enumerate(names)
    }
    for p in names:
        emulators[p].faults = plans[p]

    def faults(on: bool) -> None:
        for plan in plans.values():
            plan.enabled = on

    seeded_consent = await seed_platforms(platform_side, scenario.seed, scenario.size)
    for p, connector in platform_side.items():  # containers the seeding made: segsync's
        for kind, name, ref in connector.made():
            store.set_owned(engine.config, OwnedObject(p, kind, name, ref), at="seeded")

    reports: list[RunReport] = []
    faults(True)
    for _ in range(scenario.faulty_runs):
        reports.append(await engine.sync())
        clock.advance(60)
    faults(False)

    edits = await edit_platforms(platform_side, scenario.size)
    clock.advance(60)

    faults(True)
    reports.append(await engine.sync())
    faults(False)
    clock.advance(60)
    reports.append(await engine.sync())

    dumps = {p: await dump_platform(platform_side[p]) for p in names}
    for connector in (*engine_side.values(), *platform_side.values()):
        await connector.aclose()
    return Outcome(
        dumps=dumps,
        edits=edits,
        injected={p: collections.Counter(plans[p].injected) for p in names},
        reports=reports,
        seeded_consent=seeded_consent,
        objects={p: sorted(PLATFORMS[p].object_names(emulators[p])) for p in names},
    )
