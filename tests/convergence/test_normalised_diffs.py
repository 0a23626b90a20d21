"""The engine diffs values as each platform holds them (`Connector.normalise_field`).

A platform that rewrites a value (upper-cases a country, trims, clears blank text) holds
the canonical value as far as a diff is concerned: no write to it, and its record read back
rewritten is no change of its own.
"""

from __future__ import annotations

from typing import Any

from segsync.connector import unset_if_empty
from segsync.sync.policy import SyncPolicy
from segsync.sync.reconcile import reconcile
from segsync.sync.snapshot import CanonicalView, PlatformRecord

EMAIL = "person@example.com"
POLICY = SyncPolicy(platforms=("upper", "plain"))


def upper(name: str, value: Any) -> Any:
    """A platform that upper-cases `country` and clears blank text."""
    value = unset_if_empty(value)
    return value.strip().upper() if name == "country" and isinstance(value, str) else value


def record(pid: str, fields: dict[str, Any], when: str) -> PlatformRecord:
    return PlatformRecord(pid, EMAIL, EMAIL, fields, updated_at=when)


def test_a_value_held_rewritten_is_not_written_again() -> None:
    """`plain` changed a name; `upper` holds the country as it rewrote it: only the name is
    written there (without normalising, the country was written on every run)."""
    view = CanonicalView(EMAIL, {"country": "de", "first_name": "Ada"})
    bases = {
        "upper": record("u1", {"country": "DE", "first_name": "Ada"}, "2026-01-01T00:00:00"),
        "plain": record("p1", {"country": "de", "first_name": "Ada"}, "2026-01-01T00:00:00"),
    }
    reads = {"plain": record("p1", {"country": "de", "first_name": "Ana"}, "2026-01-02T00:00:00")}

    normalised = reconcile(EMAIL, view, bases, reads, POLICY, normalise={"upper": upper})
    raw = reconcile(EMAIL, view, bases, reads, POLICY)

    assert normalised.writes["upper"].get("fields") == {"first_name": "Ana"}
    assert raw.writes["upper"].get("fields") == {"country": "de", "first_name": "Ana"}


def test_a_record_read_back_rewritten_is_no_change_of_its_own() -> None:
    """`upper` was written "  fr" and read back "FR" (a base recorded before normalising):
    that is no change, so the canonical "  fr" stands and `plain` is not written."""
    view = CanonicalView(EMAIL, {"country": "  fr"})
    bases = {
        "upper": record("u1", {"country": "  fr"}, "2026-01-01T00:00:00"),
        "plain": record("p1", {"country": "  fr"}, "2026-01-01T00:00:00"),
    }
    reads = {"upper": record("u1", {"country": "FR"}, "2026-01-02T00:00:00")}

    normalised = reconcile(EMAIL, view, bases, reads, POLICY, normalise={"upper": upper})
    raw = reconcile(EMAIL, view, bases, reads, POLICY)

    assert normalised.view.fields == {"country": "  fr"}
    assert normalised.writes == {}
    assert raw.writes["plain"].get("fields") == {"country": "FR"}
