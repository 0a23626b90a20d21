"""What `segsync status` and `segsync plan` print: cursors as times (never their text),
without any API key; and plan lines whose fields come in one order, run after run."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pytest
from first_runs_world import World
from typer.testing import CliRunner

from segsync.cli import app
from segsync.cli.core import cursor_time, describe_cursor
from segsync.sync.plan import _describe

runner = CliRunner()


@pytest.mark.slow
def test_status_shows_each_connectors_cursor_as_a_time_without_any_key(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    world = World(f"sqlite:///{db}")
    world.sync()
    state = world.store.scoped(world.config)
    for platform in ("mailchimp", "hubspot", "brevo"):
        cursor = state.cursor(platform)
        assert cursor is not None
        at = cursor_time(cursor)
        assert at is not None, (platform, cursor[:80])
        assert abs(at - world.clock.now()) <= dt.timedelta(minutes=10), (platform, at)
    assert len(state.cursor("mailchimp") or "") > 500  # what status printed before
    world.store.close()
    config = tmp_path / "segsync.yaml"
    config.write_text(textwrap.dedent(f"""\
        state: sqlite:///{db}
        platforms:
          mailchimp: {{api_key: "${{MC_KEY}}", list_id: {world.mc.default_list_id}}}
          hubspot: {{token: "${{HS_TOKEN}}"}}
          brevo: {{api_key: "${{BREVO_KEY}}"}}
        """), encoding="utf-8")
    result = runner.invoke(app, ["status", "-c", str(config)], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    for platform in ("mailchimp", "hubspot", "brevo"):
        line = next(x for x in lines if x.strip().startswith(f"{platform}:"))
        assert "changes read up to 2026-01-01 00:0" in line, line
        assert " ago)" in line
        assert len(line) < 80, line
    assert "contacts" in result.output
    assert "run " in result.output
    as_json = runner.invoke(app, ["status", "-c", str(config), "--json"])
    assert as_json.exit_code == 0, as_json.output
    assert '"cursor_times"' in as_json.output


def test_cursor_times_of_plain_and_unknown_cursors() -> None:
    now = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
    assert cursor_time("2026-03-01T10:00:00Z") == dt.datetime(2026, 3, 1, 10, tzinfo=dt.UTC)
    assert cursor_time("1767225600000;12:1767225500000") == dt.datetime(2026, 1, 1,
                                                                          tzinfo=dt.UTC)
    assert cursor_time("page-42") is None
    assert describe_cursor(None, now) == "none yet: the next read is full"
    assert describe_cursor("page-42", now) == "set (7 characters, no time in it)"
    assert describe_cursor("2026-03-01T10:00:00+00:00", now).endswith("(2 h ago)")


def test_plan_lines_list_fields_and_tags_in_one_order() -> None:
    one = {"cid": "a@x.dev", "email": "a@x.dev", "fields": {"last_name": "L", "first_name": "F"},
           "tags_add": ["vip", "beta"]}
    other = {**one, "fields": {"first_name": "F", "last_name": "L"}, "tags_add": ["beta", "vip"]}
    assert _describe(one) == _describe(other)  # type: ignore[arg-type]
    assert _describe(one) == "~ a@x.dev: first_name='F' last_name='L' tags +beta,vip"  # type: ignore[arg-type]
