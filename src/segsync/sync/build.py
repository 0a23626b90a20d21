"""Build an `Engine` from a loaded configuration (what the CLI does; usable from code).

The platforms of the configuration become connectors (found in the registry by name), the
`sync:` block the `SyncPolicy`, the segments `SegmentTarget`s, and the state URL the store.
The configuration's name in the state is its sorted platform names (`brevo+mailchimp`):
two configurations syncing the same platforms share one run lock.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from segsync.clock import Clock
from segsync.connector import Connector, registry
from segsync.state import StateStore, open_store
from segsync.sync.engine import Engine, SegmentTarget
from segsync.sync.policy import SyncPolicy

__all__ = ["build_connectors", "build_engine", "config_name"]


def config_name(platforms: Mapping[str, Any]) -> str:
    """The name of a sync configuration in the state: its platforms, sorted, joined by '+'."""
    return "+".join(sorted(platforms)) or "default"


def build_connectors(
    config: Any,
    *,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    clock: Clock | None = None,
) -> dict[str, Connector]:
    """One connector per enabled platform of `config` (a `segsync.config.Config`)."""
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
        connectors[name] = cls(
            platform_config,
            schema=schema,
            mapping=mapping,
            transport=(transports or {}).get(name),
            clock=clock,
        )
    return connectors


def build_engine(
    config: Any,
    *,
    store: StateStore | None = None,
    connectors: Mapping[str, Connector] | None = None,
    transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
    clock: Clock | None = None,
    **options: Any,
) -> Engine:
    """An engine for `config`; `options` go to `Engine` (wait, lock_timeout, ...)."""
    connectors = dict(connectors) if connectors is not None else build_connectors(
        config, transports=transports, clock=clock
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
        **options,
    )
