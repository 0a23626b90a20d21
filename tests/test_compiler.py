"""The compiler base: capabilities as data, the fallback ladder, diagnostics and strictness."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import pytest

from segsync.model import PublishMode, Schema
from segsync.rules import ast
from segsync.rules.ast import field, has_tag
from segsync.rules.compiler import (
    CompilerCapabilities,
    NotImplementedForPlatform,
    PlatformCannotExpress,
    RuleCompiler,
    Step,
    Strictness,
    capability_matrix,
    node_depth,
)


def leaf_json(node: ast.Rule) -> dict[str, Any]:
    return node.model_dump(mode="json")


class FlatCompiler(RuleCompiler):
    """Like Mailchimp: one flat list of conditions, matched all or any."""

    platform: ClassVar[str] = "flat"
    CAPS: ClassVar[CompilerCapabilities] = CompilerCapabilities(
        node_types=frozenset({"compare", "in", "has", "text"}),
        connectives=frozenset({"and", "or"}),
        max_depth=1,
        max_conditions=5,
    )

    def emit(self, rule: ast.Rule) -> dict[str, Any]:
        match = "any" if isinstance(rule, ast.Or) else "all"
        items = rule.items if isinstance(rule, ast.And | ast.Or) else (rule,)
        return {"match": match, "conditions": [leaf_json(i) for i in items]}


class OrOfAndsCompiler(RuleCompiler):
    """Like HubSpot: an OR of ANDs of (possibly negated) conditions."""

    platform: ClassVar[str] = "branches"
    CAPS: ClassVar[CompilerCapabilities] = CompilerCapabilities(
        node_types=frozenset({"compare", "in", "has", "text", "is_set", "within"}),
        connectives=frozenset({"and", "or"}),
        max_depth=2,
        root="or",
    )

    def emit(self, rule: ast.Rule) -> dict[str, Any]:
        branches = rule.items if isinstance(rule, ast.Or) else (rule,)
        return {
            "or": [
                [leaf_json(x) for x in (b.items if isinstance(b, ast.And) else (b,))]
                for b in branches
            ]
        }


class NoSegmentsCompiler(RuleCompiler):
    """Like Brevo: no native segments through the API."""

    platform: ClassVar[str] = "none"
    CAPS: ClassVar[CompilerCapabilities] = CompilerCapabilities(node_types=frozenset())


class GapCompiler(FlatCompiler):
    """A compiler where segsync has not written `text` conditions yet."""

    platform: ClassVar[str] = "gap"

    def emit(self, rule: ast.Rule) -> dict[str, Any]:
        items = rule.items if isinstance(rule, ast.And | ast.Or) else (rule,)
        if any(isinstance(i, ast.TextMatch) for i in items):
            raise NotImplementedForPlatform("text conditions")
        return super().emit(rule)


class PickyCompiler(FlatCompiler):
    """A compiler whose platform cannot compare numbers above 100."""

    platform: ClassVar[str] = "picky"

    def emit(self, rule: ast.Rule) -> dict[str, Any]:
        items = rule.items if isinstance(rule, ast.And | ast.Or) else (rule,)
        for item in items:
            if isinstance(item, ast.Compare) and isinstance(item.value, int) and item.value > 100:
                raise PlatformCannotExpress("numbers above 100 cannot be compared", item)
        return super().emit(rule)


FR = field("country") == "FR"
BE = field("country") == "BE"
VIP = has_tag("vip")
RICH = field("lifetime_value") > 100
RECENT = field("last_open").within(7)
RECENT_DATE = field("last_open").after("2025-01-01")


def steps(compiled: Any) -> list[Step]:
    return [d.step for d in compiled.diagnostics]


def test_a_rule_that_fits_is_native_as_written() -> None:
    """A flat AND of supported leaves is published as written, with one info diagnostic."""
    compiled = FlatCompiler().compile("s", FR & VIP)

    assert compiled.mode == "native"
    assert compiled.definition == {"match": "all", "conditions": [leaf_json(FR), leaf_json(VIP)]}
    assert steps(compiled) == [Step.NATIVE]
    assert compiled.diagnostics[0].level == "info"


def test_rewrite_to_dnf_fits_an_or_of_ands() -> None:
    """(a or b) and c is rewritten as (a and c) or (b and c) for an OR-of-ANDs platform."""
    compiled = OrOfAndsCompiler().compile("s", (FR | BE) & VIP)

    assert compiled.mode == "native"
    assert compiled.definition is not None
    assert len(compiled.definition["or"]) == 2
    assert steps(compiled)[-1] is Step.REWRITE
    assert "DNF" in compiled.diagnostics[-1].message


def test_rewrite_pushes_negation_down() -> None:
    """not (a or b) is rewritten (negation pushed down, then DNF) for an OR-of-ANDs platform."""
    compiled = OrOfAndsCompiler().compile("s", ~(FR | VIP))

    assert compiled.mode == "native"
    assert steps(compiled) == [Step.NATIVE, Step.REWRITE]
    assert compiled.diagnostics[0].message.startswith("not native as written: NOT over a group")


def test_split_publishes_the_native_part_and_tags_the_residual() -> None:
    """A top-level AND with one non-native part is split: native part AND an owned tag."""
    rule = FR & RECENT
    compiler = FlatCompiler(strictness=Strictness.IGNORE)

    compiled = compiler.compile("s", rule)

    assert compiled.mode == "split"
    assert compiled.residual == RECENT
    assert compiled.residual_tag == compiler.residual_tag("s", RECENT)
    assert compiled.residual_tag is not None
    assert compiled.residual_tag.startswith("segsync:s:")
    assert compiled.definition == {
        "match": "all",
        "conditions": [leaf_json(FR), leaf_json(has_tag(compiled.residual_tag))],
    }
    assert steps(compiled)[-1] is Step.SPLIT
    assert compiled.diagnostics[-1].level == "warning"


def test_split_keeps_conditions_that_see_the_whole_tag_set_in_the_residual() -> None:
    """`tags is not set` would see the residual's marker tag: it joins the residual."""
    no_tags = ast.IsSet(field="tags", negated=True)
    not_vip = ast.Not(item=has_tag("vip"))
    compiler = OrOfAndsCompiler(strictness=Strictness.IGNORE)

    compiled = compiler.compile("s", FR & no_tags & not_vip & RECENT_DATE)

    assert compiled.mode == "split"
    assert compiled.residual == ast.And(items=(no_tags, RECENT_DATE))
    assert "is_set" not in str(compiled.definition)


def test_a_condition_on_the_whole_tag_set_is_never_native() -> None:
    """Marker tags share the platform's tag container, so `tags is not set` materialises."""
    compiler = OrOfAndsCompiler(strictness=Strictness.IGNORE)

    compiled = compiler.compile("s", ast.IsSet(field="tags", negated=True))

    assert compiled.mode == "materialised"
    assert "marker tags" in compiled.diagnostics[-1].message


def test_a_positive_has_stays_native_in_a_split() -> None:
    """A positive `tags has x` is blind to other tags, so it may stay native."""
    compiler = OrOfAndsCompiler(strictness=Strictness.IGNORE)

    compiled = compiler.compile("s", FR & has_tag("vip") & RECENT_DATE)

    assert compiled.mode == "split"
    assert compiled.residual == RECENT_DATE


def test_the_residual_tag_is_stable() -> None:
    """The same residual gets the same tag; a different one a different tag."""
    compiler = FlatCompiler()

    assert compiler.residual_tag("s", RECENT) == compiler.residual_tag("s", RECENT)
    assert compiler.residual_tag("s", RECENT) != compiler.residual_tag("s", RICH)


def test_materialise_when_nothing_native_remains() -> None:
    """A rule with no native part is materialised, saying why."""
    compiled = FlatCompiler(strictness=Strictness.IGNORE).compile("s", RECENT)

    assert compiled.mode == "materialised"
    assert compiled.definition is None
    assert steps(compiled)[-1] is Step.MATERIALISE
    assert "'within'" in compiled.diagnostics[-1].message


def test_too_many_conditions_is_not_native() -> None:
    """`max_conditions` is a limit: six leaves do not fit a platform that takes five."""
    rule = ast.And(items=tuple(field(f"f{i}") == "x" for i in range(6)))

    compiled = FlatCompiler(strictness=Strictness.IGNORE).compile("s", rule)

    assert compiled.mode == "materialised"
    assert "limit of 5" in compiled.diagnostics[-1].message


def test_platform_cannot_express_from_emit_falls_back() -> None:
    """A leaf `emit` refuses (PlatformCannotExpress) is split off, with the platform's reason."""
    huge = field("lifetime_value") > 500
    compiled = PickyCompiler(strictness=Strictness.IGNORE).compile("s", FR & huge)

    assert compiled.mode == "split"
    assert compiled.residual == huge
    assert "numbers above 100" in compiled.diagnostics[-1].message


def test_strictness_raise_refuses_fallbacks() -> None:
    """With `raise`, split and materialise are refused with PlatformCannotExpress."""
    compiler = FlatCompiler(strictness=Strictness.RAISE)

    with pytest.raises(PlatformCannotExpress, match="within"):
        compiler.compile("s", RECENT)
    with pytest.raises(PlatformCannotExpress):
        compiler.compile("s", FR & RECENT)
    assert compiler.compile("s", FR).mode == "native"


def test_strictness_warn_logs_and_ignore_does_not(caplog: pytest.LogCaptureFixture) -> None:
    """`warn` logs each fallback; `ignore` only records the diagnostic."""
    with caplog.at_level(logging.WARNING, logger="segsync.compiler"):
        FlatCompiler(strictness=Strictness.IGNORE).compile("quiet", RECENT)
        FlatCompiler(strictness=Strictness.WARN).compile("loud", RECENT)

    messages = [r.getMessage() for r in caplog.records]
    assert any("loud" in m and "materialise" in m for m in messages)
    assert not any("quiet" in m for m in messages)


def test_native_mode_refuses_what_does_not_fit() -> None:
    """Publish mode `native` raises instead of materialising; the diagnostic says refuse."""
    with pytest.raises(PlatformCannotExpress, match="'within'"):
        FlatCompiler().compile("s", RECENT, PublishMode.NATIVE)


def test_not_implemented_is_a_different_error() -> None:
    """A segsync gap falls back in auto mode and raises NotImplementedForPlatform in native."""
    rule = field("email").ends_with("@example.com")
    compiler = GapCompiler(strictness=Strictness.IGNORE)

    compiled = compiler.compile("s", rule)

    assert compiled.mode == "materialised"
    assert "not implemented in segsync yet" in compiled.diagnostics[-1].message
    with pytest.raises(NotImplementedForPlatform):
        compiler.compile("s", rule, PublishMode.NATIVE)
    with pytest.raises(NotImplementedForPlatform):
        GapCompiler(strictness=Strictness.RAISE).compile("s", rule)
    assert not issubclass(NotImplementedForPlatform, PlatformCannotExpress)


def test_a_platform_without_segments_always_materialises() -> None:
    """No native segments: materialised with an info diagnostic, even under `raise`."""
    compiled = NoSegmentsCompiler(strictness=Strictness.RAISE).compile("s", FR)

    assert compiled.mode == "materialised"
    assert [d.level for d in compiled.diagnostics] == ["info"]
    assert "no native segments" in compiled.diagnostics[0].message
    with pytest.raises(PlatformCannotExpress, match="no native segments"):
        NoSegmentsCompiler().compile("s", FR, PublishMode.NATIVE)


def test_publish_modes_off_and_materialise() -> None:
    """`off` publishes nothing; `materialise`/`list` never try native."""
    compiler = FlatCompiler()

    assert compiler.compile("s", FR, PublishMode.OFF).mode == "off"
    assert compiler.compile("s", FR, PublishMode.MATERIALISE).mode == "materialised"
    assert compiler.compile("s", FR, PublishMode.LIST).mode == "materialised"


def test_a_constant_rule_is_materialised() -> None:
    """`const` has no native form anywhere."""
    compiled = OrOfAndsCompiler(strictness=Strictness.IGNORE).compile(
        "s", ast.Const(value=True)
    )

    assert compiled.mode == "materialised"


def test_every_diagnostic_names_segment_and_platform() -> None:
    """Diagnostics carry the segment and platform, as text and as a dict."""
    compiled = FlatCompiler(strictness=Strictness.IGNORE).compile("vip-fr", FR & RECENT)

    for diag in compiled.diagnostics:
        assert diag.segment == "vip-fr"
        assert diag.platform == "flat"
        assert str(diag).startswith("[flat] vip-fr: ")
        assert diag.as_dict()["step"] == diag.step.value


def test_node_depth() -> None:
    """Depth counts connective levels; NOT adds none."""
    assert node_depth(FR) == 0
    assert node_depth(FR & VIP) == 1
    assert node_depth(~(FR & VIP)) == 1
    assert node_depth((FR | BE) & VIP) == 2


def test_supports_is_total() -> None:
    """`supports` answers for every node type, connectives included, and unknown keys."""
    assert FlatCompiler.supports("compare")
    assert not FlatCompiler.supports("within")
    assert FlatCompiler.supports("not")  # negated leaves
    assert not FlatCompiler.supports("const")
    assert not FlatCompiler.supports("no-such-node")
    assert OrOfAndsCompiler.supports("or")
    assert not any(NoSegmentsCompiler.supports(k) for k in ("and", "or", "not", "compare"))


def test_capability_matrix_by_platform() -> None:
    """The matrix has a row per node type plus depth, and a column per platform."""
    matrix = capability_matrix(
        {"flat": FlatCompiler, "branches": OrOfAndsCompiler, "none": NoSegmentsCompiler,
         "nocompiler": None}
    )

    assert matrix["within"] == {
        "branches": True, "flat": False, "none": False, "nocompiler": False
    }
    assert matrix["max_depth"] == {"branches": 2, "flat": 1, "none": 0, "nocompiler": 0}
    assert matrix["root"]["branches"] == "or"
    assert set(matrix) >= {cls.model_fields["type"].default for cls in ast.RULE_NODE_TYPES}


def test_compiler_schema_defaults_to_empty() -> None:
    """A compiler built without a schema has an empty one."""
    assert FlatCompiler().schema == Schema()
