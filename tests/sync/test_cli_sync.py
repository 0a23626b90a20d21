"""`segsync plan / apply / sync / status`: thin commands over the engine, with exit codes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from memory_platform import MemoryConnector, MemoryPlatform
from typer.testing import CliRunner

import segsync.cli.sync as cli_sync
from segsync.cli import EXIT_INVALID, EXIT_LOCKED, EXIT_OK, EXIT_RECORD_ERRORS, app
from segsync.clock import VirtualClock
from segsync.state import StateStore
from segsync.sync import Engine, SyncPolicy

PLATFORMS = ("mc", "hs")


@pytest.fixture
def cli(
    tmp_path: Path, store_factory: Callable[[], StateStore], monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """A config file, two in-memory platforms, and the CLI's engine built over them."""
    clock = VirtualClock()
    platforms = {n: MemoryPlatform(n, clock) for n in PLATFORMS}
    config = tmp_path / "segsync.yaml"
    config.write_text(f"state: sqlite:///{tmp_path / 'unused.db'}\nplatforms: {{}}\n")

    def build_engine(_config: Any, **options: Any) -> Engine:
        return Engine(
            {n: MemoryConnector(p) for n, p in platforms.items()},
            store_factory(),
            config="cli",
            policy=SyncPolicy(platforms=PLATFORMS),
            clock=clock,
            **options,
        )

    monkeypatch.setattr(cli_sync, "build_engine", build_engine)
    # `status` reads the state alone (no connector): here, the engine's state
    monkeypatch.setattr(cli_sync, "state_status", lambda _config: build_engine(_config).status())
    return {"config": str(config), "platforms": platforms, "runner": CliRunner(),
            "store": store_factory}


def invoke(cli: dict[str, Any], *args: str) -> Any:
    return cli["runner"].invoke(app, [*args, "-c", cli["config"]])


def test_plan_out_then_apply_then_status(cli: dict[str, Any], tmp_path: Path) -> None:
    """plan --out saves the plan, apply applies it, status shows the run."""
    cli["platforms"]["mc"].add("a@x.com", {"city": "Lyon"}, ["vip"], "subscribed")
    out = tmp_path / "plan.json"

    planned = invoke(cli, "plan", "--out", str(out))

    assert planned.exit_code == EXIT_OK, planned.output
    assert "hs: 1 to create" in planned.output
    assert "+ a@x.com: city='Lyon' tags +vip consent=subscribed" in planned.output
    assert json.loads(out.read_text())["platforms"]["hs"]["changes"][0]["create"] is True
    assert cli["platforms"]["hs"].live() == []

    applied = invoke(cli, "apply", str(out), "--json")

    assert applied.exit_code == EXIT_OK, applied.output
    assert json.loads(applied.output)["platforms"]["hs"]["created"] == 1
    assert [r.email for r in cli["platforms"]["hs"].live()] == ["a@x.com"]

    again = invoke(cli, "apply", str(out))

    assert again.exit_code == EXIT_INVALID
    assert "[hs] a@x.com: record created since the plan" in again.output

    status = invoke(cli, "status", "--json")

    assert status.exit_code == EXIT_OK
    data = json.loads(status.output)
    assert data["counts"]["contacts"] == 1
    assert data["runs"][0]["status"] == "ok"


def test_sync_exit_codes(cli: dict[str, Any]) -> None:
    """sync exits 0 when clean, 1 with per-record errors, 3 when the lock is held."""
    cli["platforms"]["mc"].add("a@x.com")
    cli["platforms"]["mc"].add("b@x.com")
    cli["platforms"]["hs"].fail["b@x.com"] = "Invalid Resource"

    with_errors = invoke(cli, "sync")

    assert with_errors.exit_code == EXIT_RECORD_ERRORS
    assert "[hs] b@x.com: Invalid Resource" in with_errors.output

    del cli["platforms"]["hs"].fail["b@x.com"]
    assert invoke(cli, "sync").exit_code == EXIT_OK

    holder = cli["store"]()
    with holder.lock("cli"):
        locked = invoke(cli, "sync", "--json")

    assert locked.exit_code == EXIT_LOCKED
    assert json.loads(locked.output)["error"] == "locked"


def test_apply_refuses_a_file_that_is_not_a_plan(cli: dict[str, Any], tmp_path: Path) -> None:
    """An unreadable plan is invalid input (exit 2)."""
    bad = tmp_path / "plan.json"
    bad.write_text('{"hello": 1}')

    result = invoke(cli, "apply", str(bad))

    assert result.exit_code == EXIT_INVALID
    assert "not a segsync plan" in result.output


def test_plan_prints_the_choices_connectors_made_about_their_account(
    cli: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`Connector.account_facts()` (e.g. HubSpot's subscription type) is printed by plan."""
    monkeypatch.setattr(MemoryConnector, "account_facts",
                        lambda self: {"subscription type": "Marketing (id 101)"})

    planned = invoke(cli, "plan")

    assert planned.exit_code == EXIT_OK, planned.output
    assert "hs: subscription type: Marketing (id 101)" in planned.output
