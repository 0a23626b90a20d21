"""The fewest API calls and the shortest time a platform's documented limits allow.

The minimum is computed from the connector's `Capabilities` (page size, batch sizes,
concurrency, rate windows, how tags are represented) and a few platform facts the
Capabilities do not carry (`FACTS`), applied to a `Workload`: what one sync phase asks of one
platform. Formulas (every `ceil(x / b)` is 0 when x is 0):

- reads     = max(1, ceil(records changed since the cursor / read_page_size))
              (a platform with nothing new still answers one empty page);
- writes    = ceil(records written / write_batch_size);
- consent   = ceil(records whose subscription status changes / consent_per_call), where the
              platform keeps consent outside the record (HubSpot's subscription statuses: 100
              a call through statuses/batch/write, one below Enterprise); 0 where consent
              rides in the record;
- polls     = 1 when the bulk write is asynchronous (Brevo's imports: one status read sees
              every import done), plus ceil(records created / read_page_size) reads where the
              asynchronous write answers no record ids (Brevo's imports) and ids are needed;
- tags      = by `Capabilities.tags`: a multi-checkbox or attribute rides in the record write
              (0); native tags (Mailchimp) cost, per tag, ceil(max(adds, removes) /
              membership_batch_size) (adds and removes share a call); lists (Brevo) cost the
              cheaper of one import per distinct tag set (an import's lists apply to all its
              contacts) and list-add calls, plus ceil(removes / membership_batch_size) a list;
- segments  = 1 call per native segment published, 1 per static segment created, and
              its member changes in calls of membership_batch_size (adds and removes in one
              call where the platform allows it).

The floor of a platform's time is the larger of the latency bound, calls x latency /
max_concurrency, and the rate-window bound: for each window of R requests per S seconds,
the c calls it counts need floor((c - 1) / R) x S seconds. Where a platform processes bulk
writes asynchronously, the processing time of the largest one (the emulator's model, not a
vendor figure) is added.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

from segsync.connector import Capabilities, TagRepresentation

__all__ = ["FACTS", "CallItem", "PlatformFacts", "Workload", "floor_seconds", "minimum_calls"]


def _ceil(x: int, b: int) -> int:
    return math.ceil(x / b) if x > 0 else 0


@dataclasses.dataclass(frozen=True)
class Workload:
    """What one sync phase asks of one platform."""

    read: int = 0
    created: int = 0
    updated: int = 0
    consent_writes: int = 0
    tag_adds: Mapping[str, int] = dataclasses.field(default_factory=dict)
    tag_removes: Mapping[str, int] = dataclasses.field(default_factory=dict)
    #: records written, by the set of tags they are added to
    tag_sets: Mapping[frozenset[str], int] = dataclasses.field(default_factory=dict)
    native_segments: int = 0
    static_segments: int = 0
    static_adds: int = 0
    static_removes: int = 0

    @property
    def written(self) -> int:
        return self.created + self.updated


@dataclasses.dataclass(frozen=True)
class PlatformFacts:
    """What the Capabilities do not say: consent calls, async writes, which window counts what."""

    #: addresses per consent call when consent is kept outside the record (None: in the record)
    consent_per_call: int | None = None
    #: status reads an asynchronous bulk write needs (0: writes are synchronous)
    async_write_polls: int = 0
    #: whether created records' ids must be read back (the bulk write does not answer them)
    ids_read_back: bool = False
    #: whether one membership call carries adds and removes together
    membership_add_remove_together: bool = True
    #: rate-window scopes each kind of call counts against (absent kind: "default")
    scopes: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    #: seconds the platform takes to process its largest asynchronous bulk write
    processing_seconds: Callable[[int], float] | None = None


def _brevo_import_seconds(contacts: int) -> float:
    """Brevo's import processing, as the emulator models it (queue + base + per contact)."""
    from segsync_brevo.emulator import BrevoEmulator

    emulator: Any = BrevoEmulator()
    return float(
        emulator.import_queue_seconds
        + emulator.import_base_seconds
        + emulator.import_seconds_per_contact * contacts
    )


FACTS: dict[str, PlatformFacts] = {
    "mailchimp": PlatformFacts(),
    "hubspot": PlatformFacts(
        # statuses/batch/write takes 100 (Enterprise, the connector's default); 1 below it
        consent_per_call=100,
        scopes={"read": ("default", "search")},
    ),
    "brevo": PlatformFacts(
        async_write_polls=1,
        ids_read_back=True,
        membership_add_remove_together=False,
        scopes={
            "read": ("contacts",),
            "write": ("contacts",),
            "tags": ("contacts",),
            "segments": ("contacts",),
            "poll": ("hourly",),
            "ids": ("contacts",),
        },
        processing_seconds=_brevo_import_seconds,
    ),
}


@dataclasses.dataclass(frozen=True)
class CallItem:
    """A kind of call and how many of them the minimum needs."""

    kind: str  # read, write, consent, poll, ids, tags, segments
    calls: int


def _tag_calls(caps: Capabilities, work: Workload) -> tuple[int, int]:
    """(tag calls, record-write calls replaced) for the tag representation."""
    if caps.tags in (TagRepresentation.MULTI_CHECKBOX, TagRepresentation.ATTRIBUTE):
        return 0, 0
    tags = set(work.tag_adds) | set(work.tag_removes)
    size = caps.membership_batch_size
    if caps.tags is TagRepresentation.TAGS:
        return sum(
            _ceil(max(work.tag_adds.get(t, 0), work.tag_removes.get(t, 0)), size) for t in tags
        ), 0
    removes = sum(_ceil(work.tag_removes.get(t, 0), size) for t in tags)
    by_calls = sum(_ceil(work.tag_adds.get(t, 0), size) for t in tags)
    writes = _ceil(work.written, caps.write_batch_size)
    by_sets = sum(_ceil(n, caps.write_batch_size) for n in work.tag_sets.values())
    extra_by_sets = max(0, by_sets - writes)
    return removes + min(by_calls, extra_by_sets), 0


def minimum_calls(caps: Capabilities, facts: PlatformFacts, work: Workload) -> list[CallItem]:
    """The fewest calls of each kind `work` needs on a platform (see the module docstring)."""
    writes = _ceil(work.written, caps.write_batch_size)
    consent = _ceil(work.consent_writes, facts.consent_per_call) if facts.consent_per_call else 0
    tags, _ = _tag_calls(caps, work)
    size = caps.membership_batch_size
    if facts.membership_add_remove_together:
        members = _ceil(max(work.static_adds, work.static_removes), size)
    else:
        members = _ceil(work.static_adds, size) + _ceil(work.static_removes, size)
    return [
        CallItem("read", max(1, _ceil(work.read, caps.read_page_size))),
        CallItem("write", writes),
        CallItem("consent", consent),
        CallItem("poll", facts.async_write_polls if writes else 0),
        CallItem("ids", _ceil(work.created, caps.read_page_size) if facts.ids_read_back else 0),
        CallItem("tags", tags),
        CallItem("segments", work.native_segments + work.static_segments + members),
    ]


def floor_seconds(
    caps: Capabilities,
    facts: PlatformFacts,
    items: list[CallItem],
    latency_s: float,
    *,
    largest_async_write: int = 0,
) -> dict[str, float]:
    """The time floor of `items` on a platform: latency bound, window bound, processing."""
    total = sum(i.calls for i in items)
    latency_bound = total * latency_s / caps.max_concurrency
    window_bound = 0.0
    for window in caps.rate_windows:
        counted = sum(
            i.calls
            for i in items
            if window.scope == "default" or window.scope in facts.scopes.get(i.kind, ("default",))
        )
        if counted > 0:
            window_bound = max(
                window_bound, math.floor((counted - 1) / window.requests) * window.seconds
            )
    processing = 0.0
    if facts.processing_seconds is not None and largest_async_write:
        processing = facts.processing_seconds(largest_async_write)
    return {
        "latency_bound_s": round(latency_bound, 3),
        "rate_window_bound_s": round(window_bound, 3),
        "processing_s": round(processing, 3),
        "floor_s": round(max(latency_bound, window_bound) + processing, 3),
    }
