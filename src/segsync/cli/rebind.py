"""segsync CLI: `rebind PLATFORM` — adopt the account a platform's configuration now reaches.

The state of each platform is bound to an account (segsync.sync.binding); a run whose
configuration reaches another account leaves that platform out with `account_mismatch`.
`rebind` is the explicit way to say the new account is the intended one: it reads the
account's identity, shows the bound and the new account and what the state will forget of
the platform (its ids and base snapshots, cursor, owned objects, static segment
memberships), forgets it and binds the new account. The consent ledger, the tombstones and
the contacts' canonical data stay; the next run links the platform's records by email.

Exit codes: 0 rebound (or already bound to that account: nothing forgotten); 2 a platform
that is not configured (located), `--yes` missing when not on a terminal, or cancelled;
3 a run of the configuration holds the lock; 4 the platform cannot be reached or refuses
the credentials (nothing forgotten).
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Annotated, Any

import httpx
import typer

from segsync.cli import EXIT_INVALID, EXIT_OK, EXIT_UNAVAILABLE, app
from segsync.cli.core import (
    ConfigOption,
    JsonOption,
    _echo_json,
    _load,
    failure,
    run_on_state,
)
from segsync.config import default_config_path
from segsync.connector import AccountIdentity, Connector
from segsync.http import ApiError
from segsync.state import Binding
from segsync.state.scoped import ConfigState
from segsync.sync.apply import iso_now

__all__ = ["rebind"]


@dataclasses.dataclass
class RebindOutcome:
    """What `rebind` found and did."""

    platform: str
    previous: Binding | None
    current: AccountIdentity | None
    forgotten: dict[str, int]
    done: bool = False

    @property
    def same(self) -> bool:
        """The platform is bound to the account it reaches already."""
        return (
            self.previous is not None
            and self.current is not None
            and self.previous.account_id == self.current.id
        )

    def as_dict(self) -> dict[str, Any]:
        previous = None
        if self.previous is not None and self.previous.account_id is not None:
            previous = {"id": self.previous.account_id, "label": self.previous.label or ""}
        return {
            "ok": True,
            "platform": self.platform,
            "previous": previous,
            "current": self.current.model_dump() if self.current is not None else None,
            "forgotten": self.forgotten,
            "rebound": self.done,
        }

    def describe(self) -> list[str]:
        current = self.current.describe() if self.current is not None else (
            "unknown (the connector cannot tell)"
        )
        if self.previous is not None and self.previous.account_id is not None:
            previous = AccountIdentity(
                id=self.previous.account_id, label=self.previous.label or ""
            ).describe()
            lines = [f"{self.platform}: the state is bound to account {previous}"]
        else:
            adopt = (
                "rebinding binds it to the account the configuration reaches (a sync binds "
                "it there too, without forgetting anything)"
                if self.current is not None
                else "the connector cannot tell its account, so nothing can be bound"
            )
            lines = [f"{self.platform}: the state is not bound to an account yet; {adopt}"]
        lines.append(f"{self.platform}: the configuration reaches account {current}")
        if self.same:
            lines.append("already bound to this account: nothing to forget")
            return lines
        f = self.forgotten
        lines.append(
            f"rebinding forgets, for {self.platform} only: {f.get('records', 0)} record id(s) "
            f"and snapshot(s), {f.get('owned', 0)} owned object(s), "
            f"{f.get('memberships', 0)} static segment membership(s) and its read cursor; "
            "the consent ledger, the tombstones and the contacts stay, and the next run links "
            "people by email"
        )
        return lines


async def rebind(
    platform: str, connector: Any, state: Any, *, clock: Any, confirm: Any = None
) -> RebindOutcome:
    """Read the platform's account identity and, unless already bound to it, forget the
    platform's state and bind the account, under the run lock of `state`. `confirm`
    (outcome -> bool) may refuse after seeing what would be forgotten."""
    current = await connector.account_identity()
    with state.lock():
        outcome = RebindOutcome(
            platform, state.binding(platform), current,
            state.forget_platform(platform, dry_run=True),
        )
        if outcome.same or (confirm is not None and not confirm(outcome)):
            return outcome
        outcome.forgotten = state.forget_platform(platform)
        if current is not None:
            state.bind(platform, current.id, current.label, at=iso_now(clock))
        outcome.done = True
    return outcome


@app.command("rebind")
def rebind_command(
    platform: Annotated[str, typer.Argument(help="The platform whose account changed.")],
    yes: Annotated[
        bool, typer.Option("--yes", help="Do not ask (required when not on a terminal).")
    ] = False,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Adopt the account PLATFORM's configuration now reaches: forget that platform's ids,
    snapshots, cursor, owned objects and memberships (never the consent ledger nor the
    tombstones), so the next run links people by email. Exit 0 rebound; 2 not configured
    or not confirmed; 3 locked; 4 the platform cannot be reached."""
    cfg = _load(config, as_json)
    source = cfg.source or default_config_path()
    if platform not in cfg.platforms or not getattr(cfg.platforms[platform], "enabled", True):
        known = ", ".join(sorted(cfg.platforms)) or "none"
        raise failure(
            as_json, "invalid",
            f"{source}: platforms.{platform}: not configured (configured: {known})",
            EXIT_INVALID,
        )
    interactive = sys.stdin.isatty()
    if not yes and not interactive:
        raise failure(
            as_json, "invalid",
            "rebind forgets the platform's ids and snapshots: pass --yes when not on a "
            "terminal", EXIT_INVALID,
        )

    def ask(outcome: RebindOutcome) -> bool:
        if yes:
            return True
        for line in outcome.describe():
            typer.echo(line)
        return typer.confirm(f"Rebind {platform} to this account?", default=False)

    async def work(connectors: dict[str, Connector], state: ConfigState) -> RebindOutcome:
        return await rebind(platform, connectors[platform], state,
                            clock=connectors[platform].clock, confirm=ask)

    try:
        outcome = run_on_state(cfg, as_json, work)
    except (ApiError, httpx.HTTPError, ValueError) as exc:  # the identity read failed
        raise failure(
            as_json, "unavailable",
            f"{platform}: cannot read the account's identity: {exc}; nothing was forgotten",
            EXIT_UNAVAILABLE,
        ) from None
    if not outcome.done and not outcome.same:
        raise failure(as_json, "cancelled", "nothing was forgotten", EXIT_INVALID)
    if as_json:
        _echo_json(outcome.as_dict())
    else:
        if yes or outcome.same:
            for line in outcome.describe():
                typer.echo(line)
        if outcome.done:
            typer.echo(f"{platform} rebound; the next run links its records by email")
    raise typer.Exit(EXIT_OK)
