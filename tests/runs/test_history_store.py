"""The run history of the state: one run found by id or prefix, its errors and diagnostics,
and retention (`prune_runs`), on SQLite and PostgreSQL alike."""

from __future__ import annotations

from segsync.state import StateStore


def _run(store: StateStore, run_id: str, at: str, *, config: str = "c", status: str = "ok",
         errors: int = 1) -> None:
    store.start_run(config, run_id, at=at)
    store.end_run(
        run_id, at=at, status=status, report={"run_id": run_id, "status": status},
        errors=[("mailchimp", f"p{i}@x.dev", None, "invalid", f"refused {i}")
                for i in range(errors)],
        diagnostics=[("mailchimp", "vip", "warning", "materialised: depth")],
    )


def test_a_run_is_found_by_its_id_or_a_unique_prefix(store: StateStore) -> None:
    _run(store, "20261101T090000-aaaa", "2026-11-01T09:00:00+00:00")
    _run(store, "20261101T100000-abcd", "2026-11-01T10:00:00+00:00")
    _run(store, "20261101T100000-abce", "2026-11-01T10:00:01+00:00")
    _run(store, "20261101T100000-zz", "2026-11-01T10:00:02+00:00", config="other")

    assert store.find_runs("c", "20261101T090000-aaaa") == ["20261101T090000-aaaa"]
    assert store.find_runs("c", "20261101T09") == ["20261101T090000-aaaa"]
    assert store.find_runs("c", "20261101T100000-abc") == [
        "20261101T100000-abce", "20261101T100000-abcd"]  # newest first
    assert store.find_runs("c", "20261101T100000-zz") == []  # another configuration's
    assert store.find_runs("c", "2026%") == []  # no wildcard
    assert store.find_runs("c", "") == []

    run = store.run("c", "20261101T100000-abcd")
    assert run is not None
    assert run["status"] == "ok"
    assert run["report"] == {"run_id": "20261101T100000-abcd", "status": "ok"}
    assert store.run("other", "20261101T100000-abcd") is None


def test_every_error_and_diagnostic_of_a_run_is_kept_in_order(store: StateStore) -> None:
    _run(store, "r1", "2026-11-01T09:00:00+00:00", errors=95)

    errors = store.run_errors("r1")

    assert len(errors) == 95
    assert errors[0] == {"platform": "mailchimp", "email": "p0@x.dev", "platform_id": None,
                         "code": "invalid", "message": "refused 0"}
    assert errors[-1]["message"] == "refused 94"
    assert store.run_diagnostics("r1") == [
        {"platform": "mailchimp", "segment": "vip", "level": "warning",
         "message": "materialised: depth"}]


def test_prune_keeps_the_latest_runs_and_their_errors(store: StateStore) -> None:
    for day in range(1, 6):
        _run(store, f"r{day}", f"2026-11-0{day}T09:00:00+00:00")
    _run(store, "o1", "2026-10-01T09:00:00+00:00", config="other")

    assert store.prune_runs("c", keep_runs=2) == 3

    assert [r["run_id"] for r in store.runs("c")] == ["r5", "r4"]
    assert store.run_errors("r1") == []
    assert store.run_diagnostics("r1") == []
    assert len(store.run_errors("r5")) == 1
    assert [r["run_id"] for r in store.runs("other")] == ["o1"]  # another configuration's


def test_prune_by_age_never_forgets_a_running_run(store: StateStore) -> None:
    _run(store, "old", "2026-10-01T09:00:00+00:00")
    _run(store, "new", "2026-11-02T09:00:00+00:00")
    store.start_run("c", "live", at="2026-10-02T09:00:00+00:00")

    assert store.prune_runs("c", before="2026-11-01T00:00:00+00:00") == 1

    assert sorted(r["run_id"] for r in store.runs("c")) == ["live", "new"]
    assert store.prune_runs("c") == 0  # no limit: nothing
