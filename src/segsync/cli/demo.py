"""segsync CLI: `segsync demo`, a full sync between in-process emulators (see segsync.demo).

Exit codes: 0 when every check passed (every platform aligned, no consent violated, the
second sync wrote nothing, every segment holding the evaluator's members); 1 when the demo
ran but a check failed; 2 when the demo cannot run (a connector or emulator missing).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from segsync.cli import EXIT_INVALID, EXIT_OK, EXIT_RECORD_ERRORS, app
from segsync.config import ConfigError
from segsync.connector import UnknownConnector
from segsync.demo import DemoOptions, render_report, run_demo, trusted
from segsync.logs import LogFormat, active_format

__all__ = ["demo_command"]


#: Loggers whose warnings (segment fallbacks) the demo's report prints itself.
REPORTED_LOGGERS = ("segsync.compiler", "segsync.sync")


@contextlib.contextmanager
def _diagnostics_in_report() -> Iterator[None]:
    """Keep segment fallbacks out of the warning logs while the report shows them.

    Left alone when the user asked for more (`--log-level info` or `debug`).
    """
    loggers = [logging.getLogger(name) for name in REPORTED_LOGGERS]
    if logging.getLogger().getEffectiveLevel() < logging.WARNING:
        yield
        return
    previous = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, previous, strict=True):
            logger.setLevel(level)


@app.command("demo")
def demo_command(
    contacts: Annotated[
        int, typer.Option("--contacts", "-n", min=1, max=200_000, help="People in the audience.")
    ] = 3000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the synthetic audience.")] = 7,
    keep: Annotated[
        Path | None,
        typer.Option(
            "--keep",
            file_okay=False,
            help="Work in this directory and keep it (segsync.yaml, the state store).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON report.")] = False,
) -> None:
    """Sync a synthetic audience between the installed platforms' in-process emulators.

    Seeds the emulators (overlaps, conflicting edits, unsubscribes, bounces, emails that
    differ only by case, tags, an interest group), shows the plan, syncs, checks every
    platform against the canonical view, then syncs again to show it writes nothing.
    """
    def progress(line: str) -> None:
        # with JSON logs, stderr carries only JSON (the same lines come as segsync.demo records)
        if not as_json and active_format() is not LogFormat.JSON:
            typer.echo(f"... {line}", err=True)

    try:
        options = DemoOptions(contacts=contacts, seed=seed, keep=keep)
        with _diagnostics_in_report():
            report = asyncio.run(run_demo(options, progress=progress))
    except (UnknownConnector, LookupError) as exc:
        typer.echo(f"segsync demo: {exc}", err=True)
        raise typer.Exit(EXIT_INVALID) from None
    except ConfigError as exc:  # the demo wrote a file segsync refuses: a defect, say where
        typer.echo(f"segsync demo: the demo configuration is invalid:\n{exc}", err=True)
        raise typer.Exit(EXIT_INVALID) from None
    if as_json:
        sys.stdout.write(json.dumps(report.model_dump(mode="json"), indent=2) + "\n")
    else:
        typer.echo(render_report(report))
    raise typer.Exit(EXIT_OK if trusted(report) else EXIT_RECORD_ERRORS)
