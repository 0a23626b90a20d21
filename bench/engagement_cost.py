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
- Brevo: the lists and each list's campaign counters (1 + L), ceil(N/1000) contact pages and
  the statistics of the contacts whose lists moved (N on the first refresh and on the weekly
  full read; none when no campaign activity moved since the last refresh), contacts family:
  10 a second on General. It also runs the next day's refresh (nothing moved) and one after
  an open.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import math
from typing import Any

from segsync.clock import VirtualClock
from segsync.emulator.base import record_engagement


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
    _email_everyone(emu, emails, c)
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
    _email_everyone(emu, emails, c)
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
    newsletter = emu.seed_list("Newsletter")
    emu.seed_list("Partners")  # a list no campaign went to
    emails = [f"p{i:06d}@example.com" for i in range(n)]
    for email in emails:
        emu.seed_contact(email, lists=(newsletter,))
    _email_everyone(emu, emails, c)
    clock.advance(3600)
    connector = BrevoConnector({"api_key": emu.api_key}, transport=emu.transport(), clock=clock)
    lists = len(emu.lists)
    start = clock.now()
    async with connector:

        async def refresh(cursor: str | None) -> tuple[int, set[str], str | None]:
            emu.log.entries.clear()
            seen: set[str] = set()
            async for page in connector.read_engagement(cursor):
                seen |= {k for k, v in page.values.items() if v}
                cursor = page.cursor or cursor
            return len(emu.log.entries), seen, cursor

        calls, values, cursor = await refresh(None)
        by_endpoint = _by_endpoint(emu.log)
        virtual = (clock.now() - start).total_seconds()
        clock.advance(86_400)  # a day without activity: nothing to read again
        quiet, _, cursor = await refresh(cursor)
        clock.advance(86_400)  # one open moves the newsletter: its members are read again
        record_engagement(emu, emails[0], "open", "campaign 0")
        moved, _, cursor = await refresh(cursor)
    listing = 1 + lists + math.ceil(n / 1000)
    return {
        "calls": calls,
        "formula": listing + n,
        "by_endpoint": by_endpoint,
        "contacts_with_values": len(values),
        "virtual_seconds": virtual,
        "at_100k": 1 + lists + 100 + 100_000,
        "later": f"next day, nothing moved: {quiet} calls (formula {listing}); "
                 f"after one open in the list: {moved} calls; at 100,000 in lists no "
                 f"campaign moved: {1 + lists + 100} calls",
    }


def _email_everyone(emulator: Any, emails: list[str], campaigns: int) -> None:
    """`campaigns` campaigns sent to everyone, a third opening, a tenth clicking (the
    emulators' shared engagement hook)."""
    for n in range(campaigns):
        for i, email in enumerate(emails):
            record_engagement(emulator, email, "send", f"campaign {n}")
            if i % 3 == 0:
                record_engagement(emulator, email, "open", f"campaign {n}")
            if i % 10 == 0:
                record_engagement(emulator, email, "click", f"campaign {n}")


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
        if got.get("later"):
            print(f"  {got['later']}")


if __name__ == "__main__":
    main()
