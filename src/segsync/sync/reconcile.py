"""Reconcile: the three-way merge of one contact, a pure function of its inputs.

Inputs are compact snapshots (see `segsync.sync.snapshot`): the canonical view of the last
run, and per platform the base (what segsync last saw or wrote there) and what this run
read. A platform not read this run is unchanged: its base stands for it.

Per field, a platform *changed* it when what it holds differs from its base. A platform
with no base yet (newly linked) changes only what it adds: its set values that differ from
the canonical view, its tags, and a consent other than `non_subscribed`.

- one platform changed a field, or all changers agree: that value is taken;
- several disagree: the conflict policy decides (priority list, else the latest record);
- tags: adds and removes are merged as sets; a tag both added and removed follows the
  latest record (a tie keeps it);
- consent (the floor of DESIGN.md, not configurable): an opt-out (unsubscribed, bounced)
  observed anywhere wins over any opt-in of the same run and goes everywhere; an opt-in newer
  than a canonical opt-out becomes the view, but reaches platforms holding an opt-out only
  as `pending` re-confirmation where configured (`SyncPolicy.reconfirm`), never as
  `subscribed`.

Then, per platform, the minimal write that brings it to the canonical view (`writes`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from segsync.sync.policy import SyncPolicy

__all__ = ["ConsentEvent", "Reconciled", "consent_target", "reconcile"]

SUBSCRIBED = "subscribed"
UNSUBSCRIBED = "unsubscribed"
PENDING = "pending"
BOUNCED = "bounced"
NON_SUBSCRIBED = "non_subscribed"
OPT_OUTS = frozenset({UNSUBSCRIBED, BOUNCED})


class ConsentEvent(NamedTuple):
    """A consent change seen or decided: on `platform` ("canonical" for the view)."""

    platform: str
    previous: str | None
    new: str
    source: str
    at: str | None
    legal_basis: str | None


class Reconciled(NamedTuple):
    """The outcome for one contact."""

    view: dict[str, Any]
    writes: dict[str, dict[str, Any]]
    events: list[ConsentEvent]
    conflicts: list[str]
    live: dict[str, dict[str, Any]]


def consent_target(canonical: str, current: str, reconfirm: bool) -> str | None:
    """The status to write where a platform holds `current` (None: leave it).

    Never `subscribed` over an opt-out; `pending` over an opt-out only where `reconfirm`.
    """
    if canonical == current:
        return None
    if canonical in OPT_OUTS:
        return None if current in OPT_OUTS else canonical
    if current in OPT_OUTS:
        return PENDING if reconfirm and canonical in (SUBSCRIBED, PENDING) else None
    if canonical == PENDING and current == SUBSCRIBED:
        return None  # never downgrade a confirmed opt-in to a pending one
    return canonical


def _when(snap: Mapping[str, Any]) -> str:
    return str(snap.get("u") or "")


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


def reconcile(
    cid: str,
    canonical: Mapping[str, Any] | None,
    bases: Mapping[str, Mapping[str, Any]],
    reads: Mapping[str, Mapping[str, Any]],
    policy: SyncPolicy,
) -> Reconciled:
    """Merge one contact; see the module docstring. Never mutates its inputs."""
    platforms = policy.platforms
    order = {p: i for i, p in enumerate(platforms)}
    live: dict[str, dict[str, Any]] = {}
    fresh: set[str] = set()
    gone: set[str] = set()
    for p in platforms:
        base = bases.get(p)
        read = reads.get(p)
        current = read if read is not None else base
        if current is None:
            continue
        if current.get("d"):
            gone.add(p)
            continue
        live[p] = dict(current)
        if base is None or base.get("d"):
            fresh.add(p)
    changed = [p for p in live if p in reads]
    when_of = {p: _when(live[p]) for p in changed}  # looked up once, not per field
    live_f = {p: live[p].get("f", {}) for p in changed}
    base_f = {p: bases[p].get("f", {}) for p in changed if p not in fresh}
    conflicts: list[str] = []
    old_f: Mapping[str, Any] = canonical.get("f", {}) if canonical else {}
    old_t: set[str] = set(canonical.get("t", ())) if canonical else set()
    old_c: str | None = canonical.get("c") if canonical else None

    # -- email -----------------------------------------------------------------------------
    email = canonical.get("email") if canonical else None
    renames = [
        (p, live[p]["k"], when_of[p])
        for p in changed
        if p not in fresh and policy.reads(p, "email")
        and live[p]["k"] != bases[p].get("k")
    ]
    if renames:
        if len({r[1] for r in renames}) > 1:
            conflicts.append("email")
        email = _pick(renames, policy.priority("email"), order)[1]
    if email is None:
        email = next((live[p]["k"] for p in platforms if p in live), cid)

    # -- fields ----------------------------------------------------------------------------
    new_f = dict(old_f)
    names: set[str] = set(old_f)
    for p in changed:
        names.update(live_f[p])
        if p not in fresh:
            names.update(base_f[p])
    for name in names:
        proposals: list[tuple[str, Any, str]] = []
        for p in changed:
            if not policy.reads(p, name):
                continue
            value = live_f[p].get(name)
            if p in fresh:
                if value is None or value == old_f.get(name):
                    continue
            elif value == base_f[p].get(name):
                continue
            proposals.append((p, value, when_of[p]))
        if not proposals:
            continue
        first = proposals[0][1]
        if any(pr[1] != first for pr in proposals[1:]):
            conflicts.append(name)
            first = _pick(proposals, policy.priority(name), order)[1]
        if first is None:
            new_f.pop(name, None)
        else:
            new_f[name] = first

    # -- tags ------------------------------------------------------------------------------
    synced = policy.synced_tag
    adds: dict[str, str] = {}
    removes: dict[str, str] = {}
    for p in changed:
        if not policy.reads(p, "tags"):
            continue
        when = when_of[p]
        now_t = {t for t in live[p].get("t", ()) if synced(t)}
        ref = old_t if p in fresh else {t for t in bases[p].get("t", ()) if synced(t)}
        for tag in now_t - ref:
            adds[tag] = max(adds.get(tag, ""), when)
        if p not in fresh:
            for tag in ref - now_t:
                removes[tag] = max(removes.get(tag, ""), when)
    new_t = set(old_t)
    for tag in adds.keys() | removes.keys():
        if tag in adds and tag in removes:
            conflicts.append(f"tag {tag}")
            if removes[tag] > adds[tag]:
                new_t.discard(tag)
            else:
                new_t.add(tag)
        elif tag in adds:
            new_t.add(tag)
        else:
            new_t.discard(tag)

    # -- consent ---------------------------------------------------------------------------
    events: list[ConsentEvent] = []
    offers: list[tuple[str, Any, str]] = []
    for p in changed:
        status = live[p].get("c", NON_SUBSCRIBED)
        when = str(live[p].get("ca") or live[p].get("u") or "")
        if p in fresh:  # no information, unless it is an opt-out (never ignored)
            if status == NON_SUBSCRIBED or (status == old_c and status not in OPT_OUTS):
                continue
        else:
            before = bases[p].get("c")
            if status == before:
                continue
            events.append(
                ConsentEvent(p, before, status, p, when or None, live[p].get("lb"))
            )
        # the floor: an opt-out counts from every platform, whatever the directions say
        if status in OPT_OUTS or policy.reads(p, "consent"):
            offers.append((p, status, when))
    new_c = old_c
    source = canonical.get("cs") if canonical else None
    basis = canonical.get("lb") if canonical else None
    consent_at = canonical.get("ca") if canonical else None
    if offers:
        outs = [o for o in offers if o[1] in OPT_OUTS]
        winner = max(outs or offers, key=lambda o: (o[2], -order.get(o[0], 0)))
        # an opt-in newer than a canonical opt-out becomes the view; the platforms holding
        # an opt-out get it only as `pending` re-confirmation, and only where configured
        # (`consent_target`): never as `subscribed`
        new_c, source, consent_at = winner[1], winner[0], winner[2] or None
        basis = live[winner[0]].get("lb", basis)
    if new_c is None:
        new_c = NON_SUBSCRIBED
    if old_c is not None and new_c != old_c:
        events.append(ConsentEvent("canonical", old_c, new_c, source or "", consent_at, basis))

    view: dict[str, Any] = {"email": email, "f": new_f, "t": sorted(new_t), "c": new_c}
    if source:
        view["cs"] = source
    if consent_at:
        view["ca"] = consent_at
    if basis:
        view["lb"] = basis

    # -- the minimal writes ----------------------------------------------------------------
    writes: dict[str, dict[str, Any]] = {}
    for p in platforms:
        if p in gone:
            continue  # deleted there: never re-created, never written (see docs/sync.md)
        current = live.get(p)
        change: dict[str, Any] = {"cid": cid}
        if current is None:
            change["email"] = email
            change["create"] = True
            fields = {n: v for n, v in new_f.items() if policy.writes(p, n)}
            tags = sorted(new_t) if policy.writes(p, "tags") else []
            if fields:
                change["fields"] = fields
            if tags:
                change["tags_add"] = tags
            change["consent"] = new_c if policy.writes(p, "consent") or new_c in OPT_OUTS else (
                NON_SUBSCRIBED
            )
            if basis:
                change["consent_basis"] = basis
            writes[p] = change
            continue
        change["email"] = current.get("email", email)
        change["platform_id"] = current["id"]
        cur_f = current.get("f", {})
        fields = {} if cur_f == new_f else {
            n: new_f.get(n)
            for n in names | cur_f.keys() | new_f.keys()
            if cur_f.get(n) != new_f.get(n) and policy.writes(p, n)
        }
        if fields:
            change["fields"] = fields
        if policy.writes(p, "tags"):
            cur_t = {t for t in current.get("t", ()) if synced(t)}
            if new_t - cur_t:
                change["tags_add"] = sorted(new_t - cur_t)
            if cur_t - new_t:
                change["tags_remove"] = sorted(cur_t - new_t)
        target = consent_target(new_c, current.get("c", NON_SUBSCRIBED), p in policy.reconfirm)
        if target is not None and (policy.writes(p, "consent") or target in OPT_OUTS):
            change["consent"] = target
            if basis:
                change["consent_basis"] = basis
        if current.get("k") != email and policy.writes(p, "email"):
            change["new_email"] = email
        if len(change) > 3:  # more than cid, email and platform_id
            writes[p] = change
    return Reconciled(view, writes, events, conflicts, live)
