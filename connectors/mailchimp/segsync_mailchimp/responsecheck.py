"""Checks the Mailchimp emulator's JSON answers against Mailchimp's API description (a test
aid).

`response_validator()` builds a `segsync.testing.ResponseValidator` from the Marketing API
description in `../shared/specs/mailchimp/` (never shipped with segsync), or returns None when
that folder is absent (callers skip with `MISSING`). `KNOWN_DEVIATIONS` are the answers where
the description, not the emulator, is wrong, with the reason of each.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from segsync.testing.responses import ResponseValidator

__all__ = ["KNOWN_DEVIATIONS", "MISSING", "SPEC_DIR", "response_validator"]

SPEC_DIR = Path(__file__).resolve().parents[3].parent / "shared" / "specs" / "mailchimp"
SPEC_GLOB = "marketing-*.openapi3*.json"
MISSING = f"Mailchimp's API description is not in {SPEC_DIR} (../shared/specs absent)"

KNOWN_DEVIATIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"\['merge_fields'\]\['[^']+'\]: .* is not of type 'object'"),
        "merge field values are strings, numbers or (ADDRESS) objects; the description types "
        "every value of the `merge_fields` dictionary as an object (its own text says 'values "
        "to be added to the merge field')",
    ),
)


def response_validator() -> ResponseValidator | None:
    """A validator of Mailchimp answers, or None when the description is absent."""
    files = sorted(SPEC_DIR.glob(SPEC_GLOB)) if SPEC_DIR.is_dir() else []
    if not files:
        return None
    return ResponseValidator(
        [json.loads(files[-1].read_text())], known_deviations=KNOWN_DEVIATIONS
    )
