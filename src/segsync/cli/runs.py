"""segsync CLI: `runs` — the history of runs kept in the state, and `runs show ID`.

`segsync runs [--limit N] [--json]` lists the latest runs of the configuration, newest first:
id, start, end, status (`ok`, `errors`, `failed`, `interrupted`, `running`, `abandoned`: its
process died), and per platform the API calls, records read, writes and record errors.
`segsync runs show ID [--json] [--errors-out FILE]` prints a run's report again with every
record error and diagnostic; ID may be a unique prefix of the id. Neither needs the
platforms' secrets. How many runs are kept is the configuration's `history`.

Exit codes: 0 done; 2 invalid configuration or input (an unknown or ambiguous id, with the
latest ids listed; an `--errors-out` name that is not .csv or .jsonl).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import typer

from segsync.cli import EXIT_INVALID, EXIT_OK, app
from segsync.cli.core import ConfigOption, JsonOption, _echo_json, _load, failure
from segsync.cli.sync import ErrorsOutOption, checked_errors_out, export_errors
from segsync.clock import SystemClock
from segsync.config import Config
from segsync.state import StoreError, open_store
from segsync.state.scoped import ConfigState
from segsync.sync.build import config_name
from segsync.sync.lock import RunLock

__all__ = ["platform_totals", "runs_app"]

runs_app = typer.Typer(
    help="The history of runs: list them, show one again with every record error.",
    invoke_without_command=True,
)
app.add_typer(runs_app, name="runs")

LATEST_SHOWN = 5
"""How many latest ids an unknown id's error lists."""


def _name(cfg: Config) -> str:
    """The configuration's name in the state (its enabled platforms)."""
    return config_name({n: p for n, p in cfg.platforms.items() if getattr(p, "enabled", True)})


def platform_totals(report: Mapping[str, Any] | None) -> dict[str, dict[str, int]]:
    """Per platform of a stored report: API `calls`, records `read`, `writes` (records
    created or updated, membership changes, publications) and record `errors`. A platform
    that failed as a whole is there with its errors, also in a report stored without its
    entry (its errors are counted from the report's)."""
    totals: dict[str, dict[str, int]] = {}
    stored: Mapping[str, Any] = (report or {}).get("platforms") or {}
    for name, counts in stored.items():
        totals[name] = {
            "calls": int(counts.get("api_calls", 0)),
            "read": int(counts.get("read", 0)),
            "writes": sum(int(counts.get(k, 0)) for k in (
                "created", "updated", "members_added", "members_removed", "publications")),
            "errors": int(counts.get("errors", 0)),
        }
    for error in (report or {}).get("errors") or ():
        name = str(error.get("platform") or "") if isinstance(error, Mapping) else ""
        if name and name not in stored:
            entry = totals.setdefault(name, {"calls": 0, "read": 0, "writes": 0, "errors": 0})
            entry["errors"] += 1
    return totals


def _summary(run: Mapping[str, Any]) -> dict[str, Any]:
    report = run.get("report") or {}
    return {
        "run_id": run["run_id"], "started_at": run["started_at"],
        "finished_at": run["finished_at"], "status": run["status"],
        "plan_id": report.get("plan_id"), "duration_s": report.get("duration_s"),
        "platforms": platform_totals(report),
    }


def _settled(state: ConfigState, runs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """`runs` with a `running` run whose process died shown `abandoned`."""
    return RunLock(state, SystemClock(), wait=False, poll=1.0, timeout=None).settle(runs)


def _state_call(cfg: Config, as_json: bool, work: Any) -> Any:
    """`work(state)` on the configuration's state; an unusable state exits 2."""
    try:
        with open_store(cfg.state_url) as store:
            return work(store.scoped(_name(cfg)))
    except StoreError as exc:
        raise failure(as_json, "invalid", str(exc), EXIT_INVALID) from None


@runs_app.callback()
def runs_command(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many runs.")] = 20,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """The latest runs, newest first: id, start, end, status, and per platform the API
    calls, records read, writes and record errors."""
    if ctx.invoked_subcommand is not None:
        return
    cfg = _load(config, as_json, secrets=False)
    runs = _state_call(cfg, as_json, lambda state: _settled(state, state.runs(limit)))
    rows = [_summary(run) for run in runs]
    if as_json:
        _echo_json({"ok": True, "runs": rows})
        raise typer.Exit(EXIT_OK)
    if not rows:
        typer.echo("No runs yet.")
        raise typer.Exit(EXIT_OK)
    for row in rows:
        typer.echo(f"{row['run_id']}  {row['status']:<11}  {row['started_at']}"
                   f" -> {row['finished_at'] or '-'}")
        for name, t in row["platforms"].items():
            typer.echo(f"    {name}: {t['calls']} calls, {t['read']} read, "
                       f"{t['writes']} writes, {t['errors']} errors")
    typer.echo("`segsync runs show ID` shows a run again with every record error.")
    raise typer.Exit(EXIT_OK)


def _find(state: ConfigState, run_id: str) -> dict[str, Any]:
    """The run `run_id` (or the one run whose id starts with it), its errors and
    diagnostics; `{"missing": [...latest ids]}` or `{"ambiguous": [...ids]}` otherwise."""
    found = state.find_runs(run_id)
    if len(found) > 1:
        return {"ambiguous": found}
    if not found:
        return {"missing": [r["run_id"] for r in state.runs(LATEST_SHOWN)]}
    wanted = found[0]
    run = state.run(wanted)
    if run is None:  # forgotten (`history`) since it was found
        return {"missing": [r["run_id"] for r in state.runs(LATEST_SHOWN)]}
    run = _settled(state, [run])[0]  # running, its process dead: abandoned
    return {"run": run, "errors": state.run_errors(wanted),
            "diagnostics": state.run_diagnostics(wanted)}


@runs_app.command("show")
def show_command(
    run_id: Annotated[str, typer.Argument(help="A run id, or a unique prefix of one.")],
    config: ConfigOption = None,
    as_json: JsonOption = False,
    errors_out: ErrorsOutOption = None,
) -> None:
    """A run's report again, with every record error and diagnostic."""
    errors_out = checked_errors_out(errors_out, as_json)
    cfg = _load(config, as_json, secrets=False)
    found = _state_call(cfg, as_json, lambda state: _find(state, run_id.strip()))
    if "ambiguous" in found:
        raise failure(as_json, "invalid", f"run id {run_id!r} is ambiguous: it starts "
                      f"{', '.join(found['ambiguous'])}; give more of it", EXIT_INVALID)
    if "missing" in found:
        latest = ", ".join(found["missing"]) or "none: no run yet"
        raise failure(as_json, "invalid", f"no run {run_id!r} in configuration "
                      f"{_name(cfg)!r}; the latest runs: {latest} (`segsync runs` lists them)",
                      EXIT_INVALID)
    run, errors, diagnostics = found["run"], found["errors"], found["diagnostics"]
    export_errors(errors_out, run["run_id"], errors, as_json)
    if as_json:
        _echo_json({"ok": True, **_summary(run), "report": run.get("report"),
                    "errors": errors, "diagnostics": diagnostics})
        raise typer.Exit(EXIT_OK)
    typer.echo(_render(run, errors, diagnostics))
    raise typer.Exit(EXIT_OK)


def _render(run: Mapping[str, Any], errors: Sequence[Mapping[str, Any]],
            diagnostics: Sequence[Mapping[str, Any]]) -> str:
    """A stored run as text: its summary, per-platform counts, every error and diagnostic."""
    report = run.get("report") or {}
    duration = report.get("duration_s")
    took = f" in {duration:.1f}s" if isinstance(duration, int | float) else ""
    lines = [f"run {run['run_id']}: {run['status']}{took}",
             f"  started {run['started_at']}, finished {run['finished_at'] or '-'}"]
    if report.get("plan_id"):
        lines.append(f"  plan {report['plan_id']}")
    for name, r in (report.get("platforms") or {}).items():
        lines.append(
            f"  {name}: read {r.get('read', 0)}, created {r.get('created', 0)}, "
            f"updated {r.get('updated', 0)}, unchanged {r.get('unchanged', 0)}, "
            f"tags +{r.get('tags_added', 0)}/-{r.get('tags_removed', 0)}, "
            f"members +{r.get('members_added', 0)}/-{r.get('members_removed', 0)}, "
            f"consent {r.get('consent_changes', 0)}, archived {r.get('archived', 0)}, "
            f"deleted {r.get('deleted', 0)}, erased {r.get('erased', 0)}, "
            f"errors {r.get('errors', 0)}, "
            f"API calls {r.get('api_calls', 0)}"
        )
    if errors:
        lines.append(f"  {len(errors)} record error(s):")
    for error in errors:
        who = error.get("email") or error.get("platform_id") or "(platform)"
        code = f" ({error['code']})" if error.get("code") else ""
        lines.append(f"  ! [{error.get('platform')}] {who}: {error.get('message')}{code}")
    for diag in diagnostics:
        where = f"[{diag.get('platform')}]" + (
            f" {diag['segment']}" if diag.get("segment") else "")
        lines.append(f"  diagnostic: {where}: {diag.get('message')}")
    return "\n".join(lines)
