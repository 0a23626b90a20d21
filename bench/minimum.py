"""The fewest API calls and the shortest time a platform's documented limits allow.

The minimum is computed from the connector's `Capabilities` (page size, batch sizes,
concurrency, rate windows, how tags are represented) and a few platform facts the
Capabilities do not carry (`FACTS`), applied to a `Workload`: what one sync phase asks of one
platform. Formulas (every `ceil(x / b)` is 0 when x is 0):

- reads     = 1 + ceil(max(0, records changed since the cursor - read_page_size) /
              (read_page_size - page_overlap)), plus one page per further read stream
              (a platform with nothing new still answers one empty page; HubSpot's pages
              repeat their anchor record, Mailchimp reads archived members apart);
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

What the project's safety rules make every run read (each counted once a run, per platform):

- identity  = 1: the account behind the credentials, compared with the state's binding;
- check     = `check_reads` on a first run (the config is verified once, then on a change);
- catalog   = `catalog_reads` every run (what decoding a read needs and the connector reads
              afresh each run: Brevo's attributes, owned folder and its lists), plus
              `once_catalog_reads` on the connector's first run (HubSpot's subscription
              types); `apply_catalog_reads` again before writing (a plan may be applied later:
              the owned objects a person deleted in between are seen);
- recheck   = one read per read stream when the run writes anything (the re-check before
              apply: a quiet platform answers one empty page a stream);
- recheck by id = where the change listing lags writes (HubSpot's search index), the
              records the run updates are also read by id before apply: per
              `recheck_by_id` records, its reads (HubSpot: a contacts batch read and a
              subscription-status read per 100 records updated);
- engagement= when the engagement refresh is due: 1 where nothing was sent (Mailchimp's
              campaigns, HubSpot's emailed contacts: one empty page); Brevo reads every
              list's campaign counters and the contacts (ceil(L / 50) + L + ceil(N / 1000));
- names     = `name_check_reads` per native segment created (the name a person may already
              use is looked up when planning and again right before creating);
- consent reads = ceil(records read without an opt-out in their properties /
              consent_read_per_call) where opt-ins live outside the record (HubSpot's
              subscription statuses: the only opt-in evidence there);
- update checks = per `update_check_per_call` updates: one read of which linked records
              still exist (an upsert by email would re-create a deleted one), plus one of the
              current tags of those losing a tag (a multi-checkbox is rewritten whole);
- consent guard = per `guard` addresses about to be sent an opt-in on an update, the reads
              of what the platform holds now (HubSpot: the records' opt-out properties and
              their statuses, 100 a call; Mailchimp: the member's status, one call each);
- containers = owned containers created or deleted in the run (Brevo's folder, tag lists,
              base list, the temporary list of an import of contacts without opt-in).

The floor of a platform's time is the larger of the latency bound, calls x latency /
max_concurrency, and the rate-window bound: for each window of R requests per S seconds,
the c calls it counts need floor((c - 1) / R) x S seconds. Where a platform processes bulk
writes asynchronously, the processing time of the largest one the minimum plans
(`largest_async_write`: one import per distinct list set; the emulator's model, not a
vendor figure) is added.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

from segsync.connector import Capabilities, TagRepresentation

__all__ = [
    "FACTS",
    "CallItem",
    "PlatformFacts",
    "Workload",
    "floor_seconds",
    "largest_async_write",
    "minimum_calls",
]


def _ceil(x: int, b: int) -> int:
    return math.ceil(x / b) if x > 0 else 0


def _pages(records: int, page: int, overlap: int) -> int:
    """Pages of `page` records holding `records`, each after the first repeating `overlap`
    (one page when there is nothing: an empty answer)."""
    return 1 + _ceil(max(0, records - page), page - overlap)


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
    #: the run is the first on this account (the config is checked; catalogs read once)
    first_run: bool = False
    #: the run writes something somewhere (every platform is re-checked before apply)
    recheck: bool = False
    #: the engagement refresh is due
    engagement: bool = False
    #: records read whose opt-in must be read apart (no opt-out in their properties)
    consent_reads: int = 0
    #: updated records losing a tag (their current tags are read first)
    updated_tag_removes: int = 0
    #: lists and contacts the platform holds when the engagement refresh reads it
    engagement_lists: int = 0
    engagement_contacts: int = 0
    #: updated records sent an opt-in (the consent guard reads their status right before)
    opt_ins_guarded: int = 0
    #: owned containers created and deleted (folders, lists, temporary lists)
    containers_created: int = 0
    containers_deleted: int = 0

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
    #: record streams a read pages through to its end (Mailchimp: members and archived)
    read_streams: int = 1
    #: records each page after the first repeats (HubSpot: its anchor, the previous page's
    #: last record, so records removed while paging are noticed)
    page_overlap: int = 0
    #: reads that verify the config on a first run, beyond the identity read
    check_reads: int = 1
    #: reads each run makes before decoding records
    catalog_reads: int = 0
    #: reads a connector makes on its first run only (then kept)
    once_catalog_reads: int = 0
    #: reads of the owned objects again before writing
    apply_catalog_reads: int = 0
    #: reads per native segment created: the name looked up at plan and before creating
    name_check_reads: int = 2
    #: records whose opt-in is read per call, where it lives outside the record
    consent_read_per_call: int | None = None
    #: updates per existence read (and per current-tags read) before an upsert by email
    update_check_per_call: int | None = None
    #: (addresses per call, reads per call) of the consent guard before an opt-in is sent
    guard: tuple[int, int] | None = None
    #: (records per call, reads per call) of the re-check's read by id of the records a run
    #: updates, where the change listing lags writes (None: the listing does not lag)
    recheck_by_id: tuple[int, int] | None = None
    #: the engagement refresh reads every list's campaign counters, then the contacts
    #: (Brevo: ceil(L / 50) + L + ceil(N / 1000), plus one statistics read per contact in a
    #: list a campaign reached since; none in this benchmark)
    engagement_by_lists: bool = False


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
    "mailchimp": PlatformFacts(
        read_streams=2,  # members, and archived members (deletes are recorded)
        guard=(1, 1),  # the member's status, read afresh before `subscribed` is sent
        check_reads=1,  # the audience named in the config
    ),
    "hubspot": PlatformFacts(
        # statuses/batch/write takes 100 (Enterprise, the connector's default); 1 below it
        consent_per_call=100,
        consent_read_per_call=100,  # statuses/batch/read: SUBSCRIBED is only there
        page_overlap=1,  # each search page starts at the previous page's last record
        update_check_per_call=100,  # contacts/batch/read by id, then by email for tags
        guard=(100, 2),  # the records' opt-out properties and their statuses, 100 a call
        recheck_by_id=(100, 2),  # search lags: updated records batch read, then statuses
        check_reads=1,  # a contact page of one (the contacts scope)
        once_catalog_reads=1,  # the subscription types (which hs_email_optout_<id> to read)
        scopes={"read": ("default", "search"), "recheck": ("default", "search"),
                "engagement": ("default", "search")},
    ),
    "brevo": PlatformFacts(
        async_write_polls=1,
        ids_read_back=True,
        membership_add_remove_together=False,
        check_reads=0,  # the attribute catalog, which the read needs anyway
        catalog_reads=3,  # attributes, folders, the owned folder's lists
        apply_catalog_reads=2,  # folders and the owned folder's lists, before writing
        name_check_reads=0,  # list names come from the folder's lists already read
        engagement_by_lists=True,
        scopes={
            "read": ("contacts",),
            "write": ("contacts",),
            "tags": ("contacts",),
            "segments": ("contacts",),
            "poll": ("hourly",),
            "ids": ("contacts",),
            "recheck": ("contacts",),
            "engagement": ("contacts",),
            "catalog": ("contacts",),
            "identity": ("hourly",),
            "containers": ("contacts",),
        },
        processing_seconds=_brevo_import_seconds,
    ),
}


@dataclasses.dataclass(frozen=True)
class CallItem:
    """A kind of call and how many of them the minimum needs."""

    kind: str  # read, write, consent, poll, ids, tags, segments, and the safety reads
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


def _engagement(facts: PlatformFacts, work: Workload) -> int:
    """The engagement refresh's reads when it is due: one page where nothing was sent
    (Mailchimp's campaigns, HubSpot's emailed contacts), or Brevo's lists and contacts."""
    if not work.engagement:
        return 0
    if not facts.engagement_by_lists:
        return 1
    lists = work.engagement_lists
    return max(1, _ceil(lists, 50)) + lists + max(1, _ceil(work.engagement_contacts, 1000))


def _recheck_by_id(facts: PlatformFacts, work: Workload) -> int:
    """The re-check's reads by id of the records a run updates, where the listing lags."""
    if not (work.recheck and facts.recheck_by_id):
        return 0
    per_call, reads = facts.recheck_by_id
    return _ceil(work.updated, per_call) * reads


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
    checks = facts.update_check_per_call
    updated = _ceil(work.updated, checks) + _ceil(work.updated_tag_removes, checks) if checks else 0
    consent_reads = (
        _ceil(work.consent_reads, facts.consent_read_per_call)
        if facts.consent_read_per_call
        else 0
    )
    catalog = facts.catalog_reads + (facts.apply_catalog_reads if work.written else 0)
    if work.first_run:
        catalog += facts.once_catalog_reads
    # an asynchronous bulk write answers no ids: what it took is read back
    ids = _ceil(work.written, caps.read_page_size) if facts.ids_read_back and writes else 0
    return [
        CallItem("read", _pages(work.read, caps.read_page_size, facts.page_overlap)
                 + facts.read_streams - 1),
        CallItem("write", writes),
        CallItem("consent", consent),
        CallItem("poll", facts.async_write_polls if writes else 0),
        CallItem("ids", ids),
        CallItem("tags", tags),
        CallItem(
            "segments",
            work.native_segments * (1 + facts.name_check_reads) + work.static_segments + members,
        ),
        CallItem("identity", 1),
        CallItem("check", facts.check_reads if work.first_run else 0),
        CallItem("catalog", catalog),
        CallItem("recheck", facts.read_streams if work.recheck else 0),
        CallItem("recheck_by_id", _recheck_by_id(facts, work)),
        CallItem("engagement", _engagement(facts, work)),
        CallItem("consent_reads", consent_reads),
        CallItem("update_checks", updated),
        CallItem(
            "consent_guard",
            _ceil(work.opt_ins_guarded, facts.guard[0]) * facts.guard[1] if facts.guard else 0,
        ),
        CallItem("containers", work.containers_created + work.containers_deleted),
    ]


def largest_async_write(caps: Capabilities, work: Workload) -> int:
    """The largest bulk write the minimum plans: one per distinct tag set where list sets
    ride in the write (Brevo's imports), else a write batch."""
    if caps.tags is TagRepresentation.LISTS and work.tag_sets:
        return min(caps.write_batch_size, max(work.tag_sets.values()))
    return min(caps.write_batch_size, work.written)


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


# -- the scaling table (docs/scaling.md) ------------------------------------------------------

#: rate windows per account tier, from each connector's published limits
def _tier_windows() -> dict[str, dict[str, tuple[Any, ...]]]:
    from segsync_brevo.limits import TIERS
    from segsync_hubspot.limits import BURST_BY_TIER, BURST_SECONDS, SEARCH_PER_SECOND

    from segsync.http import RateWindow

    return {
        "mailchimp": {"any plan": ()},
        "hubspot": {
            tier: (
                RateWindow(burst, BURST_SECONDS, "default"),
                RateWindow(SEARCH_PER_SECOND, 1.0, "search"),
            )
            for tier, burst in BURST_BY_TIER.items()
            if tier in ("starter", "professional")
        },
        "brevo": {
            tier: (
                RateWindow(t.contacts_per_second, 1.0, "contacts"),
                RateWindow(t.contacts_per_hour, 3600.0, "contacts"),
                RateWindow(t.others_per_hour, 3600.0, "hourly"),
            )
            for tier, t in TIERS.items()
        },
    }


def first_sync(role: str, contacts: int, tags: int = 3, share: float = 0.3) -> Workload:
    """A first sync's work on one platform: `source` reads `contacts`; `destination`
    creates them, each tag on `share` of them, one segment holding 5 % of them."""
    common = Workload(first_run=True, recheck=True, engagement=True)
    if role == "source":
        return dataclasses.replace(common, read=contacts, consent_reads=contacts,
                                   native_segments=1, engagement_contacts=contacts)
    per_tag = round(contacts * share)
    names = [f"tag{i}" for i in range(tags)]
    sets: dict[frozenset[str], int] = {}
    for combo in range(2**tags):
        chosen = frozenset(n for bit, n in enumerate(names) if combo >> bit & 1)
        k = len(chosen)
        sets[chosen] = round(contacts * share**k * (1 - share) ** (tags - k))
    return dataclasses.replace(
        common,
        created=contacts,
        tag_adds=dict.fromkeys(names, per_tag),
        tag_sets=sets,
        native_segments=1,
        static_segments=1,
        static_adds=contacts // 20,
        containers_created=2 + tags,
        containers_deleted=1,
    )


def scaling_rows(
    sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000), latency_s: float = 0.05
) -> list[dict[str, Any]]:
    """Per platform, tier, role and size: the minimum calls and the time floor."""
    from segsync.connector import registry

    rows: list[dict[str, Any]] = []
    for name, tiers in _tier_windows().items():
        caps = registry.get(name).capabilities
        facts = FACTS[name]
        for tier, windows in tiers.items():
            tier_caps = caps.model_copy(update={"rate_windows": windows}) if windows else caps
            for role in ("source", "destination"):
                for n in sizes:
                    work = first_sync(role, n)
                    if name == "hubspot" and role == "destination":
                        work = dataclasses.replace(
                            work, consent_writes=n * 19 // 20, opt_ins_guarded=n * 19 // 20,
                            static_segments=0, static_adds=0, tag_adds={}, tag_sets={},
                        )
                    if name != "hubspot":
                        work = dataclasses.replace(work, consent_reads=0)
                    if name != "brevo":
                        work = dataclasses.replace(
                            work, containers_created=0, containers_deleted=0,
                            static_segments=0, static_adds=0,
                        )
                    items = minimum_calls(tier_caps, facts, work)
                    floor = floor_seconds(
                        tier_caps, facts, items, latency_s,
                        largest_async_write=largest_async_write(tier_caps, work),
                    )
                    rows.append({
                        "platform": name, "tier": tier, "role": role, "contacts": n,
                        "calls": sum(i.calls for i in items), **floor,
                    })
    return rows


if __name__ == "__main__":  # the table of docs/scaling.md
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    print("| platform | tier | role | contacts | calls | latency bound s | rate-window bound s "
          "| processing s | floor s |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for row in scaling_rows():
        print(f"| {row['platform']} | {row['tier']} | {row['role']} | {row['contacts']:,} | "
              f"{row['calls']:,} | {row['latency_bound_s']:,.0f} | "
              f"{row['rate_window_bound_s']:,.0f} | {row['processing_s']:,.0f} | "
              f"{row['floor_s']:,.0f} |")
