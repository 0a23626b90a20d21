"""Checks the Brevo emulator's JSON answers against Brevo's API description (a test aid).

`response_validator()` builds a `segsync.testing.ResponseValidator` from the contacts subset
of the description in `../shared/specs/brevo/` (never shipped with segsync), or returns None
when that folder is absent (callers skip with `MISSING`). `KNOWN_DEVIATIONS` are the answers
where the 2025 description is behind Brevo's 2026 API, with the source of each.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from segsync.testing.responses import ResponseValidator

__all__ = ["KNOWN_DEVIATIONS", "MISSING", "SPEC_DIR", "response_validator"]

SPEC_DIR = Path(__file__).resolve().parents[3].parent / "shared" / "specs" / "brevo"
SPEC_FILE = "contacts-subset.2025-02-28.json"
MISSING = f"Brevo's API description is not at {SPEC_DIR / SPEC_FILE} (../shared/specs absent)"

KNOWN_DEVIATIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"/processes.*\['status'\]: 'failed' is not one of"),
        "process status `failed` (with `error`) is in Brevo's 2026 description (brevo-python "
        "5.1.0, wiremock mappings) but not in the 2025 one",
    ),
    (
        re.compile(r"/contacts/attributes -> 200: body\['attributes'\]\[\d+\]\['type'\]: "
                   r"'(multiple-choice|user)' is not one of"),
        "`multiple-choice` and `user` attribute types exist (fact sheet brevo.md §2.4, "
        "developers.brevo.com attributes guide) but the 2025 enum of getAttributes lacks them",
    ),
)


def response_validator() -> ResponseValidator | None:
    """A validator of Brevo answers, or None when the description is absent."""
    path = SPEC_DIR / SPEC_FILE
    if not path.is_file():
        return None
    return ResponseValidator([json.loads(path.read_text())], known_deviations=KNOWN_DEVIATIONS)
