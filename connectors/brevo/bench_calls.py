"""API calls and emulated time to push 10,000 contacts with list memberships to Brevo.

Runs the connector against the emulator on a virtual clock (General tier: contacts
endpoints 10 requests a second, other endpoints 100 an hour) and prints, for the import path
the connector chooses and for single-contact calls, the calls by endpoint and the emulated
time, beside the minimum Brevo's limits allow. Half the contacts have no opt-in: they must
end in no list (imported into a temporary list deleted afterwards), which it checks and
prints with the calls that cost.

    .venv/bin/python connectors/brevo/bench_calls.py [--contacts 10000] [--tags 3] [--single]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import math
import random
from collections.abc import Sequence
from typing import Any

from segsync_brevo import BrevoConnector
from segsync_brevo.emulator import BrevoEmulator
from segsync_brevo.limits import TIERS

from segsync.clock import VirtualClock
from segsync.connector import ContactChange
from segsync.model import ConsentStatus, FieldSpec, FieldType, Schema

SCHEMA = Schema(
    fields={
        "first_name": FieldSpec(type=FieldType.TEXT),
        "country": FieldSpec(type=FieldType.ENUM, options=("FR", "BE", "DE", "US", "GB")),
        "lifetime_value": FieldSpec(type=FieldType.NUMBER),
        "last_purchase_at": FieldSpec(type=FieldType.DATE),
    }
)
TAGS = ("alpha", "beta", "gamma")


def tag_names(count: int) -> tuple[str, ...]:
    return TAGS if count == 3 else tuple(f"tag{i:02d}" for i in range(count))


def changes(n: int, tags: Sequence[str], seed: int = 0) -> list[ContactChange]:
    """`n` new contacts with every field set and a random subset of `tags` (lists)."""
    rng = random.Random(seed)
    return [
        ContactChange(
            email=f"bench{i:05d}@example.com",
            create=True,
            fields={
                "first_name": rng.choice(("Ada", "Grace", "Alan", "Edsger")),
                "country": rng.choice(SCHEMA.fields["country"].options),
                "lifetime_value": rng.randrange(0, 100_000) / 100,
                "last_purchase_at": f"2025-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}",
            },
            consent=rng.choice((ConsentStatus.SUBSCRIBED, ConsentStatus.NON_SUBSCRIBED)),
            tags_add=frozenset(t for t in tags if rng.random() < 0.5),
        )
        for i in range(n)
    ]


async def push(n: int, *, single: bool, tags: Sequence[str] = TAGS) -> dict[str, Any]:
    """Prepare, then write `n` contacts; the request accounting of the write alone."""
    clock = VirtualClock()
    emulator = BrevoEmulator(clock=clock)
    config: dict[str, Any] = {"api_key": emulator.api_key}
    if single:
        config["import_threshold"] = 10**9
    connector = BrevoConnector(config, schema=SCHEMA, transport=emulator.transport(), clock=clock)
    async with connector:
        await connector.prepare(SCHEMA.fields, tags)
        setup_calls = connector.stats.calls
        before = {name: s.calls for name, s in connector.stats.endpoints.items()}
        started = clock.elapsed
        batch = changes(n, tags)
        results = await connector.write(batch)
        seconds = clock.elapsed - started
    failed = sum(1 for r in results if not r.ok)
    unconsented = {c.email for c in batch if c.consent is not ConsentStatus.SUBSCRIBED}
    reachable = sum(1 for c in emulator.contacts.values() if c.email in unconsented and c.list_ids)
    calls = {
        name: int(s.calls - before.get(name, 0))
        for name, s in connector.stats.endpoints.items()
        if s.calls > before.get(name, 0)
    }
    combos = collections.Counter(c.tags_add for c in batch)
    members = sum(len(c.tags_add) for c in batch)
    per_list = collections.Counter(t for c in batch for t in c.tags_add)
    return {
        "single": single,
        "failed": failed,
        "unconsented": len(unconsented),
        "unconsented_in_lists": reachable,
        "setup_calls": setup_calls,
        "write_calls": connector.stats.calls - setup_calls,
        "calls": calls,
        "seconds": seconds,
        "rate_limited": emulator.rate_limited,
        "list_sets": len(combos),
        "per_list": dict(per_list),
        "memberships": members,
        "emulator": emulator,
        "processes": [p.due() - p.created for p in emulator.processes.values()],
    }


def minimum(n: int, run: dict[str, Any], emulator: BrevoEmulator) -> dict[str, float]:
    """What Brevo's limits allow at best, for both ways of writing.

    An import's `listIds` apply to all its contacts, so memberships cost either one import per
    distinct list set, or one import plus list-add calls of 150; whichever is fewer. One
    `GET /processes` sees every import completed; what the imports took is read back (1000
    contacts a page: an import answers no ids); contacts with opt-in land in segsync's base
    list (made once), those without in a temporary list of their own import, made and
    deleted (Brevo requires a list on every import). Time: the requests at 10 a second, plus
    the emulator's processing time of the largest import (its model, not a Brevo figure).
    """
    tier = TIERS["general"]
    by_set = run["list_sets"]
    by_adds = 1 + sum(math.ceil(m / 150) for m in run["per_list"].values())
    writes = min(by_set, by_adds)
    largest = n if by_adds < by_set else math.ceil(n / max(1, by_set))
    processing = (
        emulator.import_queue_seconds
        + emulator.import_base_seconds
        + emulator.import_seconds_per_contact * largest
    )
    read_back = math.ceil(n / 1000)
    lists = 1 + (3 if run["unconsented"] else 0)  # base list; temporary list and its import
    return {
        "import_calls": writes + 1 + read_back + lists,
        "import_request_seconds": writes / tier.contacts_per_second,
        "import_seconds": writes / tier.contacts_per_second + processing,
        "single_calls": n,  # POST /contacts carries listIds: one call per contact
        "single_seconds": n / tier.contacts_per_second,
    }


def report(n: int, run: dict[str, Any]) -> None:
    best = minimum(n, run, run["emulator"])
    kind = "single-contact calls" if run["single"] else "connector's choice (import)"
    print(
        f"\n== {n} contacts, {run['memberships']} list memberships "
        f"({run['list_sets']} distinct list sets) -- {kind}"
    )
    print(f"setup (attributes, folder, lists): {run['setup_calls']} calls")
    print(
        f"write: {run['write_calls']} calls, {run['seconds']:.1f} s emulated, "
        f"{run['failed']} failed, {run['rate_limited']} answered 429"
    )
    for name, count in sorted(run["calls"].items()):
        print(f"    {count:6d}  {name}")
    print(
        f"contacts without opt-in: {run['unconsented']}, left in a list after the write: "
        f"{run['unconsented_in_lists']} (the temporary import list costs one POST and one "
        "DELETE /contacts/lists per write call)"
    )
    if run["single"]:
        print(
            f"minimum the limits allow (single calls): {best['single_calls']} calls, "
            f"{best['single_seconds']:.0f} s at 10 requests/s"
        )
    else:
        print(
            f"minimum the limits allow (imports): {best['import_calls']:.0f} calls, "
            f"{best['import_seconds']:.1f} s (of which {best['import_request_seconds']:.1f} s of "
            "requests; the rest is the emulator's import processing model)"
        )
        print(
            f"  single-contact calls instead: {best['single_calls']} calls, "
            f"{best['single_seconds']:.0f} s at 10 requests/s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--tags", type=int, default=3, help="tags (lists) to draw from")
    parser.add_argument("--single", action="store_true", help="also measure single calls")
    args = parser.parse_args()
    tags = tag_names(args.tags)
    report(args.contacts, asyncio.run(push(args.contacts, single=False, tags=tags)))
    if args.single:
        report(args.contacts, asyncio.run(push(args.contacts, single=True, tags=tags)))


if __name__ == "__main__":
    main()
