"""API calls to create 10,000 members with three tags each, beside the batch-limit minimum.

    .venv/bin/python connectors/mailchimp/bench_calls.py [--members 10000] [--tags 3]

Runs the connector against the in-process emulator on a virtual clock and counts every HTTP
request the emulator saw, by endpoint. The minimum is what Mailchimp's batch limits allow:
ceil(members / 500) batch-subscribe calls, plus, per tag, ceil(members / 500) segment
membership calls (tags given in a batch-subscribe body are not in the API description, so
segsync does not rely on them), plus one call to create each tag and one to learn which tags
exist.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import time

from segsync_mailchimp import MailchimpConnector
from segsync_mailchimp.emulator import MailchimpEmulator

from segsync.clock import VirtualClock
from segsync.connector import ContactChange
from segsync.model import ConsentStatus, FieldSpec, FieldType, Schema


async def measure(members: int, tags: int) -> dict[str, object]:
    clock = VirtualClock()
    # 50 ms per request on the virtual clock: requests overlap as they would over a network
    emulator = MailchimpEmulator(clock=clock, latency_ms=50)
    schema = Schema(fields={"first_name": FieldSpec(type=FieldType.TEXT)})
    connector = MailchimpConnector(
        {"api_key": emulator.api_key, "list_id": emulator.default_list_id},
        schema=schema,
        transport=emulator.transport(),
        clock=clock,
    )
    tag_names = [f"tag{i + 1}" for i in range(tags)]
    changes = [
        ContactChange(
            email=f"person{i:05d}@segsync.dev",
            create=True,
            fields={"first_name": f"P{i}"},
            consent=ConsentStatus.SUBSCRIBED,
            tags_add=frozenset(tag_names),
        )
        for i in range(members)
    ]
    started = time.perf_counter()
    await connector.prepare(schema.fields, tag_names)
    prepare_calls = len(emulator.log)
    results = await connector.write(changes)
    wall = time.perf_counter() - started
    await connector.aclose()
    assert all(r.ok for r in results), [r for r in results if not r.ok][:3]
    assert all(len(emulator.get_member_tags(c.email)) == tags for c in changes[:50])
    chunks = math.ceil(members / 500)
    return {
        "calls": len(emulator.log),
        "by_endpoint": connector.stats.as_dict(),
        "emulated_seconds": round(clock.elapsed, 2),
        "rate_limited": emulator.rate_limited,
        "prepare_calls": prepare_calls,
        "minimum_writes": chunks + tags * chunks,
        "minimum_with_tag_setup": chunks + tags * chunks + tags + 1,
        "wall_seconds": round(wall, 2),
        "peak_connections": max(
            (getattr(limit, "peak", 0) for limit in emulator.limits), default=0
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--tags", type=int, default=3)
    args = parser.parse_args()
    figures = asyncio.run(measure(args.members, args.tags))
    print(f"members={args.members} tags={args.tags}")
    print(f"API calls: {figures['calls']} (prepare: {figures['prepare_calls']})")
    print(
        f"minimum the batch limits allow: {figures['minimum_writes']} writes "
        f"+ {args.tags} tag creations + 1 tag lookup = {figures['minimum_with_tag_setup']}"
    )
    print(f"peak concurrent connections: {figures['peak_connections']} (Mailchimp allows 10)")
    print(
        f"429s: {figures['rate_limited']}; emulated time at 50 ms a request: "
        f"{figures['emulated_seconds']} s; wall time: {figures['wall_seconds']} s"
    )
    stats = figures["by_endpoint"]
    if isinstance(stats, dict):
        for endpoint, data in sorted(stats.items()):
            calls = data["calls"] if isinstance(data, dict) else data
            print(f"  {endpoint}: {calls}")


if __name__ == "__main__":
    main()
