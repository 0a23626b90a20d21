"""Base class of the platform rule compilers, and the fallback ladder.

A platform compiler declares what its platform can express as data (`CompilerCapabilities`:
node types, connectives, nesting depth, size limits) and implements `emit(rule)`, which turns
a rule that fits into the platform's native segment definition (JSON-ready dict), raising
`PlatformCannotExpress` for what it cannot say (e.g. a value the platform cannot compare).

`compile()` walks the ladder of DESIGN.md and leaves a `Diagnostic` for every step taken:

1. native      — the rule fits as written;
2. rewrite     — NNF, then DNF / CNF under a size cap, until it fits;
3. split       — the native part of a top-level AND is published, the residual materialised as
                 an owned tag (`residual_tag`) and ANDed back in natively;
4. materialise — evaluated locally and pushed as static membership;
5. refuse      — only where the publish mode or the strictness says so.

"Not implemented yet" (`NotImplementedForPlatform`) and "the platform cannot express this"
(`PlatformCannotExpress`) are different errors. Both make `auto` fall back (the diagnostic
says which); `native` mode and `raise` strictness raise the one that applies.

A compiler whose `CAPS.node_types` is empty declares a platform without native segments
(Brevo): every segment is materialised there with an `info` diagnostic, whatever the
strictness, because that is the platform's only form and not a fallback.

`capability_matrix` turns the installed compilers' declarations into the feature matrix of
`segsync segments capabilities` and docs/capabilities.md.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import logging
from collections.abc import Mapping
from typing import Any, ClassVar, NoReturn

from pydantic import BaseModel, ConfigDict

from segsync.engagement import (
    AGGREGATES,
    AggregateFunction,
    is_aggregate,
    split_qualified,
    unread_platforms,
)
from segsync.model import PublishMode, Schema
from segsync.rules import ast, normalize

__all__ = [
    "MATRIX_FEATURES",
    "CompiledSegment",
    "CompilerCapabilities",
    "Diagnostic",
    "NotImplementedForPlatform",
    "PlatformCannotExpress",
    "RuleCompileError",
    "RuleCompiler",
    "Step",
    "Strictness",
    "capability_matrix",
    "node_depth",
    "node_type",
]

log = logging.getLogger("segsync.compiler")


class RuleCompileError(Exception):
    """A rule could not be compiled for a platform."""


class NotImplementedForPlatform(RuleCompileError):
    """segsync does not compile this construct for this platform yet (a segsync gap)."""


class PlatformCannotExpress(RuleCompileError):
    """The platform's segment model cannot express this construct (a platform limit)."""

    def __init__(self, reason: str, node: Any = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.node = node


class Strictness(enum.StrEnum):
    """What a fallback past `rewrite` does: nothing, a logged warning, or an error."""

    IGNORE = "ignore"
    WARN = "warn"
    RAISE = "raise"


class Step(enum.StrEnum):
    NATIVE = "native"
    REWRITE = "rewrite"
    SPLIT = "split"
    MATERIALISE = "materialise"
    REFUSE = "refuse"


@dataclasses.dataclass(frozen=True)
class Diagnostic:
    """One step of the ladder, or one thing a compiler could not express, and why."""

    segment: str
    platform: str
    step: Step
    level: str  # "info" | "warning" | "error"
    message: str

    def __str__(self) -> str:
        return f"[{self.platform}] {self.segment}: {self.step.value}: {self.message}"

    def as_dict(self) -> dict[str, str]:
        return {
            "segment": self.segment,
            "platform": self.platform,
            "step": self.step.value,
            "level": self.level,
            "message": self.message,
        }


class CompilerCapabilities(BaseModel):
    """What a platform's native segment filter can hold, as data.

    `node_types` are AST `type` keys ("compare", "in", ...); `connectives` the boolean
    connectives allowed ("and", "or", "not"); `max_depth` how many connective levels may
    nest (1 = one flat AND or OR; 2 = OR of ANDs); `root` which connective may be at the top
    when `max_depth` is 2 ("or": an OR of ANDs); `max_conditions` the number of leaves.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    node_types: frozenset[str]
    connectives: frozenset[str] = frozenset({"and", "or"})
    max_depth: int = 1
    root: str | None = None
    max_conditions: int = 100
    max_dnf_terms: int = 64
    #: "not" applied to leaves only (after NNF) is allowed when True
    negated_leaves: bool = True


def node_type(node: ast.Rule) -> str:
    """The `type` key of a node."""
    return node.type


def node_depth(node: ast.Rule) -> int:
    """Connective nesting depth: a leaf is 0, a flat AND of leaves 1 (NOT of a leaf adds 0)."""
    if isinstance(node, ast.And | ast.Or):
        return 1 + max(node_depth(i) for i in node.items)
    if isinstance(node, ast.Not):
        return node_depth(node.item)
    return 0


def _observes_tag_set(node: ast.Rule) -> bool:
    """True when `node` has a condition on the tag set as a whole (`tags is set`, ...).

    Only `tags has "x"` (negated or not) is blind to tags other than "x". Every platform keeps
    segsync's own marker tags (materialised residuals, `segsync:...`) in the same container
    as the user's tags, and the engine keeps them out of the canonical tags, so a native
    condition on the whole set would see tags the reference evaluator does not.
    """
    if isinstance(node, ast.And | ast.Or):
        return any(_observes_tag_set(i) for i in node.items)
    if isinstance(node, ast.Not):
        return _observes_tag_set(node.item)
    return getattr(node, "field", None) == "tags" and not isinstance(node, ast.Has)


def _leaves(node: ast.Rule) -> list[ast.Rule]:
    if isinstance(node, ast.And | ast.Or):
        return [leaf for i in node.items for leaf in _leaves(i)]
    if isinstance(node, ast.Not):
        return _leaves(node.item)
    return [node]


@dataclasses.dataclass(frozen=True)
class CompiledSegment:
    """The outcome of compiling one segment for one platform.

    - `native`: `definition` is the platform's segment definition;
    - `split`: `definition` is native and includes membership of `residual_tag`, whose
      members are `residual` evaluated locally;
    - `materialised`: membership of `rule` is evaluated locally and pushed as static members;
    - `off`: not published there.
    """

    segment: str
    platform: str
    mode: str  # "native" | "split" | "materialised" | "off"
    rule: ast.Rule
    definition: Mapping[str, Any] | None = None
    residual: ast.Rule | None = None
    residual_tag: str | None = None
    diagnostics: tuple[Diagnostic, ...] = ()


class RuleCompiler:
    """Base of the platform compilers; subclasses set `platform` and `CAPS`, implement `emit`."""

    platform: ClassVar[str]
    CAPS: ClassVar[CompilerCapabilities]
    #: whether `emit` says `within` on a recurring date (an anniversary window) natively
    RECURRING_DATES: ClassVar[bool] = False
    #: why the platform cannot, for the diagnostic (platform data, set by the compiler)
    RECURRING_DATES_REASON: ClassVar[str] = "the platform's filters compare whole dates"

    def __init__(
        self,
        schema: Schema | None = None,
        *,
        strictness: Strictness | str = Strictness.WARN,
        config: Any = None,
        mapping: Any = None,
    ):
        self.schema = schema or Schema()
        self.strictness = Strictness(strictness)
        #: the connector's validated config block (None: the platform's defaults)
        self.config = config
        #: the connector's PlatformMapping (None: the connector's shipped mapping)
        self.mapping = mapping
        self._gaps: list[str] = []

    # -- what a platform implements ----------------------------------------------------

    def emit(self, rule: ast.Rule) -> dict[str, Any]:
        """The native definition of a rule that `fits`; raise PlatformCannotExpress otherwise."""
        raise NotImplementedForPlatform(f"{self.platform}: native segments are not implemented")

    @classmethod
    def has_native_segments(cls) -> bool:
        """False for a platform whose API cannot hold dynamic segments (always materialised)."""
        caps = getattr(cls, "CAPS", None)
        return caps is not None and bool(caps.node_types)

    @classmethod
    def supports(cls, node_type_key: str) -> bool:
        """Whether a node type can appear in a native definition (total: False when unknown).

        Connectives count as supported when declared; `not` also when negated leaves are
        allowed. `const` never has a native form.
        """
        caps = getattr(cls, "CAPS", None)
        if caps is None or not caps.node_types:
            return False
        if node_type_key in ("and", "or"):
            return node_type_key in caps.connectives
        if node_type_key == "not":
            return "not" in caps.connectives or caps.negated_leaves
        return node_type_key != "const" and node_type_key in caps.node_types

    @classmethod
    def features(cls) -> dict[str, bool | int | str | None]:
        """This compiler's row of the capability matrix (see `MATRIX_FEATURES`)."""
        caps = getattr(cls, "CAPS", None)
        native = cls.has_native_segments()
        row: dict[str, bool | int | str | None] = {
            key: cls.supports(key) for key in NODE_TYPE_KEYS
        }
        row["max_depth"] = caps.max_depth if (caps and native) else 0
        row["root"] = (
            (caps.root or "/".join(sorted(caps.connectives & {"and", "or"})))
            if (caps and native)
            else None
        )
        row["max_conditions"] = caps.max_conditions if (caps and native) else 0
        return row

    # -- the ladder -----------------------------------------------------------------------

    def fits(self, rule: ast.Rule) -> str | None:
        """None when `rule` has a shape the platform accepts; otherwise the reason it does not."""
        caps = self.CAPS
        if isinstance(rule, ast.Const):
            return "a constant rule has no native form"
        for leaf in _leaves(rule):
            if leaf.type not in caps.node_types:
                return f"'{leaf.type}' conditions are not supported natively"
        depth = node_depth(rule)
        if depth > caps.max_depth:
            return f"nesting depth {depth} exceeds the platform's {caps.max_depth}"
        if caps.max_depth >= 2 and caps.root and depth == 2 and rule.type != caps.root:
            return f"the top level must be '{caps.root}'"
        bad = self._bad_negation(rule)
        if bad:
            return bad
        connectives = self._connectives(rule)
        missing = connectives - caps.connectives
        if missing:
            return f"connective(s) {sorted(missing)} not supported"
        count = len(_leaves(rule))
        if count > caps.max_conditions:
            return f"{count} conditions exceed the platform's limit of {caps.max_conditions}"
        return None

    def _connectives(self, rule: ast.Rule) -> set[str]:
        if isinstance(rule, ast.And | ast.Or):
            return {rule.type}.union(*(self._connectives(i) for i in rule.items))
        return set()

    def _bad_negation(self, rule: ast.Rule) -> str | None:
        if isinstance(rule, ast.Not):
            if isinstance(rule.item, ast.And | ast.Or | ast.Not):
                return "NOT over a group is not supported natively"
            if not self.CAPS.negated_leaves:
                return "negated conditions are not supported natively"
            return None
        if isinstance(rule, ast.And | ast.Or):
            for item in rule.items:
                reason = self._bad_negation(item)
                if reason:
                    return reason
        return None

    def residual_tag(self, segment: str, residual: ast.Rule) -> str:
        """The owned tag that carries a materialised residual (stable for the same residual)."""
        digest = hashlib.sha1(ast.rule_to_json(residual).encode(), usedforsecurity=False)
        return f"segsync:{segment}:{digest.hexdigest()[:8]}"

    def _platforms(self) -> list[str]:
        """The configured platforms, as the schema's qualified engagement fields tell."""
        return sorted({q[0] for n in self.schema.fields if (q := split_qualified(n))})

    def _recurring_problem(self, rule: ast.Rule) -> str | None:
        """Why a `within` on a recurring date (an anniversary window moving with today) has
        no native form here (None: the compiler declares it can say it)."""
        if self.RECURRING_DATES:
            return None
        for leaf in _leaves(rule):
            spec = self.schema.get(getattr(leaf, "field", ""))
            if isinstance(leaf, ast.Within) and spec is not None and spec.recurring:
                return (f"'{leaf.field} within {leaf.amount} {leaf.unit.value}' is a yearly "
                        f"anniversary window moving with today: {self.RECURRING_DATES_REASON}")
        return None

    def _engagement_problem(self, rule: ast.Rule) -> str | None:
        """Why `rule` reads engagement this platform does not hold alone: another platform's
        own figure, or an aggregate over several platforms (None: it holds it)."""
        platforms = self._platforms()
        for leaf in _leaves(rule):
            name = getattr(leaf, "field", "")
            qualified = split_qualified(name)
            if qualified is not None and qualified[0] != self.platform:
                return (f"'{name}' is {qualified[0]}'s own engagement, which {self.platform} "
                        "does not hold")
            if (qualified is None and is_aggregate(name) and len(platforms) > 1
                    and AGGREGATES[name].function is not AggregateFunction.FIRST):
                unread = unread_platforms(self.schema.fields)
                read = [p for p in platforms if p not in unread] or ["no platform"]
                off = "".join(f"; {p}'s is not read (engagement.platforms.{p} is off)"
                              for p in unread)
                return (f"'{name}' aggregates the engagement of {', '.join(read)}{off}; "
                        f"{self.platform} holds only its own (that is "
                        f"'{self.platform}.{name}')")
        return None

    def _own_engagement(self, rule: ast.Rule) -> ast.Rule:
        """`rule` with this platform's qualified engagement (`<platform>.x`) named `x`,
        the name the platform's compiler knows."""
        if isinstance(rule, ast.And | ast.Or):
            return rule.model_copy(update={"items": tuple(map(self._own_engagement, rule.items))})
        if isinstance(rule, ast.Not):
            return rule.model_copy(update={"item": self._own_engagement(rule.item)})
        qualified = split_qualified(getattr(rule, "field", ""))
        if qualified is not None and qualified[0] == self.platform:
            return rule.model_copy(update={"field": qualified[1]})
        return rule

    def _try_emit(self, rule: ast.Rule) -> tuple[dict[str, Any] | None, str]:
        engagement = self._engagement_problem(rule) or self._recurring_problem(rule)
        if engagement:
            return None, engagement
        rule = self._own_engagement(rule)
        if _observes_tag_set(rule):
            return None, (
                "a condition on the whole tag set is never native: the platform's tag "
                "container also holds segsync's own marker tags"
            )
        reason = self.fits(rule)
        if reason:
            return None, reason
        try:
            return self.emit(rule), ""
        except PlatformCannotExpress as exc:
            return None, exc.reason
        except NotImplementedForPlatform as exc:
            self._gaps.append(str(exc))
            return None, f"not implemented in segsync yet: {exc}"

    def compile(
        self, segment: str, rule: ast.Rule, mode: PublishMode = PublishMode.AUTO
    ) -> CompiledSegment:
        """Walk the ladder for one segment; see the module docstring."""
        diags: list[Diagnostic] = []

        def note(step: Step, level: str, message: str) -> None:
            diag = Diagnostic(segment, self.platform, step, level, message)
            diags.append(diag)
            if level != "info" and self.strictness is Strictness.WARN:
                log.warning("%s", diag, extra={"segment": segment, "platform": self.platform})

        def done(mode_: str, **kw: Any) -> CompiledSegment:
            return CompiledSegment(
                segment, self.platform, mode_, rule, diagnostics=tuple(diags), **kw
            )

        self._gaps = []
        if mode is PublishMode.OFF:
            return done("off")
        if mode in (PublishMode.MATERIALISE, PublishMode.LIST):
            note(Step.MATERIALISE, "info", "materialised as configured")
            return done("materialised")
        if not self.has_native_segments():
            message = f"{self.platform} has no native segments through its API"
            if mode is PublishMode.NATIVE:
                note(Step.REFUSE, "error", f"publish mode is native, but {message}")
                raise PlatformCannotExpress(f"segment {segment!r}: {message}")
            note(Step.MATERIALISE, "info", f"materialised: {message}")
            return done("materialised")

        definition, why = self._try_emit(rule)
        if definition is not None:
            note(Step.NATIVE, "info", "published natively as written")
            return done("native", definition=definition)
        note(Step.NATIVE, "info", f"not native as written: {why}")

        # 2. rewrite
        candidates: list[tuple[str, ast.Rule]] = [
            ("negation pushed down (NNF)", normalize.nnf(rule))
        ]
        for label, fn in (("DNF", normalize.dnf), ("CNF", normalize.cnf)):
            try:
                candidates.append(
                    (f"rewritten in {label}", fn(rule, max_terms=self.CAPS.max_dnf_terms))
                )
            except normalize.NormalFormTooLarge as exc:
                note(Step.REWRITE, "info", f"{label} skipped: {exc}")
        for label, candidate in candidates:
            definition, why = self._try_emit(candidate)
            if definition is not None:
                note(Step.REWRITE, "info", label)
                return done("native", definition=definition)
        last_reason = why

        # 3. split: native part of a top-level AND, residual materialised as an owned tag
        base = normalize.nnf(rule)
        if isinstance(base, ast.And):
            native_items = [i for i in base.items if self._try_emit(i)[0] is not None]
            residual_items = [i for i in base.items if i not in native_items]
            if native_items and residual_items:
                residual: ast.Rule = (
                    residual_items[0]
                    if len(residual_items) == 1
                    else ast.And(items=tuple(residual_items))
                )
                tag = self.residual_tag(segment, residual)
                combined = ast.And(items=(*native_items, ast.Has(field="tags", value=tag)))
                definition, why = self._try_emit(combined)
                if definition is not None:
                    self._fallback(note, mode, Step.SPLIT, (
                        f"{len(native_items)} condition(s) native, the rest materialised "
                        f"as owned tag {tag!r}: {last_reason}"
                    ))
                    return done("split", definition=definition, residual=residual, residual_tag=tag)

        # 4. materialise / 5. refuse
        if mode is PublishMode.NATIVE:
            note(Step.REFUSE, "error", f"publish mode is native, but {last_reason}")
            self._refuse(f"segment {segment!r} on {self.platform}: {last_reason}")
        self._fallback(note, mode, Step.MATERIALISE, f"materialised: {last_reason}")
        return done("materialised")

    def _refuse(self, message: str) -> NoReturn:
        """Raise the error that applies: a segsync gap or a platform limit."""
        if self._gaps:
            raise NotImplementedForPlatform(message)
        raise PlatformCannotExpress(message)

    def _fallback(self, note: Any, mode: PublishMode, step: Step, message: str) -> None:
        if self.strictness is Strictness.RAISE:
            note(Step.REFUSE, "error", message)
            self._refuse(message)
        note(step, "warning", message)


NODE_TYPE_KEYS: tuple[str, ...] = tuple(
    str(cls.model_fields["type"].default) for cls in ast.RULE_NODE_TYPES
)
"""The `type` key of every AST node, in `RULE_NODE_TYPES` order."""

MATRIX_FEATURES: tuple[str, ...] = (*NODE_TYPE_KEYS, "max_depth", "root", "max_conditions")
"""The rows of the capability matrix: node types, then nesting depth, root and size."""


def capability_matrix(
    compilers: Mapping[str, type[RuleCompiler] | None],
) -> dict[str, dict[str, bool | int | str | None]]:
    """Feature -> platform -> value, from each platform's compiler (None: no compiler)."""
    rows = {name: (cls.features() if cls is not None else None) for name, cls in compilers.items()}
    empty = RuleCompiler.features()
    return {
        feature: {
            platform: (row if row is not None else empty)[feature]
            for platform, row in sorted(rows.items())
        }
        for feature in MATRIX_FEATURES
    }
