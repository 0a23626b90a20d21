"""Toolkit for stateful platform emulators (ASGI apps served in-process or on loopback).

See `segsync.emulator.base` for the contract a platform emulator implements, and
docs/http.md for the fault spec format of `segsync emulate --faults`.
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

__all__ = [
    "FAULT_KINDS",
    "ConcurrencyLimit",
    "CursorPage",
    "Emulator",
    "EmulatorError",
    "EmulatorTransport",
    "FaultPlan",
    "LoggedRequest",
    "RequestLog",
    "WindowLimit",
    "cursor_page",
    "int_param",
    "offset_page",
]
