"""The Brevo compiler: no native segments, every rule materialised with a diagnostic.

Brevo follows the base class's contract for a platform without native segments: an info
diagnostic in every mode that publishes, under every strictness; only `native` is refused.
"""

from __future__ import annotations

import pytest
from segsync_brevo import BrevoConnector
from segsync_brevo.compiler import NO_SEGMENT_API, BrevoCompiler

from segsync.model import PublishMode
from segsync.rules import ast
from segsync.rules.compiler import PlatformCannotExpress, Step, Strictness

RULE = (ast.field("country") == "FR") & ast.has_tag("vip")


@pytest.mark.parametrize(
    ("mode", "strictness"),
    [
        (mode, strictness)
        for mode in (PublishMode.AUTO, PublishMode.LIST, PublishMode.MATERIALISE)
        for strictness in Strictness
    ],
)
def test_every_rule_is_materialised_with_a_diagnostic(
    mode: PublishMode, strictness: Strictness
) -> None:
    """auto, list and materialise all give an owned list, saying Brevo cannot create segments,
    under every strictness: it is Brevo's only form, not a fallback."""
    compiled = BrevoCompiler(strictness=strictness).compile("actifs", RULE, mode)

    assert compiled.mode == "materialised"
    assert compiled.definition is None
    [diagnostic] = compiled.diagnostics
    assert diagnostic.step is Step.MATERIALISE
    assert diagnostic.level == "info"
    assert "cannot create segments" in diagnostic.message


@pytest.mark.parametrize("strictness", list(Strictness))
def test_native_mode_is_refused(strictness: Strictness) -> None:
    """Asking for a native Brevo segment is an error naming the segment and the platform's
    limit, whatever the strictness."""
    with pytest.raises(PlatformCannotExpress, match=r"'actifs' on brevo: .*cannot create segments"):
        BrevoCompiler(strictness=strictness).compile("actifs", RULE, PublishMode.NATIVE)


def test_raise_strictness_materialises_an_auto_segment() -> None:
    """With strictness raise, an auto segment is materialised with its diagnostic (the base
    class's contract for a platform without native segments), not refused."""
    compiled = BrevoCompiler(strictness=Strictness.RAISE).compile("actifs", RULE)

    assert compiled.mode == "materialised"
    assert [(d.step, d.level) for d in compiled.diagnostics] == [(Step.MATERIALISE, "info")]


def test_off_publishes_nothing() -> None:
    """`off` is not published and leaves no diagnostic."""
    compiled = BrevoCompiler().compile("actifs", RULE, PublishMode.OFF)

    assert (compiled.mode, compiled.diagnostics) == ("off", ())


def test_capabilities_declare_no_native_node() -> None:
    """The capability matrix has no node type for Brevo, and emit always refuses."""
    assert not any(BrevoCompiler.supports(t) for t in ("compare", "in", "has", "and", "or"))
    with pytest.raises(PlatformCannotExpress) as refused:
        BrevoCompiler().emit(RULE)
    assert refused.value.reason == NO_SEGMENT_API


def test_connector_points_at_the_compiler_and_emulator() -> None:
    """The connector names its compiler and emulator classes by import path."""
    assert BrevoConnector.compiler_path == "segsync_brevo.compiler:BrevoCompiler"
    assert BrevoConnector.emulator_path == "segsync_brevo.emulator:BrevoEmulator"
