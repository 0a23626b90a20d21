"""`segsync runs` shows a platform that failed as a whole (down) with its errors, beside the
platforms that ran, as `runs show` and `--errors-out` do."""

from __future__ import annotations

import json
import re
from pathlib import Path

from cli_world import CliWorld

from segsync.cli import EXIT_OK, EXIT_UNAVAILABLE
from segsync.cli.runs import platform_totals


def test_a_platform_down_for_the_whole_run_is_listed_with_its_errors(
    world: CliWorld, tmp_path: Path
) -> None:
    world.switches["hubspot"].down = True

    synced = world.invoke("sync", "--json")

    assert synced.exit_code == EXIT_UNAVAILABLE, synced.output
    report = json.loads(synced.stdout)
    failed = [e for e in report["errors"] if e["platform"] == "hubspot"]
    assert failed
    assert report["platforms"]["hubspot"]["errors"] == len(failed)

    listed = world.invoke("runs", "--json")

    assert listed.exit_code == EXIT_OK, listed.output
    [run] = json.loads(listed.stdout)["runs"]
    assert run["platforms"]["hubspot"]["errors"] == len(failed)
    assert run["platforms"]["hubspot"]["writes"] == 0
    assert run["platforms"]["mailchimp"]["read"] > 0
    assert run["platforms"]["hubspot"]["calls"] == report["platforms"]["hubspot"]["api_calls"]
    text = world.invoke("runs").stdout
    assert re.search(rf"hubspot: \d+ calls, 0 read, 0 writes, {len(failed)} errors", text), text
    out = tmp_path / "errors.jsonl"
    world.invoke("runs", "show", run["run_id"], "--errors-out", str(out))
    exported = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert sum(1 for r in exported if r["platform"] == "hubspot") == len(failed)


def test_a_report_stored_without_the_failed_platform_still_shows_it() -> None:
    stored = {
        "platforms": {"mailchimp": {"api_calls": 4, "read": 9, "created": 1, "errors": 0}},
        "errors": [
            {"platform": "brevo", "code": "auth_failed", "message": "refused"},
            {"platform": "mailchimp", "email": "a@b.co", "message": "invalid"},
        ],
    }

    totals = platform_totals(stored)

    assert totals["brevo"] == {"calls": 0, "read": 0, "writes": 0, "errors": 1}
    assert totals["mailchimp"] == {"calls": 4, "read": 9, "writes": 1, "errors": 0}
