"""Build an `Engine` from a loaded configuration (what the CLI does; usable from code).

The platforms of the configuration become connectors (found in the registry by name), the
`sync:` block the `SyncPolicy`, the segments `SegmentTarget`s, and the state URL the store.
The configuration's name in the state is its sorted platform names (`brevo+mailchimp`):
two configurations syncing the same platforms share one run lock.

Rate limits belong to an account, so every connector built for one account in a run shares
one `RateBudget` (docs/http.md): `build_connectors` and `build_engine` take a `budgets`
mapping (account -> budget) that they fill and reuse; pass the same one to everything of a
run. An account is the platform, its base URL and its credentials (kept only as a digest).

`run_scope` turns `--select`, `--limit` and `--full-refresh` into the engine's `RunScope`
(`segsync.sync.pull`), refusing a name the configuration does not know (with the closest
ones) and a limit below 1 (`ScopeError`).
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

import httpx

from segsync.clock import Clock
from segsync.connector import Connector, registry
from segsync.http import RateBudget
from segsync.state import StateStore, open_store
from segsync.sync.engine import Engine, SegmentTarget
from segsync.sync.policy import SyncPolicy
from segsync.sync.pull import RunScope, ScopeError

__all__ = [
    "ScopeError",
    "account_key",
    "build_connectors",
    "build_engine",
    "config_name",
    "run_scope",
]


def run_scope(
    config: Any,
    select: Iterable[str] = (),
    *,
    limit: int | None = None,
    full_refresh: bool = False,
) -> RunScope:
    """The scope of a run of `config`: `select` holds platform and segment names (each item
    may be a comma list); none of a kind selects all of it. `limit` must be at least 1."""
    platforms = [name for name, p in config.platforms.items() if getattr(p, "enabled", True)]
    segments = list(config.segments)
    chosen_platforms: set[str] = set()
    chosen_segments: set[str] = set()
    for item in select:
        for name in (part.strip() for part in item.split(",")):
            if not name:
                continue
            if name in platforms:
                chosen_platforms.add(name)
            elif name in segments:
                chosen_segments.add(name)
            else:
                close = difflib.get_close_matches(name, [*platforms, *segments], n=3)
                hint = (f"did you mean {' or '.join(repr(c) for c in close)}?" if close
                        else "the configured ones are: "
                        + (", ".join(sorted([*platforms, *segments])) or "none"))
                raise ScopeError(
                    f"--select: {name!r} is neither a platform nor a segment of the "
                    f"configuration; {hint}"
                )
    if limit is not None and limit < 1:
        raise ScopeError(f"--limit: {limit} is not a number of contacts; give 1 or more")
    return RunScope(
        platforms=frozenset(chosen_platforms) or None,
        segments=frozenset(chosen_segments) or None,
        limit=limit,
        full_refresh=full_refresh,
    )


def config_name(platforms: Mapping[str, Any]) -> str:
    """The name of a sync configuration in the state: its platforms, sorted, joined by '+'."""
    return "+".join(sorted(platforms)) or "default"


def account_key(platform: str, platform_config: Any) -> str:
    """A digest naming the account a platform configuration talks to (no secret in clear)."""
    secrets = platform_config.secrets() if hasattr(platform_config, "secrets") else []
    base_url = getattr(platform_config, "base_url", None) or ""
    material = "\0".join([platform, base_url, *sorted(secrets)])
    return platform + ":" + hashlib.sha256(material.encode()).hexdigest()


def build_connectors(
    config: Any,
    *,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    clock: Clock | None = None,
    budgets: MutableMapping[str, RateBudget] | None = None,
) -> dict[str, Connector]:
    """One connector per enabled platform of `config` (a `segsync.config.Config`).

    Connectors of an account already in `budgets` get its budget; the budget of a new
    account (the connector's own default, made for its limits) is added to `budgets`.
    """
    budgets = {} if budgets is None else budgets
    schema = config.canonical_schema()
    connectors: dict[str, Connector] = {}
    for name, platform_config in config.platforms.items():
        if not getattr(platform_config, "enabled", True):
            continue
        cls = registry.get(name)
        try:
            mapping = config.mapping_for(name)
        except FileNotFoundError:  # a connector that ships no mapping maps by itself
            mapping = None
        account = account_key(name, platform_config)
        shared = {"budget": budgets[account]} if account in budgets else {}
        connector = cls(
            platform_config,
            schema=schema,
            mapping=mapping,
            transport=(transports or {}).get(name),
            clock=clock,
            **shared,
        )
        budgets.setdefault(account, connector.budget)
        connectors[name] = connector
    return connectors


def build_engine(
    config: Any,
    *,
    store: StateStore | None = None,
    connectors: Mapping[str, Connector] | None = None,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    clock: Clock | None = None,
    budgets: MutableMapping[str, RateBudget] | None = None,
    **options: Any,
) -> Engine:
    """An engine for `config`; `options` go to `Engine` (wait, lock_timeout, ...).

    Its connectors share one rate budget per account with everything else built with the
    same `budgets` (see `build_connectors`).
    """
    connectors = dict(connectors) if connectors is not None else build_connectors(
        config, transports=transports, clock=clock, budgets=budgets
    )
    segments = [
        SegmentTarget(name=name, rule=config.rule(name), publish=dict(segment.publish))
        for name, segment in config.segments.items()
    ]
    policy = SyncPolicy.from_config(config.sync, list(connectors))
    return Engine(
        connectors,
        store if store is not None else open_store(config.state_url, clock=clock),
        config=config_name(connectors),
        policy=policy,
        schema=config.canonical_schema(),
        segments=segments,
        strictness=config.sync.strictness,
        clock=clock,
        enforce_erasure=config.sync.erasure == "enforce",
        engagement_refresh={
            name: config.engagement.period(name, c.engagement_refresh_by_default)
            for name, c in connectors.items()
        },
        **options,
    )
