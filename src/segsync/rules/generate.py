"""Seeded random contacts and well-typed rules, for differential and property tests.

`RuleGenerator` draws from one `random.Random`, so a seed reproduces a run. Rules are
well-typed for the schema (`check_rule` finds nothing) and bounded in depth and width; they
can be restricted to some node types and connectives, so a platform compiler can be tested
on its native subset. Literal values and contact values are drawn from the same small
per-field pools, and `contacts(rule=...)` also derives values from the rule's own literals
(equal, on either side of a bound, other letter case, exactly N days ago), so that equality
and boundaries are hit often. Contacts include unset values (None, "", empty sets), unicode
text and tags.

No dependency beyond the standard library and segsync: the conformance kit ships it.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Collection, Iterator
from typing import Any

from segsync.model import Consent, ConsentStatus, Contact, FieldSpec, FieldType, Schema
from segsync.rules import ast
from segsync.rules.typecheck import (
    OPERATORS_BY_KIND,
    FieldKind,
    field_kind,
    field_spec,
    parse_iso,
)

__all__ = [
    "CONNECTIVES",
    "EXAMPLE_SCHEMA",
    "LEAF_TYPES",
    "RuleGenerator",
    "generate_contacts",
    "generate_rule",
    "literals_of",
]

LEAF_TYPES: frozenset[str] = frozenset(
    {"compare", "in", "text", "is_set", "has", "within", "date", "between"}
)
"""The leaf node `type` keys a generator draws by default (`const` only when asked)."""

CONNECTIVES: frozenset[str] = frozenset({"and", "or", "not"})

EXAMPLE_SCHEMA = Schema(fields={
    "first_name": FieldSpec(type=FieldType.TEXT),
    "city": FieldSpec(type=FieldType.TEXT),
    "phone": FieldSpec(type=FieldType.PHONE),
    "country": FieldSpec(type=FieldType.ENUM, options=("FR", "BE", "DE", "US", "GB")),
    "language": FieldSpec(type=FieldType.ENUM),
    "lifecycle_stage": FieldSpec(
        type=FieldType.ENUM, options=("subscriber", "lead", "customer", "evangelist")
    ),
    "lifetime_value": FieldSpec(type=FieldType.NUMBER),
    "orders": FieldSpec(type=FieldType.INTEGER),
    "vip": FieldSpec(type=FieldType.BOOLEAN),
    "birthday": FieldSpec(type=FieldType.DATE),
    "signup_at": FieldSpec(type=FieldType.DATETIME),
    "interests": FieldSpec(type=FieldType.MULTI_ENUM, options=("news", "offers", "events")),
    "open_rate": FieldSpec(type=FieldType.NUMBER, read_only=True),
    "last_open": FieldSpec(type=FieldType.DATETIME, read_only=True),
    "member_rating": FieldSpec(type=FieldType.INTEGER, read_only=True),
})
"""A schema with every field type, engagement fields included (for tests and demos)."""

_TEXTS = ("Paris", "paris", "PARIS", "Zoë", "zoe", "Straße", "STRASSE", "ab", "Ab", "a b",
          "Ωmega", "O'Brien", "x", "東京")
_OPEN_ENUM = ("fr", "FR", "en", "de-DE", "Zoë")
_TAGS = ("vip", "VIP", "news", "Zoë", "b2b", "segsync:x")
_LOCALS = ("anna", "zoë", "o'brien", "bob.smith", "x")
_DOMAINS = ("example.com", "exemple.fr", "mail.test")
_EMAIL_PIECES = ("@example.com", "anna", ".fr", "ZOË", "@")
_NUMBERS = (0, 1, -1, 0.5, 2.5, 10, 99.99, 100)
_WITHIN = (0, 1, 7, 30)
_DAY_OFFSETS = (-400, -31, -30, -29, -7, -1, 0, 1)
_COMPARE_OPS = tuple(ast.CompareOp)


def _iter(rule: ast.Rule) -> Iterator[ast.Rule]:
    yield rule
    if isinstance(rule, ast.And | ast.Or):
        for item in rule.items:
            yield from _iter(item)
    elif isinstance(rule, ast.Not):
        yield from _iter(rule.item)


def literals_of(rule: ast.Rule) -> dict[str, list[Any]]:
    """The literal values a rule uses, by field (`within` amounts as ("within", N, unit))."""
    found: dict[str, list[Any]] = {}
    for node in _iter(rule):
        name = getattr(node, "field", None)
        if name is None:
            continue
        bucket = found.setdefault(name, [])
        match node:
            case ast.Compare(value=value) | ast.TextMatch(value=value) | ast.Has(value=value):
                bucket.append(value)
            case ast.DateCmp(value=value):
                bucket.append(value)
            case ast.In(values=values):
                bucket.extend(values)
            case ast.Between(low=low, high=high):
                bucket.extend((low, high))
            case ast.Within(amount=amount, unit=unit):
                bucket.append(("within", amount, unit))
    return found


class RuleGenerator:
    """Random, reproducible contacts and well-typed rules for one schema.

    Args:
        schema: the canonical schema (default `EXAMPLE_SCHEMA`).
        seed: an int seed or a `random.Random` to draw from.
        now: the evaluation time the date values and `within` boundaries are placed around.
        node_types: leaf `type` keys to draw from (default `LEAF_TYPES`; add "const" to get
            constants).
        connectives: which of "and", "or", "not" may appear.
        max_depth: connective nesting depth of a rule (0 = a single leaf).
        max_items: the most items in one `And`/`Or` (at least 2).
        max_leaves: the most conditions in one rule.
        unset_rate: the probability that a contact leaves a field unset.
        pool_seed: seeds the per-field value pools; generators with the same schema and
            pool seed share pools, so their rules and contacts collide.
    """

    def __init__(
        self,
        schema: Schema | None = None,
        *,
        seed: int | random.Random = 0,
        now: dt.datetime | None = None,
        node_types: Collection[str] | None = None,
        connectives: Collection[str] = CONNECTIVES,
        max_depth: int = 3,
        max_items: int = 3,
        max_leaves: int = 12,
        unset_rate: float = 0.25,
        pool_seed: int = 0,
    ) -> None:
        self.schema = schema if schema is not None else EXAMPLE_SCHEMA
        self.rng = seed if isinstance(seed, random.Random) else random.Random(seed)
        self.now = now or dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.UTC)
        self.node_types = frozenset(node_types if node_types is not None else LEAF_TYPES)
        unknown = self.node_types - LEAF_TYPES - {"const"}
        if unknown:
            raise ValueError(f"unknown node types {sorted(unknown)}")
        bad = set(connectives) - CONNECTIVES
        if bad:
            raise ValueError(f"unknown connectives {sorted(bad)}")
        self.connectives = tuple(sorted(connectives))
        self.max_depth = max_depth
        self.max_items = max(2, max_items)
        self.max_leaves = max(1, max_leaves)
        self._budget = 0
        self.unset_rate = unset_rate
        self._serial = 0
        self._specs = {name: spec for name in self.schema.names()
                       if (spec := field_spec(self.schema, name)) is not None}
        pool_rng = random.Random(pool_seed)
        self._pools = {name: self._pool(name, spec, pool_rng)
                       for name, spec in self._specs.items()}
        self._choices = [(name, op) for name, spec in self._specs.items()
                         for op in self._ops_for(name, spec)]
        if not self._choices and "const" not in self.node_types:
            raise ValueError(f"no field of the schema supports any of {sorted(self.node_types)}")

    # -- value pools ------------------------------------------------------------------------

    def _pool(self, name: str, spec: FieldSpec, rng: random.Random) -> list[Any]:
        """A few values per field, shared by rules and contacts so that they collide."""
        kind = field_kind(spec)
        if name == "email":
            return list(_EMAIL_PIECES)
        if name == "tags":
            return list(_TAGS)
        match kind:
            case FieldKind.TEXT:
                if spec.type is FieldType.PHONE:
                    return ["+33 6 12 34 56 78", "+1 (555) 010-0000", "0612345678"]
                return rng.sample(_TEXTS, 5)
            case FieldKind.NUMBER:
                numbers = [n for n in _NUMBERS
                           if spec.type is not FieldType.INTEGER or isinstance(n, int)]
                return rng.sample(numbers, 4)
            case FieldKind.BOOLEAN:
                return [True, False]
            case FieldKind.DATE:
                days = rng.sample(_DAY_OFFSETS, 4)
                today = self.now.date()
                values: list[Any] = [(today + dt.timedelta(days=d)).isoformat() for d in days]
                if spec.type is FieldType.DATETIME:
                    moment = self.now - dt.timedelta(days=rng.choice(_WITHIN), hours=3)
                    values.append(moment.isoformat().replace("+00:00", "Z"))
                return values
            case FieldKind.ENUM | FieldKind.MULTI:
                return list(spec.options) if spec.options else list(_OPEN_ENUM)
        return []  # pragma: no cover - FieldKind is closed

    def _ops_for(self, name: str, spec: FieldSpec) -> list[str]:
        allowed = OPERATORS_BY_KIND[field_kind(spec)]
        ops: list[str] = []
        for op in allowed:
            node_type = "compare" if op in {o.value for o in _COMPARE_OPS} else op
            if node_type in self.node_types:
                ops.append(op)
        return sorted(ops)

    # -- rules --------------------------------------------------------------------------------

    def rule(self, depth: int | None = None) -> ast.Rule:
        """A random well-typed rule: at most `depth` (default `max_depth`) connective levels
        and `max_leaves` conditions."""
        self._budget = self.max_leaves
        return self._rule(self.max_depth if depth is None else depth)

    def _rule(self, depth: int) -> ast.Rule:
        rng = self.rng
        if depth <= 0 or not self.connectives or self._budget < 2 or rng.random() < 0.25:
            self._budget -= 1
            return self.leaf()
        connective = rng.choice(self.connectives)
        if connective == "not":
            return ast.Not(item=self._rule(depth - 1))
        count = rng.randint(2, max(2, min(self.max_items, self._budget)))
        items: list[ast.Rule] = []
        for index in range(count):
            reserve = count - index - 1  # one condition for each item still to come
            self._budget -= reserve
            items.append(self._rule(depth - 1))
            self._budget += reserve
        return ast.And(items=tuple(items)) if connective == "and" else ast.Or(items=tuple(items))

    def leaf(self) -> ast.Rule:
        """A random well-typed condition."""
        rng = self.rng
        if "const" in self.node_types and (not self._choices or rng.random() < 0.05):
            return ast.Const(value=rng.random() < 0.5)
        name, op = rng.choice(self._choices)
        spec = self._specs[name]
        kind = field_kind(spec)
        pool = self._pools[name]
        match op:
            case "in":
                count = rng.randint(0, 3)
                values = tuple(dict.fromkeys(self._literal(name, spec) for _ in range(count)))
                return ast.In(field=name, values=values, negated=rng.random() < 0.4)
            case "text":
                return ast.TextMatch(field=name, op=rng.choice(tuple(ast.TextOp)),
                                     value=self._fragment(rng.choice(pool)))
            case "is_set":
                return ast.IsSet(field=name, negated=rng.random() < 0.5)
            case "has":
                return ast.Has(field=name, value=rng.choice(pool))
            case "within":
                return ast.Within(field=name, amount=rng.choice(_WITHIN),
                                  unit=rng.choice(tuple(ast.TimeUnit)))
            case "date":
                return ast.DateCmp(field=name, op=rng.choice(tuple(ast.DateOp)),
                                   value=self._literal(name, spec))
            case "between":
                low, high = self._literal(name, spec), self._literal(name, spec)
                if _sort_key(high, kind) < _sort_key(low, kind):
                    low, high = high, low
                return ast.Between(field=name, low=low, high=high)
        return ast.Compare(field=name, op=ast.CompareOp(op), value=self._literal(name, spec))

    def _literal(self, name: str, spec: FieldSpec) -> Any:
        value = self.rng.choice(self._pools[name])
        if field_kind(spec) is FieldKind.DATE and self.rng.random() < 0.2:
            # a datetime literal against a date field, or the other way round
            parsed = parse_iso(value)
            if isinstance(parsed, dt.datetime):
                return parsed.date().isoformat()
            return f"{value}T{self.rng.choice(('00:00:00', '23:59:59', '12:00:00'))}Z"
        if name == "email":
            return f"{self.rng.choice(_LOCALS)}1@{self.rng.choice(_DOMAINS)}"
        return value

    def _fragment(self, text: str) -> str:
        """A piece of `text` (prefix, suffix, middle or all of it), sometimes case-changed."""
        rng = self.rng
        if len(text) > 1:
            start = rng.randint(0, len(text) - 1)
            end = rng.randint(start + 1, len(text))
            text = rng.choice((text, text[:end], text[start:], text[start:end]))
        return text.swapcase() if rng.random() < 0.3 else text

    # -- contacts ------------------------------------------------------------------------------

    def contacts(self, count: int, *, rule: ast.Rule | None = None) -> list[Contact]:
        """`count` contacts with distinct emails; values near `rule`'s literals when given."""
        near = literals_of(rule) if rule is not None else {}
        return [self.contact(near=near) for _ in range(count)]

    def contact(self, *, near: dict[str, list[Any]] | None = None) -> Contact:
        """One contact; fields named in `near` often take values derived from those literals."""
        rng = self.rng
        near = near or {}
        self._serial += 1
        local = rng.choice(_LOCALS)
        email = f"{local}{self._serial}@{rng.choice(_DOMAINS)}"
        fields: dict[str, Any] = {}
        engagement: dict[str, Any] = {}
        for name, spec in self._specs.items():
            if name in ("email", "consent", "tags"):
                continue
            value = self._value(name, spec, near.get(name, []))
            (engagement if spec.read_only else fields)[name] = value
        tags = self._value("tags", self._specs["tags"], near.get("tags", []))
        consent = rng.choice(tuple(ConsentStatus))
        return Contact(
            email=email,
            fields=fields,
            engagement=engagement,
            tags=frozenset(tags or ()),
            consent=Consent(status=consent),
        )

    def _value(self, name: str, spec: FieldSpec, near: list[Any]) -> Any:
        rng = self.rng
        kind = field_kind(spec)
        if rng.random() < self.unset_rate:
            if kind is FieldKind.TEXT and spec.type is FieldType.TEXT and rng.random() < 0.5:
                return ""
            return frozenset() if kind is FieldKind.MULTI else None
        if kind is FieldKind.MULTI:
            pool = self._pools[name] + [v for v in near if isinstance(v, str)]
            chosen = rng.sample(pool, rng.randint(1, min(3, len(pool))))
            if name == "tags":  # one tag per letter case: tags are case-insensitive
                chosen = list({tag.casefold(): tag for tag in chosen}.values())
            else:
                chosen = [v for v in chosen if not spec.options or v in spec.options]
            return frozenset(chosen)
        candidates = [c for literal in near for c in self._around(literal, spec)]
        near_value = bool(candidates) and rng.random() < 0.6
        raw = rng.choice(candidates) if near_value else self._raw(name, spec)
        try:
            return spec.coerce(raw)
        except ValueError:
            return spec.coerce(self._raw(name, spec))

    def _raw(self, name: str, spec: FieldSpec) -> Any:
        rng = self.rng
        kind = field_kind(spec)
        pool = self._pools[name]
        if kind is FieldKind.NUMBER:
            base = rng.choice(pool)
            return base + rng.choice((0, 0, 1, -1)) if spec.type is FieldType.INTEGER \
                else base + rng.choice((0, 0, 0.25, -0.25, 1))
        if kind is FieldKind.DATE:
            if spec.type is FieldType.DATE:
                return self.now.date() + dt.timedelta(days=rng.choice(_DAY_OFFSETS))
            return self.now - dt.timedelta(
                days=rng.choice(_WITHIN), hours=rng.choice((0, 0, 1, 5)),
                seconds=rng.choice((0, 0, 1, -1)),
            )
        if kind is FieldKind.TEXT and spec.type is FieldType.TEXT and rng.random() < 0.3:
            return rng.choice(_TEXTS)
        return rng.choice(pool)

    def _around(self, literal: Any, spec: FieldSpec) -> list[Any]:
        """Values equal to a literal, just either side of it, or in another letter case."""
        kind = field_kind(spec)
        if isinstance(literal, tuple) and literal[:1] == ("within",):
            _, amount, unit = literal
            step = dt.timedelta(days=1) if unit is ast.TimeUnit.DAYS else dt.timedelta(hours=1)
            edge = self.now - amount * step
            tick = dt.timedelta(days=1) if spec.type is FieldType.DATE else dt.timedelta(seconds=1)
            return [edge, edge - tick, edge + tick, self.now, self.now + tick]
        match kind:
            case FieldKind.NUMBER if isinstance(literal, int | float) and not isinstance(
                literal, bool
            ):
                deltas = (0, 1, -1) if spec.type is FieldType.INTEGER else (0, 0.5, -0.5, 1e-9)
                return [literal + d for d in deltas]
            case FieldKind.DATE if isinstance(literal, str):
                parsed = parse_iso(literal)
                if parsed is None:
                    return []
                if isinstance(parsed, dt.datetime):
                    second = dt.timedelta(seconds=1)
                    return [parsed, parsed - second, parsed + second, parsed.date()]
                midnight = dt.datetime(parsed.year, parsed.month, parsed.day, tzinfo=dt.UTC)
                one_day = dt.timedelta(days=1)
                return [parsed, parsed - one_day, parsed + one_day, midnight,
                        midnight - dt.timedelta(seconds=1), midnight + one_day
                        - dt.timedelta(seconds=1)]
            case FieldKind.TEXT if isinstance(literal, str):
                return [literal, literal.upper(), literal.lower(), f"{literal}x",
                        f"x{literal}"]
            case FieldKind.ENUM | FieldKind.BOOLEAN:
                return [literal]
        return []


def generate_rule(
    schema: Schema,
    rng: random.Random,
    *,
    node_types: Collection[str] | None = None,
    connectives: Collection[str] = CONNECTIVES,
    max_depth: int = 2,
    now: dt.datetime | None = None,
) -> ast.Rule:
    """One random well-typed rule for `schema` (see `RuleGenerator` for the arguments).

    Node types other than leaf types (e.g. "and", "or", "not" in a compiler's capability
    list) are ignored here; pass `connectives` to restrict those.
    """
    leaves = None if node_types is None else set(node_types) & (LEAF_TYPES | {"const"})
    generator = RuleGenerator(schema, seed=rng, now=now, node_types=leaves,
                              connectives=connectives, max_depth=max_depth)
    return generator.rule()


def generate_contacts(
    schema: Schema,
    count: int,
    rng: random.Random,
    *,
    rule: ast.Rule | None = None,
    now: dt.datetime | None = None,
) -> list[Contact]:
    """`count` random contacts for `schema`, with values near `rule`'s literals if given.

    Pass the `now` that rules will be evaluated at, so `within` boundaries are hit.
    """
    return RuleGenerator(schema, seed=rng, now=now).contacts(count, rule=rule)


def _sort_key(value: Any, kind: FieldKind) -> Any:
    if kind is FieldKind.DATE:
        parsed = parse_iso(value)
        if isinstance(parsed, dt.datetime):
            return parsed.astimezone(dt.UTC).date(), parsed.astimezone(dt.UTC).time()
        return parsed, dt.time.min
    return value
