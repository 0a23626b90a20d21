"""API calls and emulated time to upsert 10,000 tagged contacts into HubSpot, beside the minimum.

Runs the connector against the in-process emulator on a virtual clock, with HubSpot's limits
enforced (100 requests per rolling 10 s on Free/Starter, 190 on Professional/Enterprise):

    .venv/bin/python connectors/hubspot/bench_calls.py [--contacts 10000] [--tier starter]
        [--subscribed 0.5] [--status-writes batch|single]

A `--subscribed` share of the contacts is created with consent `subscribed` (the rest
`non_subscribed`, which writes no status). `--status-writes single` turns batch status writes
off (`consent_batch_writes: false`), as on an account without them.

The minimum the limits allow: one call creating the tag property with its options and one
creating the custom `lifetime_value` property, then one batch upsert per 100 contacts; for the
subscribed ones, one call finding the subscription type, then per 100 addresses one contacts
batch read and one status batch read (the opt-out guard: an address HubSpot holds as opted out
or bounced is never re-subscribed) and one status batch write. N calls at R per rolling 10 s
need floor((N - 1) / R) * 10 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random

from segsync_hubspot import HubSpotConnector, HubSpotEmulator
from segsync_hubspot.limits import BURST_BY_TIER

from segsync.clock import VirtualClock
from segsync.connector import ContactChange
from segsync.model import ConsentStatus, FieldSpec, FieldType, Schema

SCHEMA = Schema(
    fields={
        "first_name": FieldSpec(type=FieldType.TEXT),
        "country": FieldSpec(type=FieldType.ENUM, options=("FR", "BE", "DE")),
        "lifetime_value": FieldSpec(type=FieldType.NUMBER),
    }
)
TAGS = ("vip", "b2b", "newsletter", "trial", "churn-risk")


async def run(
    contacts: int,
    tier: str,
    seed: int = 0,
    *,
    subscribed: float = 0.5,
    status_writes: str = "batch",
) -> dict[str, object]:
    """Upsert `contacts` new contacts with tags, a `subscribed` share of them subscribed;
    return calls, emulated time and the minimum."""
    rng = random.Random(seed)
    clock = VirtualClock()
    emulator = HubSpotEmulator(clock=clock, tier=tier)
    connector = HubSpotConnector(
        {
            **emulator.client_config(),
            "base_url": "http://127.0.0.1:9",
            "tier": tier,
            "consent_batch_writes": status_writes == "batch",
        },
        schema=SCHEMA,
        transport=emulator.transport(),
        clock=clock,
    )
    changes = [
        ContactChange(
            email=f"person{i:05d}@example.com",
            create=True,
            fields={
                "first_name": f"Person {i}",
                "country": rng.choice(("FR", "BE", "DE")),
                "lifetime_value": round(rng.random() * 1000, 2),
            },
            tags_add=frozenset(rng.sample(TAGS, rng.randrange(1, 4))),
            consent=ConsentStatus.SUBSCRIBED
            if i < round(contacts * subscribed)
            else ConsentStatus.NON_SUBSCRIBED,
        )
        for i in range(contacts)
    ]
    subscribing = sum(c.consent is ConsentStatus.SUBSCRIBED for c in changes)
    async with connector:
        await connector.prepare(SCHEMA.fields, TAGS)
        results = await connector.write(changes)
    burst = BURST_BY_TIER[tier]
    calls = connector.stats.calls
    # the tag property and the one custom property (lifetime_value), then the upserts; for
    # subscribed contacts the subscription type, then guard reads and status writes per 100
    minimum_calls = 2 + math.ceil(contacts / 100)
    if subscribing:
        minimum_calls += 1 + 3 * math.ceil(subscribing / 100)
    return {
        "contacts": contacts,
        "subscribed": subscribing,
        "status_writes": status_writes,
        "tier": f"{tier} ({burst} requests / 10 s)",
        "confirmed": sum(r.ok for r in results),
        "subscribed_on_platform": sum(
            emulator.subscription_status(c.email) == "SUBSCRIBED" for c in changes
        ),
        "api_calls": calls,
        "calls_by_endpoint": {k: int(v["calls"]) for k, v in connector.stats.as_dict().items()},
        "emulated_seconds": round(clock.elapsed, 2),
        "rate_limited_429": emulator.rate_limited,
        "minimum_calls": minimum_calls,
        "minimum_seconds": (minimum_calls - 1) // burst * 10,
        "contacts_on_platform": len(emulator.contacts),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--tier", default="starter", choices=sorted(BURST_BY_TIER))
    parser.add_argument("--subscribed", type=float, default=0.5, help="share created subscribed")
    parser.add_argument("--status-writes", default="batch", choices=("batch", "single"))
    args = parser.parse_args()
    result = run(
        args.contacts, args.tier, subscribed=args.subscribed, status_writes=args.status_writes
    )
    print(json.dumps(asyncio.run(result), indent=2))


if __name__ == "__main__":
    main()
