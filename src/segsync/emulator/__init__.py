"""Toolkit for stateful platform emulators (ASGI apps served in-process or on loopback)."""

from segsync.emulator.base import (
    ConcurrencyLimit,
    Emulator,
    EmulatorTransport,
    FaultPlan,
    RequestLog,
    WindowLimit,
    offset_page,
)

__all__ = [
    "ConcurrencyLimit",
    "Emulator",
    "EmulatorTransport",
    "FaultPlan",
    "RequestLog",
    "WindowLimit",
    "offset_page",
]
