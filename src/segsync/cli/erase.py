"""segsync CLI: `erase` — delete people permanently on every platform (GDPR erasure).

Exit codes: 0 every platform confirmed for every person (already absent counts); 2 invalid
input (an invalid address, located; nothing is erased) or `--yes` missing without a
terminal; 3 a sync of the configuration is running; 4 a platform unavailable (not
confirmed: run the same command again); 5 a platform bound to another account than its
configuration reaches (nothing deleted there; the message says the fix, as `sync` does).
The highest that applies wins; the other platforms are erased and the tombstone kept.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from segsync.cli import EXIT_ACCOUNT, EXIT_INVALID, EXIT_OK, EXIT_UNAVAILABLE, app
from segsync.cli.core import (
    ConfigOption,
    JsonOption,
    _echo_json,
    _load,
    failure,
    run_on_state,
)
from segsync.erasure import InvalidAddress, erase_people, read_addresses

__all__ = ["EXIT_UNAVAILABLE"]


@app.command("erase")
def erase_command(
    emails: Annotated[
        list[str] | None, typer.Argument(help="Addresses of the people to erase.")
    ] = None,
    from_file: Annotated[
        Path | None,
        typer.Option("--from-file", help="A file of addresses, one a line ('#' comments).",
                     dir_okay=False),
    ] = None,
    yes: Annotated[
        bool, typer.Option("--yes", help="Do not ask (required when not on a terminal).")
    ] = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete people permanently on every configured platform and forget them in the state.

    A tombstone (a keyed hash of the address, never the address) stops later syncs from
    re-creating them. Exit 0 when every platform confirmed; 4 when one was unavailable
    (run the same command again); 5 when one reaches another account than its state is
    bound to (nothing deleted there); 2 for an invalid address (nothing erased).
    """
    try:
        addresses = read_addresses(emails or [], from_file)
    except InvalidAddress as exc:
        raise failure(as_json, "invalid", str(exc), EXIT_INVALID) from None
    cfg = _load(config, as_json)
    if not yes:
        if not sys.stdin.isatty():
            raise failure(
                as_json, "invalid",
                "erase deletes people permanently: pass --yes when not on a terminal",
                EXIT_INVALID,
            )
        platforms = ", ".join(sorted(cfg.platforms)) or "(none)"
        typer.echo(f"This deletes permanently, on {platforms}, and forgets in the state:")
        for address in addresses:
            typer.echo(f"  {address}")
        if not typer.confirm("Erase them?", default=False):
            raise failure(as_json, "cancelled", "nothing was erased", EXIT_INVALID)

    report = run_on_state(
        cfg, as_json, lambda connectors, state: erase_people(addresses, connectors, state)
    )
    if as_json:
        _echo_json(report.as_dict())
    else:
        typer.echo(report.render())
    code = EXIT_OK if report.confirmed else EXIT_UNAVAILABLE
    if report.account_mismatch:
        code = EXIT_ACCOUNT
    if code != EXIT_OK and not as_json:
        people = [p.email for p in report.people if not p.confirmed]
        typer.echo(f"not confirmed for {', '.join(people)}", err=True)
    if as_json:  # the text report says it already; stderr says it beside the JSON
        for message in report.account_mismatch.values():
            typer.echo(message, err=True)
    raise typer.Exit(code)
