"""Hypothesis strategies for arbitrary rule ASTs (any field name, any printable literal).

These cover the whole AST, well-typed or not, for the text and JSON round trips; the
semantic properties use `segsync.rules.generate`, driven by a Hypothesis-controlled
`random.Random` so that failures shrink and replay.
"""

from __future__ import annotations

from hypothesis import strategies as st

from segsync.rules import ast
from segsync.rules.parser import KEYWORDS

_PLAIN_NAMES = st.sampled_from(
    ["country", "open_rate", "last_open", "tags", "email", "address.city", "prénom", "x1"]
)
_ODD_NAMES = st.text(
    st.characters(exclude_characters="`\n", exclude_categories=("Cs",)), min_size=1, max_size=8
)
field_names = st.one_of(_PLAIN_NAMES, st.sampled_from(sorted(KEYWORDS)), _ODD_NAMES)

texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
scalars: st.SearchStrategy[ast.Scalar] = st.one_of(
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    texts,
)

leaves: st.SearchStrategy[ast.Rule] = st.one_of(
    st.builds(ast.Const, value=st.booleans()),
    st.builds(ast.Compare, field=field_names, op=st.sampled_from(list(ast.CompareOp)),
              value=scalars),
    st.builds(ast.In, field=field_names, values=st.lists(scalars, max_size=4).map(tuple),
              negated=st.booleans()),
    st.builds(ast.TextMatch, field=field_names, op=st.sampled_from(list(ast.TextOp)),
              value=texts),
    st.builds(ast.IsSet, field=field_names, negated=st.booleans()),
    st.builds(ast.Has, field=field_names, value=texts),
    st.builds(ast.Within, field=field_names, amount=st.integers(min_value=0, max_value=10**6),
              unit=st.sampled_from(list(ast.TimeUnit))),
    st.builds(ast.DateCmp, field=field_names, op=st.sampled_from(list(ast.DateOp)),
              value=texts),
    st.builds(ast.Between, field=field_names, low=scalars, high=scalars),
)


def _extend(children: st.SearchStrategy[ast.Rule]) -> st.SearchStrategy[ast.Rule]:
    groups = st.lists(children, min_size=2, max_size=4).map(tuple)
    return st.one_of(
        st.builds(ast.And, items=groups),
        st.builds(ast.Or, items=groups),
        st.builds(ast.Not, item=children),
    )


rules: st.SearchStrategy[ast.Rule] = st.recursive(leaves, _extend, max_leaves=12)
"""Any rule whose groups have two or more items (the printer's round-trip domain)."""
