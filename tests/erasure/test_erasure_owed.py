"""An erasure a platform did not confirm is owed there: `segsync status` and `segsync owed`
show it (never the address), and the next sync reaching that platform performs it; on
lived-in emulated accounts."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent))

from world import ZOE, ZOE_KEY, World

import segsync.cli.core as cli_core
import segsync.cli.owed as cli_owed
from segsync.cli import EXIT_OK, app
from segsync.state import open_store

CONFIG = """\
state: sqlite:///{path}
schema:
  first_name: text
platforms:
  mailchimp:
    api_key: 0123456789abcdef0123456789abcdef-us21
    list_id: a1b2c3d4e5
  hubspot:
    token: pat-na1-00000000-1111-2222-3333-444444444444
  brevo:
    api_key: xkeysib-unused
"""


@pytest.mark.slow
def test_an_unconfirmed_erasure_is_shown_owed_then_done_by_the_next_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "state.db"
    world = World(open_store(f"sqlite:///{db}"))
    try:
        world.sync()
        world.switches["brevo"].down = True
        report = world.erase(ZOE)
        assert report.unconfirmed_platforms() == ["brevo"]

        config = tmp_path / "segsync.yaml"
        config.write_text(CONFIG.format(path=db))
        monkeypatch.setattr(cli_core, "config_name", lambda _c: "erasure")
        monkeypatch.setattr(cli_owed, "_name", lambda _c: "erasure")
        runner = CliRunner()
        status = runner.invoke(app, ["status", "-c", str(config)])
        assert status.exit_code == EXIT_OK, status.output
        assert "1 erasure(s) not confirmed yet" in status.output
        assert "[brevo] erased:" in status.output
        as_json = runner.invoke(app, ["status", "-c", str(config), "--json"])
        [owed] = json.loads(as_json.output)["erasures_owed"]
        assert owed["platform"] == "brevo"
        assert owed["tombstone"].startswith("erased:")
        listing = runner.invoke(app, ["owed", "-c", str(config)])
        assert "erasure owed [brevo]" in listing.output
        for out in (status.output, as_json.output, listing.output):
            assert ZOE_KEY not in out.lower()

        world.switches["brevo"].down = False
        run = world.sync()
        assert run.errors == []
        assert run.platforms["brevo"].erased == 1
        assert not any(world.holds(ZOE_KEY).values())
        after = runner.invoke(app, ["status", "-c", str(config)])
        assert "not confirmed yet" not in after.output
    finally:
        world.close()
