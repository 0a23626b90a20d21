"""segsync CLI: `owed` — the record writes still owed, and `owed ack` to drop them.

It also lists the erasures a platform has not confirmed (`segsync erase`; each run reaching
that platform performs them), by tombstone, never by address.

A record write a platform refused stays owed (docs/sync.md): `plan` shows it, each run
retries it, until it is written or acknowledged here. `segsync owed` lists them (each with
its last error, first and last failure); `segsync owed ack EMAIL... [--platform P]` or
`segsync owed ack --all [--platform P]` drops them (the next run no longer shows them; a
contact whose platform still differs is written again if its view changes).

Exit codes: 0 done (listing: none owed or some); 2 invalid input or configuration; 3 a sync
of the configuration is running (ack only).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from segsync.cli import EXIT_INVALID, EXIT_LOCKED, EXIT_OK, app
from segsync.cli.core import ConfigOption, JsonOption, _echo_json, _load, failure
from segsync.config import Config
from segsync.model import InvalidEmail, normalize_email
from segsync.state import RunLocked, StoreError, open_store
from segsync.state.base import OwedErasure, OwedWrite
from segsync.sync.build import config_name

__all__ = ["owed_app"]

owed_app = typer.Typer(
    help="Record writes still owed (failed, retried each run): list, acknowledge.",
    invoke_without_command=True,
)
app.add_typer(owed_app, name="owed")

PlatformOption = Annotated[
    str | None, typer.Option("--platform", "-p", help="Only the writes owed on this platform.")
]


def _name(cfg: Config) -> str:
    """The configuration's name in the state (its enabled platforms)."""
    return config_name(
        {n: p for n, p in cfg.platforms.items() if getattr(p, "enabled", True)}
    )


def _as_dict(owed: OwedWrite) -> dict[str, Any]:
    return {
        "platform": owed.platform, "email": owed.email, "platform_id": owed.platform_id,
        "code": owed.code, "error": owed.error, "first_failed": owed.first_failed,
        "last_failed": owed.last_failed, "failures": owed.failures,
    }


def _erasure_dict(owed: OwedErasure) -> dict[str, Any]:
    return {"tombstone": f"erased:{owed.email_hash}", "platform": owed.platform,
            "since": owed.since, "error": owed.error}


def _check_platform(cfg: Config, platform: str | None, as_json: bool) -> None:
    if platform is not None and platform not in cfg.platforms:
        known = ", ".join(sorted(cfg.platforms)) or "(none)"
        raise failure(as_json, "invalid",
                    f"{platform!r} is not a configured platform (configured: {known})",
                    EXIT_INVALID)


@owed_app.callback()
def owed_command(
    ctx: typer.Context,
    platform: PlatformOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the record writes still owed: platform, email, last error, first and last
    failure, how many runs failed it."""
    if ctx.invoked_subcommand is not None:
        return
    cfg = _load(config, as_json, secrets=False)
    _check_platform(cfg, platform, as_json)
    try:
        with open_store(cfg.state_url) as store:
            owed = store.scoped(_name(cfg)).owed(platform)
            erasures = store.scoped(_name(cfg)).owed_erasures(platform)
    except StoreError as exc:
        raise failure(as_json, "invalid", str(exc), EXIT_INVALID) from None
    if as_json:
        _echo_json({"ok": True, "owed": [_as_dict(o) for o in owed],
                    "erasures": [_erasure_dict(e) for e in erasures]})
        raise typer.Exit(EXIT_OK)
    for e in erasures:  # never the address: the tombstone stands for the person
        typer.echo(f"erasure owed [{e.platform}] erased:{e.email_hash[:16]}... since "
                   f"{e.since}: {e.error} (each run reaching {e.platform} performs it)")
    if not owed:
        typer.echo("No owed writes.")
        raise typer.Exit(EXIT_OK)
    typer.echo(f"{len(owed)} owed write(s):")
    for o in owed:
        runs = f", {o.failures} runs" if o.failures > 1 else ""
        typer.echo(f"  [{o.platform}] {o.email}: {o.error} "
                   f"(first {o.first_failed}, last {o.last_failed}{runs})")
    typer.echo("Each run retries them; `segsync owed ack EMAIL...` (or --all) drops them.")
    raise typer.Exit(EXIT_OK)


@owed_app.command("ack")
def ack_command(
    emails: Annotated[
        list[str] | None, typer.Argument(help="Addresses whose owed writes to drop.")
    ] = None,
    every: Annotated[bool, typer.Option("--all", help="Drop every owed write.")] = False,
    platform: PlatformOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Acknowledge owed writes: they are dropped (no longer shown by `plan`)."""
    if bool(emails) == every:
        raise failure(as_json, "invalid", "give addresses or --all (not both)", EXIT_INVALID)
    keys: list[str] | None = None
    if emails:
        try:
            keys = [normalize_email(e) for e in emails]
        except InvalidEmail as exc:
            raise failure(as_json, "invalid", str(exc), EXIT_INVALID) from None
    cfg = _load(config, as_json, secrets=False)
    _check_platform(cfg, platform, as_json)
    name = _name(cfg)
    try:
        with open_store(cfg.state_url) as store, store.lock(name):
            dropped = store.scoped(name).ack_owed(keys, platform)
    except RunLocked as exc:
        raise failure(as_json, "locked", str(exc), EXIT_LOCKED) from None
    except StoreError as exc:
        raise failure(as_json, "invalid", str(exc), EXIT_INVALID) from None
    if as_json:
        _echo_json({"ok": True, "acknowledged": dropped})
    else:
        typer.echo(f"{dropped} owed write(s) acknowledged.")
    raise typer.Exit(EXIT_OK)
