"""`segsync doctor [--json]`: a read-only preflight of the configured accounts before a
first sync (a superset of `segsync check --online`).

Per enabled platform, concurrently, reading only (GET, and POST searches that read):

- the account the credentials reach (`Connector.account_identity`) and whether it is the
  account the state is bound to (a SQLite state file that does not exist yet is not created:
  nothing is bound);
- `Connector.check()` (the audience/list, the consent subscription type or lists) and
  `account_facts()` (e.g. the subscription type segsync will manage);
- `Connector.preflight()`: the connector's own read-only facts (scopes the token lacks,
  consent lists, subscription types), each with the problem that blocks a first sync;
- what segsync would create on the first apply (`Connector.planned_objects` for the schema's
  fields and the segments' native definitions);
- the rate-limit headroom the platform reports in `Connector.rate_limit_headers`;
- the audience size (`Connector.audience_size`) and the first sync's calls and time
  (`Connector.estimate`).

Exit 0 when every platform is ready; else the highest of 2 (a setting the platform refuses,
config), 4 (unreachable, or refusing the credentials or a scope), 5 (bound to another
account), with every blocking problem named by its place.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import typer
from rich.markup import escape

from segsync.cli import EXIT_ACCOUNT, EXIT_INVALID, EXIT_OK, EXIT_UNAVAILABLE, app
from segsync.cli.core import (
    ConfigOption,
    JsonOption,
    _console,
    _echo_json,
    _load,
    _unavailable,
)
from segsync.config import Config
from segsync.connector import Connector

__all__ = ["PlatformReport", "diagnose", "doctor_command"]

EXIT_BY_KIND = {"invalid": EXIT_INVALID, "unavailable": EXIT_UNAVAILABLE, "account": EXIT_ACCOUNT}


@dataclasses.dataclass
class PlatformReport:
    """What doctor found on one platform; `problems` are (kind, message), kind one of
    `EXIT_BY_KIND`."""

    platform: str
    place: str
    identity: str | None = None
    bound_to: str | None = None
    facts: list[dict[str, str]] = dataclasses.field(default_factory=list)
    creates: list[str] = dataclasses.field(default_factory=list)
    headroom: dict[str, str] = dataclasses.field(default_factory=dict)
    audience_size: int | None = None
    estimate: dict[str, Any] | None = None
    #: the engagement refresh: whether it runs and its cost (None: unknown)
    engagement: str | None = None
    problems: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)

    @property
    def ready(self) -> bool:
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["ready"] = self.ready
        data["problems"] = [
            {"kind": kind, "message": f"{self.place}: {message}"} for kind, message in self.problems
        ]
        return data


def _kind(exc: BaseException) -> str:
    return "unavailable" if _unavailable(exc) else "invalid"


def _watch_headers(connector: Connector, names: tuple[str, ...], seen: dict[str, str]) -> None:
    """Keep the last value of each rate-limit header in `names` the connector's HTTP client
    receives (a response hook on its httpx client; nothing is sent)."""
    client = getattr(getattr(connector, "client", None), "_client", None)
    if not names or not isinstance(client, httpx.AsyncClient):
        return

    async def hook(response: httpx.Response) -> None:
        for name in names:
            value = response.headers.get(name)
            if value is not None:
                seen[name] = value

    client.event_hooks["response"] = [*client.event_hooks["response"], hook]


def _compiled(
    config: Config, connector: Connector
) -> list[tuple[str, str, Mapping[str, Any] | None]]:
    """Each configured segment as this platform would publish it: (segment, kind, native
    definition), kind `native` or `static`."""
    compiler = connector.compiler(config.sync.strictness)
    out: list[tuple[str, str, Mapping[str, Any] | None]] = []
    for segment_name in config.segments:
        definition = None
        if compiler is not None:
            compiled = compiler.compile(segment_name, config.rule(segment_name))
            if compiled.mode in ("native", "split"):
                definition = compiled.definition
        out.append((segment_name, "static" if definition is None else "native", definition))
    return out


async def _platform(
    config: Config, name: str, connector: Connector, bound: tuple[str, str] | None
) -> PlatformReport:
    report = PlatformReport(platform=name, place=f"platforms.{name}")
    _watch_headers(connector, type(connector).rate_limit_headers, report.headroom)
    try:
        identity = await connector.account_identity()
    except Exception as exc:  # unreachable or refused: nothing else can be read
        report.problems.append((_kind(exc), f"cannot read the account: {exc}"))
        return report
    if identity is not None:
        report.identity = identity.describe()
    if bound is not None:
        report.bound_to = bound[1]
        if identity is not None and identity.id != bound[0]:
            report.problems.append((
                "account",
                f"the state is bound to account {bound[1]}, but the configuration reaches "
                f"account {identity.describe()}; fix: point the configuration back at it, or "
                f"adopt this account with `segsync rebind {name}`",
            ))
    checked = True
    try:
        await connector.check()
    except Exception as exc:  # each refusal is a blocking problem, with the place
        report.problems.append((_kind(exc), str(exc)))
        checked = False
    try:
        items = await connector.preflight()
    except Exception as exc:  # after a failed check, the same cause: said once
        if checked:
            report.problems.append((_kind(exc), f"preflight reads failed: {exc}"))
        items = []
    report.facts = [{"label": k, "value": v} for k, v in connector.account_facts().items()]
    for item in items:
        report.facts.append({"label": item.label, "value": item.value})
        if item.problem is not None:
            kind = "unavailable" if item.unavailable else "invalid"
            if not any(item.problem in said for _, said in report.problems):  # said once
                report.problems.append((kind, item.problem))
    if not checked:
        return report
    try:  # a schema field the account cannot hold is left out of writes there
        for unwritable in await connector.unwritable_fields(config.canonical_schema().fields):
            report.problems.append(("invalid", unwritable.message))
    except Exception as exc:
        report.warnings.append(f"could not compare the schema with the account: {exc}")
    try:
        segments = _compiled(config, connector)
        report.creates = await connector.planned_objects(
            config.canonical_schema().fields, [], [d for _, _, d in segments if d is not None]
        )
        for segment, kind, _ in segments:
            named, note = await connector.creation_name(kind, segment)
            report.creates.append(
                f"segment {segment}: {kind} {named!r}" + (f" ({note})" if note else "")
            )
    except Exception as exc:  # the report says it could not tell
        report.warnings.append(f"could not list what the first apply creates: {exc}")
    try:
        report.audience_size = await connector.audience_size()
    except Exception as exc:
        report.warnings.append(f"could not read the audience size: {exc}")
    if report.audience_size is not None:
        report.estimate = connector.estimate(report.audience_size).model_dump()
        report.engagement = _engagement(config, name, connector, report.audience_size)
    return report


def _engagement(config: Config, name: str, connector: Connector, size: int) -> str | None:
    """The engagement refresh's cost for `size` contacts and whether it runs (None: the
    connector does not tell its cost)."""
    estimate = getattr(connector, "engagement_estimate", None)
    if estimate is None:
        return None
    cost = estimate(size)
    said = f"about {cost.calls} calls, {_duration(cost.seconds)} at best"
    by_default = type(connector).engagement_refresh_by_default
    period = config.engagement.period(name, by_default)
    if period is None:
        return (f"engagement: not read (engagement.platforms.{name} is off); turned on, "
                f"a full refresh costs {said}")
    return f"engagement refresh (the first sync's too, every {period}): {said}"


def _bindings(config: Config, names: list[str]) -> dict[str, tuple[str, str]]:
    """The account each platform's state is bound to: (id, description). Reads only: a
    SQLite state file that does not exist is not created."""
    from segsync.state import open_store
    from segsync.sync.binding import _named
    from segsync.sync.build import config_name

    url = config.state_url
    if url.startswith("sqlite://"):
        path = url.removeprefix("sqlite://")
        path = path.removeprefix("/") if path.startswith("/") else path
        if path == ":memory:" or not Path(path).exists():
            return {}
    store = open_store(url)
    try:
        state = store.scoped(config_name(dict.fromkeys(names)))
        out: dict[str, tuple[str, str]] = {}
        for name in names:
            binding = state.binding(name)
            if binding is not None and binding.account_id is not None:
                out[name] = (binding.account_id, _named(binding.account_id, binding.label))
        return out
    finally:
        store.close()


def diagnose(
    config: Config, *, transports: Mapping[str, httpx.AsyncBaseTransport] | None = None
) -> list[PlatformReport]:
    """Doctor every enabled platform of `config`, concurrently; one report each, sorted."""
    from segsync.sync.build import build_connectors  # the engine, only when going online

    async def go() -> list[PlatformReport]:
        connectors = build_connectors(config, transports=transports)
        bound = _bindings(config, list(connectors))
        try:
            return list(await asyncio.gather(*(
                _platform(config, name, c, bound.get(name))
                for name, c in sorted(connectors.items())
            )))
        finally:
            for connector in connectors.values():
                await connector.aclose()

    return asyncio.run(go())


def exit_code(reports: list[PlatformReport]) -> int:
    """The highest exit code the problems found call for (0: ready)."""
    return max((EXIT_BY_KIND[k] for r in reports for k, _ in r.problems), default=EXIT_OK)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


@app.command("doctor")
def doctor_command(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Read-only preflight of every configured account before a first sync (a superset of
    `check --online`): credentials and scopes, the account and its binding, audiences,
    consent settings, what segsync would create, rate-limit headroom, audience sizes and
    the first sync's cost. Writes nothing. Exit 0 ready; 2 a setting refused; 4 unreachable
    or refused credentials/scopes; 5 bound to another account."""
    loaded = _load(config, as_json, secrets=True)
    reports = diagnose(loaded)
    code = exit_code(reports)
    if as_json:
        _echo_json({
            "ok": code == EXIT_OK,
            "exit_code": code,
            "platforms": [r.as_json() for r in reports],
            "warnings": list(loaded.warnings),
        })
        raise typer.Exit(code)
    console = _console()
    for warning in loaded.warnings:
        console.print(f"[yellow]warning:[/yellow] {escape(warning)}")
    for r in reports:
        status = "[green]ready[/green]" if r.ready else "[red]not ready[/red]"
        console.print(f"{status} {r.platform}: account {escape(r.identity or 'unknown')}")
        console.print(
            f"  state binding: {escape(r.bound_to) if r.bound_to else 'not bound yet'}"
        )
        for fact in r.facts:
            console.print(f"  {escape(fact['label'])}: {escape(fact['value'])}")
        for line in r.creates:
            console.print(f"  first apply creates: {escape(line)}")
        if r.headroom:
            shown = ", ".join(f"{k}={v}" for k, v in sorted(r.headroom.items()))
            console.print(f"  rate-limit headroom: {escape(shown)}")
        if r.audience_size is not None and r.estimate is not None:
            console.print(
                f"  contacts: {r.audience_size}; first sync about "
                f"{r.estimate['calls']} calls, {_duration(r.estimate['seconds'])} at best"
            )
            for note in r.estimate["notes"]:
                console.print(f"    {escape(note)}")
        if r.engagement is not None:
            console.print(f"  {escape(r.engagement)}")
        for warning in r.warnings:
            console.print(f"  [yellow]warning:[/yellow] {escape(warning)}")
        for _, message in r.problems:
            console.print(f"  [red]problem[/red] {escape(r.place)}: {escape(message)}")
    console.print(_summary(reports))
    raise typer.Exit(code)


def _summary(reports: list[PlatformReport]) -> str:
    """The last line: what to do next."""
    blocked = [r for r in reports if not r.ready]
    if not blocked:
        return (f"[green]ready[/green]: {len(reports)} platform(s), nothing written; "
                "next: `segsync plan` shows what a first sync would write")
    count = sum(len(r.problems) for r in blocked)
    names = ", ".join(r.platform for r in blocked)
    return (f"[red]not ready[/red]: {count} blocking problem(s) on {escape(names)}; fix "
            "each one named above, then run `segsync doctor` again")
