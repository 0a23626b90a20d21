"""The Template platform's rule compiler: one flat AND of conditions.

What the platform can say is declared in `CAPS`; everything else walks segsync's fallback
ladder (rewrite, split into an owned tag, materialise), with a diagnostic at each step.
The connector builds it (`Connector.build_compiler`) with its config and mapping, so a
condition names the attribute the mapping gives a field, as the connector writes it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from segsync.mapping import PlatformMapping, load_mapping
from segsync.model import FieldType
from segsync.rules import ast
from segsync.rules.compiler import CompilerCapabilities, PlatformCannotExpress, RuleCompiler

__all__ = ["TemplateCompiler"]

#: canonical comparison -> the platform's operator (no "not equal" on this platform)
COMPARE_OPS: dict[ast.CompareOp, str] = {
    ast.CompareOp.EQ: "eq",
    ast.CompareOp.LT: "lt",
    ast.CompareOp.LE: "lte",
    ast.CompareOp.GT: "gt",
    ast.CompareOp.GE: "gte",
}

#: canonical field types whose values the platform compares (text ignoring case, enums exactly)
COMPARABLE_TYPES = frozenset(
    {FieldType.TEXT, FieldType.ENUM, FieldType.NUMBER, FieldType.INTEGER}
)
NUMERIC_TYPES = frozenset({FieldType.NUMBER, FieldType.INTEGER})


class TemplateCompiler(RuleCompiler):
    """Compiles rules into `{"match": "all", "conditions": [...]}`."""

    platform: ClassVar[str] = "template"
    CAPS: ClassVar[CompilerCapabilities] = CompilerCapabilities(
        node_types=frozenset({"compare", "in", "has"}),
        connectives=frozenset({"and"}),
        max_depth=1,
        negated_leaves=False,
        max_conditions=20,
    )

    def attribute(self, field: str) -> str:
        """The platform attribute holding canonical `field` (the mapping's, or its own name)."""
        mapping = self.mapping if isinstance(self.mapping, PlatformMapping) else self._shipped()
        path = mapping.platform_path(field) if mapping is not None else None
        return path or field

    def _shipped(self) -> PlatformMapping | None:
        if not hasattr(self, "_shipped_mapping"):
            try:
                self._shipped_mapping: PlatformMapping | None = load_mapping(self.platform)
            except FileNotFoundError:
                self._shipped_mapping = None
        return self._shipped_mapping

    def emit(self, rule: ast.Rule) -> dict[str, Any]:
        items = rule.items if isinstance(rule, ast.And) else (rule,)
        return {"match": "all", "conditions": [self.condition(item) for item in items]}

    def field_type(self, node: ast.Compare | ast.In) -> FieldType:
        """The canonical type of the field a condition reads; only platform-comparable ones."""
        spec = self.schema.get(node.field)
        if spec is None or spec.type not in COMPARABLE_TYPES:
            raise PlatformCannotExpress(f"'{node.field}' cannot be compared on this platform", node)
        return spec.type

    def condition(self, node: ast.Rule) -> dict[str, Any]:
        """One leaf as a platform condition; PlatformCannotExpress for what it cannot say."""
        if isinstance(node, ast.Compare):
            ftype = self.field_type(node)
            op = COMPARE_OPS.get(node.op)
            if op is None:
                raise PlatformCannotExpress(f"no '{node.op.value}' operator", node)
            if op != "eq" and ftype not in NUMERIC_TYPES:
                raise PlatformCannotExpress("ordering applies to numbers only", node)
            return {"field": self.attribute(node.field), "op": op, "value": node.value}
        if isinstance(node, ast.In):
            self.field_type(node)
            if node.negated or not node.values:
                raise PlatformCannotExpress("only a non-empty, positive 'in'", node)
            return {"field": self.attribute(node.field), "op": "in", "values": list(node.values)}
        if isinstance(node, ast.Has):
            if node.field != "tags":
                raise PlatformCannotExpress("'has' applies to tags only", node)
            return {"field": "tags", "op": "has", "value": node.value}
        raise PlatformCannotExpress(f"no '{node.type}' condition", node)
