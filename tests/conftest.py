"""Shared pytest set-up for the test suite."""

from __future__ import annotations


def pytest_configure(config):
    # When a hypothesis test fails, hypothesis imports libcst to suggest a patch; libcst's import
    # emits a DeprecationWarning (mypy_extensions.TypedDict) that `filterwarnings = error` would
    # turn into an INTERNALERROR hiding the real failure. It is not our code's warning.
    config.addinivalue_line("filterwarnings", "ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning")
