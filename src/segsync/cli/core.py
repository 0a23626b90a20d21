"""segsync CLI: `--version`, `init`, `check [--online]`, `config schema|reference`,
`segments list|explain`.

The configuration file is `-c FILE` (before or after the command), else `$SEGSYNC_CONFIG`,
else the first segsync.yaml in the working directory or its parents; a `.env` beside it fills
unset variables. Every command that reads it exits with `EXIT_INVALID` (2) when it is invalid,
after printing every problem once with its place. Commands that call no platform load it
with `secrets=False`: a platform key missing from the environment is only a warning there.
`--json` prints plain JSON instead of the human view.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import datetime as dt
import json
import logging
import os
import re
import warnings
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

import segsync
from segsync.cli import (
    EXIT_INVALID,
    EXIT_LOCKED,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    app,
    config_app,
    segments_app,
)
from segsync.clock import Clock, SystemClock
from segsync.config import (
    DEFAULT_CONFIG_FILE,
    Config,
    ConfigError,
    config_json_schema,
    default_config_path,
    example_publish_mode,
    load_config,
    placeholder_settings,
    render_config_reference,
)
from segsync.connector import AccountIdentity, Connector, registry
from segsync.engagement import ENGAGEMENT_FIELDS, decided_by, split_qualified
from segsync.http import ApiError, PlatformUnavailable
from segsync.logs import LogFormat, configure_logging, register_secret
from segsync.mapping import PlatformMapping
from segsync.model import FieldSpec, InvalidEmail, PublishMode, normalize_email
from segsync.rules import ast, normalize
from segsync.rules.compiler import RuleCompileError
from segsync.rules.evaluate import evaluate, read_value
from segsync.rules.printer import to_text
from segsync.state import RunLocked, StateStore, StoreError, open_store
from segsync.state.scoped import ConfigState
from segsync.sync.build import config_name
from segsync.sync.pull import standing_error
from segsync.sync.segments import contact_of
from segsync.sync.snapshot import CanonicalView, PlatformRecord, jsonify

T = TypeVar("T")

__all__ = [
    "chosen_config",
    "cursor_time",
    "describe_cursor",
    "explain_person",
    "explain_segment",
    "starter_config",
    "state_status",
]

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="Configuration file (default: $SEGSYNC_CONFIG, else ./segsync.yaml).",
        dir_okay=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
SelectOption = Annotated[
    list[str] | None,
    typer.Option(
        "--select",
        help="Only these platforms and/or segments (repeat it, or a comma list); the others "
        "are left as they are.",
    ),
]
LimitOption = Annotated[
    int | None,
    typer.Option(
        "--limit",
        help="Only a sample of N contacts (the same ones run after run); the next unlimited "
        "run reads everything again.",
    ),
]
FullRefreshOption = Annotated[
    bool,
    typer.Option(
        "--full-refresh",
        help="Read every platform from the start (cursors ignored), rebuild the snapshots and "
        "report what differed from the state.",
    ),
]

STARTER_TEMPLATE = """\
# segsync configuration. Validate it with `segsync check`; the reference of every key is
# docs/configuration.md (or `segsync config schema` for editors).
# Any value may read the environment: ${VAR} or ${VAR:-default}. Keep API keys there.

# Where segsync remembers what it last saw and wrote: a SQLite file, or a PostgreSQL URL
# (postgresql://user@host:5432/db) when several workers share state.
state: sqlite:///.segsync/state.db

# The canonical fields, by name: a type (text, number, integer, boolean, date, datetime,
# enum, multi_enum, phone) or {type, options, description}. email, tags and consent are
# built in; engagement fields (open_rate, last_open, ...) come from the platforms.
schema:
  first_name: text
  last_name: text
  country: {type: enum, description: ISO 3166 two-letter code}
  language: text
  company: text
  birthday: date

# The platforms to keep in sync (`segsync connectors` lists the installed ones).
# Uncomment the ones you use and export their keys.
platforms: {}
<platforms>
sync:
  # When several platforms changed a field: the latest change wins, unless a field lists
  # platforms in priority order.
  conflicts:
    default: latest
<priority>  # What a segment that cannot be published natively does: ignore, warn or raise.
  strictness: warn

# Segments: a rule over the schema, and how each platform publishes it
# (auto, native, materialise, list or off). `segsync segments explain NAME` shows the plan.
segments:
  france_engaged:
    description: People in France who opened a recent email.
    rule: 'country = "FR" and open_rate > 0.5 and last_open within 30 days'
<publish>"""


def starter_config(connectors: Sequence[type[Connector]]) -> str:
    """The commented starter segsync.yaml of `segsync init`, naming `connectors` (the
    installed ones): their required settings as `${PLATFORM_FIELD}` placeholders."""
    names = [c.name for c in connectors]
    platforms = "".join(
        f"#  {c.name}:\n" + "".join(
            f"#    {key}: {value}\n" for key, value in placeholder_settings(c).items()
        )
        for c in connectors
    )
    priority = f"    # fields: {{country: [{', '.join(names)}]}}\n" if names else ""
    modes = ", ".join(f"{c.name}: {example_publish_mode(c).value}" for c in connectors)
    publish = f"    # publish: {{{modes}}}\n" if modes else ""
    return (
        STARTER_TEMPLATE.replace("<platforms>", platforms)
        .replace("<priority>", priority)
        .replace("<publish>", publish)
    )


def _console() -> Console:
    return Console(soft_wrap=True, highlight=False)


def _echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def failure(as_json: bool, kind: str, message: str, code: int) -> typer.Exit:
    """Say a command failed (`{"ok": false, "error": kind, "message": ...}` with `--json`,
    `error: message` on stderr otherwise); the exit to raise, with `code`."""
    if as_json:
        _echo_json({"ok": False, "error": kind, "message": message})
    else:
        typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def run_on_state(
    config: Config, as_json: bool,
    work: Callable[[dict[str, Connector], ConfigState], Awaitable[T]],
) -> T:
    """Run `work` with the configured connectors and the configuration's state, closing
    both after; a held run lock exits 3 and an unusable state 2 (said as `failure` says)."""
    from segsync.sync.build import build_connectors  # the engine, only when going online

    async def go() -> T:
        connectors = build_connectors(config)
        store = open_store(config.state_url)
        try:
            return await work(connectors, store.scoped(config_name(connectors)))
        finally:
            for connector in connectors.values():
                await connector.aclose()
            store.close()

    try:
        return asyncio.run(go())
    except RunLocked as exc:
        raise failure(as_json, "locked", str(exc), EXIT_LOCKED) from None
    except StoreError as exc:
        raise failure(as_json, "invalid", str(exc), EXIT_INVALID) from None


_ISO_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})"
)
_EPOCH_MS = re.compile(r"(?<![\w.])1[5-9]\d{11}(?![\w.])")  # 2017..2033, in milliseconds


def cursor_time(cursor: str | None) -> dt.datetime | None:
    """The latest time a connector's read cursor carries (an opaque text: ISO-8601 times or
    epoch milliseconds, as is or in base64 JSON), in UTC; None when it shows none."""
    if not cursor:
        return None
    texts = [cursor]
    for token in re.split(r"[:;,\s]", cursor):
        if len(token) >= 16:
            with contextlib.suppress(ValueError, UnicodeDecodeError):
                padded = token + "=" * (-len(token) % 4)
                texts.append(base64.urlsafe_b64decode(padded.replace("+", "-").replace("/", "_"))
                             .decode("utf-8"))
    found: list[dt.datetime] = []
    for text in texts:
        for match in _ISO_TIME.findall(text):
            with contextlib.suppress(ValueError):
                found.append(dt.datetime.fromisoformat(match.replace("Z", "+00:00"))
                             .astimezone(dt.UTC))
        found.extend(dt.datetime.fromtimestamp(int(ms) / 1000, dt.UTC)
                     for ms in _EPOCH_MS.findall(text))
    return max(found) if found else None


def describe_cursor(cursor: str | None, now: dt.datetime) -> str:
    """A read cursor as `segsync status` shows it: the time the next read starts from and its
    age, never the cursor's text (connectors' cursors run to kilobytes of base64)."""
    if not cursor:
        return "none yet: the next read is full"
    at = cursor_time(cursor)
    if at is None:
        return f"set ({len(cursor)} characters, no time in it)"
    return f"changes read up to {at:%Y-%m-%d %H:%M:%S} UTC ({_age(now - at)} ago)"


def _age(delta: dt.timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def state_status(config: Config, limit: int = 5, *, clock: Clock | None = None) -> dict[str, Any]:
    """What `segsync status` shows, from the state alone (no platform is called, no secret is
    needed): counts, cursors and their times, owned objects, the latest runs (a run whose
    process died shown `abandoned`), the erasures owed and the standing problems (never an
    erased address). Raises `StoreError` for a state it cannot open."""
    from segsync.sync.lock import RunLock  # the engine's, only for this command

    clock = clock or SystemClock()
    platforms = [name for name, p in config.platforms.items() if getattr(p, "enabled", True)]
    store = open_store(config.state_url, clock=clock)
    try:
        state = store.scoped(config_name(dict.fromkeys(platforms)))
        cursors = {p: state.cursor(p) for p in platforms}
        times = {p: cursor_time(c) for p, c in cursors.items()}
        lock = RunLock(state, clock, wait=False, poll=1.0, timeout=None)
        return {
            "config": state.config,
            "state": store.url,
            "schema_version": store.schema_version(),
            "generation": state.generation(),
            "counts": state.counts(),
            "cursors": cursors,
            "cursor_times": {p: t.isoformat() if t else None for p, t in times.items()},
            "owned": [dataclasses.asdict(o) for o in state.owned()],
            "runs": lock.settle(state.runs(limit)),
            "erasures_owed": [  # never the address: the tombstone stands for the person
                {"tombstone": f"erased:{e.email_hash}", "platform": e.platform,
                 "since": e.since, "error": e.error} for e in state.owed_erasures()
            ],
            # duplicates and erased people held again, until a read no longer finds them
            "standing": [
                {"platform": p.platform, "platform_id": p.platform_id, "code": p.kind,
                 "since": p.since, "message": standing_error(p).message}
                for p in state.standing() if p.platform in platforms
            ],
        }
    finally:
        store.close()


def chosen_config(path: Path | None) -> Path | None:
    """The configuration file a command was given: its own `-c`, else the one given before
    the command (`segsync -c FILE COMMAND`), else None (the default search)."""
    return path if path is not None else _given_before_command[0]


# the `-c` given before the command, set by `main_callback` on every invocation
_given_before_command: list[Path | None] = [None]


def _load(path: Path | None, as_json: bool, *, secrets: bool = True) -> Config:
    """Load the configuration (see `chosen_config`), or print every problem and exit 2.

    `secrets=False` for commands that call no platform. The platforms' secrets (keys,
    tokens) are registered with the log redactor, so no log line can show them (passwords in
    state URLs are redacted by their shape).
    """
    try:
        config = load_config(chosen_config(path), secrets=secrets)
    except ConfigError as exc:
        if as_json:
            _echo_json(
                {
                    "ok": False,
                    "problems": [p.as_dict() for p in exc.problems],
                    "warnings": list(exc.warnings),
                }
            )
        else:
            _print_problems(exc)
        raise typer.Exit(EXIT_INVALID) from None
    for platform in config.platforms.values():
        for secret in platform.secrets():
            register_secret(secret)
    return config


def _print_problems(exc: ConfigError) -> None:
    count = len(exc.problems)
    typer.echo(f"{count} problem{'s' if count != 1 else ''} found:", err=False)
    for problem in exc.problems:
        typer.echo(f"  {problem}".replace("\n", "\n  "))
    for warning in exc.warnings:
        typer.echo(f"warning: {warning}")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"segsync {segsync.__version__}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def main_callback(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
    log_format: Annotated[
        LogFormat,
        typer.Option(
            "--log-format",
            envvar="SEGSYNC_LOG_FORMAT",
            help="Logs on stderr: text, or json (one object per line). Secrets are redacted.",
        ),
    ] = LogFormat.TEXT,
    log_level: Annotated[
        str,
        typer.Option(
            "--log-level", envvar="SEGSYNC_LOG_LEVEL", help="debug, info, warning or error."
        ),
    ] = "warning",
    config: ConfigOption = None,
) -> None:
    """Keep contacts, tags, consent and segments consistent across marketing platforms."""
    _given_before_command[0] = config
    if log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        typer.echo(f"--log-level: {log_level!r} is not debug, info, warning or error", err=True)
        raise typer.Exit(EXIT_INVALID)
    configure_logging(log_format, level=log_level)


@app.command("init")
def init_command(
    path: Annotated[
        Path | None,
        typer.Argument(help="Where to write the file (default: $SEGSYNC_CONFIG or segsync.yaml)."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented starter segsync.yaml."""
    path = path or chosen_config(None) or Path(
        os.environ.get("SEGSYNC_CONFIG") or DEFAULT_CONFIG_FILE
    )
    if path.exists() and not force:
        typer.echo(f"{path} already exists; use --force to overwrite it.", err=True)
        raise typer.Exit(EXIT_INVALID)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(starter_config(registry.available()), encoding="utf-8")
    typer.echo(f"Wrote {path}. Next: edit it, then run `segsync check -c {path}`.")


OnlineOption = Annotated[
    bool,
    typer.Option(
        "--online",
        help="Also call every configured platform (needs its secrets): run its checks and "
        "show the account it reaches.",
    ),
]

_UNAVAILABLE_CODES = frozenset(
    {"auth_failed", "platform_unavailable", "tls_failed", "host_unreachable"}
)


def _unavailable(exc: BaseException) -> bool:
    """Whether a failed check means the platform cannot be reached or refuses the
    credentials (exit 4), rather than a configuration it refuses (exit 2)."""
    if isinstance(exc, PlatformUnavailable):
        return True
    if isinstance(exc, ApiError):
        return (
            exc.status in (0, 401, 403, 407, 408, 429)
            or exc.status >= 500
            or (exc.code or "") in _UNAVAILABLE_CODES
        )
    return isinstance(exc, httpx.HTTPError | OSError)


async def _check_platform(
    name: str, connector: Connector, fields: Mapping[str, FieldSpec] | None = None
) -> dict[str, Any]:
    """One platform's online check: `check()`, then its account identity and facts; a
    schema field the account cannot hold (`Connector.unwritable_fields`) fails it."""
    entry: dict[str, Any] = {
        "platform": name, "place": f"platforms.{name}", "ok": True, "identity": None,
        "facts": {}, "error": None, "unavailable": False,
    }
    try:
        await connector.check()
        identity = await connector.account_identity()
        unwritable = await connector.unwritable_fields(fields or {})
    except Exception as exc:  # every failure is reported, with its place
        entry.update(ok=False, error=str(exc), unavailable=_unavailable(exc))
    else:
        entry["identity"] = identity.model_dump() if identity is not None else None
        if unwritable:  # the schema asks what the account cannot hold: left out of writes
            entry.update(ok=False, error="; ".join(u.message for u in unwritable))
    entry["facts"] = connector.account_facts()
    return entry


def online_checks(config: Config) -> list[dict[str, Any]]:
    """Run every enabled platform's `check()` and read its account identity and facts,
    concurrently; one entry per platform (see `_check_platform`)."""

    from segsync.sync.build import build_connectors  # the engine, only when going online

    async def go() -> list[dict[str, Any]]:
        connectors = build_connectors(config)
        try:
            return list(
                await asyncio.gather(
                    *(_check_platform(name, c, config.canonical_schema().fields)
                      for name, c in sorted(connectors.items()))
                )
            )
        finally:
            for connector in connectors.values():
                await connector.aclose()

    return asyncio.run(go())


@app.command("check")
def check_command(
    config: ConfigOption = None, as_json: JsonOption = False, online: OnlineOption = False
) -> None:
    """Validate the configuration, its mappings and every segment rule; exit 2 if invalid.

    With `--online`, also run every platform's checks and show the account it reaches:
    exit 2 when a platform refuses the configuration (a consent list or subscription type
    it lacks), 4 when one cannot be reached or refuses the credentials."""
    loaded = _load(config, as_json, secrets=online)
    source = str(loaded.source or default_config_path())
    results = online_checks(loaded) if online else []
    failed = [r for r in results if not r["ok"]]
    code = EXIT_OK
    if failed:
        code = EXIT_UNAVAILABLE if any(r["unavailable"] for r in failed) else EXIT_INVALID
    if as_json:
        data: dict[str, Any] = {
            "ok": not failed,
            "file": source,
            "problems": [f"{source}: {r['place']}: {r['error']}" for r in failed],
            "warnings": list(loaded.warnings),
            "platforms": sorted(loaded.platforms),
            "segments": sorted(loaded.segments),
        }
        if online:
            data["online"] = results
        _echo_json(data)
        raise typer.Exit(code)
    console = _console()
    for warning in loaded.warnings:
        console.print(f"[yellow]warning:[/yellow] {escape(warning)}")
    console.print(
        f"[green]OK[/green] {source}: {len(loaded.platforms)} platform(s), "
        f"{len(loaded.schema_fields)} field(s), {len(loaded.segments)} segment(s); "
        f"state {loaded.state_display}"
    )
    for r in results:
        name = r["platform"]
        if r["ok"]:
            identity = r["identity"]
            account = (
                AccountIdentity(**identity).describe() if identity is not None
                else "unknown (the connector cannot tell: its state is not bound)"
            )
            console.print(f"[green]OK[/green] {name}: account {escape(account)}")
        else:
            what = "unavailable" if r["unavailable"] else "refused"
            console.print(
                f"[red]error[/red] {name} {what}: {escape(source)}: {r['place']}: "
                f"{escape(str(r['error']))}"
            )
        for label, value in r["facts"].items():
            console.print(f"  {escape(label)}: {escape(str(value))}")
    raise typer.Exit(code)


@config_app.command("schema")
def config_schema_command() -> None:
    """Print the JSON Schema of segsync.yaml (with every installed connector's settings)."""
    _echo_json(config_json_schema())


@config_app.command("reference")
def config_reference_command() -> None:
    """Print the Markdown configuration reference (docs/configuration.md)."""
    typer.echo(render_config_reference(), nl=False)


@segments_app.command("list")
def segments_list_command(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """List the configured segments, their rules and publish modes."""
    loaded = _load(config, as_json, secrets=False)
    rows: list[dict[str, Any]] = [
        {
            "name": name,
            "description": seg.description,
            "rule": to_text(loaded.rule(name)),
            "publish": {p: seg.publish.get(p, PublishMode.AUTO).value for p in loaded.platforms},
        }
        for name, seg in loaded.segments.items()
    ]
    if as_json:
        _echo_json(rows)
        return
    table = Table(title="segments")
    table.add_column("name", style="bold")
    table.add_column("rule")
    table.add_column("publish")
    for row in rows:
        publish = ", ".join(f"{p}: {m}" for p, m in row["publish"].items()) or "-"
        table.add_row(escape(row["name"]), escape(row["rule"]), escape(publish))
    _console().print(table)


def explain_segment(config: Config, name: str) -> dict[str, Any]:
    """What segsync does with one segment: its forms, and per platform the compiled outcome.

    A platform whose connector or compiler is not available is reported as such, never fatal.
    """
    rule = config.rule(name)
    seg = config.segments[name]
    out: dict[str, Any] = {
        "name": name,
        "description": seg.description,
        "text": to_text(rule),
        "ast": json.loads(ast.rule_to_json(rule)),
        "nnf": to_text(normalize.nnf(rule)),
    }
    try:
        out["dnf"] = to_text(normalize.dnf(rule))
    except normalize.NormalFormTooLarge as exc:
        out["dnf"] = None
        out["dnf_error"] = str(exc)
    platforms: dict[str, Any] = {}
    for platform in list(config.platforms) or registry.names():
        mode = seg.publish.get(platform, PublishMode.AUTO)
        platforms[platform] = _compile_for(config, platform, name, rule, mode)
    out["platforms"] = platforms
    return out


def explain_person(
    config: Config, name: str, email: str, *, now: dt.datetime | None = None,
    store: StateStore | None = None,
) -> dict[str, Any]:
    """One person against segment `name`, from the state: the verdict and, per condition,
    the value, whether it holds, and whose facts decided it (`canonical` for a synced field;
    the platform(s) for engagement, see `segsync.engagement.decided_by`)."""
    rule = config.rule(name)
    schema = config.canonical_schema()
    key = normalize_email(email)
    scope = config_name({p: c for p, c in config.platforms.items() if c.enabled})
    owned = store is None
    store = store if store is not None else open_store(config.state_url)
    try:
        cid = store.cids_by_email(scope, [key]).get(key)
        if cid is None:
            return {"segment": name, "email": key, "known": False}
        canonical, bases, _ = store.load(scope, [cid])
        held = store.members(scope, [cid]).get(cid, {})
    finally:
        if owned:
            store.close()
    view = CanonicalView.loads(canonical[cid][0])
    live = {p: PlatformRecord.loads(row.payload)
            for p, row in bases.get(cid, {}).items() if not row.deleted}
    contact = contact_of(view, live, schema)
    when = now or dt.datetime.now(dt.UTC)
    engagement = {p: record.facts for p, record in live.items()}
    conditions = []
    for leaf in rule_leaves(rule):
        field = getattr(leaf, "field", "")
        _, value = read_value(contact, field, schema)
        is_engagement = field in ENGAGEMENT_FIELDS or split_qualified(field) is not None
        conditions.append({
            "condition": to_text(leaf),
            "value": jsonify(value),
            "holds": evaluate(leaf, contact, now=when, schema=schema),
            "decided_by": decided_by(field, engagement) if is_engagement else ["canonical"],
        })
    return {
        "segment": name, "email": key, "known": True,
        "member": evaluate(rule, contact, now=when, schema=schema),
        "platforms": sorted(live), "conditions": conditions,
        # where segsync's materialised copy of the segment holds the person now (a platform
        # may hold fewer than the rule selects: only the people its consent rules allow)
        "materialised_on": sorted(p for p, names in held.items() if name in names),
    }


def rule_leaves(rule: ast.Rule) -> list[ast.Rule]:
    """The conditions of a rule, left to right."""
    if isinstance(rule, ast.And | ast.Or):
        return [leaf for item in rule.items for leaf in rule_leaves(item)]
    if isinstance(rule, ast.Not):
        return rule_leaves(rule.item)
    return [] if isinstance(rule, ast.Const) else [rule]


@contextlib.contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    """Silence a logger whose messages the command prints itself (diagnostics)."""
    logger = logging.getLogger(logger_name)
    previous = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = previous


def _mapping_or_none(config: Config, platform: str) -> PlatformMapping | None:
    """The platform's mapping as the config sets it, or None when the connector ships none."""
    try:
        return config.mapping_for(platform)
    except FileNotFoundError:
        return None


def _compile_for(
    config: Config, platform: str, name: str, rule: ast.Rule, mode: PublishMode
) -> dict[str, Any]:
    result: dict[str, Any] = {"publish": mode.value}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            connector = registry.get(platform)
        block = config.platforms.get(platform)
        compiler = connector.build_compiler(
            config.canonical_schema(),
            strictness=config.sync.strictness,
            config=block if isinstance(block, connector.config_model) else None,
            mapping=_mapping_or_none(config, platform),
        )
        if compiler is None:
            result["status"] = "unavailable: the connector has no rule compiler"
            return result
        with warnings.catch_warnings(), _quiet("segsync.compiler"):
            warnings.simplefilter("ignore")
            compiled = compiler.compile(name, rule, mode)
    except RuleCompileError as exc:
        result["status"] = f"refused: {exc}"
        return result
    except Exception as exc:  # a connector under construction must not break `explain`
        result["status"] = f"unavailable: {type(exc).__name__}: {exc}"
        return result
    result["status"] = compiled.mode
    result["definition"] = dict(compiled.definition) if compiled.definition else None
    if compiled.residual is not None:
        result["residual"] = to_text(compiled.residual)
        result["residual_tag"] = compiled.residual_tag
    result["diagnostics"] = [d.as_dict() for d in compiled.diagnostics]
    return result


@segments_app.command("explain")
def segments_explain_command(
    name: Annotated[str, typer.Argument(help="The segment's name.")],
    config: ConfigOption = None,
    as_json: JsonOption = False,
    email: Annotated[str | None, typer.Option(
        "--email", help="Also explain this person's membership from the state: each "
        "condition's value and whose facts decided it.")] = None,
) -> None:
    """Show a segment's rule as parsed and normalised, and what each platform would do."""
    loaded = _load(config, as_json, secrets=email is not None)
    if name not in loaded.segments:
        known = ", ".join(sorted(loaded.segments)) or "none"
        typer.echo(f"no segment called {name!r} (configured: {known})", err=True)
        raise typer.Exit(EXIT_INVALID)
    if email is not None:
        try:
            person = explain_person(loaded, name, email)
        except (InvalidEmail, StoreError) as exc:
            typer.echo(f"cannot explain {email!r}: {exc}", err=True)
            raise typer.Exit(EXIT_INVALID) from None
        if as_json:
            _echo_json(person)
            return
        _print_person(person)
        return
    report = explain_segment(loaded, name)
    if as_json:
        _echo_json(report)
        return
    console = _console()
    description = report["description"]
    console.print(f"[bold]segment {escape(name)}[/bold]"
                  + (f": {escape(description)}" if description else ""))
    console.print(f"[bold]rule[/bold]  {escape(report['text'])}")
    console.print(f"[bold]NNF[/bold]   {escape(report['nnf'])}")
    console.print(f"[bold]DNF[/bold]   {escape(report['dnf'] or report.get('dnf_error', ''))}")
    console.print("[bold]AST[/bold]")
    typer.echo(json.dumps(report["ast"], indent=2))
    for platform, outcome in report["platforms"].items():
        console.print(f"[bold]{escape(platform)}[/bold] (publish: {outcome['publish']}): "
                      f"{escape(outcome['status'])}")
        for diag in outcome.get("diagnostics", []):
            typer.echo(f"  {diag['step']} [{diag['level']}] {diag['message']}")
        if outcome.get("residual"):
            typer.echo(f"  residual materialised as tag {outcome['residual_tag']!r}: "
                       f"{outcome['residual']}")
        if outcome.get("definition"):
            typer.echo("  " + json.dumps(outcome["definition"], sort_keys=True))


def _print_person(person: dict[str, Any]) -> None:
    console = _console()
    if not person["known"]:
        console.print(f"{escape(person['email'])}: not in the state (run a sync first)")
        return
    verdict = "member" if person["member"] else "not a member"
    console.print(f"[bold]{escape(person['email'])}[/bold] is {verdict} of "
                  f"{escape(person['segment'])} by its rule (records on "
                  f"{', '.join(person['platforms'])})")
    held = person.get("materialised_on", [])
    typer.echo("  in segsync's materialised copy on: "
               f"{', '.join(held) if held else 'none'} (native segments are evaluated by the "
               "platform; a platform holds only the people its consent rules allow)")
    for cond in person["conditions"]:
        mark = "yes" if cond["holds"] else "no"
        shown = "unset" if cond["value"] is None else json.dumps(cond["value"])
        who = ", ".join(cond["decided_by"]) or "no platform has data"
        typer.echo(f"  {mark:3} {cond['condition']}  (value {shown}; from {who})")
