"""Erasure (GDPR art. 17): delete a person permanently everywhere, and never re-create them.

`erase_people(emails, connectors, state)` holds the run lock of the configuration and first
checks, once, each platform's account identity against the account its state is bound to,
as a sync does (`segsync.sync.binding`): a platform reaching another account is refused
(`ErasureReport.account_mismatch`, with the message and the fix of a sync's
`account_mismatch`) and nothing is asked of it; a platform whose identity cannot be read is
not asked either (unconfirmed). A platform id from the state is used only where the account
is verified (bound, and the same account reached now); elsewhere the deletion is by email.

Then, per person: stores the tombstone first (a keyed hash of the normalised email,
`erasure_hash`, plus the time; never the address), so that a sync skips the person from then
on even where a deletion fails; asks every platform left to delete them permanently
(`Connector.erase`, concurrently); then forgets them in the state (`purge_person`:
snapshots, ids, canonical view and membership deleted; the ledger keeps its rows under the
tombstone instead of the email).

A platform that did not confirm owes the erasure (`StateStore.owe_erasure`: the tombstone,
the platform and, until it confirms, the address): every later run that reaches that
platform (its account checked) performs it by email and reports it (`settle_owed`);
`segsync status` and `segsync owed` show what is owed.

It is idempotent: a person a platform does not hold counts as confirmed there, and erasing
again only repeats the deletions. `ErasureReport.confirmed` is True only when every
platform confirmed for every person; a platform that failed is named with its message, and
running the erasure again completes it (once a mismatched platform's configuration points
back at its account, or the platform is rebound).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from segsync.clock import Clock, SystemClock
from segsync.connector import AccountIdentity, Connector, ErasureResult
from segsync.model import InvalidEmail, normalize_email
from segsync.state.base import erasure_hash
from segsync.state.scoped import ConfigState

__all__ = [
    "ErasureReport",
    "InvalidAddress",
    "OwedDone",
    "PersonErasure",
    "erase_on",
    "erase_people",
    "mask_email",
    "read_addresses",
    "settle_owed",
    "tombstone_label",
]


class InvalidAddress(ValueError):
    """An address to erase that is not a valid email; the message names where it was given."""


def mask_email(email: str) -> str:
    """An address as reports show it: the first character of each part, the rest hidden."""
    local, _, domain = email.partition("@")
    name, dot, tld = domain.rpartition(".")
    return f"{local[:1]}***@{name[:1]}***{dot}{tld}" if name else f"{local[:1]}***@***"


def tombstone_label(email_hash: str) -> str:
    """What stands for an erased person in the ledger and the reports."""
    return f"erased:{email_hash}"


def read_addresses(
    emails: Sequence[str], from_file: Path | None = None
) -> list[str]:
    """The normalised, de-duplicated addresses to erase, in the order given.

    Arguments come first (`argument N`), then the lines of `from_file` (`FILE:N`; blank
    lines and lines starting with `#` are skipped).

    Raises:
        InvalidAddress: an address is not a valid email (its place and how to fix it), or
            the file cannot be read; nothing is erased then.
    """
    given = [(f"argument {i}", raw) for i, raw in enumerate(emails, start=1)]
    if from_file is not None:
        try:
            text = from_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidAddress(
                f"--from-file {from_file}: cannot read it ({type(exc).__name__}); pass a "
                "UTF-8 text file with one address a line"
            ) from None
        for n, line in enumerate(text.splitlines(), start=1):
            if line.strip() and not line.lstrip().startswith("#"):
                given.append((f"{from_file}:{n}", line.strip()))
    if not given:
        raise InvalidAddress("no address to erase: pass EMAIL arguments or --from-file FILE")
    out: list[str] = []
    for place, raw in given:
        try:
            key = normalize_email(raw)
        except InvalidEmail as exc:
            raise InvalidAddress(
                f"{place}: {exc}; fix or remove this address (nothing was erased)"
            ) from None
        if key not in out:
            out.append(key)
    return out


class PersonErasure(BaseModel):
    """The erasure of one person: per platform results, and what the state forgot."""

    model_config = ConfigDict(extra="forbid")

    email: str = Field(description="the address, masked")
    tombstone: str = Field(description="the tombstone (keyed hash), as the ledger shows it")
    platforms: dict[str, ErasureResult]
    forgotten: int = Field(0, description="contacts forgotten in the state")

    @property
    def confirmed(self) -> bool:
        return all(r.confirmed for r in self.platforms.values())


class ErasureReport(BaseModel):
    """The report of `segsync erase`."""

    model_config = ConfigDict(extra="forbid")

    config: str
    people: list[PersonErasure] = Field(default_factory=list)
    account_mismatch: dict[str, str] = Field(
        default_factory=dict,
        description="platforms bound to another account than the one reached: platform -> "
        "the message and the fix; nothing was asked of them",
    )

    @property
    def confirmed(self) -> bool:
        """Every platform confirmed for every person (already absent counts)."""
        return all(p.confirmed for p in self.people)

    def unconfirmed_platforms(self) -> list[str]:
        """The platforms that did not confirm, for someone."""
        return sorted(
            {n for p in self.people for n, r in p.platforms.items() if not r.confirmed}
        )

    def as_dict(self) -> dict[str, object]:
        data = self.model_dump(mode="json")
        data["confirmed"] = self.confirmed
        for person, raw in zip(self.people, data["people"], strict=True):
            raw["confirmed"] = person.confirmed
        return data

    def render(self) -> str:
        lines = []
        for p in self.people:
            verdict = "erased" if p.confirmed else "NOT confirmed everywhere"
            lines.append(f"{p.email} ({p.tombstone[:22]}...): {verdict}")
            for name, r in p.platforms.items():
                state = (
                    "already absent" if r.already_absent
                    else "deleted" if r.confirmed else f"FAILED: {r.error}"
                )
                lines.append(f"  {name}: {state}")
            lines.append(f"  state: {p.forgotten} contact(s) forgotten, tombstone kept")
        for message in self.account_mismatch.values():
            lines.append(f"refused: {message}")
        if not self.confirmed:
            lines.append(
                "some platforms did not confirm: run the same `segsync erase` again once "
                "they are reachable (and reach the account they are bound to) "
                f"({', '.join(self.unconfirmed_platforms())})"
            )
        return "\n".join(lines)


async def erase_on(
    name: str, connector: Connector, email: str, platform_id: str | None
) -> ErasureResult:
    """Ask one platform to delete `email`; a refusal or an outage is an unconfirmed result
    whose message never contains the address."""
    try:
        result = await connector.erase(email, platform_id)
    except NotImplementedError:
        return ErasureResult(email=email, platform=name, confirmed=False,
                             error=f"the {name} connector cannot erase contacts")
    except Exception as exc:  # an outage, a refusal: reported, safe to run again
        message = str(exc).replace(email, mask_email(email))
        return ErasureResult(email=email, platform=name, confirmed=False, error=message)
    return result


@dataclasses.dataclass(frozen=True)
class OwedDone:
    """The outcome of an owed erasure a run performed: the tombstone (as the ledger shows
    it), since when it was owed, and the platform's result (its email masked)."""

    tombstone: str
    since: str
    result: ErasureResult


async def settle_owed(
    name: str, connector: Connector, state: ConfigState
) -> list[OwedDone]:
    """Perform the erasures owed on platform `name` (`segsync erase` could not confirm them
    there), by email: a run calls it only once the platform's account was checked against
    its binding. A confirmed one is settled (its row and address go); a failed one stays
    owed with its new error."""
    done: list[OwedDone] = []
    for owed in state.owed_erasures(name):
        result = await erase_on(name, connector, owed.email, None)
        if result.confirmed:
            state.settle_erasure(owed.email_hash, name)
        else:
            state.owe_erasure(owed.email_hash, name, owed.email, at=owed.since,
                              error=result.error or "not confirmed")
        done.append(OwedDone(tombstone_label(owed.email_hash), owed.since,
                             result.model_copy(update={"email": mask_email(owed.email)})))
    return done


@dataclasses.dataclass
class _Accounts:
    """What the account check found: the platforms not to ask (-> an unconfirmed result's
    message), the mismatch messages, and the platforms whose stored ids may be used."""

    skipped: dict[str, str] = dataclasses.field(default_factory=dict)
    mismatch: dict[str, str] = dataclasses.field(default_factory=dict)
    verified: set[str] = dataclasses.field(default_factory=set)


async def _check_accounts(
    connectors: Mapping[str, Connector], state: ConfigState
) -> _Accounts:
    """Each platform's account identity against its binding, as a sync's gate compares them
    (nothing is bound nor checked here)."""
    # imported here: the engine imports this module (`segsync.sync.pull`)
    from segsync.sync.binding import mismatch_message

    async def identify(connector: Connector) -> AccountIdentity | Exception | None:
        try:
            return await connector.account_identity()
        except Exception as exc:  # down, or refusing the key: said per platform
            return exc

    names = list(connectors)
    found = await asyncio.gather(*(identify(connectors[n]) for n in names))
    out = _Accounts()
    for name, identity in zip(names, found, strict=True):
        binding = state.binding(name)
        if isinstance(identity, Exception):
            out.skipped[name] = (
                f"reading the {name} account's identity failed: {identity}; nothing was "
                "deleted there"
            )
        elif identity is None or binding is None or binding.account_id is None:
            continue  # an unverified account: deleted by email only
        elif binding.account_id != identity.id:
            bound = AccountIdentity(id=binding.account_id, label=binding.label or "")
            out.mismatch[name] = mismatch_message(name, bound.describe(), identity.describe())
            out.skipped[name] = (
                f"bound to another account than the configuration reaches: nothing was "
                f"deleted there (`segsync rebind {name}` or point the configuration back)"
            )
        else:
            out.verified.add(name)
    return out


async def _erase_checked(
    name: str, connector: Connector, email: str, platform_id: str | None,
    accounts: _Accounts,
) -> ErasureResult:
    skipped = accounts.skipped.get(name)
    if skipped is not None:
        return ErasureResult(email=email, platform=name, confirmed=False, error=skipped)
    trusted = platform_id if name in accounts.verified else None
    return await erase_on(name, connector, email, trusted)


async def erase_people(
    emails: Sequence[str],
    connectors: Mapping[str, Connector],
    state: ConfigState,
    *,
    clock: Clock | None = None,
) -> ErasureReport:
    """Erase every address of `emails` (see the module docstring).

    Raises:
        InvalidAddress: an address is not a valid email (nothing was erased).
        RunLocked: a sync of this configuration is running (nothing was erased).
    """
    clock = clock or SystemClock()
    addresses = read_addresses(emails)  # every address valid, or nothing is erased
    report = ErasureReport(config=state.config)
    with state.lock():
        accounts = await _check_accounts(connectors, state)
        report.account_mismatch = dict(accounts.mismatch)
        key = state.erasure_key()
        for email in addresses:
            digest = erasure_hash(key, email)
            label = tombstone_label(digest)
            state.add_tombstone(digest, at=clock.now().isoformat())
            targets = state.erasure_targets(email)
            names = list(connectors)
            results = await asyncio.gather(
                *(_erase_checked(n, connectors[n], email, targets.get(n), accounts)
                  for n in names)
            )
            at = clock.now().isoformat()
            for name, result in zip(names, results, strict=True):
                if result.confirmed:
                    state.settle_erasure(digest, name)
                else:  # owed: the next run reaching that platform performs it
                    state.owe_erasure(digest, name, email, at=at,
                                      error=result.error or "not confirmed")
            forgotten = state.purge_person(email, label)
            masked = mask_email(email)
            report.people.append(
                PersonErasure(
                    email=masked,
                    tombstone=label,
                    platforms={
                        n: r.model_copy(update={"email": masked})
                        for n, r in zip(names, results, strict=True)
                    },
                    forgotten=forgotten,
                )
            )
    return report
