"""`segsync sync` (a real process, over loopback) against platforms that answer garbage.

Every platform's contact read answers a body cut in half. The run must exit 4 (each platform
sat the run out: its read failed) with an error per platform naming it and its endpoint, and
leave the state store's contents as they were; once the platforms answer properly, the next
run is clean.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from answers import READS, Read, store_contents
from loopback_world import AnswerRewriter, loopback_world

from segsync.cli import EXIT_OK, EXIT_UNAVAILABLE


def garble(read: Read) -> AnswerRewriter:
    """Cut the answers to `read` in half."""

    def rewrite(method: str, path: str, body: bytes) -> bytes | None:
        if method == read.method and re.search(read.path, path):
            return body[: len(body) // 2] + b"<!-- cut -->"
        return None

    return rewrite


@pytest.mark.slow
def test_sync_process_names_garbled_answers_and_keeps_the_state(tmp_path: Path) -> None:
    """Exit 4, each platform and endpoint named, the store unchanged; then a clean run."""
    rewrites = {platform: garble(read) for platform, read in READS.items()}
    with loopback_world(tmp_path, 9, 12, rewrites=rewrites) as world:
        for _ in range(2):  # the second run settles the echoes of the first one's writes
            assert world.run_in_process().status == "ok"
        before = store_contents(tmp_path / "state.db")
        world.corrupt(True)
        code, output = world.run()
        after = store_contents(tmp_path / "state.db")
        world.corrupt(False)
        healed, healed_output = world.run()

    assert code == EXIT_UNAVAILABLE, output
    lines = output.splitlines()
    for platform, read in READS.items():
        named = [line for line in lines if f"[{platform}]" in line and read.endpoint in line]
        assert named, f"no error names {platform} {read.endpoint}:\n{output}"
        assert "not valid JSON" in named[0]
    assert "Traceback" not in output
    assert after == before
    assert healed == EXIT_OK, healed_output
