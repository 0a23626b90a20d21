"""The `segsync` command line (typer + rich).

Commands live in the modules of this package, each registering on the apps defined here:
`core` (version, init, check, config, segments list/explain), `connectors` (connectors,
segments capabilities), `emulate`, `sync` (plan, apply, sync, status) and `demo`.
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

# Exit codes shared by every command.
EXIT_OK = 0
EXIT_RECORD_ERRORS = 1
EXIT_INVALID = 2
EXIT_LOCKED = 3

for _module in ("core", "connectors", "emulate", "sync", "demo", "consent", "erase"):
    importlib.import_module(f"segsync.cli.{_module}")


def main() -> None:
    """Console-script entry point."""
    app()
