"""The public surface of segsync.rules."""

from __future__ import annotations

import segsync.rules


def test_public_names() -> None:
    """Every listed name exists, the list has no duplicates, and the core API is in it."""

    names = segsync.rules.__all__

    assert all(hasattr(segsync.rules, name) for name in names)
    assert len(names) == len(set(names))
    assert {
        "parse", "to_text", "evaluate", "nnf", "dnf", "cnf", "simplify", "load_rule",
        "RuleSyntaxError", "RuleTypeError", "NormalFormTooLarge", "RuleGenerator",
    } <= set(names)


def test_all_is_sorted() -> None:
    """__all__ is sorted: constants, then classes, then functions, each alphabetically."""

    names = segsync.rules.__all__

    def key(name: str) -> tuple[int, str]:
        group = 0 if name.isupper() else 1 if name[0].isupper() else 2
        return group, name

    assert names == sorted(names, key=key)
