"""Fixtures of the Brevo tests: every request any emulator sees is checked against the API
description when `../shared/specs/brevo` is present."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from segsync_brevo.emulator import BrevoEmulator
from segsync_brevo.spec import SpecValidator, find_spec

SPEC_PATH = find_spec()
SPEC_MISSING = "the Brevo API description (../shared/specs/brevo) is absent"


@pytest.fixture(scope="session")
def spec_validator() -> SpecValidator | None:
    """The validator of the Brevo API description, or None when it is absent."""
    return SpecValidator.from_file(SPEC_PATH) if SPEC_PATH is not None else None


@pytest.fixture(autouse=True)
def _requests_match_the_spec(spec_validator: SpecValidator | None) -> Iterator[None]:
    """Every emulator made during a test validates its requests; none may depart."""
    made: list[BrevoEmulator] = []
    BrevoEmulator.default_validator = spec_validator
    BrevoEmulator.on_create = made.append
    try:
        yield
    finally:
        BrevoEmulator.default_validator = None
        BrevoEmulator.on_create = None
    problems = [p for emulator in made for p in emulator.spec_violations]
    assert not problems, f"requests departing from the Brevo API description: {problems[:5]}"
