"""`history` in segsync.yaml: defaults, and a bad value named with its place."""

from __future__ import annotations

import pytest

from segsync.config import ConfigError, parse_config


def test_history_defaults_to_200_runs_and_no_age_limit() -> None:
    config = parse_config("platforms: {}\n", secrets=False)

    assert config.history.keep_runs == 200
    assert config.history.keep_days is None


def test_history_limits_are_read() -> None:
    config = parse_config("history: {keep_runs: 50, keep_days: 30}\n", secrets=False)

    assert (config.history.keep_runs, config.history.keep_days) == (50, 30)


@pytest.mark.parametrize("text", ["history: {keep_runs: 0}", "history: {keep_days: -1}",
                                  "history: {keep: 3}"])
def test_a_bad_history_is_refused_with_its_place(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text + "\n", secrets=False)

    assert any(p.path.startswith("history.") for p in caught.value.problems), str(caught.value)
