"""The naive baseline: one contact per API call through the vendors' official SDKs.

What a typical sync script or per-record exporter does: for every contact, one create call
on each platform (Mailchimp `lists.add_list_member` with the tags in the body, HubSpot
`crm.contacts.basic_api.create` with the tags property, Brevo `contacts.create_contact` with
the tag lists), one contact after another, retrying a 429 after its Retry-After (1 s when
absent). The three platforms run side by side (one thread each), each on a fresh emulator
served on loopback with the same latency and limits as the segsync run.

The baseline is generous to itself: it writes no consent outside the record (HubSpot
subscription statuses), publishes no segment and reads nothing back; its figures are
measured on `--baseline-contacts` contacts and extrapolated linearly to N.
"""

from __future__ import annotations

import collections
import concurrent.futures
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dataset import TAGS, BenchContact, audience
from platforms import PLATFORMS, Role, ServedEmulator, serve

__all__ = ["run_baseline"]

MAILCHIMP_STATUS = {"subscribed": "subscribed", "non_subscribed": "transactional"}


class Counter:
    """Calls (attempts) and 429s of one platform's script."""

    def __init__(self) -> None:
        self.calls = 0
        self.rate_limited = 0
        self.failed = 0

    def call(
        self, fn: Callable[[], Any], status_of: Callable[[Exception], tuple[int, float]]
    ) -> None:
        """Call `fn` until it is not refused with a 429 (a failure other than 429 is counted)."""
        while True:
            self.calls += 1
            try:
                fn()
            except Exception as exc:
                status, wait = status_of(exc)
                if status == 429:
                    self.rate_limited += 1
                    time.sleep(wait)
                    continue
                self.failed += 1
            return


def _retry_after(headers: Any) -> float:
    try:
        return float((headers or {}).get("Retry-After") or (headers or {}).get("retry-after") or 1)
    except (TypeError, ValueError):
        return 1.0


def _mailchimp(served: ServedEmulator, contacts: list[BenchContact], counter: Counter) -> None:
    import mailchimp_marketing
    from mailchimp_marketing.api_client import ApiClientError

    client = mailchimp_marketing.Client()
    key = served.config["api_key"]
    client.set_config({"api_key": key, "server": key.rsplit("-", 1)[-1]})
    client.api_client.host = served.base_url
    list_id = served.config["list_id"]

    def status_of(exc: Exception) -> tuple[int, float]:
        return (exc.status_code or 0, 1.0) if isinstance(exc, ApiClientError) else (0, 0.0)

    for c in contacts:
        body = {
            "email_address": c.email,
            "status": MAILCHIMP_STATUS[c.consent.value],
            "merge_fields": {
                "FNAME": c.fields["first_name"],
                "LNAME": c.fields["last_name"],
                "COMPANY": c.fields["company"],
            },
            "tags": sorted(c.tags),
        }
        counter.call(lambda body=body: client.lists.add_list_member(list_id, body), status_of)


def _hubspot(served: ServedEmulator, contacts: list[BenchContact], counter: Counter) -> None:
    from hubspot import HubSpot
    from hubspot.crm.contacts import (
        ApiException,
        SimplePublicObjectInputForCreate,
    )

    client = HubSpot(access_token=served.config["token"], host=served.base_url)

    def status_of(exc: Exception) -> tuple[int, float]:
        if isinstance(exc, ApiException):
            return exc.status or 0, _retry_after(exc.headers)
        return 0, 0.0

    for c in contacts:
        body = SimplePublicObjectInputForCreate(
            properties={
                "email": c.email,
                "firstname": c.fields["first_name"],
                "lastname": c.fields["last_name"],
                "company": c.fields["company"],
                "segsync_tags": ";".join(sorted(c.tags)),
            }
        )
        counter.call(
            lambda body=body: client.crm.contacts.basic_api.create(
                simple_public_object_input_for_create=body
            ),
            status_of,
        )


def _brevo(served: ServedEmulator, contacts: list[BenchContact], counter: Counter) -> None:
    import brevo
    from brevo.core.api_error import ApiError

    client = brevo.Brevo(api_key=served.config["api_key"], base_url=served.base_url, max_retries=0)

    def status_of(exc: Exception) -> tuple[int, float]:
        if isinstance(exc, ApiError):
            return exc.status_code or 0, _retry_after(exc.headers)
        return 0, 0.0

    folders: list[Any] = []
    found: dict[str, int] = {}
    counter.call(
        lambda: folders.extend(client.contacts.get_folders(limit=50, offset=0).folders or []),
        status_of,
    )
    for folder in folders:
        counter.call(
            lambda folder=folder: found.update(
                (item.name, item.id)
                for item in client.contacts.get_folder_lists(folder.id).lists or []
            ),
            status_of,
        )
    by_tag = {t: found[name] for t in TAGS for name in found if name.endswith(t)}
    for c in contacts:
        counter.call(
            lambda c=c: client.contacts.create_contact(
                email=c.email,
                attributes={
                    "FIRSTNAME": c.fields["first_name"],
                    "LASTNAME": c.fields["last_name"],
                    "COMPANY": c.fields["company"],
                },
                list_ids=[by_tag[t] for t in sorted(c.tags) if t in by_tag],
            ),
            status_of,
        )


SCRIPTS: dict[str, Callable[[ServedEmulator, list[BenchContact], Counter], None]] = {
    "mailchimp": _mailchimp,
    "hubspot": _hubspot,
    "brevo": _brevo,
}


def run_baseline(contacts: int, latency_ms: float, target: int) -> dict[str, Any]:
    """Run the naive scripts on `contacts` contacts; extrapolate calls and time to `target`."""
    starting = {name: serve(name, Role(), latency_ms) for name in PLATFORMS}
    served = {name: s.wait() for name, s in starting.items()}
    people = list(audience(contacts))
    counters = {name: Counter() for name in PLATFORMS}
    seconds: dict[str, float] = collections.defaultdict(float)

    def one(name: str) -> None:
        started = time.perf_counter()
        SCRIPTS[name](served[name], people, counters[name])
        seconds[name] = time.perf_counter() - started

    try:
        with concurrent.futures.ThreadPoolExecutor(len(PLATFORMS)) as pool:
            for future in [pool.submit(one, name) for name in PLATFORMS]:
                future.result()
    finally:
        for s in served.values():
            s.stop()
    scale = target / contacts if contacts else 0.0
    platforms = {
        name: {
            "calls": counters[name].calls,
            "failed": counters[name].failed,
            "rate_limited_429": counters[name].rate_limited,
            "seconds": round(seconds[name], 3),
            "calls_at_n": round(counters[name].calls * scale),
            "seconds_at_n": round(seconds[name] * scale, 1),
        }
        for name in PLATFORMS
    }
    return {
        "contacts": contacts,
        "extrapolated_to": target,
        "extrapolated": contacts != target,
        "platforms": platforms,
        "calls_at_n": sum(p["calls_at_n"] for p in platforms.values()),
        "seconds_at_n": max((p["seconds_at_n"] for p in platforms.values()), default=0.0),
    }
