"""The account gate at the start of every plan and sync, before any read.

Each platform's account identity (`Connector.account_identity`, one cheap call) is compared
with the account its state is bound to (`segsync.state.roles.Bindings`):

- not bound yet: the run goes on and binds it (a connector that cannot tell is not bound;
  a diagnostic says so, once, when the platform is first seen);
- the same account: the run goes on;
- another account: the platform stops for the run, before any read or write, with a
  `RecordError` of code `account_mismatch` naming both accounts and the fix
  (`segsync rebind <platform>`); platform ids are never trusted across accounts.

Then, when the connector's validated config (its `fingerprint()`, secrets left out) differs
from the one last checked, its `check()` runs: a failure stops the platform for the run with
code `check_failed` and the connector's message; a pass records the fingerprint. A first run,
and the first run after the platform's config is edited, is verified; a steady run costs the
identity read alone. An identity that cannot be read stops the platform (`read_failed`, or
the code of a platform-level failure: `auth_failed`, `platform_unavailable`, ...).

`verify` is the gate of a saved plan's apply: a platform now reaching another account makes
the whole plan stale (its record ids belong to the account it was made on).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Mapping

from segsync.clock import Clock
from segsync.connector import AccountIdentity, Connector
from segsync.http import PlatformUnavailable
from segsync.state.roles import Bindings
from segsync.sync.apply import iso_now
from segsync.sync.plan import RecordError

__all__ = ["AccountGate", "GateResult", "mismatch_message"]

log = logging.getLogger("segsync.sync")


def _named(account_id: str, label: str | None) -> str:
    return AccountIdentity(id=account_id, label=label or "").describe()


def mismatch_message(platform: str, bound: str, now: str) -> str:
    """The message of an `account_mismatch`: both accounts (`bound`, `now` as described)
    and the fix."""
    return (
        f"{platform}: the state is bound to account {bound}, but the configuration now "
        f"reaches account {now}; {platform} is neither read nor written in this run "
        "(platform ids are never trusted across accounts). Fix: point the configuration back "
        f"at account {bound}, or adopt the new account with `segsync rebind {platform}` "
        "(it forgets that platform's ids, snapshots, cursor and owned objects; the next run "
        "links people by email)"
    )


@dataclasses.dataclass
class GateResult:
    """The platforms stopped for the run, and the diagnostics (as plan dicts) to show."""

    stopped: set[str] = dataclasses.field(default_factory=set)
    diagnostics: list[dict[str, str]] = dataclasses.field(default_factory=list)


class AccountGate:
    """The gate of one run over `connectors`; see the module docstring."""

    def __init__(
        self, connectors: Mapping[str, Connector], state: Bindings, clock: Clock
    ) -> None:
        self.connectors = connectors
        self.state = state
        self.clock = clock

    async def run(self, errors: list[RecordError]) -> GateResult:
        """Identify (and check where needed) every platform concurrently; the errors of the
        platforms stopped go to `errors`."""
        result = GateResult()
        names = list(self.connectors)
        outcomes = await asyncio.gather(*(self._platform(name, result) for name in names))
        for name, error in zip(names, outcomes, strict=True):
            if error is not None:
                log.warning("%s stopped for this run: %s", name, error.message)
                errors.append(error)
                result.stopped.add(name)
        return result

    async def verify(self) -> list[str]:
        """The mismatch messages of the platforms bound to another account than the one they
        reach now (a saved plan's apply: nothing is checked nor bound; a platform whose
        identity cannot be read is left to fail in the apply itself)."""
        found: list[str] = []
        for name, connector in self.connectors.items():
            binding = self.state.binding(name)
            if binding is None or binding.account_id is None:
                continue
            try:
                identity = await connector.account_identity()
            except Exception:  # noqa: S112 - unreachable: the apply reports it per platform
                continue
            if identity is not None and identity.id != binding.account_id:
                found.append(mismatch_message(
                    name, _named(binding.account_id, binding.label), identity.describe()
                ))
        return found

    async def _platform(self, name: str, result: GateResult) -> RecordError | None:
        connector = self.connectors[name]
        binding = self.state.binding(name)
        try:
            identity = await connector.account_identity()
        except Exception as exc:  # the platform cannot be reached or refuses the key
            # a platform-level failure (down, credentials, TLS, host) keeps its own code
            code = exc.reason if isinstance(exc, PlatformUnavailable) else "read_failed"
            return RecordError(
                platform=name, code=code,
                message=f"reading the {name} account's identity failed: {exc}",
            )
        if (
            identity is not None
            and binding is not None
            and binding.account_id is not None
            and binding.account_id != identity.id
        ):
            return RecordError(
                platform=name,
                code="account_mismatch",
                message=mismatch_message(
                    name, _named(binding.account_id, binding.label), identity.describe()
                ),
            )
        fingerprint = connector.config.fingerprint()
        if binding is None or binding.checked != fingerprint:
            try:
                await connector.check()
            except Exception as exc:
                return RecordError(
                    platform=name, code="check_failed",
                    message=f"{name}: the configuration check failed: {exc}",
                )
            self.state.set_checked(name, fingerprint)
        if identity is None:
            if binding is None:
                self.state.bind(name, None, None, at=iso_now(self.clock))
                result.diagnostics.append({
                    "platform": name, "segment": "", "step": "account", "level": "warning",
                    "message": (
                        f"the {name} connector cannot tell which account it reaches: its "
                        "state is not bound to an account, so a configuration pointed at "
                        "another account would not be detected"
                    ),
                })
        elif binding is None or binding.account_id is None or binding.label != identity.label:
            self.state.bind(name, identity.id, identity.label, at=iso_now(self.clock))
        return None
