"""The Brevo rule compiler: Brevo's API cannot create segments, so every rule is materialised.

Brevo segments are read-only through the API (no create, update, delete, nor access to their
conditions), so there is no native form to emit: `CAPS` declares no node types and `emit`
raises `PlatformCannotExpress`. `compile` follows the base class's contract for a platform
without native segments, with Brevo's reason as the diagnostic: `off` publishes nothing,
`native` is refused, and every other mode is materialised as an owned list in segsync's
folder with an `info` diagnostic, whatever the strictness (it is the platform's only form,
not a fallback). Nothing it produces names an attribute, so the connector's config and
mapping (`self.config`, `self.mapping`) do not change its output.
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
        """`off` stays off; `native` is refused; any other mode is materialised as a list,
        with an info diagnostic under every strictness."""
        if mode is PublishMode.OFF:
            return CompiledSegment(segment, self.platform, "off", rule)
        if mode is PublishMode.NATIVE:
            raise PlatformCannotExpress(f"segment {segment!r} on brevo: {NO_SEGMENT_API}", rule)
        diagnostic = Diagnostic(segment, self.platform, Step.MATERIALISE, "info", NO_SEGMENT_API)
        return CompiledSegment(
            segment, self.platform, "materialised", rule, diagnostics=(diagnostic,)
        )
