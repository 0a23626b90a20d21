"""The sync engine: pull -> reconcile -> segments -> plan -> apply -> report.

`Engine` drives connectors through a `segsync.state.StateStore`; `reconcile` is the pure
three-way merge of one contact, on `PlatformRecord` and `CanonicalView` snapshots; `Plan` is
the value `segsync plan` prints and saves and `segsync apply` applies. `build_engine(config)`
builds an engine from a loaded configuration.
"""

from segsync.sync.build import build_engine
from segsync.sync.engine import Engine, PlatformReport, RunReport, SegmentTarget
from segsync.sync.plan import Plan, PlanStale, PlatformPlan, RecordError
from segsync.sync.policy import Direction, SyncPolicy
from segsync.sync.reconcile import ConsentEvent, Reconciled, consent_target, reconcile
from segsync.sync.snapshot import CanonicalView, PlatformRecord

__all__ = [
    "CanonicalView",
    "ConsentEvent",
    "Direction",
    "Engine",
    "Plan",
    "PlanStale",
    "PlatformPlan",
    "PlatformRecord",
    "PlatformReport",
    "Reconciled",
    "RecordError",
    "RunReport",
    "SegmentTarget",
    "SyncPolicy",
    "build_engine",
    "consent_target",
    "reconcile",
]
