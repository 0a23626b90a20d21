"""`segsync runs`, `runs show` and `--errors-out` on lived-in accounts: every run kept with
its status and per-platform counts, every record error shown again and exported."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from cli_world import REFUSED, CliWorld

from segsync.cli import EXIT_INVALID, EXIT_OK, EXIT_RECORD_ERRORS
from segsync.state import open_store
from segsync.sync.engine import Engine


@pytest.mark.slow
def test_a_sync_with_refused_records_is_kept_and_shown_with_every_error(
    world: CliWorld, tmp_path: Path
) -> None:
    synced = world.invoke("sync", "--json")
    assert synced.exit_code == EXIT_RECORD_ERRORS, synced.output
    report = json.loads(synced.stdout)
    refused = [e for e in report["errors"] if e["platform"] == "mailchimp"]
    assert sorted(e["email"] for e in refused) == REFUSED

    listed = world.invoke("runs", "--json")

    assert listed.exit_code == EXIT_OK, listed.output
    [run] = json.loads(listed.stdout)["runs"]
    assert run["run_id"] == report["run_id"]
    assert run["status"] == "errors"
    assert run["finished_at"]
    assert run["started_at"] <= run["finished_at"]
    assert run["plan_id"] == report["plan_id"]
    mailchimp = run["platforms"]["mailchimp"]
    assert mailchimp["errors"] == len(REFUSED)
    assert mailchimp["calls"] == report["platforms"]["mailchimp"]["api_calls"] > 0
    assert mailchimp["read"] == report["platforms"]["mailchimp"]["read"] > 0
    assert run["platforms"]["hubspot"]["writes"] > 0  # Mailchimp's own people, created there

    shown = world.invoke("runs", "show", report["run_id"][:12])

    assert shown.exit_code == EXIT_OK, shown.output
    assert f"run {report['run_id']}: errors" in shown.stdout
    for email in REFUSED:  # every one, no "... and N more"
        assert f"! [mailchimp] {email}: " in shown.stdout
    assert "more errors" not in shown.stdout
    out = tmp_path / "errors.csv"

    exported = world.invoke("runs", "show", report["run_id"], "--errors-out", str(out))

    assert exported.exit_code == EXIT_OK, exported.output
    with out.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["run_id", "platform", "email", "platform_id", "code", "field",
                             "message"]
    assert {r["run_id"] for r in rows} == {report["run_id"]}
    assert sorted(r["email"] for r in rows if r["platform"] == "mailchimp") == REFUSED
    assert all("looks fake" in r["message"] for r in rows if r["platform"] == "mailchimp")


def test_errors_out_on_sync_writes_json_lines_without_secrets(
    world: CliWorld, tmp_path: Path
) -> None:
    out = tmp_path / "errors.jsonl"

    synced = world.invoke("sync", "--errors-out", str(out))

    assert synced.exit_code == EXIT_RECORD_ERRORS, synced.output
    assert "more errors (every one: `segsync runs show" in synced.stdout
    text = out.read_text(encoding="utf-8")
    rows = [json.loads(line) for line in text.splitlines()]
    assert sorted(r["email"] for r in rows if r["platform"] == "mailchimp") == REFUSED
    assert all(r["run_id"] == rows[0]["run_id"] for r in rows)
    for secret in (world.mc.api_key, world.hs.api_key):
        assert secret not in text


def test_errors_out_with_another_suffix_is_refused_before_any_call(
    world: CliWorld, tmp_path: Path
) -> None:
    for args in (("sync",), ("runs", "show", "x")):
        result = world.invoke(*args, "--errors-out", str(tmp_path / "errors.xlsx"))

        assert result.exit_code == EXIT_INVALID
        assert "must end in .csv or .jsonl" in result.stderr
    missing_dir = world.invoke("sync", "--errors-out", str(tmp_path / "nope" / "e.csv"))
    assert missing_dir.exit_code == EXIT_INVALID
    assert "does not exist" in missing_dir.stderr
    assert world.mc.log.entries == []
    assert world.hs.log.entries == []
    assert json.loads(world.invoke("runs", "--json").stdout)["runs"] == []


@pytest.mark.slow
def test_an_interrupted_run_shows_and_an_unknown_id_lists_the_latest(world: CliWorld) -> None:
    world.interrupt_next = True
    interrupted = world.invoke("sync")
    assert interrupted.exit_code == 143, interrupted.output
    world.invoke("sync")

    listed = world.invoke("runs")

    assert listed.exit_code == EXIT_OK
    lines = [line for line in listed.stdout.splitlines() if not line.startswith(" ")]
    assert "  errors  " in lines[0]  # newest first
    assert "  interrupted  " in lines[1]
    assert "    mailchimp: " in listed.stdout
    assert " calls, " in listed.stdout
    ids = [r["run_id"] for r in json.loads(world.invoke("runs", "--json").stdout)["runs"]]
    assert json.loads(world.invoke("runs", "show", ids[1], "--json").stdout)["status"] == (
        "interrupted")

    unknown = world.invoke("runs", "show", "19990101T000000-nothing")

    assert unknown.exit_code == EXIT_INVALID
    assert "no run '19990101T000000-nothing'" in unknown.stderr
    assert ", ".join(ids) in unknown.stderr
    ambiguous = world.invoke("runs", "show", ids[0][:4], "--json")  # both: the same year
    assert ambiguous.exit_code == EXIT_INVALID
    assert "ambiguous" in json.loads(ambiguous.stdout)["message"]


@pytest.mark.slow
def test_runs_need_no_secrets(world: CliWorld) -> None:
    world.invoke("sync")
    text = world.config.read_text()
    assert json.dumps(world.mc.api_key) in text
    world.config.write_text(text.replace(json.dumps(world.mc.api_key), '"${MC_KEY_NOT_SET}"'))
    assert world.invoke("sync").exit_code == EXIT_INVALID  # a sync needs it

    listed = world.invoke("runs", "--json")

    assert listed.exit_code == EXIT_OK, listed.output
    [run] = json.loads(listed.stdout)["runs"]
    assert world.invoke("runs", "show", run["run_id"]).exit_code == EXIT_OK


@pytest.mark.slow
def test_history_keeps_the_configured_number_of_runs(world: CliWorld) -> None:
    world.config.write_text(world.config.read_text().replace("keep_runs: 200", "keep_runs: 1"))
    world.invoke("sync")
    last = json.loads(world.invoke("sync", "--json").stdout)

    runs = json.loads(world.invoke("runs", "--json").stdout)["runs"]

    assert [r["run_id"] for r in runs] == [last["run_id"]]


@pytest.mark.slow
def test_errors_out_on_apply_names_the_run_it_applied(world: CliWorld, tmp_path: Path) -> None:
    plan = tmp_path / "plan.json"
    assert world.invoke("plan", "--out", str(plan)).exit_code == EXIT_OK
    out = tmp_path / "errors.CSV"  # the suffix in any case

    applied = world.invoke("apply", str(plan), "--errors-out", str(out), "--json")

    assert applied.exit_code == EXIT_RECORD_ERRORS, applied.output
    run_id = json.loads(applied.stdout)["run_id"]
    with out.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["email"] for r in rows) == REFUSED
    assert {r["run_id"] for r in rows} == {run_id}
    [run] = json.loads(world.invoke("runs", "--json").stdout)["runs"]
    assert run["run_id"] == run_id
    assert run["plan_id"] == json.loads(plan.read_text())["plan_id"]


def test_a_sync_whose_plan_step_raised_is_kept_as_failed(
    world: CliWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(_engine: Engine) -> None:
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(Engine, "_plan", broken)

    crashed = world.invoke("sync")

    assert isinstance(crashed.exception, RuntimeError)
    [run] = json.loads(world.invoke("runs", "--json").stdout)["runs"]
    assert run["status"] == "failed"
    assert run["finished_at"]
    shown = world.invoke("runs", "show", run["run_id"])
    assert "the plan step failed: RuntimeError: the disk is full" in shown.stdout


def test_a_run_whose_process_died_shows_as_abandoned(world: CliWorld, tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path / 'state.db'}") as store:
        store.start_run("hubspot+mailchimp", "20260101T000000-dead", at="2026-01-01T00:00:00+00:00")

    listed = world.invoke("runs", "--json")
    shown = world.invoke("runs", "show", "20260101T000000-dead", "--json")

    assert [r["status"] for r in json.loads(listed.stdout)["runs"]] == ["abandoned"]
    assert json.loads(shown.stdout)["status"] == "abandoned"
