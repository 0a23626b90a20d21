"""Equivalence-preserving rewrites: NNF, DNF, CNF and simplification.

Every function here returns a rule that `evaluate` judges exactly like its input, for every
contact, under the unset semantics of `segsync.rules.evaluate`:

- `nnf` pushes ``not`` down to the leaves. Where a leaf has a positive complement it is used,
  with the unset case added back: ``not country = "FR"`` becomes
  ``country != "FR" or country is not set``; ``not x < 5`` becomes ``x >= 5 or x is not set``;
  ``not c in [..]`` becomes ``c not in [..] or c is not set``; ``not x is set`` becomes
  ``x is not set``. Leaves without one (``contains``, ``has``, ``within``, ``before``,
  ``after``, ``between``) stay as ``not leaf``. Double negations go, nested groups of the same
  kind are flattened, constants are folded, duplicate items dropped, one-item groups collapse.
- `dnf` returns an `Or` of `And`s of (possibly negated) leaves, `cnf` an `And` of `Or`s; a
  single term collapses to its `And` (resp. `Or`) or leaf; an empty result is a `Const`.
  Both estimate the size first and raise `NormalFormTooLarge` (estimate and cap) before any
  exponential work.
- `simplify` keeps the shape but drops duplicates, absorbed terms (``a or (a and b)`` is
  ``a``), complements (``a and not a`` is false) and constants.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from segsync.rules import ast

__all__ = ["DEFAULT_MAX_TERMS", "NormalFormTooLarge", "cnf", "dnf", "nnf", "simplify"]

DEFAULT_MAX_TERMS = 256
"""The default cap on the terms of a DNF (clauses of a CNF)."""

_COMPLEMENT: dict[ast.CompareOp, ast.CompareOp] = {
    ast.CompareOp.EQ: ast.CompareOp.NE,
    ast.CompareOp.NE: ast.CompareOp.EQ,
    ast.CompareOp.LT: ast.CompareOp.GE,
    ast.CompareOp.GE: ast.CompareOp.LT,
    ast.CompareOp.LE: ast.CompareOp.GT,
    ast.CompareOp.GT: ast.CompareOp.LE,
}


class NormalFormTooLarge(ValueError):
    """A DNF/CNF would exceed its cap; raised from the size estimate, before building it."""

    def __init__(self, form: str, estimated: int, cap: int) -> None:
        self.form = form
        self.estimated = estimated
        self.cap = cap
        unit = "terms" if form == "DNF" else "clauses"
        shown = f"{estimated:,}" if estimated < 10**15 else f"about 1e{len(str(estimated)) - 1}"
        super().__init__(f"{form} would have up to {shown} {unit}, over the cap of {cap:,}")


# -- building blocks ----------------------------------------------------------------------


def _dedupe(items: Iterable[ast.Rule]) -> list[ast.Rule]:
    seen: set[ast.Rule] = set()
    out: list[ast.Rule] = []
    for item in items:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out


def _group(kind: type[ast.And] | type[ast.Or], items: Iterable[ast.Rule]) -> ast.Rule:
    """`kind` of `items`, flattened, constants folded, deduplicated, one item collapsed."""
    unit = kind is ast.And  # the identity: true for AND, false for OR
    flat: list[ast.Rule] = []
    for item in items:
        if isinstance(item, kind):
            flat.extend(item.items)
        elif isinstance(item, ast.Const):
            if item.value != unit:
                return ast.Const(value=not unit)
        else:
            flat.append(item)
    flat = _dedupe(flat)
    if not flat:
        return ast.Const(value=unit)
    if len(flat) == 1:
        return flat[0]
    return kind(items=tuple(flat))


def _negate_leaf(leaf: ast.Rule) -> ast.Rule:
    match leaf:
        case ast.Compare(field=name, op=op, value=value):
            flipped = ast.Compare(field=name, op=_COMPLEMENT[op], value=value)
            return ast.Or(items=(flipped, ast.IsSet(field=name, negated=True)))
        case ast.In(field=name, values=values, negated=negated):
            flipped_in = ast.In(field=name, values=values, negated=not negated)
            return ast.Or(items=(flipped_in, ast.IsSet(field=name, negated=True)))
        case ast.IsSet(field=name, negated=negated):
            return ast.IsSet(field=name, negated=not negated)
        case ast.Const(value=value):
            return ast.Const(value=not value)
    return ast.Not(item=leaf)


def _push(rule: ast.Rule, negate: bool) -> ast.Rule:
    match rule:
        case ast.Not(item=item):
            return _push(item, not negate)
        case ast.And(items=items):
            parts = [_push(item, negate) for item in items]
            return _group(ast.Or if negate else ast.And, parts)
        case ast.Or(items=items):
            parts = [_push(item, negate) for item in items]
            return _group(ast.And if negate else ast.Or, parts)
    return _negate_leaf(rule) if negate else rule


def nnf(rule: ast.Rule) -> ast.Rule:
    """The rule with ``not`` only directly on leaves that have no positive complement."""
    return _push(rule, negate=False)


# -- DNF / CNF ------------------------------------------------------------------------------


def _estimate(rule: ast.Rule, spread: type[ast.And] | type[ast.Or]) -> int:
    """Upper bound on the terms of the normal form where `spread` distributes (products)."""
    if isinstance(rule, spread):
        total = 1
        for item in rule.items:
            total *= _estimate(item, spread)
        return total
    if isinstance(rule, ast.And | ast.Or):
        return sum(_estimate(item, spread) for item in rule.items)
    return 1


_Term = tuple[ast.Rule, ...]


def _terms(rule: ast.Rule, spread: type[ast.And] | type[ast.Or]) -> list[_Term]:
    """The terms (conjunctions for DNF, disjunctions for CNF) of an NNF rule."""
    if isinstance(rule, spread):
        product: list[_Term] = [()]
        for item in rule.items:
            product = [(*left, *right) for left in product for right in _terms(item, spread)]
        return product
    if isinstance(rule, ast.And | ast.Or):
        return [term for item in rule.items for term in _terms(item, spread)]
    return [(rule,)]


def _clean_terms(terms: Sequence[_Term]) -> list[_Term] | None:
    """Dedupe leaves and terms, drop complementary terms and absorbed (superset) terms.

    A term holding a leaf and its negation is false in a DNF and true in a CNF: either way
    it is dropped. Returns None when a term is empty (the whole form is constant).
    """
    cleaned: list[_Term] = []
    seen: set[frozenset[ast.Rule]] = set()
    for term in terms:
        leaves = tuple(_dedupe(term))
        members = frozenset(leaves)
        if any(isinstance(leaf, ast.Not) and leaf.item in members for leaf in leaves):
            continue
        if members in seen:
            continue
        seen.add(members)
        cleaned.append(leaves)
    if any(not term for term in cleaned):
        return None
    sets = [frozenset(term) for term in cleaned]
    return [
        term for index, term in enumerate(cleaned)
        if not any(other < sets[index] for other in sets)
    ]


def _normal_form(
    rule: ast.Rule, form: str, max_terms: int,
    outer: type[ast.And] | type[ast.Or], inner: type[ast.And] | type[ast.Or],
) -> ast.Rule:
    base = nnf(rule)
    if isinstance(base, ast.Const):
        return base
    estimated = _estimate(base, inner)
    if estimated > max_terms:
        raise NormalFormTooLarge(form, estimated, max_terms)
    terms = _clean_terms(_terms(base, inner))
    empty_value = outer is ast.Or  # an empty conjunction is true; an empty disjunction false
    if terms is None:
        return ast.Const(value=empty_value)
    if not terms:
        return ast.Const(value=not empty_value)
    built = [term[0] if len(term) == 1 else inner(items=term) for term in terms]
    return built[0] if len(built) == 1 else outer(items=tuple(built))


def dnf(rule: ast.Rule, *, max_terms: int = DEFAULT_MAX_TERMS) -> ast.Rule:
    """The rule as an `Or` of `And`s of leaves (NNF first).

    Raises:
        NormalFormTooLarge: the estimated number of terms exceeds `max_terms`.
    """
    return _normal_form(rule, "DNF", max_terms, ast.Or, ast.And)


def cnf(rule: ast.Rule, *, max_terms: int = DEFAULT_MAX_TERMS) -> ast.Rule:
    """The rule as an `And` of `Or`s of leaves (NNF first).

    Raises:
        NormalFormTooLarge: the estimated number of clauses exceeds `max_terms`.
    """
    return _normal_form(rule, "CNF", max_terms, ast.And, ast.Or)


# -- simplification ---------------------------------------------------------------------------


def _simplify_leaf(leaf: ast.Rule) -> ast.Rule:
    if isinstance(leaf, ast.In):
        if not leaf.values:
            # `x in []` matches nobody; `x not in []` everyone with a value.
            return ast.IsSet(field=leaf.field) if leaf.negated else ast.Const(value=False)
        keyed = {(type(v).__name__, v): v for v in leaf.values}
        if len(keyed) < len(leaf.values):
            return ast.In(field=leaf.field, values=tuple(keyed.values()), negated=leaf.negated)
    return leaf


def _members(rule: ast.Rule, kind: type[ast.And] | type[ast.Or]) -> frozenset[ast.Rule]:
    return frozenset(rule.items) if isinstance(rule, kind) else frozenset((rule,))


def simplify(rule: ast.Rule) -> ast.Rule:
    """An equivalent, usually smaller rule of the same shape (see the module docstring)."""
    match rule:
        case ast.Not(item=item):
            inner = simplify(item)
            if isinstance(inner, ast.Not):
                return inner.item
            if isinstance(inner, ast.Const):
                return ast.Const(value=not inner.value)
            return ast.Not(item=inner)
        case ast.And(items=items) | ast.Or(items=items):
            kind: type[ast.And] | type[ast.Or] = type(rule)
            dual: type[ast.And] | type[ast.Or] = ast.Or if kind is ast.And else ast.And
            grouped = _group(kind, (simplify(item) for item in items))
            if not isinstance(grouped, kind):
                return grouped
            present = set(grouped.items)
            if any(isinstance(i, ast.Not) and i.item in present for i in grouped.items):
                return ast.Const(value=kind is ast.Or)
            sets = [_members(item, dual) for item in grouped.items]
            kept = [
                item for index, item in enumerate(grouped.items)
                if not any(other < sets[index] for other in sets)
            ]
            return _group(kind, kept)
    return _simplify_leaf(rule)
