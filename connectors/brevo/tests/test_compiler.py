"""The Brevo compiler: no native segments, every rule materialised with a diagnostic."""

from __future__ import annotations

import pytest
from segsync_brevo import BrevoConnector
from segsync_brevo.compiler import NO_SEGMENT_API, BrevoCompiler

from segsync.model import PublishMode
from segsync.rules import ast
from segsync.rules.compiler import PlatformCannotExpress, Step, Strictness

RULE = (ast.field("country") == "FR") & ast.has_tag("vip")


@pytest.mark.parametrize(
    ("mode", "level"),
    [(PublishMode.AUTO, "warning"), (PublishMode.LIST, "info"), (PublishMode.MATERIALISE, "info")],
)
def test_every_rule_is_materialised_with_a_diagnostic(mode: PublishMode, level: str) -> None:
    """auto, list and materialise all give an owned list, saying Brevo cannot create segments."""
    compiled = BrevoCompiler().compile("actifs", RULE, mode)

    assert compiled.mode == "materialised"
    assert compiled.definition is None
    [diagnostic] = compiled.diagnostics
    assert diagnostic.step is Step.MATERIALISE
    assert diagnostic.level == level
    assert "cannot create segments" in diagnostic.message


def test_native_mode_is_refused() -> None:
    """Asking for a native Brevo segment is an error naming the platform's limit."""
    with pytest.raises(PlatformCannotExpress, match="cannot create segments"):
        BrevoCompiler().compile("actifs", RULE, PublishMode.NATIVE)


def test_raise_strictness_refuses_the_fallback() -> None:
    """With strictness raise, an auto segment is refused rather than materialised."""
    with pytest.raises(PlatformCannotExpress):
        BrevoCompiler(strictness=Strictness.RAISE).compile("actifs", RULE)


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
