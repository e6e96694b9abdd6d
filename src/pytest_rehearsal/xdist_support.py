"""pytest-xdist glue: the built-in checks run together, on one worker.

Imported only when a rehearsal is active under xdist. Keeping every ``rehearsal::`` item on
one worker lets that worker send all their requests as one concurrent batch (a rehearsal
then costs its longest chain of round trips, as in a plain run), and lets the body scan of
``secrets[responses]`` see every reply of the checklist.
"""

from __future__ import annotations

from typing import Any

import pytest
from xdist.scheduler import LoadGroupScheduling  # type: ignore[import-untyped]

__all__ = ["WORKERINPUT_KEY", "XdistController"]

#: Tells a worker that it receives either all built-in items or none of them.
WORKERINPUT_KEY = "rehearsal_checks_together"
# Distribution modes in which the built-in items stay together: "rehearsal::" is one module
# scope for loadscope/loadfile, every worker runs everything under "each", and "load" and
# "loadgroup" are served by the scheduler below. Only "worksteal" splits them.
_TOGETHER = frozenset({"load", "loadgroup", "loadscope", "loadfile", "each"})


class _RehearsalGroupScheduling(LoadGroupScheduling):  # type: ignore[misc]
    """``load`` / ``loadgroup`` scheduling, with every built-in check in one work unit."""

    def _split_scope(self, nodeid: str) -> str:
        if nodeid.startswith("rehearsal::"):
            return "rehearsal::"
        scope: str = super()._split_scope(nodeid)
        return scope


class XdistController:
    """xdist hooks of the controller process (registered only there)."""

    def __init__(self, config: pytest.Config) -> None:
        self.together = config.getvalue("dist") in _TOGETHER

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[WORKERINPUT_KEY] = self.together

    @pytest.hookimpl(tryfirst=True, optionalhook=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        if config.getvalue("dist") in {"load", "loadgroup"}:
            return _RehearsalGroupScheduling(config, log)
        return None
