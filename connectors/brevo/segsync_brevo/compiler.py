"""The Brevo rule compiler: Brevo's API cannot create segments, so every rule is materialised.

Brevo segments are read-only through the API (no create, update, delete, nor access to their
conditions), so there is no native form to emit: `CAPS` declares no node types, `emit`
raises `PlatformCannotExpress`, and `compile` goes straight to the materialise step of the
ladder — an owned list in segsync's folder — with a diagnostic saying why. A `native`
publish mode is refused with the same reason.
"""

from __future__ import annotations

from typing import Any

from segsync.model import PublishMode
from segsync.rules import ast
from segsync.rules.compiler import (
    CompiledSegment,
    CompilerCapabilities,
    Diagnostic,
    PlatformCannotExpress,
    RuleCompiler,
    Step,
    Strictness,
)

__all__ = ["NO_SEGMENT_API", "BrevoCompiler"]

NO_SEGMENT_API = (
    "Brevo's API cannot create segments (they are read-only): materialised as an owned list "
    "in segsync's folder, membership evaluated by segsync"
)


class BrevoCompiler(RuleCompiler):
    """Materialises every rule as an owned list; see the module docstring."""

    platform = "brevo"
    CAPS = CompilerCapabilities(
        node_types=frozenset(),
        connectives=frozenset(),
        max_depth=0,
        max_conditions=0,
        max_dnf_terms=1,
        negated_leaves=False,
    )

    def emit(self, rule: ast.Rule) -> dict[str, Any]:
        raise PlatformCannotExpress(NO_SEGMENT_API, rule)

    def compile(
        self, segment: str, rule: ast.Rule, mode: PublishMode = PublishMode.AUTO
    ) -> CompiledSegment:
        """`off` stays off; `native` is refused; anything else is materialised as a list."""
        if mode is PublishMode.OFF:
            return CompiledSegment(segment, self.platform, "off", rule)
        if mode is PublishMode.NATIVE:
            raise PlatformCannotExpress(f"segment {segment!r} on brevo: {NO_SEGMENT_API}", rule)
        configured = mode in (PublishMode.MATERIALISE, PublishMode.LIST)
        if not configured and self.strictness is Strictness.RAISE:
            raise PlatformCannotExpress(f"segment {segment!r} on brevo: {NO_SEGMENT_API}", rule)
        level = "info" if configured else "warning"
        diagnostic = Diagnostic(segment, self.platform, Step.MATERIALISE, level, NO_SEGMENT_API)
        return CompiledSegment(
            segment, self.platform, "materialised", rule, diagnostics=(diagnostic,)
        )
