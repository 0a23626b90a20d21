"""segsync CLI: `plan`, `apply`, `sync`, `status` — thin over `segsync.sync.Engine`.

Exit codes (segsync.cli): 0 ok, 1 per-record errors, 2 invalid configuration or input (a
stale or unreadable plan), 3 the run lock is held by another run, 4 a platform unavailable
or refusing the credentials, 5 a platform bound to another account, 130/143 interrupted by
SIGINT/SIGTERM; the highest that applies wins. Platform-level failures and interruptions
are said on stderr in every output mode (with `--json`, stdout holds the report and its
`exit_code`).

SIGTERM or SIGINT during `sync` or `apply` stops taking new batches; those in flight finish
and are recorded, the run is stored as `interrupted` and its report printed. A second
signal ends the process at once. `status` shows a run whose process died as `abandoned`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from segsync.cli import (
    EXIT_ACCOUNT,
    EXIT_INVALID,
    EXIT_LOCKED,
    EXIT_OK,
    EXIT_RECORD_ERRORS,
    EXIT_SIGNAL_BASE,
    EXIT_UNAVAILABLE,
    app,
)
from segsync.cli.core import (
    ConfigOption,
    FullRefreshOption,
    JsonOption,
    LimitOption,
    SelectOption,
    _echo_json,
    _load,
    describe_cursor,
    failure,
    state_status,
)
from segsync.http import PLATFORM_FAILURE_CODES
from segsync.logs import LogFormat, active_format
from segsync.state import RunLocked, StoreError
from segsync.sync.build import ScopeError, build_engine, run_scope
from segsync.sync.engine import Engine, RunReport
from segsync.sync.plan import Plan, PlanStale, RecordError
from segsync.sync.progress import progress_for
from segsync.sync.report import errors_format, write_errors

__all__ = ["exit_code", "render_report"]

ACCOUNT_CODES = frozenset({"account_mismatch"})
"""Error codes of a platform bound to another account (exit 5)."""

UNAVAILABLE_CODES = PLATFORM_FAILURE_CODES | {"read_failed"}
"""Error codes of a platform that sat the run (or the rest of it) out (exit 4)."""

CONFIG_CODES = frozenset({"check_failed"})
"""Error codes of a platform setting its check refused (exit 2)."""

_SIGNALS = (signal.SIGINT, signal.SIGTERM)

T = TypeVar("T")

WaitOption = Annotated[
    bool, typer.Option("--wait", help="Wait for a run of the same configuration to finish.")
]
ErrorsOutOption = Annotated[
    Path | None,
    typer.Option("--errors-out", dir_okay=False,
                 help="Also write every record error of the run to this file: .csv or .jsonl "
                 "(run_id, platform, email, platform_id, code, field, message)."),
]

log = logging.getLogger("segsync.cli")


def checked_errors_out(path: Path | None, as_json: bool) -> Path | None:
    """`path` when it can take an errors export (a .csv or .jsonl file in a directory that
    exists); otherwise a usage error, exit 2, before anything else happens."""
    if path is None:
        return None
    try:
        errors_format(path)
    except ValueError as exc:
        raise failure(as_json, "invalid", str(exc), EXIT_INVALID) from None
    if not path.parent.is_dir():
        raise failure(as_json, "invalid", f"--errors-out {path}: the directory {path.parent} "
                      "does not exist", EXIT_INVALID)
    return path


def export_errors(path: Path | None, run_id: str, errors: Sequence[Any], as_json: bool) -> None:
    """Write the errors export (`checked_errors_out` path), said on stderr in text mode."""
    if path is None:
        return
    try:
        count = write_errors(path, run_id, errors)
    except OSError as exc:
        typer.echo(f"error: --errors-out {path}: {exc}", err=True)
        return
    if not as_json:
        typer.echo(f"{count} record error(s) of run {run_id} written to {path}", err=True)


def _shows_progress(as_json: bool) -> bool:
    """Progress is shown unless the output is machine-read (`--json`, `--log-format json`)."""
    return not as_json and active_format() is not LogFormat.JSON


def _catch_signals(engine: Engine) -> Callable[[], None]:
    """Route SIGINT/SIGTERM to `engine.interrupt` (a second one ends the process at once);
    returns the undo. A no-op where the loop cannot take signal handlers."""
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []

    def on_signal(signum: signal.Signals) -> None:
        if engine.interrupt.is_set():  # asked twice: stop now, the default way
            undo()
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        engine.interrupt.set(int(signum))
        typer.echo(f"segsync: {signum.name} received: finishing the requests in flight, then "
                   "stopping (send it again to stop at once)", err=True)

    def undo() -> None:
        for sig in installed:
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
        installed.clear()

    for sig in _SIGNALS:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, on_signal, sig)
            installed.append(sig)
    return undo


def _run(config_path: Path | None, as_json: bool, wait: bool,
         work: Callable[[Engine], Awaitable[T]], *, progress: bool = False,
         interruptible: bool = False, prune: bool = False,
         select: Sequence[str] = (), limit: int | None = None, full_refresh: bool = False) -> T:
    """Build the engine, run `work`, close everything; map failures to exit codes.

    With `prune` (a run was made), the runs past the configured history (`history`) are
    forgotten afterwards.

    With `progress` (and no machine output), the run's progress is shown on stderr: bars
    on a terminal, plain throttled lines otherwise (segsync.sync.progress). With
    `interruptible`, SIGINT/SIGTERM interrupt the run gracefully (`_catch_signals`).
    """
    config = _load(config_path, as_json)
    try:  # --select, --limit, --full-refresh (segsync.sync.pull.RunScope)
        scope = run_scope(config, select, limit=limit, full_refresh=full_refresh)
    except ScopeError as exc:
        raise failure(as_json, "invalid", str(exc), EXIT_INVALID) from None
    if prune:
        run_work = work

        async def work(engine: Engine) -> T:
            done = await run_work(engine)
            _prune_history(engine, config)
            return done

    async def go() -> T:
        engine = build_engine(config, wait=wait, scope=scope)
        undo = _catch_signals(engine) if interruptible else (lambda: None)
        try:
            if not (progress and _shows_progress(as_json)):
                return await work(engine)
            display = progress_for(engine.connectors, Console(stderr=True), clock=engine.clock)
            engine.progress = display
            with display:
                return await work(engine)
        finally:
            undo()
            for connector in engine.connectors.values():
                await connector.aclose()
            engine.store.close()

    try:
        return asyncio.run(go())
    except RunLocked as exc:
        raise failure(as_json, "locked", str(exc), EXIT_LOCKED) from None
    except (PlanStale, StoreError, ScopeError) as exc:
        raise failure(as_json, "invalid", str(exc), EXIT_INVALID) from None


def _prune_history(engine: Engine, config: Any) -> None:
    """Forget the runs past the configured `history` (never fails the command)."""
    history = config.history
    before = None
    if history.keep_days is not None:
        before = (engine.clock.now() - dt.timedelta(days=history.keep_days)).isoformat()
    try:
        engine.state.prune_runs(keep_runs=history.keep_runs, before=before)
    except StoreError as exc:
        log.warning("forgetting old runs failed: %s", exc)


def render_report(report: RunReport) -> str:
    """A run report as text: one line per platform, then the errors."""
    lines = [f"run {report.run_id}: {report.status} in {report.duration_s:.1f}s"]
    for name, r in report.platforms.items():
        lines.append(
            f"  {name}: read {r.read}, created {r.created}, updated {r.updated}, "
            f"unchanged {r.unchanged}, tags +{r.tags_added}/-{r.tags_removed}, "
            f"members +{r.members_added}/-{r.members_removed}, consent {r.consent_changes}, "
            f"archived {r.archived}, deleted {r.deleted}, erased {r.erased}, "
            f"errors {r.errors}, API calls {r.api_calls}"
        )
    for error in report.errors[:20]:
        who = error.email or error.platform_id or "(platform)"
        lines.append(f"  ! [{error.platform}] {who}: {error.message}")
    if len(report.errors) > 20:
        lines.append(f"  ... and {len(report.errors) - 20} more errors (every one: "
                     f"`segsync runs show {report.run_id}` or --errors-out FILE)")
    # what the user must know of that is no record error (a record found deleted by a
    # write, relinked, an erased person): the warnings, as `runs show` lists them
    warnings = [d for d in report.diagnostics if d.get("level") == "warning"]
    for diag in warnings[:20]:
        lines.append(f"  ~ [{diag.get('platform') or ''}] {diag.get('message')}")
    if len(warnings) > 20:
        lines.append(f"  ... and {len(warnings) - 20} more warnings "
                     f"(`segsync runs show {report.run_id}`)")
    return "\n".join(lines)


def _errors_code(errors: Sequence[RecordError]) -> int:
    codes = [EXIT_OK]
    for error in errors:
        if error.code in ACCOUNT_CODES:
            codes.append(EXIT_ACCOUNT)
        elif error.code in UNAVAILABLE_CODES:
            codes.append(EXIT_UNAVAILABLE)
        elif error.code in CONFIG_CODES:
            codes.append(EXIT_INVALID)
        else:
            codes.append(EXIT_RECORD_ERRORS)
    return max(codes)


def exit_code(report: RunReport) -> int:
    """The exit code of a run (segsync.cli): the highest that applies."""
    code = _errors_code(report.errors)
    if report.status == "interrupted":
        code = max(code, EXIT_SIGNAL_BASE + (report.interrupted_by or signal.SIGTERM))
    return code


def _say_platform_failures(errors: Sequence[RecordError]) -> None:
    """Platform-level failures on stderr, whatever stdout holds (with JSON logs, as JSON
    error records: stderr stays JSON lines)."""
    for error in errors:
        if error.code in ACCOUNT_CODES | UNAVAILABLE_CODES | CONFIG_CODES:
            if active_format() is LogFormat.JSON:
                log.error("%s", error.message, extra={
                    "platform": error.platform, "code": error.code, "event": "platform_failed",
                })
            else:
                typer.echo(f"error: [{error.platform}] {error.message}", err=True)


def _report_exit(report: RunReport, as_json: bool, errors_out: Path | None = None) -> None:
    code = exit_code(report)
    export_errors(errors_out, report.run_id, report.errors, as_json)
    if as_json:
        _echo_json({**report.model_dump(mode="json"), "exit_code": code})
    else:
        typer.echo(render_report(report))
    _say_platform_failures(report.errors)
    if report.status == "interrupted":
        name = signal.Signals(report.interrupted_by or signal.SIGTERM).name
        typer.echo(f"segsync: run {report.run_id} interrupted by {name}: what was confirmed "
                   "is recorded, the rest is done by the next run", err=True)
    raise typer.Exit(code)


@app.command("plan")
def plan_command(
    config: ConfigOption = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Save the plan to this file.", dir_okay=False)
    ] = None,
    as_json: JsonOption = False,
    select: SelectOption = None,
    limit: LimitOption = None,
    full_refresh: FullRefreshOption = False,
) -> None:
    """Pull every platform and show the writes a sync would make (nothing is written), and
    the choices each connector made about its account (e.g. the consent subscription type).

    `--select` and `--limit` make it small (docs/quickstart.md, "First run against a real
    account"); `--full-refresh` reads everything again and reports what differed."""
    facts: dict[str, dict[str, str]] = {}

    async def planned(engine: Engine) -> Plan:
        made = await engine.plan()
        facts.update({name: c.account_facts() for name, c in engine.connectors.items()})
        return made

    plan = _run(config, as_json, False, planned, progress=True, select=select or (),
                limit=limit, full_refresh=full_refresh)
    if out is not None:
        out.write_text(plan.to_json(), encoding="utf-8")
    if as_json:
        typer.echo(plan.to_json())
    else:
        typer.echo(plan.render())
        for name, found in sorted(facts.items()):
            for label, value in found.items():
                typer.echo(f"{name}: {label}: {value}")
        if out is not None:
            typer.echo(f"saved to {out}; apply it with `segsync apply {out}`")
    _say_platform_failures(plan.errors)
    raise typer.Exit(_errors_code(plan.errors))


@app.command("apply")
def apply_command(
    plan_file: Annotated[Path, typer.Argument(help="A plan saved by `segsync plan --out`.")],
    config: ConfigOption = None,
    wait: WaitOption = False,
    as_json: JsonOption = False,
    errors_out: ErrorsOutOption = None,
) -> None:
    """Apply a saved plan exactly (refused when records it writes moved since it was made)."""
    errors_out = checked_errors_out(errors_out, as_json)
    try:
        plan = Plan.from_json(plan_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise failure(as_json, "invalid", f"cannot read the plan {plan_file}: {exc}",
                      EXIT_INVALID) from None
    report = _run(config, as_json, wait, lambda engine: engine.apply(plan), progress=True,
                  interruptible=True, prune=True)
    _report_exit(report, as_json, errors_out)


@app.command("sync")
def sync_command(
    config: ConfigOption = None,
    wait: WaitOption = False,
    as_json: JsonOption = False,
    errors_out: ErrorsOutOption = None,
    select: SelectOption = None,
    limit: LimitOption = None,
    full_refresh: FullRefreshOption = False,
) -> None:
    """Pull, reconcile, plan and apply, under the run lock (`--select`, `--limit` and
    `--full-refresh` as for `plan`)."""
    errors_out = checked_errors_out(errors_out, as_json)
    report = _run(config, as_json, wait, lambda engine: engine.sync(), progress=True,
                  interruptible=True, prune=True, select=select or (), limit=limit,
                  full_refresh=full_refresh)
    _report_exit(report, as_json, errors_out)


@app.command("status")
def status_command(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """The state: contacts, cursors (as times), owned objects, the latest runs, the erasures
    owed and the standing problems (duplicates, erased people held again). Calls no
    platform: needs no API key."""
    loaded = _load(config, as_json, secrets=False)
    try:
        data = state_status(loaded)
    except StoreError as exc:
        raise failure(as_json, "invalid", str(exc), EXIT_INVALID) from None
    if as_json:
        _echo_json(data)
        raise typer.Exit(EXIT_OK)
    counts = data["counts"]
    typer.echo(f"state {data['state']} (schema v{data['schema_version']}), "
               f"configuration {data['config']!r}")
    typer.echo(f"  {counts['contacts']} contacts ({counts['dirty']} to retry), "
               f"{counts['records']} platform records, {counts['owned']} owned objects, "
               f"{counts['ledger']} consent changes recorded")
    now = dt.datetime.now(dt.UTC)
    for platform, cursor in data["cursors"].items():
        typer.echo(f"  {platform}: {describe_cursor(cursor, now)}")
    for run in data["runs"]:
        report = run["report"] or {}
        errors = len(report.get("errors", []))
        typer.echo(f"  run {run['run_id']} {run['status']} at {run['started_at']}"
                   f" ({errors} errors)")
    if not data["runs"]:
        typer.echo("  no runs yet")
    owed = data["erasures_owed"]
    if owed:
        typer.echo(f"  {len(owed)} erasure(s) not confirmed yet (each run reaching the "
                   "platform performs them):")
    for e in owed:
        typer.echo(f"    [{e['platform']}] {e['tombstone'][:22]}... since {e['since']}: "
                   f"{e['error']}")
    standing = data["standing"]
    if standing:
        typer.echo(f"  {len(standing)} standing problem(s) (every run reports them until a "
                   "read no longer finds them):")
    for problem in standing:
        typer.echo(f"    ! [{problem['platform']}] {problem['message']}")
    raise typer.Exit(EXIT_OK)

