"""Toolkit for stateful platform emulators (ASGI apps served in-process or on loopback).

See `segsync.emulator.base` for the contract a platform emulator implements,
`segsync.emulator.fixture` for starting one from a lived-in account (a YAML/JSON fixture),
and docs/http.md for the fault spec format of `segsync emulate --faults`.
"""

from segsync.emulator.base import (
    FAULT_KINDS,
    ConcurrencyLimit,
    CursorPage,
    Emulator,
    EmulatorError,
    EmulatorTransport,
    FaultPlan,
    LoggedRequest,
    RequestLog,
    WindowLimit,
    cursor_page,
    int_param,
    offset_page,
)
from segsync.emulator.fixture import FixtureError, FixtureModel, Seedable

__all__ = [
    "FAULT_KINDS",
    "ConcurrencyLimit",
    "CursorPage",
    "Emulator",
    "EmulatorError",
    "EmulatorTransport",
    "FaultPlan",
    "FixtureError",
    "FixtureModel",
    "LoggedRequest",
    "RequestLog",
    "Seedable",
    "WindowLimit",
    "cursor_page",
    "int_param",
    "offset_page",
]
