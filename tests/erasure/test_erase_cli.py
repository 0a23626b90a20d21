"""`segsync erase`: exit codes, located errors, `--yes`, `--json` (in-process and subprocess)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent))

from world import ZOE, ZOE_KEY, World

import segsync.cli.core as cli_core
import segsync.sync.build as sync_build
from segsync.cli import EXIT_INVALID, EXIT_OK, app
from segsync.cli.erase import EXIT_UNAVAILABLE

SEGSYNC = Path(sys.executable).parent / "segsync"


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The CLI erasing in a lived-in world (its connectors and state)."""
    world = World()
    world.sync()
    config = tmp_path / "segsync.yaml"
    config.write_text(f"state: sqlite:///{tmp_path / 'unused.db'}\nplatforms: {{}}\n")

    class KeepOpen:  # the world's store outlives the command
        def __init__(self, store: Any) -> None:
            self.store = store

        def scoped(self, _name: str) -> Any:
            return world.engine.state

        def close(self) -> None:
            pass

    # the connectors and the state `erase` runs on (`segsync.cli.core.run_on_state`)
    monkeypatch.setattr(sync_build, "build_connectors", lambda _cfg: world._connectors())
    monkeypatch.setattr(cli_core, "open_store", lambda _url: KeepOpen(world.store))
    monkeypatch.setattr(cli_core, "config_name", lambda _c: "erasure")
    yield {"config": str(config), "world": world, "runner": CliRunner()}
    world.loop.close()
    world.store.close()


def invoke(cli: dict[str, Any], *args: str) -> Any:
    return cli["runner"].invoke(app, ["erase", *args, "-c", cli["config"]])


def test_erase_yes_json_reports_every_platform(cli: dict[str, Any]) -> None:
    result = invoke(cli, ZOE, "--yes", "--json")

    assert result.exit_code == EXIT_OK, result.output
    data = json.loads(result.output)
    assert data["confirmed"] is True
    person = data["people"][0]
    assert set(person["platforms"]) == {"mailchimp", "hubspot", "brevo"}
    assert all(p["confirmed"] for p in person["platforms"].values())
    assert ZOE_KEY not in result.output.lower()
    assert not any(cli["world"].holds(ZOE_KEY).values())


def test_an_invalid_address_is_located_and_nothing_is_erased(
    cli: dict[str, Any], tmp_path: Path
) -> None:
    listing = tmp_path / "people.txt"
    listing.write_text("# to erase\nyan.keep@lived.dev\n\nnot an address\n")

    result = invoke(cli, ZOE, "--from-file", str(listing), "--yes")

    assert result.exit_code == EXIT_INVALID
    assert f"{listing}:4" in result.output
    assert "nothing was erased" in result.output
    assert cli["world"].holds(ZOE_KEY) == {"mailchimp": True, "hubspot": True, "brevo": True}
    assert cli["world"].engine.state.tombstones() == []


def test_without_a_terminal_yes_is_required(cli: dict[str, Any]) -> None:
    result = invoke(cli, ZOE)

    assert result.exit_code == EXIT_INVALID
    assert "--yes" in result.output
    assert cli["world"].holds(ZOE_KEY) == {"mailchimp": True, "hubspot": True, "brevo": True}


def test_a_platform_unavailable_exits_4_and_a_rerun_exits_0(cli: dict[str, Any]) -> None:
    cli["world"].switches["hubspot"].down = True

    first = invoke(cli, ZOE, "--yes")

    assert first.exit_code == EXIT_UNAVAILABLE, first.output
    assert "hubspot: FAILED" in first.output
    assert "run the same `segsync erase`" in first.output
    cli["world"].switches["hubspot"].down = False

    second = invoke(cli, ZOE, "--yes")

    assert second.exit_code == EXIT_OK, second.output
    assert not any(cli["world"].holds(ZOE_KEY).values())


@pytest.mark.slow
def test_subprocess_needs_yes_without_a_terminal(tmp_path: Path) -> None:
    """A real process whose stdin is not a terminal: refused without --yes; with it, the
    state keeps a tombstone and no address."""
    db = tmp_path / "state.db"
    config = tmp_path / "segsync.yaml"
    config.write_text(f"state: sqlite:///{db}\nplatforms: {{}}\n")
    command = [str(SEGSYNC), "erase", ZOE, "-c", str(config)]

    refused = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True,
                             text=True, timeout=60, check=False)

    assert refused.returncode == EXIT_INVALID, refused.stderr
    assert "--yes" in refused.stderr

    done = subprocess.run([*command, "--yes"], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=60, check=False)

    assert done.returncode == EXIT_OK, done.stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM tombstones").fetchone() == (1,)
        dump = "\n".join(conn.iterdump()).lower()
    assert ZOE_KEY not in dump
