"""The rule fingerprints the state records per platform and static segment, on SQLite and
PostgreSQL alike, and which statics a run evaluates on every contact."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable
from pathlib import Path

from segsync.model import Schema
from segsync.rules import parse
from segsync.rules.compiler import CompiledSegment
from segsync.state import MIGRATIONS, StateStore, open_store
from segsync.sync.segments import Memberships, PlatformSegments, rule_fingerprint

CONFIG = "mc+bv"


def test_fingerprints_are_recorded_per_platform_and_replaced(
    store_factory: Callable[[], StateStore],
) -> None:
    first = store_factory()
    assert first.rule_fingerprints(CONFIG) == {}
    first.set_rule_fingerprints(CONFIG, "brevo", {"vip": "a", "crowd": "b"})
    first.set_rule_fingerprints(CONFIG, "mailchimp", {"vip": "c"})
    first.set_rule_fingerprints(CONFIG, "brevo", {"vip": "d"})
    first.set_rule_fingerprints("other", "brevo", {"vip": "e"})
    first.close()

    again = store_factory()
    assert again.rule_fingerprints(CONFIG) == {
        ("brevo", "vip"): "d", ("brevo", "crowd"): "b", ("mailchimp", "vip"): "c",
    }
    assert again.scoped("other").rule_fingerprints() == {("brevo", "vip"): "e"}


def test_a_state_of_the_previous_version_gains_the_table(tmp_path: Path) -> None:
    """An existing state migrates; it records no fingerprint, so its statics are evaluated
    on every contact once (then follow their rules)."""
    path = tmp_path / "state.db"
    open_store(f"sqlite:///{path}").close()
    db = sqlite3.connect(path)
    version = next(i for i, m in enumerate(MIGRATIONS) if "segment_rules" in m[0])
    db.execute("DROP TABLE segment_rules")
    for statement in [st for m in MIGRATIONS[version + 1:] for st in m][::-1]:
        words = statement.split()  # the later migrations' tables and columns, undone
        if words[:2] == ["CREATE", "TABLE"]:
            db.execute(f"DROP TABLE {words[2]}")
        elif words[:1] == ["ALTER"] and words[3:5] == ["ADD", "COLUMN"]:
            db.execute(f"ALTER TABLE {words[2]} DROP COLUMN {words[5]}")
    db.execute("UPDATE schema_version SET version = ?", (version,))
    db.commit()
    db.close()

    store = open_store(f"sqlite:///{path}")
    try:
        assert store.schema_version() == len(MIGRATIONS)
        assert store.rule_fingerprints(CONFIG) == {}
        store.set_rule_fingerprints(CONFIG, "brevo", {"vip": "a"})
        assert store.rule_fingerprints(CONFIG) == {("brevo", "vip"): "a"}
    finally:
        store.close()


def test_only_the_statics_whose_rule_changed_are_stale() -> None:
    vip, crowd = parse('tags has "vip"'), parse('email ends_with "@crowd.dev"')
    segments = {"brevo": PlatformSegments.of([
        CompiledSegment("vip", "brevo", "materialised", vip),
        CompiledSegment("crowd", "brevo", "materialised", crowd),
    ], "list")}
    recorded = {("brevo", "vip"): rule_fingerprint(vip, "static"),
                ("brevo", "crowd"): rule_fingerprint(parse('email ends_with "@x.dev"'),
                                                     "static")}
    memberships = Memberships(segments, {"brevo": []}, fresh=set(), schema=Schema(),
                              now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), recorded=recorded)
    assert memberships.stale == {("brevo", "crowd")}
    assert memberships.rules_of("brevo") == {}  # not every contact evaluated yet
    memberships.complete = True
    assert memberships.rules_of("brevo") == {"crowd": rule_fingerprint(crowd, "static")}
    # the same rule held by another kind of object is another fingerprint
    assert rule_fingerprint(vip, "tag") != rule_fingerprint(vip, "static")
