"""Live lines on the terminal while the rehearsal runs: progress, ``deploy |``, ``rollback |``.

pytest glue. The deploy and the rollback print as they happen, even inside an item's
protocol, where pytest captures a test's output: the capture is suspended for each line.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest

__all__ = ["LiveLines"]


class LiveLines:
    """Writes redacted lines to pytest's terminal as they come."""

    def __init__(self, config: pytest.Config, redact: Callable[[str], str]) -> None:
        self._config = config
        self._redact = redact

    def __call__(self, line: str) -> None:
        reporter = self._config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            with self._uncaptured():
                reporter.write_line(self._redact(line))

    def resume_progress(self, nodeid: str) -> None:
        """Start the progress line again ("rehearsal F") after lines broke it."""
        reporter = self._config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None and self._config.get_verbosity() <= 0:
            with self._uncaptured():
                reporter.write_fspath_result(nodeid, "")

    def _uncaptured(self) -> contextlib.AbstractContextManager[None]:
        """pytest's output capture suspended (it is on inside an item's protocol)."""
        capture = self._config.pluginmanager.get_plugin("capturemanager")
        if capture is None:
            return contextlib.nullcontext()
        suspended: contextlib.AbstractContextManager[None] = capture.global_and_fixture_disabled()
        return suspended
