"""Structured logs of a run through the CLI (`--log-format json --log-level info`): start and
end events, `run_id`/`platform`/`segment`/`phase` on every line, platform failures on
stderr as JSON, and one diagnostic per segment and platform per run."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cli_world import CliWorld

from segsync.cli import EXIT_RECORD_ERRORS, EXIT_UNAVAILABLE
from segsync.cli.sync import UNAVAILABLE_CODES
from segsync.logs import LOG_FIELDS

JSON_LOGS = ("--log-format", "json", "--log-level", "info")


def entries(stderr: str) -> list[dict[str, Any]]:
    """Every stderr line as JSON (fails on a line that is not)."""
    return [json.loads(line) for line in stderr.splitlines()]


@pytest.mark.usefixtures("restored_logging")
def test_a_sync_logs_its_start_and_end_with_context_on_every_line(world: CliWorld) -> None:
    result = world.invoke(*JSON_LOGS, "sync", "--json")

    assert result.exit_code == EXIT_RECORD_ERRORS, result.output
    report = json.loads(result.stdout)
    logged = entries(result.stderr)
    assert all(set(LOG_FIELDS) <= set(e) for e in logged)
    events = [e for e in logged if e.get("event", "").startswith("run_")]
    assert [e["event"] for e in events] == ["run_started", "run_finished"]
    assert logged[0]["event"] == "run_started"
    assert logged[-1]["event"] == "run_finished"
    assert all(e["run_id"] == report["run_id"] for e in logged)
    end = events[-1]
    assert end["status"] == "errors"
    assert end["errors"] == len(report["errors"])
    assert end["platforms"]["mailchimp"]["api_calls"] == (
        report["platforms"]["mailchimp"]["api_calls"])
    assert end["phase"] == "apply"
    # the fallback: one log line and one diagnostic, naming its segment, platform and phase
    fallbacks = [e for e in logged if e["logger"] == "segsync.compiler"]
    assert [(e["segment"], e["platform"], e["phase"]) for e in fallbacks] == [
        ("nested", "mailchimp", "segments")]
    assert [(d["segment"], d["platform"]) for d in report["diagnostics"]
            if d.get("segment")] == [("nested", "mailchimp"), ("nested", "hubspot")]


@pytest.mark.usefixtures("restored_logging")
def test_a_platform_dying_is_a_json_error_line_on_stderr(world: CliWorld) -> None:
    world.switches["hubspot"].down = True

    result = world.invoke(*JSON_LOGS, "sync", "--json")

    assert result.exit_code == EXIT_UNAVAILABLE, result.output
    assert json.loads(result.stdout)["exit_code"] == EXIT_UNAVAILABLE
    errors = [e for e in entries(result.stderr) if e["level"] == "error"]
    assert errors
    assert all(e["platform"] == "hubspot" for e in errors)
    assert {e["code"] for e in errors} <= UNAVAILABLE_CODES
    assert "run_finished" in [e.get("event") for e in entries(result.stderr)]


def test_a_plan_shows_one_diagnostic_per_segment_and_platform(world: CliWorld) -> None:
    result = world.invoke("plan")

    lines = [line for line in result.stdout.splitlines() if "diagnostic:" in line]
    assert len([line for line in lines if "[mailchimp] nested" in line]) == 1
    assert len([line for line in lines if "[hubspot] nested" in line]) == 1
    assert result.stderr.count("nested") == 1  # the fallback's warning, once
