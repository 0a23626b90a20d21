"""docs/capabilities.md is the generated capability matrix of the installed compilers."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from segsync.cli.connectors import capabilities_markdown, compilers_of
from segsync.connector import registry
from segsync.rules.compiler import MATRIX_FEATURES, capability_matrix

DOC = Path(__file__).resolve().parents[1] / "docs" / "capabilities.md"
REGENERATE = "segsync segments capabilities --markdown > docs/capabilities.md"


def read_table(text: str) -> dict[str, dict[str, str]]:
    """feature -> platform -> cell, from the Markdown table of the page."""
    rows = [line for line in text.splitlines() if line.startswith("|")]
    header = [c.strip() for c in rows[0].strip("|").split("|")]
    table: dict[str, dict[str, str]] = {}
    for line in rows[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        table[cells[0]] = dict(zip(header[1:], cells[1:], strict=True))
    return table


def test_the_page_matches_the_installed_compilers() -> None:
    """Every platform both documented and installed has the documented column, exactly."""
    if not DOC.exists():
        pytest.fail(f"docs/capabilities.md is missing; run: {REGENERATE}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        compilers = compilers_of()
        builtin = {e.name for e in registry.entries() if e.distribution == "segsync"}
    generated = read_table(capabilities_markdown(capability_matrix(compilers)))
    documented = read_table(DOC.read_text())

    assert list(documented) == list(MATRIX_FEATURES), f"feature rows changed; run: {REGENERATE}"
    doc_platforms = set(documented[MATRIX_FEATURES[0]])
    both = doc_platforms & set(compilers)
    for feature in MATRIX_FEATURES:
        for platform in both:
            assert documented[feature][platform] == generated[feature][platform], (
                f"{platform}/{feature} differs from the installed compiler; run: {REGENERATE}"
            )
    missing = (builtin & set(compilers)) - doc_platforms
    assert not missing, f"built-in platforms {sorted(missing)} are not documented; {REGENERATE}"


def test_markdown_lists_every_feature_and_platform() -> None:
    """The Markdown has one row per feature and one column per platform given."""
    text = capabilities_markdown({"and": {"a": True, "b": False}, "max_depth": {"a": 1, "b": 0}})
    table = read_table(text)

    assert table["and"] == {"a": "yes", "b": "-"}
    assert table["max_depth"] == {"a": "1", "b": "0"}
    assert list(table) == list(MATRIX_FEATURES)
