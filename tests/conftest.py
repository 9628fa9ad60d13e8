"""Fixtures shared by the core and GUI suites."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def small_weights(tmp_path_factory):
    from tests.helpers import write_checkpoint

    return write_checkpoint(tmp_path_factory.mktemp("weights") / "small5.safetensors", "small", 5)


@pytest.fixture(scope="session")
def large_weights(tmp_path_factory):
    from tests.helpers import write_checkpoint

    return write_checkpoint(tmp_path_factory.mktemp("weights") / "large5.safetensors", "large", 5)


def pytest_terminal_summary(terminalreporter):
    """The corpus tally (tests/corpus.py), so `make test` shows how the bad inputs fared."""
    from tests.corpus import summary_lines

    lines = summary_lines()
    if lines:
        terminalreporter.section("input corpus")
        for line in lines:
            terminalreporter.write_line(line)
