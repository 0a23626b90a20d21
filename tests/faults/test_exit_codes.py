"""Exit codes tell failures apart: 1 records, 4 a platform unavailable or refusing the
credentials, 5 a platform bound to another account, 128+N interrupted by signal N; the
highest that applies wins. Said on stderr even with `--json`."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest
from loopback_world import loopback_world, sync_command

from segsync.cli import (
    EXIT_ACCOUNT,
    EXIT_INVALID,
    EXIT_OK,
    EXIT_RECORD_ERRORS,
    EXIT_SIGNAL_BASE,
    EXIT_UNAVAILABLE,
)
from segsync.cli.erase import EXIT_UNAVAILABLE as ERASE_UNAVAILABLE
from segsync.cli.sync import exit_code
from segsync.sync import RunReport
from segsync.sync.plan import RecordError


def report(*codes: str, status: str = "errors", signum: int | None = None) -> RunReport:
    return RunReport(
        run_id="r", plan_id="p", config="c", started_at="2026-01-01T00:00:00+00:00",
        status=status, interrupted_by=signum,
        errors=[RecordError(platform="p", code=code, message="m") for code in codes],
    )


@pytest.mark.parametrize(
    ("codes", "status", "signum", "expected"),
    [
        ((), "ok", None, EXIT_OK),
        (("400",), "errors", None, EXIT_RECORD_ERRORS),
        (("400", "check_failed"), "errors", None, EXIT_INVALID),
        (("check_failed", "auth_failed"), "errors", None, EXIT_UNAVAILABLE),
        (("auth_failed",), "errors", None, EXIT_UNAVAILABLE),
        (("400", "platform_unavailable"), "errors", None, EXIT_UNAVAILABLE),
        (("tls_failed", "host_unreachable", "read_failed"), "errors", None, EXIT_UNAVAILABLE),
        (("platform_unavailable", "account_mismatch", "400"), "errors", None, EXIT_ACCOUNT),
        (("account_mismatch",), "interrupted", signal.SIGTERM, 143),
        ((), "interrupted", signal.SIGINT, 130),
    ],
)
def test_the_highest_exit_code_wins(
    codes: tuple[str, ...], status: str, signum: int | None, expected: int
) -> None:
    assert exit_code(report(*codes, status=status, signum=signum)) == expected


def test_one_definition_of_exit_4() -> None:
    assert ERASE_UNAVAILABLE == EXIT_UNAVAILABLE == 4
    assert EXIT_SIGNAL_BASE + signal.SIGTERM == 143


@pytest.mark.slow
def test_a_refused_key_exits_4_after_one_call_and_says_so_on_stderr(tmp_path: Path) -> None:
    """Brevo refuses the key: one call to it, exit 4, `--json` reports `exit_code` 4 and
    stderr names the platform and its host (never the key); the others still sync."""
    with loopback_world(tmp_path, 13, 30) as world:
        brevo = world.emulators["brevo"]
        configured = brevo.api_key
        brevo.api_key = "xkeysib-" + "1" * 64 + "-notthekey0000000"
        brevo.log.clear()
        proc = subprocess.run(
            [*sync_command(world.config), "--json"], capture_output=True, text=True,
            cwd=world.config.parent, timeout=120, check=False,
        )

        assert proc.returncode == EXIT_UNAVAILABLE, proc.stderr
        data = json.loads(proc.stdout)
        assert data["exit_code"] == EXIT_UNAVAILABLE
        mine = [e for e in data["errors"] if e["platform"] == "brevo"]
        assert len(mine) == 1, mine
        assert len(list(brevo.log.entries)) == 1  # not retried, nothing after it
        host = world.hosts["brevo"].removeprefix("http://")
        assert "error: [brevo]" in proc.stderr
        assert host in proc.stderr
        assert configured not in proc.stderr + proc.stdout
        assert not [e for e in data["errors"] if e["platform"] != "brevo"]
        assert data["platforms"]["mailchimp"]["created"] > 0
