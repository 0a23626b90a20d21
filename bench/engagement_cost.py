"""What a full engagement refresh (`read_engagement(None)`) costs on each platform.

    .venv/bin/python bench/engagement_cost.py [--contacts 2000] [--campaigns 4] [--latency-ms 100]

Seeds each in-process emulator with `contacts` pre-existing contacts, `campaigns` campaigns
sent to all of them (a third open, a tenth click), runs one refresh on a virtual clock and
counts the calls by endpoint, beside the formula each connector documents. Then the same
formula at 100,000 contacts, and the time it takes at the platform's documented limit:

- Mailchimp: ceil(C/1000) campaign pages + C x ceil(N/1000) email-activity pages +
  ceil(N/1000) member pages, 10 campaigns at a time (10 connections); no per-second cap
  (time shown at `latency-ms` per call);
- HubSpot: ceil(emailed/200) searches (5 a second per account, CRM search);
- Brevo: ceil(N/1000) list pages + N contact reads (contacts family: 10 a second on General).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import math
from typing import Any

from segsync.clock import VirtualClock


def _by_endpoint(log: Any) -> dict[str, int]:
    counts: collections.Counter[str] = collections.Counter()
    for entry in log.entries:
        method, path = entry[0], entry[1]
        parts = [
            "{id}" if p.isdigit() or (len(p) > 6 and any(ch.isdigit() for ch in p)) else p
            for p in path.split("/")
        ]
        counts[f"{method} {'/'.join(parts)}"] += 1
    return dict(counts)


async def mailchimp(n: int, c: int, latency_ms: float) -> dict[str, Any]:
    from segsync_mailchimp import MailchimpConnector
    from segsync_mailchimp.emulator import MailchimpEmulator

    clock = VirtualClock()
    emu = MailchimpEmulator(clock=clock, latency_ms=latency_ms)
    emails = [f"p{i:06d}@example.com" for i in range(n)]
    for email in emails:
        emu.seed_member(email, "subscribed", source="Hosted Signup Form")
    for _ in range(c):
        campaign = emu.record_campaign()
        for i, email in enumerate(emails):
            emu.record_send(email, campaign)
            if i % 3 == 0:
                emu.record_open(email, campaign)
            if i % 10 == 0:
                emu.record_click(email, campaign)
    connector = MailchimpConnector(
        {"api_key": emu.api_key, "list_id": emu.default_list_id},
        transport=emu.transport(),
        clock=clock,
    )
    start = clock.now()
    async with connector:
        emu.log.entries.clear()
        values = {k for p in [p async for p in connector.read_engagement(None)] for k in p.values}
    calls = len(emu.log.entries)
    formula = math.ceil(c / 1000) + c * math.ceil(n / 1000) + math.ceil(n / 1000)
    return {
        "calls": calls,
        "formula": formula,
        "by_endpoint": _by_endpoint(emu.log),
        "contacts_with_values": len(values),
        "virtual_seconds": (clock.now() - start).total_seconds(),
        "at_100k": math.ceil(c / 1000) + c * 100 + 100,
        # campaigns are read 10 at a time: the calls one after another
        "rounds_at_100k": math.ceil(c / 1000) + math.ceil(c / 10) * 100 + 100,
    }


async def hubspot(n: int, c: int, latency_ms: float) -> dict[str, Any]:
    from segsync_hubspot import HubSpotConnector, HubSpotEmulator

    clock = VirtualClock()
    emu = HubSpotEmulator(clock=clock, latency_ms=latency_ms)
    emails = [f"p{i:06d}@example.com" for i in range(n)]
    for email in emails:
        emu.seed_contact({"email": email})
    for _ in range(c):
        for i, email in enumerate(emails):
            emu.record_email(email, "send")
            if i % 3 == 0:
                emu.record_email(email, "open")
            if i % 10 == 0:
                emu.record_email(email, "click")
    clock.advance(600)  # past the search index lag
    connector = HubSpotConnector(
        {"token": emu.default_api_key, "base_url": "http://127.0.0.1:9"},
        transport=emu.transport(),
        clock=clock,
    )
    start = clock.now()
    async with connector:
        emu.log.entries.clear()
        values = {k for p in [p async for p in connector.read_engagement(None)] for k in p.values}
    return {
        "calls": len(emu.log.entries),
        "formula": math.ceil(n / 200),
        "by_endpoint": _by_endpoint(emu.log),
        "contacts_with_values": len(values),
        "virtual_seconds": (clock.now() - start).total_seconds(),
        "at_100k": math.ceil(100_000 / 200),
    }


async def brevo(n: int, c: int, latency_ms: float) -> dict[str, Any]:
    from segsync_brevo import BrevoConnector
    from segsync_brevo.emulator import BrevoEmulator

    clock = VirtualClock()
    emu = BrevoEmulator(clock=clock, latency_ms=latency_ms)
    emails = [f"p{i:06d}@example.com" for i in range(n)]
    for email in emails:
        emu.seed_contact(email)
    for campaign in range(1, c + 1):
        for i, email in enumerate(emails):
            emu.record_campaign_event(email, "sent", campaign)
            emu.record_campaign_event(email, "delivered", campaign)
            if i % 3 == 0:
                emu.record_campaign_event(email, "opened", campaign)
            if i % 10 == 0:
                emu.record_campaign_event(email, "clicked", campaign)
    connector = BrevoConnector({"api_key": emu.api_key}, transport=emu.transport(), clock=clock)
    start = clock.now()
    async with connector:
        emu.log.entries.clear()
        values = {k for p in [p async for p in connector.read_engagement(None)] for k in p.values}
    return {
        "calls": len(emu.log.entries),
        "formula": math.ceil(n / 1000) + n,
        "by_endpoint": _by_endpoint(emu.log),
        "contacts_with_values": len(values),
        "virtual_seconds": (clock.now() - start).total_seconds(),
        "at_100k": 100 + 100_000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=2000)
    parser.add_argument("--campaigns", type=int, default=4)
    parser.add_argument("--latency-ms", type=float, default=100.0)
    args = parser.parse_args()
    limits = {  # calls a second the platform allows for these routes (documented)
        "mailchimp": None,  # no per-second cap; 10 campaigns' reports at a time
        "hubspot": 5.0,
        "brevo": 10.0,
    }
    for name, fn in (("mailchimp", mailchimp), ("hubspot", hubspot), ("brevo", brevo)):
        got = asyncio.run(fn(args.contacts, args.campaigns, args.latency_ms))
        rate = limits[name]
        big = got["at_100k"]
        seconds = big / rate if rate else got["rounds_at_100k"] * args.latency_ms / 1000
        print(
            f"{name}: {got['calls']} calls (formula {got['formula']}) for {args.contacts} "
            f"contacts x {args.campaigns} campaigns, {got['contacts_with_values']} with values, "
            f"{got['virtual_seconds']:.1f} s virtual; at 100,000: {big} calls, "
            f"~{seconds / 60:.1f} min at the documented limit"
        )
        print(f"  {got['by_endpoint']}")


if __name__ == "__main__":
    main()
