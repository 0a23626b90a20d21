"""The conformance kit against the HubSpot emulator, once plain with search's index lag (the
strict reading: the kit waits for the index before it reads back) and once with an instant
index and every request checked against HubSpot's API descriptions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest
from segsync_hubspot import HubSpotConnector, HubSpotEmulator
from segsync_hubspot.emulator.state import STRICT_SEARCH_INDEX_LAG
from segsync_hubspot.spec import SpecValidator, ValidatingTransport

from segsync.emulator.base import EmulatorTransport
from segsync.testing import ConnectorSuite, Harness

SPECS = Path(__file__).resolve().parents[3].parent / "shared" / "specs" / "hubspot"
SPECS_MISSING = f"the HubSpot API descriptions are not at {SPECS}"


class TestHubSpotConformance(ConnectorSuite):
    connector_cls = HubSpotConnector
    emulator_cls = HubSpotEmulator
    config: ClassVar[dict[str, Any]] = {"token": HubSpotEmulator.default_api_key}
    emulator_kwargs: ClassVar[dict[str, Any]] = {"search_delay_seconds": STRICT_SEARCH_INDEX_LAG}


_VALIDATOR: list[SpecValidator] = []


class _ValidatedEmulator(HubSpotEmulator):
    """The emulator, reached through a transport that checks each request against the spec."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec_problems: list[str] = []

    def transport(self) -> EmulatorTransport:
        if not _VALIDATOR:
            _VALIDATOR.append(SpecValidator(SPECS))
        inner = super().transport()
        checking = ValidatingTransport(inner, _VALIDATOR[0], responses=True)
        checking.problems = self.spec_problems
        return checking  # type: ignore[return-value]


@pytest.mark.skipif(not SPECS.is_dir(), reason=SPECS_MISSING)
class TestHubSpotConformanceAgainstSpec(ConnectorSuite):
    """Every request the kit makes the connector send, and every JSON answer of the emulator,
    validates against the descriptions."""

    connector_cls = HubSpotConnector
    emulator_cls = _ValidatedEmulator
    config: ClassVar[dict[str, Any]] = {"token": HubSpotEmulator.default_api_key}
    emulator_kwargs: ClassVar[dict[str, Any]] = {"search_delay_seconds": 0.0}

    def run(self, test: Callable[[Harness], Awaitable[None]]) -> None:
        super().run(test)
        emulator = self.harness.emulator
        assert isinstance(emulator, _ValidatedEmulator)
        assert emulator.spec_problems == []
