"""pytest-xdist glue: the built-in checks run together, on one worker.

Imported only when a rehearsal is active under xdist. Keeping every ``rehearsal::`` item on
one worker lets that worker send all their requests as one concurrent batch (a rehearsal
then costs its longest chain of round trips, as in a plain run), and lets the body scan of
``secrets[responses]`` see every reply of the checklist.
"""

from __future__ import annotations

from typing import Any

import pytest
from xdist.scheduler import LoadScheduling  # type: ignore[import-untyped]

from .session import CHECKS_TOGETHER_KEY

__all__ = ["XdistController"]

# Distribution modes in which the built-in items stay together: "rehearsal::" is one module
# scope for loadscope/loadfile, every worker runs everything under "each", and "load" is
# served by the scheduler below. "loadgroup" and "worksteal" split them.
_TOGETHER = frozenset({"load", "loadscope", "loadfile", "each"})


class _RehearsalLoadScheduling(LoadScheduling):  # type: ignore[misc]
    """xdist's ``load`` scheduling, except that the built-in items travel as one chunk.

    Whenever a chunk of tests for a worker would include a built-in item, every built-in
    item still pending joins that chunk. Everything else (chunk sizes, crash handling,
    rescheduling) is xdist's own.
    """

    def _send_tests(self, node: Any, num: int) -> None:
        pending: list[int] = self.pending
        if any(self._is_builtin(index) for index in pending[:num]):
            rest = [index for index in pending[num:] if self._is_builtin(index)]
            if rest:
                others = [index for index in pending[num:] if not self._is_builtin(index)]
                pending[:] = pending[:num] + rest + others
                num += len(rest)
        super()._send_tests(node, num)

    def _is_builtin(self, index: int) -> bool:
        return bool(self.collection[index].startswith("rehearsal::"))


class XdistController:
    """xdist hooks of the controller process (registered only there)."""

    def __init__(self, config: pytest.Config) -> None:
        self.together = config.getvalue("dist") in _TOGETHER

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput[CHECKS_TOGETHER_KEY] = self.together

    @pytest.hookimpl(tryfirst=True, optionalhook=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        if config.getvalue("dist") == "load":
            return _RehearsalLoadScheduling(config, log)
        return None
