"""The `segsync` command line (typer + rich).

Commands live in the modules of this package, each registering on the apps defined here:
`core` (version, init, check, config, segments list/explain), `connectors` (connectors,
segments capabilities), `emulate`, `sync` (plan, apply, sync, status), `demo`, `consent`,
`erase`, `rebind`, `owed` (list and acknowledge owed writes), `doctor` (read-only
preflight of the configured accounts) and `runs` (the history of runs).

Exit codes, shared by every command (docs/troubleshooting.md):

- 0 done;
- 1 some records failed (retried next run);
- 2 invalid configuration or input (for a sync: a platform setting its check refused);
- 3 the run lock is held by another run;
- 4 a platform unavailable (down, TLS refused, host unknown, its read failed) or refusing
  the credentials: it sat the run out, or the rest of it;
- 5 a platform now reaches another account than the one its state is bound to;
- 130 / 143 interrupted by SIGINT / SIGTERM (128 + the signal): batches in flight finished
  and were recorded, the report was printed, the run is `interrupted`.

When several apply, the highest wins (an interrupted run whose platform was down exits 143).
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="segsync",
    help="Keep contacts, tags, consent and segments consistent across marketing platforms.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
)
segments_app = typer.Typer(help="Segments: list, explain, capabilities.", no_args_is_help=True)
config_app = typer.Typer(help="The configuration file.", no_args_is_help=True)
app.add_typer(segments_app, name="segments")
app.add_typer(config_app, name="config")

# Exit codes shared by every command (see the module docstring).
EXIT_OK = 0
EXIT_RECORD_ERRORS = 1
EXIT_INVALID = 2
EXIT_LOCKED = 3
EXIT_UNAVAILABLE = 4
EXIT_ACCOUNT = 5
EXIT_SIGNAL_BASE = 128
"""Interrupted by signal N: exit 128 + N (130 for SIGINT, 143 for SIGTERM)."""

for _module in (
    "core", "connectors", "emulate", "sync", "demo", "consent", "erase", "rebind", "owed",
    "doctor", "runs",
):
    importlib.import_module(f"segsync.cli.{_module}")


def main() -> None:
    """Console-script entry point."""
    app()
