"""segsync CLI: `consent history EMAIL` and `consent export`, the ledger as proof.

Both read only the state store: the configuration file is read for its `state` URL and the
names of its enabled platforms (which name the sync configuration in the state), never
validated, so they run without any platform secret in the environment. Exit codes: 0 ok,
2 invalid input (a bad email or date, an unreadable configuration or state).
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import os
import re
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from segsync.cli import EXIT_INVALID, EXIT_OK, app
from segsync.cli.core import ConfigOption, JsonOption, _echo_json, chosen_config, failure
from segsync.config import DEFAULT_STATE_URL, default_config_path
from segsync.model import InvalidEmail, normalize_email
from segsync.state import LedgerEntry, StoreError, open_store

__all__ = ["ledger_rows"]

consent_app = typer.Typer(help="Consent: the ledger of every change, per person.",
                          no_args_is_help=True)
app.add_typer(consent_app, name="consent")

COLUMNS = (
    "at", "email", "platform", "previous", "new", "sent", "source", "source_platform",
    "evidence", "legal_basis", "basis_from_default", "run_id", "cid",
)
"""The exported columns, in order (one per `LedgerEntry` field)."""

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

SinceOption = Annotated[
    str | None,
    typer.Option("--since", help="Only changes at or after this date (YYYY-MM-DD or ISO-8601)."),
]


def _state_of(path: Path | None) -> tuple[str, str]:
    """`(state URL, configuration name)` from the file's `state` and `platforms` keys only
    (ValueError naming the place and the fix)."""
    file = chosen_config(path) or default_config_path()
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise ValueError(f"{file}: cannot read the configuration ({exc.strerror}); "
                         "fix: pass it with --config") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{file}: not YAML ({exc}); fix: `segsync check` shows where") from None
    if not isinstance(data, dict):
        raise ValueError(f"{file}: the configuration is not a mapping of keys")
    url = str(data.get("state") or DEFAULT_STATE_URL)
    missing = [m for m in _VAR.findall(url) if m not in os.environ]
    if missing:
        raise ValueError(f"{file}: state: ${{{missing[0]}}} is not set; fix: export it "
                         "(only the state is read, no platform secret is needed)")
    url = _VAR.sub(lambda m: os.environ[m.group(1)], url)
    platforms = data.get("platforms") or {}
    if not isinstance(platforms, dict):
        raise ValueError(f"{file}: platforms: expected a mapping of platform blocks")
    enabled = sorted(
        str(name) for name, block in platforms.items()
        if not (isinstance(block, dict) and block.get("enabled") is False)
    )
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).exists():
        raise ValueError(f"{file}: state: no state file at {url[len('sqlite:///'):]} "
                         "(no run yet with this configuration?); fix: run from the directory "
                         "of the runs, or set state to its path")
    return url, "+".join(enabled) or "default"


def _since(value: str | None) -> str | None:
    """The ISO-8601 lower bound of `--since` (UTC midnight for a bare date)."""
    if value is None:
        return None
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"--since {value!r}: not a date; fix: use YYYY-MM-DD or "
                         "an ISO-8601 time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC).isoformat()


def ledger_rows(
    path: Path | None, *, email: str | None = None, since: str | None = None
) -> list[LedgerEntry]:
    """The ledger rows of the configuration at `path` (of one person, and/or since a date);
    ValueError naming the place and the fix when the input or the state is unusable."""
    url, name = _state_of(path)
    key = None
    if email is not None:
        try:
            key = normalize_email(email)
        except InvalidEmail as exc:
            raise ValueError(f"EMAIL {email!r}: {exc}") from None
    lower = _since(since)
    try:
        store = open_store(url)
    except StoreError as exc:
        raise ValueError(f"state: {exc}") from None
    try:
        return store.ledger(name, email=key, since=lower)
    finally:
        store.close()


def _row(entry: LedgerEntry) -> dict[str, Any]:
    data = dataclasses.asdict(entry)
    return {column: data[column] for column in COLUMNS}


@consent_app.command("history")
def history_command(
    email: Annotated[str, typer.Argument(help="The person's email address.")],
    config: ConfigOption = None,
    since: SinceOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every consent change of one person, oldest first: what each platform said, what
    segsync sent where, on what evidence and legal basis."""
    try:
        rows = ledger_rows(config, email=email, since=since)
    except ValueError as exc:
        raise failure(as_json, "invalid", str(exc), EXIT_INVALID) from None
    people = _by_person(rows)
    if as_json:
        _echo_json({"ok": True, "email": normalize_email(email),
                    "changes": [_row(e) for e in rows],
                    "people": [{"cid": cid, "changes": [_row(e) for e in entries]}
                               for cid, entries in people.items()]})
        raise typer.Exit(EXIT_OK)
    if not rows:
        typer.echo(f"no consent change recorded for {normalize_email(email)}")
        raise typer.Exit(EXIT_OK)
    if len(people) > 1:
        typer.echo(f"{normalize_email(email)} was held by {len(people)} people; "
                   "their changes are shown apart, each under its person id")
    for cid, entries in people.items():
        if len(people) > 1:
            typer.echo(f"person {cid}:")
        for e in entries:
            typer.echo(("  " if len(people) > 1 else "") + _describe(e))
    raise typer.Exit(EXIT_OK)


def _by_person(rows: list[LedgerEntry]) -> dict[str, list[LedgerEntry]]:
    """Ledger rows grouped by person id, oldest first within each, people in order of their
    first row (an address held by two people in turn is two histories, never one)."""
    people: dict[str, list[LedgerEntry]] = {}
    for entry in rows:
        people.setdefault(entry.cid, []).append(entry)
    return people


def _describe(e: LedgerEntry) -> str:
    """One line of the history: when, where, the change, and what it rests on."""
    change = f"{e.previous or '(none)'} -> {e.new}"
    if e.sent is not None and e.sent != e.new:
        change += f" (sent {e.sent})"
    if e.source == "sync":
        origin = f"written by segsync from {e.source_platform or '?'}"
    else:
        origin = f"seen on {e.source}"
    parts = [e.at, f"{e.platform:<10}", change, origin]
    if e.evidence:
        parts.append(f"evidence {e.evidence}")
    if e.legal_basis:
        parts.append(f"basis {e.legal_basis}" + (" (config default)" if e.basis_from_default
                                                  else ""))
    parts.append(f"run {e.run_id or '?'}")
    return "  ".join(parts)


@consent_app.command("export")
def export_command(
    config: ConfigOption = None,
    fmt: Annotated[str, typer.Option("--format", help="csv or jsonl.")] = "csv",
    since: SinceOption = None,
) -> None:
    """The whole ledger (every consent change), oldest first, as CSV or JSON lines."""
    if fmt not in ("csv", "jsonl"):
        raise failure(False, "invalid", f"--format {fmt!r}: fix: use csv or jsonl",
                      EXIT_INVALID)
    try:
        rows = ledger_rows(config, since=since)
    except ValueError as exc:
        raise failure(False, "invalid", str(exc), EXIT_INVALID) from None
    if fmt == "jsonl":
        for e in rows:
            typer.echo(json.dumps(_row(e), sort_keys=False))
        raise typer.Exit(EXIT_OK)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for e in rows:
        writer.writerow(_row(e))
    typer.echo(out.getvalue(), nl=False)
    raise typer.Exit(EXIT_OK)
