"""The core knows no platform: what a platform is lives in its connector's package.

Modules under `src/segsync` may describe platforms in docstrings (the design speaks of the
built-in ones), but no code, string or comment there names one; and importing a connector
does not import its emulator, which loads only when asked (emulate, demo, bench, the kit).
"""

from __future__ import annotations

import ast
import io
import re
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest

from segsync.connector import ConnectorEntry, registry

REPO = Path(__file__).resolve().parents[1]
CORE = REPO / "src" / "segsync"
BUILT_IN = re.compile(r"mailchimp|hubspot|brevo", re.IGNORECASE)


def _docstring_lines(tree: ast.Module) -> set[int]:
    """The lines of every module, class and function docstring."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        first = node.body[0] if node.body else None
        if (
            isinstance(first, ast.Expr)
            and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)
        ):
            lines.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    return lines


def platform_mentions(source: str) -> list[tuple[int, str]]:
    """(line, token) for each name, string or comment naming a built-in platform, outside
    docstrings."""
    docstrings = _docstring_lines(ast.parse(source))
    found = []
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in (tokenize.NAME, tokenize.STRING, tokenize.COMMENT):
            continue
        if token.type == tokenize.STRING and token.start[0] in docstrings:
            continue
        if BUILT_IN.search(token.string):
            found.append((token.start[0], token.string))
    return found


def test_the_guard_sees_names_strings_and_comments_but_not_docstrings() -> None:
    """The scanner flags code, strings and comments, and skips docstrings."""
    source = (
        '"""Talks to HubSpot."""\n'
        "def f():\n"
        '    """Like Brevo does."""\n'
        "    x = 'mailchimp'  # or HubSpot\n"
        "    return brevo_thing\n"
    )

    assert platform_mentions(source) == [(4, "'mailchimp'"), (4, "# or HubSpot"),
                                         (5, "brevo_thing")]


def test_no_core_module_names_a_built_in_platform() -> None:
    """No module under src/segsync names mailchimp, hubspot or brevo outside docstrings."""
    offenders = {
        str(path.relative_to(REPO)): mentions
        for path in sorted(CORE.rglob("*.py"))
        if (mentions := platform_mentions(path.read_text(encoding="utf-8")))
    }

    assert offenders == {}, "\n".join(
        f"{path}:{line}: {token}" for path, found in offenders.items() for line, token in found
    )


@pytest.mark.slow
@pytest.mark.parametrize("entry", registry.entries(), ids=lambda e: e.name)
def test_importing_a_connector_does_not_import_its_emulator(entry: ConnectorEntry) -> None:
    """Loading a connector class (as a sync does) imports no module named *emulator*."""
    target = entry.target
    code = (
        "import sys\n"
        "from segsync.connector import load_object\n"
        f"load_object({target!r})\n"
        "print('\\n'.join(sorted(m for m in sys.modules if 'emulator' in m)))\n"
    )

    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )

    assert proc.stdout.split() == [], f"{target} imports {proc.stdout.split()}"
