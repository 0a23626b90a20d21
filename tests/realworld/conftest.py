"""Makes `lived_in` (tests/consent) and `realworld` importable by the tests here, and gives
the `world` fixture: the three lived-in accounts of `realworld.RealWorld`."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "consent"))
sys.path.insert(0, str(HERE))

from collections.abc import Iterator  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture
def world() -> Iterator[Any]:
    """A `realworld.RealWorld`, closed after the test (imported here, so that a test module's
    `importorskip` of the connectors runs first)."""
    from realworld import RealWorld

    w = RealWorld()
    yield w
    w.close()
