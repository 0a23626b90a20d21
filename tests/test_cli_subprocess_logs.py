"""`--log-format json|text`: one record per line on stderr, secrets never shown."""

from __future__ import annotations

import io
import json
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from segsync.connector import registry
from segsync.logs import (
    LOG_FIELDS,
    LogFormat,
    bind_log,
    configure_logging,
    log_context,
    register_secret,
)

from .test_cli_subprocess import segsync_run

MAILCHIMP_KEY = "0123456789abcdef0123456789abcdef-us21"
HUBSPOT_TOKEN = "pat-na1-00000000-1111-2222-3333-444444444444"
BREVO_KEY = "xkeysib-" + "0" * 64 + "-segsyncTEST0001"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Logging configured onto a buffer; the root logger restored afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()
    yield stream
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_with_extras(captured: io.StringIO) -> None:
    """Each record is one JSON object: ts, level, logger, message and the extra fields."""
    configure_logging(LogFormat.JSON, level="info", stream=captured)

    logging.getLogger("segsync.test").info("synced %d contacts", 3, extra={"platform": "brevo"})
    logging.getLogger("segsync.test").debug("not shown at info")

    lines = captured.getvalue().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["level"] == "info"
    assert entry["logger"] == "segsync.test"
    assert entry["message"] == "synced 3 contacts"
    assert entry["platform"] == "brevo"
    assert entry["ts"].endswith("+00:00")


def test_json_redacts_credentials_by_shape_and_by_name(captured: io.StringIO) -> None:
    """Platform keys (by the shapes their connector classes declare), bearer tokens and
    secret-named extras never reach the output."""
    for name in ("mailchimp", "hubspot", "brevo"):
        assert registry.get(name).credential_patterns  # loading the class registers them
    configure_logging(LogFormat.JSON, level="info", stream=captured)
    log = logging.getLogger("segsync.test")

    log.warning("mailchimp refused %s", MAILCHIMP_KEY)
    log.warning("header Authorization: Bearer %s", HUBSPOT_TOKEN)
    log.warning("brevo key %s", BREVO_KEY, extra={"api_key": "short-but-secret"})
    log.warning("hubspot token %s in a message", HUBSPOT_TOKEN)
    log.warning("state postgresql://sync:hunter2pass@db:5432/segsync")

    out = captured.getvalue()
    for secret in (MAILCHIMP_KEY, HUBSPOT_TOKEN, BREVO_KEY, "short-but-secret", "hunter2pass"):
        assert secret not in out
    entries = [json.loads(line) for line in out.splitlines()]
    assert entries[0]["message"] == "mailchimp refused ***"
    assert entries[1]["message"] == "header Authorization: Bearer ***"
    assert entries[2]["api_key"] == "***"
    assert entries[3]["message"] == "hubspot token *** in a message"
    assert entries[4]["message"] == "state postgresql://sync:***@db:5432/segsync"


def test_registered_secret_is_redacted_in_text(captured: io.StringIO) -> None:
    """A registered secret of any shape is redacted in text lines too, exceptions included."""
    configure_logging(LogFormat.TEXT, level="warning", stream=captured)
    register_secret("my-own-plain-secret")

    try:
        raise ValueError("bad key my-own-plain-secret")
    except ValueError:
        logging.getLogger("segsync.test").exception("call failed with my-own-plain-secret")

    out = captured.getvalue()
    assert "my-own-plain-secret" not in out
    assert out.startswith("ERROR segsync.test: call failed with ***")
    assert "ValueError: bad key ***" in out


def test_configure_twice_keeps_one_handler(captured: io.StringIO) -> None:
    """Configuring again replaces the earlier handler instead of doubling every line."""
    configure_logging(LogFormat.TEXT, stream=captured)
    configure_logging(LogFormat.JSON, stream=captured)

    logging.getLogger("segsync.test").warning("once")

    assert len(captured.getvalue().splitlines()) == 1


def test_http_request_lines_only_at_debug(captured: io.StringIO) -> None:
    """httpx's per-request INFO lines are hidden at info and shown at debug."""
    configure_logging(LogFormat.JSON, level="info", stream=captured)
    logging.getLogger("httpx").info("HTTP Request: GET http://127.0.0.1/")
    configure_logging(LogFormat.JSON, level="debug", stream=captured)
    logging.getLogger("httpx").info("HTTP Request: GET http://127.0.0.1/again")

    messages = [json.loads(line)["message"] for line in captured.getvalue().splitlines()]
    assert messages == ["HTTP Request: GET http://127.0.0.1/again"]


@pytest.mark.slow
def test_subprocess_json_logs_are_json_lines_without_keys(tmp_path: Path) -> None:
    """`segsync --log-format json --log-level debug demo`: stderr is JSON lines, no key."""
    proc = segsync_run(
        "--log-format", "json", "--log-level", "debug", "demo", "--contacts", "10", "--json",
        cwd=tmp_path, timeout=120,
    )

    lines = proc.stderr.splitlines()
    entries = [json.loads(line) for line in lines]
    assert any(e["logger"] == "segsync.demo" for e in entries)
    assert any(e["logger"] == "httpx" for e in entries)
    for secret in (MAILCHIMP_KEY, HUBSPOT_TOKEN, BREVO_KEY):
        assert secret not in proc.stderr
    assert json.loads(proc.stdout)["second_sync_writes"] == 0


def test_configuring_never_raises_the_root_level(captured: io.StringIO) -> None:
    """`--log-level error` filters in the handler; other handlers still get warnings."""
    root = logging.getLogger()
    root.setLevel(logging.INFO)

    configure_logging(LogFormat.TEXT, level="error", stream=captured)
    logging.getLogger("segsync.test").warning("below error")

    assert root.level == logging.INFO
    assert captured.getvalue() == ""


def test_python_warnings_become_json_records(captured: io.StringIO) -> None:
    """With JSON logs, a Python warning is a JSON line too (stderr stays parseable)."""
    configure_logging(LogFormat.JSON, stream=captured)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.warn("connector 'x' is unavailable", RuntimeWarning, stacklevel=1)
    finally:
        logging.captureWarnings(False)

    entry = json.loads(captured.getvalue().splitlines()[0])
    assert entry["logger"] == "py.warnings"
    assert "connector 'x' is unavailable" in entry["message"]


def test_loaded_configuration_keys_are_redacted(captured: io.StringIO, tmp_path: Path) -> None:
    """Once the CLI loaded a configuration, its keys are redacted whatever their shape."""
    from segsync.cli.core import _load

    (tmp_path / "segsync.yaml").write_text(
        "platforms:\n  brevo: {api_key: plain-custom-secret-42}\n", encoding="utf-8"
    )
    configure_logging(LogFormat.TEXT, stream=captured)

    _load(tmp_path / "segsync.yaml", as_json=False)
    logging.getLogger("segsync.test").warning("sent plain-custom-secret-42")

    assert captured.getvalue() == "WARNING segsync.test: sent ***\n"


@pytest.mark.slow
def test_subprocess_text_report_keeps_stderr_json(tmp_path: Path) -> None:
    """`--log-format json demo` (text report): stdout is the report, stderr only JSON lines."""
    proc = segsync_run(
        "--log-format", "json", "--log-level", "info", "demo", "--contacts", "10",
        cwd=tmp_path, timeout=120,
    )

    assert "every platform aligned" in proc.stdout
    entries = [json.loads(line) for line in proc.stderr.splitlines()]
    assert any(e["message"].startswith("demo: seeded") for e in entries)
    # each of the demo's two syncs: a start and an end event, its run id on the lines between
    assert all(set(LOG_FIELDS) <= set(e) for e in entries)
    events = [(e["event"], e["run_id"]) for e in entries if e.get("logger") == "segsync.run"]
    assert [name for name, _ in events] == ["run_started", "run_finished"] * 2
    first = entries.index(next(e for e in entries if e.get("event") == "run_started"))
    last = entries.index(next(e for e in entries if e.get("event") == "run_finished"))
    assert {e["run_id"] for e in entries[first:last + 1]} == {events[0][1]}
    fallbacks = [e for e in entries if e["logger"] == "segsync.compiler"]
    assert fallbacks
    assert all(e["segment"] and e["platform"] and e["phase"] == "segments" for e in fallbacks)


def test_context_fields_on_every_line_and_scoped_by_log_context(captured: io.StringIO) -> None:
    """`run_id`, `platform`, `segment`, `phase` are on every JSON line (null when unset);
    `log_context` restores them after its block, `extra` overrides them."""
    configure_logging(LogFormat.JSON, level="info", stream=captured)
    log = logging.getLogger("segsync.test")

    log.info("outside")
    with log_context(run_id="r1", phase="pull"):
        bind_log(platform="brevo")
        log.info("inside")
        log.info("about a segment", extra={"segment": "vip", "platform": "hubspot"})
    log.info("after")

    lines = [json.loads(line) for line in captured.getvalue().splitlines()]
    fields = [tuple(e[k] for k in LOG_FIELDS) for e in lines]
    assert fields == [
        (None, None, None, None),
        ("r1", "brevo", None, "pull"),
        ("r1", "hubspot", "vip", "pull"),
        (None, None, None, None),
    ]
    with pytest.raises(ValueError, match="unknown log fields"):
        bind_log(plaform="typo")
