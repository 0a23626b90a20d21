"""`segsync plan / apply / sync` show the run's progress on stderr (plain lines off a terminal)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent / "sync"))

from memory_platform import MemoryConnector, MemoryPlatform

import segsync.cli.sync as cli_sync
from segsync.cli import EXIT_OK, app
from segsync.clock import VirtualClock
from segsync.logs import configure_logging
from segsync.state import open_store
from segsync.sync import Engine, SyncPolicy

PLATFORMS = ("mc", "hs")


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A config file and two in-memory platforms the CLI's engine syncs (SQLite state)."""
    clock = VirtualClock()
    platforms = {n: MemoryPlatform(n, clock) for n in PLATFORMS}
    config = tmp_path / "segsync.yaml"
    config.write_text(f"state: sqlite:///{tmp_path / 'unused.db'}\nplatforms: {{}}\n")
    state = f"sqlite:///{tmp_path / 'state.db'}"

    def build_engine(_config: Any, **options: Any) -> Engine:
        return Engine(
            {n: MemoryConnector(p) for n, p in platforms.items()},
            open_store(state), config="cli", policy=SyncPolicy(platforms=PLATFORMS),
            clock=clock, **options,
        )

    monkeypatch.setattr(cli_sync, "build_engine", build_engine)
    for i in range(30):
        platforms["mc"].add(f"p{i}@x.com", {"n": str(i)}, ["t"], "subscribed")
    runner = CliRunner()

    def invoke(*args: str, before: tuple[str, ...] = ()) -> Any:
        return runner.invoke(app, [*before, *args, "-c", str(config)])

    yield invoke
    configure_logging("text")  # --log-format json must not leak into other tests


def test_sync_prints_plain_progress_lines_on_stderr(cli: Any) -> None:
    """Pull and apply lines per platform, with API calls; throttled to first and final."""
    result = cli("sync")

    assert result.exit_code == EXIT_OK, result.output
    lines = result.stderr.splitlines()
    # 30 contacts in pages of 7: 5 reads; the clock does not move, so only the first and
    # the final line of each platform's pull are printed
    assert [line for line in lines if line.startswith("mc: pulled")] == [
        "mc: pulled 7 contacts (1 calls)",
        "mc: pulled 30 contacts (5 calls, done)",
    ]
    assert "hs: pulled 0 contacts (0 calls, done)" in lines  # an empty platform: no page
    # 30 creations in batches of 3: a prepare and 10 write calls; the first batch's line
    # (a prepare and two batches in flight: the connector's concurrency is 2), then the last
    assert [line for line in lines if line.startswith("hs: wrote")] == [
        "hs: wrote 3/30 contacts, 3 calls",
        "hs: wrote 30/30 contacts, 11 calls (done)",
    ]
    assert [line for line in lines if line.startswith("mc: wrote")] == [
        "mc: wrote 0/0 contacts, 0 calls (done)"
    ]
    assert "pulled" not in result.stdout  # the report alone on stdout
    assert "hs: read 0, created 30" in result.stdout


def test_plan_shows_the_pull_and_apply_shows_the_writes(cli: Any, tmp_path: Path) -> None:
    out = tmp_path / "plan.json"

    planned = cli("plan", "--out", str(out))
    applied = cli("apply", str(out))

    assert planned.exit_code == EXIT_OK, planned.output
    assert "mc: pulled 30 contacts (5 calls, done)" in planned.stderr
    assert "wrote" not in planned.stderr
    assert applied.exit_code == EXIT_OK, applied.output
    assert "hs: wrote 30/30 contacts, 11 calls (done)" in applied.stderr
    assert "pulled" not in applied.stderr


def test_json_output_stays_pure_json(cli: Any) -> None:
    """--json: no progress anywhere, stdout is one JSON document."""
    result = cli("sync", "--json")

    assert result.exit_code == EXIT_OK, result.output
    assert json.loads(result.stdout)["platforms"]["hs"]["created"] == 30
    assert result.stderr == ""


def test_json_logs_print_no_progress(cli: Any) -> None:
    """--log-format json: stderr is for JSON log records only, so no progress lines."""
    result = cli("sync", before=("--log-format", "json"))

    assert result.exit_code == EXIT_OK, result.output
    assert "created 30" in result.stdout
    assert "pulled" not in result.stderr
    for line in result.stderr.splitlines():
        json.loads(line)


def test_a_terminal_gets_bars_per_platform(cli: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a terminal (forced), stderr shows a bar per platform per phase instead of lines."""
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "140")

    result = cli("sync")

    assert result.exit_code == EXIT_OK, result.output
    assert "mc: pulled" not in result.stderr
    final = result.stderr[result.stderr.rindex("mc pull"):]
    for bar in ("mc pull", "hs pull", "mc write", "hs write", "30/30", "11 calls"):
        assert bar in final
    assert "pulled" not in result.stdout
