"""What engagement refreshes cost on each platform, the first and a later one.

The first is `read_engagement(None)`; a later one is given the cursor the previous one left.

    .venv/bin/python bench/engagement_cost.py [--contacts 2000] [--campaigns 4] [--latency-ms 100]
        [--platforms mailchimp,hubspot,brevo]

Seeds each in-process emulator with `contacts` pre-existing contacts, `campaigns` campaigns
sent to all of them (a third open, a tenth click), runs the first refresh on a virtual clock
and counts the calls by endpoint, beside the formula each connector documents. Then a later
refresh (the next day, after one new open), and the same formulas at 100,000 contacts with
the time they take at the platform's documented limit (`latency-ms` a call where the limit is
connections, not calls a second). L(n) is the calls of a listing of n items read 1000 a page,
each page after the first starting one item into the previous one (Mailchimp,
`segsync_mailchimp.engagement.listing_calls`): max(1, ceil((n - 1) / 999)).

- Mailchimp: the first refresh (and the weekly full read) L(C) campaign pages + C x L(N)
  email-activity pages + L(N) member pages; a later one L(C) + C (each campaign's activity
  `since` the last refresh: one page while fewer than 1000 recipients acted) + new campaigns'
  pages + L(N); 10 campaigns' reports at a time (10 connections); no per-second cap. The
  cursor it keeps (the tally of what the activity showed) is measured, per member;
- HubSpot: ceil(emailed/200) searches (5 a second per account, CRM search);
- Brevo: the lists and each list's campaign counters (1 + L), the contact pages (1000 a page,
  each after the first starting 50 into the previous one, until a page is short) and the
  statistics of the contacts whose lists moved (N on the first refresh and on the weekly full
  read; none when no campaign activity moved since the last refresh), contacts family: 10 a
  second on General. It also runs the next day's refresh (nothing moved) and one after an
  open.
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
    from segsync_mailchimp.engagement import listing_calls as pages

    clock = VirtualClock()
    emu = MailchimpEmulator(clock=clock, latency_ms=latency_ms)
    emails = [f"p{i:06d}@example.com" for i in range(n)]
    for email in emails:
        emu.seed_member(email, "subscribed", source="Hosted Signup Form")
    _email_everyone(emu, emails, c)
    clock.advance(2 * 3600)  # sent before segsync ran: out of the next refresh's overlap
    connector = MailchimpConnector(
        {"api_key": emu.api_key, "list_id": emu.default_list_id},
        transport=emu.transport(),
        clock=clock,
    )
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
        clock.advance(86_400)  # the next day, one reader opens an old email
        record_engagement(emu, emails[1], "open", "campaign 0")
        later_start = clock.now()
        later, _, cursor = await refresh(cursor)
        later_virtual = (clock.now() - later_start).total_seconds()
    size = len(cursor or "")
    big = 100_000
    first_formula = pages(c) + c * pages(n) + pages(n)
    later_formula = pages(c) + c + pages(n)
    return {
        "calls": calls,
        "formula": first_formula,
        "by_endpoint": by_endpoint,
        "contacts_with_values": len(values),
        "virtual_seconds": virtual,
        "at_100k": pages(c) + c * pages(big) + pages(big),
        # campaigns are read 10 at a time, each one page after another, then the members
        "rounds_at_100k": pages(c) + math.ceil(c / 10) * pages(big) + pages(big),
        "later": f"next day, after one open: {later} calls (formula {later_formula}), "
                 f"{later_virtual:.1f} s virtual; at 100,000: {pages(c) + c + pages(big)} "
                 f"calls, ~{(pages(c) + math.ceil(c / 10) + pages(big)) * latency_ms / 60_000:.1f}"
                 f" min likewise; cursor {size:,} bytes "
                 f"({size / max(1, n):.1f} a member: ~{size / max(1, n) * big / 1e6:.1f} MB "
                 f"at 100,000)",
        "later_calls": later,
        "later_formula": later_formula,
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
    listing = 1 + lists + _brevo_pages(n)
    return {
        "calls": calls,
        "formula": listing + n,
        "by_endpoint": by_endpoint,
        "contacts_with_values": len(values),
        "virtual_seconds": virtual,
        "at_100k": 1 + lists + _brevo_pages(100_000) + 100_000,
        "later": f"next day, nothing moved: {quiet} calls (formula {listing}); "
                 f"after one open in the list: {moved} calls (formula {listing + n}); at "
                 f"100,000 in lists no campaign moved: {1 + lists + _brevo_pages(100_000)} calls",
    }


def _brevo_pages(n: int, limit: int = 1000, overlap: int = 50) -> int:
    """Brevo's contact pages for n contacts: each after the first starts `overlap` into the
    previous one, and the listing ends at the first page shorter than `limit`."""
    return 1 if n < limit else 2 + (n - limit) // (limit - overlap)


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
    parser.add_argument("--platforms", default="mailchimp,hubspot,brevo",
                        help="comma-separated, of mailchimp, hubspot, brevo")
    args = parser.parse_args()
    chosen = {p.strip() for p in args.platforms.split(",") if p.strip()}
    limits = {  # calls a second the platform allows for these routes (documented)
        "mailchimp": None,  # no per-second cap; 10 campaigns' reports at a time
        "hubspot": 5.0,
        "brevo": 10.0,
    }
    for name, fn in (("mailchimp", mailchimp), ("hubspot", hubspot), ("brevo", brevo)):
        if name not in chosen:
            continue
        got = asyncio.run(fn(args.contacts, args.campaigns, args.latency_ms))
        rate = limits[name]
        big = got["at_100k"]
        seconds = big / rate if rate else got["rounds_at_100k"] * args.latency_ms / 1000
        limit = ("the documented limit" if rate
                 else f"10 connections, {args.latency_ms:.0f} ms a call")
        print(
            f"{name}: {got['calls']} calls (formula {got['formula']}) for {args.contacts} "
            f"contacts x {args.campaigns} campaigns, {got['contacts_with_values']} with values, "
            f"{got['virtual_seconds']:.1f} s virtual; at 100,000: {big} calls, "
            f"~{seconds / 60:.1f} min at {limit}"
        )
        print(f"  {got['by_endpoint']}")
        if got.get("later"):
            print(f"  {got['later']}")


if __name__ == "__main__":
    main()
