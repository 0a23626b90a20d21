"""Reconcile: the three-way merge of one contact, a pure function of its inputs.

Inputs are snapshots (`segsync.sync.snapshot`): the `CanonicalView` of the last run, and per
platform the base `PlatformRecord` (what segsync last saw or wrote there) and what this run
read. A platform not read this run is unchanged: its base stands for it.

Per field, a platform *changed* it when what it holds differs from its base. A platform
with no base yet (newly linked) changes only what it adds: its set values that differ from
the canonical view, its tags, and a consent other than `non_subscribed` — except where its
record is older than the view (a platform added to the configuration or rebound to its
account after a time away): a value the view already holds, and a consent reading older than
the view's, are kept as they are rather than taken (`_Sides.predates_view`).

- one platform changed a field, or all changers agree: that value is taken;
- several disagree: the conflict policy decides (priority list, else the latest record);
- tags: adds and removes are merged as sets; a tag both added and removed follows the
  latest record (a tie keeps it);
- consent (the floor of DESIGN.md, not configurable): a platform's reading is an *offer*
  only if it is an opt-out (unsubscribed, bounced: always, whatever the directions say) or it
  carries evidence (`PlatformRecord.consent_evidence`) from a platform read for consent. A
  reading without evidence (unknown, or an echo of segsync's own write) never changes the
  view, and never makes segsync write again what it already wrote there (a platform that
  cannot hold `pending` reads it back as unknown: the `pending` survives). An opt-out
  offered anywhere wins over any opt-in of the same run and goes everywhere; an opt-in newer
  than a canonical opt-out becomes the view, but reaches platforms holding an opt-out only
  as `pending` re-confirmation where configured (`SyncPolicy.reconfirm`), never as
  `subscribed`; over an opt-out view, a move to `non_subscribed` is no offer (no act of the
  person: only an opt-in lifts an opt-out) and that platform is sent the opt-out. A `pending`
  read where `subscribed` was withdraws the opt-in, and the view keeps it withdrawn
  (`_WITHDRAWN`): platforms holding the older opt-in get the opt-out, in later runs too.
  Unknown is `non_subscribed`. An opt-out whose status did not change but whose
  evidence did is a new opt-out act, hence an offer (`_new_opt_out`); an opt-out view is
  written to a platform whose record is still `reachable` even where it reads an opt-out.

Then, per platform, the minimal write that brings it to the canonical view (`writes`).

Deletes: a platform whose record is deleted or archived (read so, or answered so by a write:
its base is marked deleted) is never written nor re-created. A deletion found now (a live
base read deleted, or one of `deleted`, answered by a write of the last run) is in
`Reconciled.deleted`; where the policy says `archive_elsewhere` for that platform
(`SyncPolicy.on_delete`), the person's records on the other platforms get an `archive` row
instead of a write (records newly linked this run are left alone), and nothing is created.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Callable, Collection, Mapping
from typing import Any, NamedTuple

from segsync.model import CONSENT_OPT_OUTS, ConsentStatus
from segsync.sync.plan import ChangeRow, writes_something
from segsync.sync.policy import SyncPolicy
from segsync.sync.snapshot import CanonicalView, PlatformRecord, jsonify

__all__ = ["ConsentEvent", "Reconciled", "consent_target", "reconcile", "resend"]

_NON_SUBSCRIBED = ConsentStatus.NON_SUBSCRIBED

Normaliser = Callable[[str, Any], Any]
"""A platform's `Connector.normalise_field`: (field name, value) -> the value as it holds it."""


class ConsentEvent(NamedTuple):
    """A consent change seen or decided: on `platform` ("canonical" for the view), from
    `source`, resting on `evidence` (the source platform's `field=value`)."""

    platform: str
    previous: str | None
    new: str
    source: str
    at: str | None
    legal_basis: str | None
    evidence: str | None = None


class Reconciled(NamedTuple):
    """The outcome for one contact."""

    view: CanonicalView
    writes: dict[str, ChangeRow]
    events: list[ConsentEvent]
    conflicts: list[str]
    live: dict[str, PlatformRecord]
    #: platforms where the record was found deleted now (see the module docstring)
    deleted: tuple[str, ...] = ()
    #: True when a deletion archives the person on the other platforms (`archive` rows)
    archived: bool = False


def consent_target(
    canonical: str, current: str, reconfirm: bool, reachable: bool | None = None
) -> str | None:
    """The status to write where a platform holds `current` (None: leave it).

    Never `subscribed` over an opt-out; `pending` over an opt-out only where `reconfirm`;
    where `reconfirm`, never `subscribed` over `pending` either (the person confirms it).
    An opt-out goes to a platform that still has the person `reachable` (its record says
    so) even when it already reads as an opt-out: an opt-out anywhere is one everywhere.
    """
    if canonical in CONSENT_OPT_OUTS and reachable:
        return canonical
    if canonical == current:
        return None
    if canonical in CONSENT_OPT_OUTS:
        return None if current in CONSENT_OPT_OUTS else canonical
    if current in CONSENT_OPT_OUTS:
        if reconfirm and canonical in (ConsentStatus.SUBSCRIBED, ConsentStatus.PENDING):
            return ConsentStatus.PENDING
        return None
    if canonical == ConsentStatus.PENDING and current == ConsentStatus.SUBSCRIBED:
        return None  # never downgrade a confirmed opt-in to a pending one
    if reconfirm and current == ConsentStatus.PENDING and canonical == ConsentStatus.SUBSCRIBED:
        return None  # a re-confirmation asked: only the person may complete it
    return canonical


def _pick(
    proposals: list[tuple[str, Any, str]], priority: tuple[str, ...] | None, order: dict[str, int]
) -> tuple[str, Any, str]:
    """The winning (platform, value, time): by priority list, then latest, then order."""
    if priority:
        rank = {p: i for i, p in enumerate(priority)}
        ranked = [pr for pr in proposals if pr[0] in rank]
        if ranked:
            return min(ranked, key=lambda pr: rank[pr[0]])
    return max(proposals, key=lambda pr: (pr[2], -order.get(pr[0], 0)))


@dataclasses.dataclass
class _Sides:
    """One contact's records, sorted for the merges.

    `live`: per platform, the record it holds now (read, else base), deleted ones aside in
    `gone`; `fresh`: platforms with no base yet (newly linked); `changed`: live platforms
    read this run, with their record times in `when`.
    """

    cid: str
    canonical: CanonicalView | None
    bases: Mapping[str, PlatformRecord]
    policy: SyncPolicy
    live: dict[str, PlatformRecord] = dataclasses.field(default_factory=dict)
    fresh: set[str] = dataclasses.field(default_factory=set)
    gone: set[str] = dataclasses.field(default_factory=set)
    changed: list[str] = dataclasses.field(default_factory=list)
    when: dict[str, str] = dataclasses.field(default_factory=dict)
    conflicts: list[str] = dataclasses.field(default_factory=list)
    normalise: Mapping[str, Normaliser] = dataclasses.field(default_factory=dict)

    @classmethod
    def of(
        cls,
        cid: str,
        canonical: CanonicalView | None,
        bases: Mapping[str, PlatformRecord],
        reads: Mapping[str, PlatformRecord],
        policy: SyncPolicy,
        normalise: Mapping[str, Normaliser] | None = None,
    ) -> _Sides:
        sides = cls(cid, canonical, bases, policy, normalise=normalise or {})
        for p in policy.platforms:
            base, read = bases.get(p), reads.get(p)
            current = read if read is not None else base
            if current is None:
                continue
            if current.deleted:
                sides.gone.add(p)
                continue
            sides.live[p] = current
            if base is None or base.deleted or base.platform_id != current.platform_id:
                # no base, or the base's record is gone and this one was made in its place:
                # newly linked (what segsync saw or wrote there was the gone record's)
                sides.fresh.add(p)
        sides.changed = [p for p in sides.live if p in reads]
        sides.when = {p: sides.live[p].updated_at or "" for p in sides.changed}
        return sides

    @functools.cached_property
    def order(self) -> dict[str, int]:
        return {p: i for i, p in enumerate(self.policy.platforms)}

    def predates_view(self, p: str, name: str | None = None) -> bool:
        """Whether newly linked platform `p`'s record is older than the view: it was last
        modified before the latest record the view rests on (the other platforms' bases), and
        no priority list for field `name` ranks `p` above them. Such a record (a platform
        added to the configuration, or rebound to its account after a time away) carries no
        news: where it differs from the view, the view is the later word."""
        others = [q for q in self.live if q not in self.fresh and q in self.bases]
        times = [t for q in others if (t := self.bases[q].updated_at)]
        if not times:
            return False
        order = self.policy.priority(name) if name is not None else None
        if order and p in order:
            rank = {q: i for i, q in enumerate(order)}
            if all(rank[p] < rank.get(q, len(order)) for q in others):
                return False
        return not _after(self.live[p].updated_at, max(times))

    def held(self, p: str, name: str, value: Any) -> Any:
        """`value` of field `name` as platform `p` holds it once written (its connector's
        `normalise_field`), in JSON form: what a diff against its record compares."""
        normalise = self.normalise.get(p)
        if normalise is None or value is None:
            return value
        return jsonify(normalise(name, value))


def _merge_email(s: _Sides) -> str:
    """The contact's email: a rename on a platform read for email, else the known one."""
    email = s.canonical.email if s.canonical else None
    renames = [
        (p, s.live[p].email_key, s.when[p])
        for p in s.changed
        if p not in s.fresh and s.policy.reads(p, "email")
        and s.live[p].email_key != s.bases[p].email_key
    ]
    if renames:
        if len({r[1] for r in renames}) > 1:
            s.conflicts.append("email")
        email = _pick(renames, s.policy.priority("email"), s.order)[1]
    if email is None:
        email = next((s.live[p].email_key for p in s.policy.platforms if p in s.live), s.cid)
    return email


def _merge_fields(s: _Sides) -> tuple[dict[str, Any], set[str]]:
    """The merged fields, and the names of every field a changed platform holds or held."""
    old: Mapping[str, Any] = s.canonical.fields if s.canonical else {}
    merged = dict(old)
    names: set[str] = set(old)
    # per changed platform: its fields now, its base's (None: newly linked), what it left
    # unread; a platform whose fields are its base's proposes nothing (every value it
    # holds is its base's), so it is left out of the loop below
    sides: list[tuple[str, Mapping[str, Any], Mapping[str, Any] | None, tuple[str, ...]]] = []
    for p in s.changed:
        record = s.live[p]
        names.update(record.fields)
        if p in s.fresh:
            sides.append((p, record.fields, None, record.unread))
            continue
        held = s.bases[p].fields
        names.update(held)
        if record.fields != held:
            sides.append((p, record.fields, held, record.unread))
    policy = s.policy
    every = not policy.directions and not policy.platform_fields  # `reads` is always True
    for name in names:
        proposals: list[tuple[str, Any, str]] = []
        for p, live, base, unread in sides:
            if name in unread or not (every or policy.reads(p, name)):
                continue  # not read there (it cannot hold it now): unknown, not cleared
            value = live.get(name)
            if base is None:
                if value is None or _held_as(s, p, name, old.get(name), value):
                    continue
                if old.get(name) is not None and s.predates_view(p, name):
                    continue  # an older record's value: the view's is the later word
            elif _held_as(s, p, name, base.get(name), value):
                continue
            proposals.append((p, value, s.when[p]))
        if not proposals:
            continue
        first = proposals[0][1]
        if any(pr[1] != first for pr in proposals[1:]):
            s.conflicts.append(name)
            first = _pick(proposals, s.policy.priority(name), s.order)[1]
        if first is None:
            merged.pop(name, None)
        else:
            merged[name] = first
    return merged, names


def _held_as(s: _Sides, p: str, name: str, known: Any, value: Any) -> bool:
    """`value in (known, s.held(p, name, known))`, the connector's normalisation asked
    only when `value` is not `known` itself."""
    if known is value or known == value:
        return True
    held = s.held(p, name, known)
    return held is value or bool(held == value)


def _merge_tags(s: _Sides) -> set[str]:
    """The merged synced tags: adds and removes as sets, the latest of both winning."""
    old = set(s.canonical.tags if s.canonical else ())
    synced = s.policy.synced_tag
    adds: dict[str, str] = {}
    removes: dict[str, str] = {}
    for p in s.changed:
        if not s.policy.reads(p, "tags") or "tags" in s.live[p].unread:
            continue  # not read there (it cannot hold them now): unknown, not removed
        when = s.when[p]
        now = {t for t in s.live[p].tags if synced(t)}
        ref = old if p in s.fresh else {t for t in s.bases[p].tags if synced(t)}
        for tag in now - ref:
            adds[tag] = max(adds.get(tag, ""), when)
        if p not in s.fresh:
            for tag in ref - now:
                removes[tag] = max(removes.get(tag, ""), when)
    merged = set(old)
    for tag in adds.keys() | removes.keys():
        if tag in adds and tag in removes:
            s.conflicts.append(f"tag {tag}")
            keep = removes[tag] <= adds[tag]
        else:
            keep = tag in adds
        if keep:
            merged.add(tag)
        else:
            merged.discard(tag)
    return merged


@dataclasses.dataclass(frozen=True)
class _Consent:
    """The merged consent: status, the platform it came from, its time, legal basis and
    evidence (carried, not yet weighed)."""

    status: ConsentStatus
    source: str | None
    at: str | None
    basis: str | None
    evidence: str | None
    #: the view is a `pending` read where the same platform held `subscribed`: the confirmed
    #: opt-in was withdrawn there (an unsubscribe and a new sign-up, seen as one change)
    withdrawn: bool = False


def _offers(record: PlatformRecord) -> bool:
    """Whether a reading can change the view: an opt-out always (the floor), anything else
    only on the platform's evidence (unknown and segsync's own echo are no offer)."""
    return record.consent in CONSENT_OPT_OUTS or record.consent_evidence is not None


def _new_opt_out(base: PlatformRecord, record: PlatformRecord) -> bool:
    """Whether an opt-out reading whose status did not change rests on a new opt-out act:
    its evidence changed (e.g. `hs_email_optout=true` added to an unsubscribed record).

    Where the base is segsync's own write (no evidence), the first reading back is its echo
    unless the record changed after the write (a later `updated_at`): an act made since."""
    evidence = record.consent_evidence
    if record.consent not in CONSENT_OPT_OUTS or evidence is None:
        return False
    if evidence == base.consent_evidence:
        return False
    if base.consent_evidence is not None:
        return True
    return _after(record.updated_at, base.updated_at)


def _after(when: str | None, than: str | None) -> bool:
    """Whether ISO time `when` is later than `than` (an unknown `than`: yes; unknown
    `when`: no)."""
    if when is None:
        return False
    if than is None:
        return True
    try:
        return dt.datetime.fromisoformat(when) > dt.datetime.fromisoformat(than)
    except (TypeError, ValueError):
        return when > than


def _predates_consent(view: CanonicalView, status: ConsentStatus, when: str | None) -> bool:
    """Whether a newly linked platform's reading `status` (at `when`, its latest possible
    time) is older than the view's consent, so no offer: as if the platform had been linked
    all along, the later act is the view's. An opt-out counts unless the view's consent is
    known to be later; an opt-in over an opt-out view only when known to be later than it
    (when unsure, the answer that cannot email someone wins). The older reading stays on its
    platform: an opt-out there is never overwritten; an opt-in there yields to the view. A
    confirmed opt-in against a view that withdrew one (`_WITHDRAWN`) is weighed like an
    opt-in against an opt-out."""
    if view.consent in CONSENT_OPT_OUTS or (
        status == ConsentStatus.SUBSCRIBED
        and _marks_withdrawal(view.consent, view.consent_evidence)
    ):
        return status not in CONSENT_OPT_OUTS and not (
            when is not None and view.consent_at is not None and _after(when, view.consent_at)
        )
    return (
        status in CONSENT_OPT_OUTS and when is not None and view.consent_at is not None
        and _after(view.consent_at, when)
    )


def _superseded_opt_in(s: _Sides, p: str, held: ConsentStatus, consent: _Consent) -> bool:
    """Whether platform `p` holds an opt-in that an opt-out of the view (before this run)
    came after, while the merge now takes another platform's newer opt-in: the opt-out never
    reached `p` (refused, unreachable, or not linked then), so its opt-in is not the
    person's word any more and yields as if that opt-out had been written there."""
    old = s.canonical
    if old is None or old.consent not in CONSENT_OPT_OUTS or consent.status in CONSENT_OPT_OUTS:
        return False
    if held not in (ConsentStatus.SUBSCRIBED, ConsentStatus.PENDING) or p == consent.source:
        return False
    return not _after(s.live[p].consent_at or s.live[p].updated_at, old.consent_at)


def _held(s: _Sides, p: str) -> ConsentStatus:
    """The consent a live platform holds as far as the writes are concerned: its reading,
    unless that reading has no evidence and differs from what segsync last saw or wrote
    there (no change: e.g. a `pending` written to a platform that reads it back as "not
    specified" is not written again, run after run). A record that moved to another address
    holds its reading: the base's status was the old address's, and platforms keep consent
    per address."""
    record = s.live[p]
    if p in s.fresh or p not in s.changed or _offers(record):
        return record.consent
    if record.email_key != s.bases[p].email_key:
        return record.consent
    return s.bases[p].consent


_WITHDRAWN = "(opt-in withdrawn)"
"""Ends the evidence of a `pending` view that withdrew a confirmed opt-in (`_Consent`)."""


def _marks_withdrawal(status: ConsentStatus, evidence: str | None) -> bool:
    """Whether a stored view's consent is a withdrawn opt-in (`_WITHDRAWN`)."""
    return (status == ConsentStatus.PENDING and evidence is not None
            and evidence.endswith(_WITHDRAWN))


def _merge_consent(s: _Sides, events: list[ConsentEvent]) -> _Consent:
    """The merged consent (the floor: an opt-out observed anywhere wins; an opt-in or a
    downgrade only on evidence); the changes seen and decided go to `events`."""
    canonical = s.canonical
    old = canonical.consent if canonical else None
    offers: list[tuple[str, ConsentStatus, str]] = []
    for p in s.changed:
        record = s.live[p]
        status = record.consent
        if not _offers(record):
            continue  # unknown is no offer, whatever it says
        when = record.consent_at or record.updated_at or ""
        if p in s.fresh:  # no information, unless it is an opt-out (never ignored)
            if status == _NON_SUBSCRIBED or (status == old and status not in CONSENT_OPT_OUTS):
                continue
            if canonical is not None and _predates_consent(canonical, status, when or None):
                continue
            # first seen there (a first sync, a sign-up): the reading is the proof
            events.append(ConsentEvent(p, None, status.value, p, when or None,
                                       record.legal_basis, record.consent_evidence))
        else:
            before = s.bases[p].consent
            if status == before and not _new_opt_out(s.bases[p], record):
                continue
            if (
                status not in CONSENT_OPT_OUTS
                and record.email_key != s.bases[p].email_key
            ):
                # the record moved to another address: platforms keep consent per address,
                # so what it says now may be the address's former holder's. No proof for
                # this person; an opt-out still counts (the floor)
                continue
            events.append(ConsentEvent(p, before.value, status.value, p, when or None,
                                       record.legal_basis, record.consent_evidence))
            if status == _NON_SUBSCRIBED and old in CONSENT_OPT_OUTS:
                # a move to not subscribed (a re-import as transactional, a user's edit) is
                # no act of the person: only an opt-in lifts an opt-out. The platform is
                # sent the opt-out (when unsure, the answer that cannot email someone wins)
                continue
        # the floor: an opt-out counts from every platform, whatever the directions say
        if status in CONSENT_OPT_OUTS or s.policy.reads(p, "consent"):
            offers.append((p, status, when))
    if canonical is None:
        merged = _Consent(_NON_SUBSCRIBED, None, None, None, None)
    else:
        merged = _Consent(canonical.consent, canonical.consent_source, canonical.consent_at,
                          canonical.legal_basis, canonical.consent_evidence,
                          _marks_withdrawal(canonical.consent, canonical.consent_evidence))
    if offers:
        outs = [o for o in offers if o[1] in CONSENT_OPT_OUTS]
        platform, status, when = max(outs or offers, key=lambda o: (o[2], -s.order.get(o[0], 0)))
        # an opt-in newer than a canonical opt-out becomes the view; the platforms holding
        # an opt-out get it only as `pending` re-confirmation, and only where configured
        # (`consent_target`): never as `subscribed`
        winner = s.live[platform]
        # the legal basis is the winner's own (from its evidence), never an older one's
        withdrawn = (
            not outs and status == ConsentStatus.PENDING and platform not in s.fresh
            and s.bases[platform].consent == ConsentStatus.SUBSCRIBED
        )
        evidence = winner.consent_evidence
        if withdrawn:  # kept in the view: a platform holding the older opt-in gets the
            # opt-out in later runs too (a write refused, an account rebound back to)
            evidence = f"{evidence or ''} {_WITHDRAWN}".strip()
        merged = _Consent(status, platform, when or None, winner.legal_basis, evidence,
                          withdrawn)
    if (merged.status != old) if old is not None else bool(offers):
        events.append(ConsentEvent("canonical", old.value if old else None, merged.status.value,
                                   merged.source or "", merged.at, merged.basis,
                                   merged.evidence))
    return merged


def _creation(s: _Sides, p: str, view: CanonicalView, consent: _Consent) -> ChangeRow:
    """The creation of the contact on a platform that has no record of it."""
    policy = s.policy
    change = ChangeRow(cid=s.cid, email=view.email, create=True)
    fields = {n: v for n, v in view.fields.items() if policy.writes(p, n)}
    if fields:
        change["fields"] = fields
    if view.tags and policy.writes(p, "tags"):
        change["tags_add"] = list(view.tags)
    writes_consent = policy.writes(p, "consent") or consent.status in CONSENT_OPT_OUTS
    change["consent"] = consent.status if writes_consent else _NON_SUBSCRIBED
    if writes_consent:
        _provenance(change, consent)
    return change


def _provenance(change: ChangeRow, consent: _Consent) -> None:
    """What a consent write rests on, for the platform (legal basis) and the ledger."""
    if consent.basis:
        change["consent_basis"] = consent.basis
    if consent.source:
        change["consent_source"] = consent.source
    if consent.evidence:
        change["consent_evidence"] = consent.evidence


def _minimal_write(
    s: _Sides, p: str, view: CanonicalView, names: set[str], tags: set[str],
    consent: _Consent,
) -> ChangeRow | None:
    """What brings a platform's record to the canonical view (None: nothing to write)."""
    policy, current = s.policy, s.live[p]
    change = ChangeRow(cid=s.cid, email=current.email or view.email,
                       platform_id=current.platform_id)
    new_f, cur_f = view.fields, current.fields
    fields = {} if cur_f == new_f else {
        n: new_f.get(n)
        for n in names | cur_f.keys() | new_f.keys()
        if not _held_as(s, p, n, new_f.get(n), cur_f.get(n)) and policy.writes(p, n)
    }
    if fields:
        change["fields"] = fields
    if policy.writes(p, "tags"):
        synced = policy.synced_tag
        cur_t = {t for t in current.tags if synced(t)}
        if cur_t != tags:
            if tags - cur_t:
                change["tags_add"] = sorted(tags - cur_t)
            if cur_t - tags:
                change["tags_remove"] = sorted(cur_t - tags)
    held = _held(s, p)
    target = consent_target(consent.status, held, p in policy.reconfirm, current.reachable)
    if target is not None and target in policy.consent_not_held.get(p, ()):
        target = None  # the platform cannot hold it: nothing would be sent
    if consent.withdrawn and held == ConsentStatus.SUBSCRIBED and (
        p != consent.source or not _after(current.consent_at or current.updated_at, consent.at)
    ):
        # the opt-in copied from there, or held there since before the withdrawal (an
        # account rebound back to), is withdrawn: as if a run had seen the unsubscribe
        target = ConsentStatus.UNSUBSCRIBED
    superseded = s.canonical is not None and _superseded_opt_in(s, p, held, consent)
    if superseded and s.canonical is not None:
        target = s.canonical.consent  # the opt-out that never reached it
    if target is not None and (policy.writes(p, "consent") or target in CONSENT_OPT_OUTS):
        change["consent"] = ConsentStatus(target)
        _provenance(change, consent)
        if target == _NON_SUBSCRIBED and _holds_former_opt_in(s, p, held):
            change["foreign_opt_in"] = True
        if consent.withdrawn and target in CONSENT_OPT_OUTS:
            pending = (consent.evidence or "").removesuffix(_WITHDRAWN).strip()
            change["consent_evidence"] = (
                f"{pending} (was subscribed there: opt-in withdrawn)".strip())
        if superseded and s.canonical is not None:
            old = s.canonical
            change["consent_source"] = old.consent_source or ""
            change["consent_evidence"] = (
                f"{old.consent_evidence or ''} (an opt-out that had not reached {p})".strip())
            change.pop("consent_basis", None)
    if current.email_key != view.email and policy.writes(p, "email"):
        change["new_email"] = view.email
    return change if writes_something(change) else None


def _holds_former_opt_in(s: _Sides, p: str, held: ConsentStatus) -> bool:
    """True when platform `p`'s record holds an opt-in and was another person's, relinked
    to this one (its base was at another address, this person's is the address it holds
    now: not a rename of them): the opt-in is its former person's."""
    base, current = s.bases.get(p), s.live[p]
    return (
        held in (ConsentStatus.SUBSCRIBED, ConsentStatus.PENDING)
        and base is not None and s.canonical is not None
        and base.email_key != current.email_key
        and s.canonical.email == current.email_key
    )


def resend(
    cid: str, platform: str, view: CanonicalView, record: PlatformRecord, policy: SyncPolicy
) -> ChangeRow | None:
    """The write of a record owed on `platform` that the merge finds matching: the view's
    fields and tags as absolute values (idempotent), so that the record that failed is
    written again and confirmed (None: nothing is written to that platform)."""
    change = ChangeRow(cid=cid, email=record.email or view.email,
                       platform_id=record.platform_id)
    fields = {n: v for n, v in view.fields.items() if policy.writes(platform, n)}
    if fields:
        change["fields"] = fields
    if view.tags and policy.writes(platform, "tags"):
        change["tags_add"] = list(view.tags)
    return change if writes_something(change) else None


def _found_deleted(s: _Sides, bases: Mapping[str, PlatformRecord],
                   reads: Mapping[str, PlatformRecord], deleted: Collection[str]) -> list[str]:
    """The platforms where the record is found deleted now: a live base read deleted, or
    one answered deleted by a write of the last run (`deleted`)."""
    return [
        p for p in s.policy.platforms
        if p in s.gone and (
            p in deleted
            or (p in reads and p in bases and not bases[p].deleted and reads[p].deleted)
        )
    ]


def reconcile(
    cid: str,
    canonical: CanonicalView | None,
    bases: Mapping[str, PlatformRecord],
    reads: Mapping[str, PlatformRecord],
    policy: SyncPolicy,
    deleted: Collection[str] = (),
    normalise: Mapping[str, Normaliser] | None = None,
) -> Reconciled:
    """Merge one contact; see the module docstring. Never mutates its inputs. `deleted`:
    platforms whose record a write of the last run found deleted (not acted on yet).
    `normalise`: per platform, its connector's `normalise_field` (a value differing from
    what a platform holds only by that platform's own rewrites is no change, nor a write)."""
    s = _Sides.of(cid, canonical, bases, reads, policy, normalise)
    found = _found_deleted(s, bases, reads, deleted)
    archive = any(policy.archives_elsewhere(p) for p in found)
    email = _merge_email(s)
    fields, names = _merge_fields(s)
    tags = _merge_tags(s)
    events: list[ConsentEvent] = []
    consent = _merge_consent(s, events)
    view = CanonicalView(email, fields, tuple(sorted(tags)), consent.status, consent.source,
                         consent.at, consent.basis, consent.evidence)
    writes: dict[str, ChangeRow] = {}
    for p in policy.platforms:
        if p in s.gone:
            continue  # deleted there: never re-created, never written (see docs/sync.md)
        if archive:
            if p in s.live and p not in s.fresh:
                record = s.live[p]
                writes[p] = ChangeRow(cid=cid, email=record.email or view.email,
                                      platform_id=record.platform_id, archive=True)
            continue
        change = (
            _minimal_write(s, p, view, names, tags, consent) if p in s.live
            else _creation(s, p, view, consent)
        )
        if change is not None:
            writes[p] = change
    return Reconciled(view, writes, events, s.conflicts, s.live, tuple(found), archive)
