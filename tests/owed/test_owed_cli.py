"""`segsync owed` lists the owed writes; `segsync owed ack` drops them."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from segsync.cli import app
from segsync.state import open_store
from segsync.state.base import OwedWrite

ONE, TWO = "one@lived.dev", "two@lived.dev"


def owe(state_path: Path) -> None:
    """Two owed writes on brevo and one on hubspot, in the state of the configuration."""
    with open_store(f"sqlite:///{state_path}") as store:
        state = store.scoped("default")  # the name of a configuration without platforms
        state.commit_writes("brevo", [], [], owed=[
            OwedWrite("brevo", ONE, ONE, "Contact does not exist", "2026-11-02T10:00:00+00:00",
                      code="document_not_found"),
            OwedWrite("brevo", TWO, TWO, "invalid value", "2026-11-02T10:00:00+00:00"),
        ])
        state.commit_writes("hubspot", [], [], owed=[
            OwedWrite("hubspot", ONE, ONE, "refused", "2026-11-02T11:00:00+00:00"),
        ])
        state.commit_writes("brevo", [], [], owed=[  # failed again an hour later
            OwedWrite("brevo", TWO, TWO, "invalid value", "2026-11-02T11:00:00+00:00"),
        ])


def run(config: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["owed", *args, "-c", str(config)])
    return result.exit_code, result.output


def test_owed_lists_and_ack_drops(tmp_path: Path) -> None:
    state = tmp_path / "state.db"
    config = tmp_path / "segsync.yaml"
    config.write_text(f"state: sqlite:///{state}\nplatforms: {{}}\n")
    owe(state)

    code, out = run(config)
    assert code == 0
    assert "3 owed write(s)" in out
    assert f"[brevo] {TWO}: invalid value (first 2026-11-02T10:00:00+00:00, last " \
        "2026-11-02T11:00:00+00:00, 2 runs)" in out
    code, out = run(config, "--json")
    listed = json.loads(out)["owed"]
    assert [(o["platform"], o["email"], o["failures"]) for o in listed] == [
        ("brevo", ONE, 1), ("brevo", TWO, 2), ("hubspot", ONE, 1)]

    result = CliRunner().invoke(app, ["owed", "ack", ONE.upper(), "-c", str(config), "--json"])
    assert result.exit_code == 0
    assert json.loads(result.output)["acknowledged"] == 2
    with open_store(f"sqlite:///{state}") as store:
        assert [(o.platform, o.email) for o in store.scoped("default").owed()] == [
            ("brevo", TWO)]
    result = CliRunner().invoke(app, ["owed", "ack", "--all", "-c", str(config)])
    assert result.exit_code == 0
    assert "1 owed write(s) acknowledged" in result.output
    assert run(config)[1].strip() == "No owed writes."


def test_ack_needs_addresses_or_all(tmp_path: Path) -> None:
    config = tmp_path / "segsync.yaml"
    config.write_text(f"state: sqlite:///{tmp_path / 'state.db'}\nplatforms: {{}}\n")
    for args in ([], [ONE, "--all"]):
        result = CliRunner().invoke(app, ["owed", "ack", *args, "-c", str(config)])
        assert result.exit_code == 2
    result = CliRunner().invoke(app, ["owed", "ack", "not-an-address", "-c", str(config)])
    assert result.exit_code == 2
