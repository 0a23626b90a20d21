"""The installed `segsync` console script, run as a user runs it: in a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import segsync
from segsync.cli import EXIT_INVALID, EXIT_OK
from segsync.demo import demo_platforms

SCRIPT = Path(sys.executable).parent / "segsync"

VALID = """\
schema:
  country: text
segments:
  france:
    rule: 'country = "FR" and tags has "vip"'
"""

INVALID = """\
schema:
  country: text
platforms:
  mailchimp: {api_key: "${MISSING_KEY}"}
segments:
  france:
    rule: 'contry = "FR"'
"""


def segsync_run(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the console script with `args` in `cwd` (no colours, no inherited config)."""
    if not SCRIPT.exists():
        pytest.skip(f"no console script next to {sys.executable}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEGSYNC_")}
    return subprocess.run(
        [str(SCRIPT), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**env, "NO_COLOR": "1", "COLUMNS": "120"},
        check=False,
    )


@pytest.mark.slow
def test_help_lists_the_commands(tmp_path: Path) -> None:
    """`segsync --help` exits 0 and names the user's commands and the global log options."""
    proc = segsync_run("--help", cwd=tmp_path)

    assert proc.returncode == EXIT_OK, proc.stderr
    for command in ("init", "check", "demo", "emulate", "connectors", "segments"):
        assert command in proc.stdout
    assert "--log-format" in proc.stdout


@pytest.mark.slow
def test_version(tmp_path: Path) -> None:
    """`segsync --version` prints the package version and exits 0."""
    proc = segsync_run("--version", cwd=tmp_path)

    assert proc.returncode == EXIT_OK
    assert proc.stdout.strip() == f"segsync {segsync.__version__}"


@pytest.mark.slow
def test_check_valid_configuration_exits_0(tmp_path: Path) -> None:
    """A valid file: exit 0 and a one-line summary."""
    (tmp_path / "segsync.yaml").write_text(VALID, encoding="utf-8")

    proc = segsync_run("check", cwd=tmp_path)

    assert proc.returncode == EXIT_OK, proc.stdout + proc.stderr
    assert "1 segment(s)" in proc.stdout


@pytest.mark.slow
def test_check_invalid_configuration_exits_2_with_every_problem(tmp_path: Path) -> None:
    """An invalid file: exit 2, each problem with its line and column."""
    (tmp_path / "segsync.yaml").write_text(INVALID, encoding="utf-8")

    proc = segsync_run("check", cwd=tmp_path)

    assert proc.returncode == EXIT_INVALID
    assert "segsync.yaml:4:" in proc.stdout  # the unset variable
    assert "MISSING_KEY" in proc.stdout
    assert "segsync.yaml:7:" in proc.stdout  # the unknown field
    assert "did you mean 'country'" in proc.stdout


@pytest.mark.slow
def test_check_missing_file_exits_2(tmp_path: Path) -> None:
    """No configuration file: exit 2 and a hint to create one."""
    proc = segsync_run("check", "-c", "nowhere.yaml", cwd=tmp_path)

    assert proc.returncode == EXIT_INVALID
    assert "segsync init" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_bad_log_level_exits_2(tmp_path: Path) -> None:
    """An unknown `--log-level` is invalid input."""
    proc = segsync_run("--log-level", "loud", "connectors", cwd=tmp_path)

    assert proc.returncode == EXIT_INVALID
    assert "--log-level" in proc.stderr


@pytest.mark.slow
def test_demo_json_report(tmp_path: Path) -> None:
    """`segsync demo --contacts 50 --json` prints one JSON report whose checks hold; exit 0."""
    proc = segsync_run("demo", "--contacts", "50", "--json", cwd=tmp_path, timeout=120)

    report = json.loads(proc.stdout)
    assert report["contacts"] == dict.fromkeys(demo_platforms(), 50)
    assert report["aligned"] == dict.fromkeys(demo_platforms(), True)
    assert report["consent_violations"] == 0
    assert report["second_sync_writes"] == 0
    assert set(report["api_calls"]) == set(demo_platforms())
    assert report["emulated_seconds"] > 0
    assert report["wall_seconds"] > 0
    assert report["segments_match"] is True
    assert proc.returncode == EXIT_OK, proc.stderr


@pytest.mark.slow
def test_demo_keep_writes_a_config_segsync_check_accepts(tmp_path: Path) -> None:
    """`demo --keep DIR` leaves a segsync.yaml that `segsync check` validates."""
    demo = segsync_run("demo", "--contacts", "10", "--keep", "kept", cwd=tmp_path, timeout=120)
    assert demo.returncode == EXIT_OK, demo.stdout + demo.stderr
    assert "Kept in" in demo.stdout

    proc = segsync_run("check", "-c", "kept/segsync.yaml", cwd=tmp_path)

    assert proc.returncode == EXIT_OK, proc.stdout
    assert "3 platform(s)" in proc.stdout


TROUBLED = """\
state: sqlite:///.segsync/state.db
schema:
  country: text
platforms:
  mailchimp: {api_key: "${MAILCHIMP_API_KEY}", list_id: abc, base_url: "http://api.example.com"}
  hubspott: {token: x}
segments:
  fr:
    rule: 'contry = "FR" and'
"""


@pytest.mark.slow
def test_troubleshooting_quotes_the_messages_check_prints(tmp_path: Path) -> None:
    """The configuration messages docs/troubleshooting.md quotes are the ones segsync prints."""
    (tmp_path / "segsync.yaml").write_text(TROUBLED, encoding="utf-8")
    doc = (Path(__file__).resolve().parents[1] / "docs" / "troubleshooting.md").read_text(
        encoding="utf-8"
    )

    proc = segsync_run("check", cwd=tmp_path)

    assert proc.returncode == EXIT_INVALID
    quoted = [
        "platforms.mailchimp.api_key: environment variable MAILCHIMP_API_KEY is not set (set "
        "it, or write ${MAILCHIMP_API_KEY:-default} for a default)",
        "platforms.mailchimp.base_url: base_url 'http://api.example.com/': use https:// "
        "(plain http:// is accepted only for loopback addresses)",
        "platforms.hubspott: no connector called 'hubspott'; did you mean 'hubspot'?",
        "segments.fr.rule: 1:18 expected a condition, found the end of the rule",
    ]
    for message in quoted:
        assert message in proc.stdout, message
        assert message in doc, message
