"""Issue 18 items 4, 5, 6, 8: config conventions, completion, readable output, portable lock.

Where the behaviour is the process's (`-c` before the command, the upward search, `.env`),
the tests run `segsync` in a subprocess with a controlled working directory and environment.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import filelock
import pytest
from segsync_mailchimp.emulator.app import MailchimpEmulator
from typer.testing import CliRunner

import segsync.state.sqlite as sqlite_backend
from segsync.cli import EXIT_INVALID, app
from segsync.cli.emulate import config_snippet, load_emulator
from segsync.config import ConfigError, load_config
from segsync.state import RunLocked
from segsync.state.sqlite import SQLiteStateStore

runner = CliRunner()

# A configuration as people write it: keys from the environment, the state from a variable.
CONFIG = textwrap.dedent(
    """\
    state: ${STATE_URL:-sqlite:///.segsync/state.db}
    schema:
      country: text
    platforms:
      mailchimp: {api_key: "${MC_KEY}", list_id: abc123}
      hubspot: {token: "${HS_TOKEN}"}
    segments:
      france: {rule: 'country = "FR"'}
    """
)
SECRET_VARS = ("MC_KEY", "HS_TOKEN", "STATE_URL", "SEGSYNC_CONFIG")


def _segsync(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in SECRET_VARS}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-c", "from segsync.cli import main; main()", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "segsync.yaml").write_text(CONFIG, encoding="utf-8")
    return tmp_path


# -- item 4: config conventions -------------------------------------------------------------


@pytest.mark.slow
def test_config_option_before_the_command(
    project: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """`segsync -c FILE COMMAND` reads FILE (it failed with `No such option: -c`)."""
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    config = str(project / "segsync.yaml")
    done = _segsync("-c", config, "segments", "list", "--json", cwd=elsewhere)
    assert done.returncode == 0, done.stderr + done.stdout
    assert '"france"' in done.stdout


@pytest.mark.slow
def test_config_option_after_the_command_wins(project: Path) -> None:
    other = project / "other.yaml"
    other.write_text(CONFIG.replace("france", "belgium"), encoding="utf-8")
    done = _segsync("-c", "segsync.yaml", "segments", "list", "--json", "-c", str(other),
                    cwd=project)
    assert done.returncode == 0, done.stderr + done.stdout
    assert '"belgium"' in done.stdout
    assert '"france"' not in done.stdout


@pytest.mark.slow
def test_config_found_by_searching_up_from_the_working_directory(project: Path) -> None:
    deeper = project / "analytics" / "exports"
    deeper.mkdir(parents=True)
    done = _segsync("check", cwd=deeper)
    assert done.returncode == 0, done.stderr + done.stdout
    assert str(project / "segsync.yaml") in done.stdout


@pytest.mark.slow
def test_segsync_config_variable_wins_over_the_search(project: Path) -> None:
    named = project / "named.yaml"
    named.write_text(CONFIG.replace("france", "named_one"), encoding="utf-8")
    done = _segsync("segments", "list", "--json", cwd=project,
                    env={"SEGSYNC_CONFIG": str(named)})
    assert done.returncode == 0, done.stderr + done.stdout
    assert '"named_one"' in done.stdout


@pytest.mark.slow
def test_dotenv_beside_the_config_fills_unset_variables_only(project: Path) -> None:
    (project / ".env").write_text(
        "STATE_URL=sqlite:///from-dotenv.db\nHS_TOKEN=dotenv-token-123456\n", encoding="utf-8"
    )
    deeper = project / "sub"
    deeper.mkdir()
    done = _segsync("check", cwd=deeper)
    assert done.returncode == 0, done.stderr + done.stdout
    assert "sqlite:///from-dotenv.db" in done.stdout
    assert "HS_TOKEN" not in done.stdout  # found in .env: no warning about it
    assert "MC_KEY" in done.stdout  # still missing: a warning (check needs no secret)

    shell = _segsync("check", cwd=deeper, env={"STATE_URL": "sqlite:///from-shell.db"})
    assert shell.returncode == 0, shell.stderr + shell.stdout
    assert "sqlite:///from-shell.db" in shell.stdout  # the environment is never overridden


@pytest.mark.slow
def test_dotenv_is_not_read_from_the_working_directory(project: Path) -> None:
    """Only the `.env` beside the configuration counts."""
    config_dir = project / "conf"
    config_dir.mkdir()
    (config_dir / "segsync.yaml").write_text(CONFIG, encoding="utf-8")
    (project / ".env").write_text("STATE_URL=sqlite:///wrong.db\n", encoding="utf-8")
    done = _segsync("-c", "conf/segsync.yaml", "check", cwd=project)
    assert done.returncode == 0, done.stderr + done.stdout
    assert "wrong.db" not in done.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [["check"], ["segments", "list"], ["segments", "explain", "france"], ["status"]],
    ids=["check", "segments-list", "segments-explain", "status"],
)
def test_commands_that_call_no_platform_run_without_secrets(
    project: Path, command: list[str]
) -> None:
    done = _segsync(*command, cwd=project)
    assert done.returncode == 0, done.stderr + done.stdout


def test_a_missing_key_is_still_an_error_where_secrets_are_needed(project: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(project / "segsync.yaml", env={"HS_TOKEN": "present-token-123"})
    assert len(caught.value.problems) == 1


def test_a_missing_key_is_reported_once(project: Path) -> None:
    """The missing ${MC_KEY} was also reported as `api_key is empty`."""
    with pytest.raises(ConfigError) as caught:
        load_config(project / "segsync.yaml", env={})
    paths = [p.path for p in caught.value.problems]
    assert paths == ["platforms.mailchimp.api_key", "platforms.hubspot.token"], paths
    assert all("is not set" in p.message for p in caught.value.problems)


def test_without_secrets_the_block_keeps_its_other_settings(project: Path) -> None:
    config = load_config(project / "segsync.yaml", env={}, secrets=False)
    assert config.platforms["mailchimp"].list_id == "abc123"  # type: ignore[attr-defined]
    assert any("MC_KEY" in w for w in config.warnings)
    assert not any("0123" in w for w in config.warnings)


def test_other_problems_are_still_reported_without_secrets(project: Path) -> None:
    broken = CONFIG.replace("list_id: abc123", "list_id: abc123, colour: red")
    (project / "segsync.yaml").write_text(broken, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(project / "segsync.yaml", env={}, secrets=False)
    assert [p.path for p in caught.value.problems] == ["platforms.mailchimp.colour"]


@pytest.mark.slow
@pytest.mark.parametrize("before", [True, False], ids=["before", "after"])
def test_an_unknown_config_path_is_a_located_error(project: Path, before: bool) -> None:
    args = ["-c", "nope/missing.yaml", "check"] if before else ["check", "-c", "nope/missing.yaml"]
    done = _segsync(*args, cwd=project)
    assert done.returncode == EXIT_INVALID
    assert "nope/missing.yaml: configuration file not found" in done.stdout


# -- item 5: completion ---------------------------------------------------------------------


def test_shell_completion_is_on() -> None:
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0
    assert "--install-completion" in result.output
    assert "--show-completion" in result.output


# -- item 6: output -------------------------------------------------------------------------


def test_connectors_fit_80_columns() -> None:
    result = runner.invoke(app, ["connectors"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert "…" not in result.output
    assert all(len(line) <= 80 for line in result.output.splitlines() if "│" in line)
    assert "mailchimp" in result.output
    assert "saved_segment" in result.output


def test_connectors_wide_shows_every_column() -> None:
    result = runner.invoke(app, ["connectors", "--wide"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    for header in ("distribution", "page", "concurrency", "rate"):
        assert header in result.output


def test_emulate_prints_the_config_block_with_the_list_id() -> None:
    emulator = MailchimpEmulator()
    text = config_snippet("mailchimp", "http://127.0.0.1:8001/3.0", emulator.client_config())
    assert f'list_id: "{emulator.default_list_id}"' in text
    assert 'base_url: "http://127.0.0.1:8001/3.0"' in text
    assert f'api_key: "{emulator.api_key}"' in text


@pytest.mark.parametrize("platform", ["mailchimp", "hubspot", "brevo"])
def test_what_emulate_prints_is_a_configuration_that_loads(
    platform: str, tmp_path: Path
) -> None:
    """The block `segsync emulate PLATFORM` prints, pasted under a state line, is a valid
    segsync.yaml reaching the emulator: base URL, key and account objects (list id)."""
    emulator = load_emulator(platform)()
    base_url = "http://127.0.0.1:8001" + getattr(emulator, "base_path", "")
    text = config_snippet(platform, base_url, emulator.client_config())
    path = tmp_path / "segsync.yaml"
    path.write_text(f"state: sqlite:///{tmp_path}/s.db\n{text}\n", encoding="utf-8")
    config = load_config(path, env={})
    block = config.platforms[platform]
    assert block.base_url == base_url  # type: ignore[attr-defined]
    assert emulator.api_key in block.secrets()
    for key, value in emulator.client_config().items():
        shown = getattr(block, key)
        shown = shown.get_secret_value() if hasattr(shown, "get_secret_value") else shown
        assert str(shown) == str(value), key


def test_mailchimp_emulator_declares_that_it_refuses_example_com() -> None:
    assert any("example.com" in note for note in MailchimpEmulator.notes)


# -- item 8: the portable run lock ----------------------------------------------------------

HOLD = textwrap.dedent(
    """\
    import sys, time
    from segsync.state.sqlite import SQLiteStateStore
    store = SQLiteStateStore(sys.argv[1])
    with store.lock("mailchimp+hubspot"):
        print("held", flush=True)
        sys.stdin.readline()
    """
)


@pytest.mark.slow
def test_lock_held_by_another_process_names_its_pid_and_host(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(db)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        store = SQLiteStateStore(db)
        with pytest.raises(RunLocked) as caught, store.lock("mailchimp+hubspot"):
            pass
        assert f"pid {holder.pid} on {socket.gethostname()} since" in caught.value.holder
    finally:
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.close()
        holder.wait(timeout=60)
    with store.lock("mailchimp+hubspot"):  # released with the process
        pass
    store.close()


class _SoftOnly:
    """`filelock` as on an OS with neither fcntl nor msvcrt: only its portable soft lock."""

    FileLock = filelock.SoftFileLock
    Timeout = filelock.Timeout


def test_lock_goes_through_filelock_whatever_its_backend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lock is `filelock`'s (flock, msvcrt or a soft lock), not `fcntl` directly."""
    monkeypatch.setattr(sqlite_backend, "filelock", _SoftOnly)
    first, second = SQLiteStateStore(tmp_path / "s.db"), SQLiteStateStore(tmp_path / "s.db")
    with first.lock("c"), pytest.raises(RunLocked) as caught, second.lock("c"):
        pass
    assert f"pid {os.getpid()}" in caught.value.holder
    with second.lock("c"):
        pass
    first.close()
    second.close()
