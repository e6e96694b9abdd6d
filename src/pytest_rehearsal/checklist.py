"""The selected built-in checks of one run, executed in the background as one concurrent batch.

Started once, as soon as the selection is known and staging is ready (after the deploy);
each check item then waits only for its own outcome. Under xdist this runs on the controller
while the workers boot and run the team's own tests.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from .checks._base import Check, ReplyLog
from .executor import CheckOutcome, Send, execute

__all__ = ["ChecklistRun"]


class ChecklistRun:
    """The built-in checks of one run, on a thread of their own."""

    def __init__(self, checks: Sequence[Check], send: Send, log: ReplyLog, timeout: float) -> None:
        self._checks = list(checks)
        self._send = send
        self._log = log
        self._timeout = timeout
        self._outcomes: dict[str, CheckOutcome] = {}
        self._judged = {check.id: threading.Event() for check in self._checks}
        self._thread = threading.Thread(target=self._run, name="rehearsal-checks", daemon=True)
        self._failure: BaseException | None = None
        #: When the batch started and ended (UNIX time), for the summary's timeline.
        self.started_at = 0.0
        self.finished_at = 0.0

    @property
    def check_ids(self) -> list[str]:
        return [check.id for check in self._checks]

    def start(self) -> None:
        self._thread.start()

    def outcome(self, check_id: str) -> CheckOutcome:
        """The outcome of one check, waiting until it is judged."""
        self._judged[check_id].wait()
        if check_id in self._outcomes:
            return self._outcomes[check_id]
        # The executor itself failed (a bug): every check not judged by then shows it.
        return CheckOutcome(None, self._failure or RuntimeError("the checks did not run"))

    def join(self) -> None:
        """Wait until every check is judged."""
        if self._thread.is_alive():
            self._thread.join()

    def _settle(self, check_id: str, outcome: CheckOutcome) -> None:
        self._outcomes[check_id] = outcome
        self._judged[check_id].set()

    def _run(self) -> None:
        self.started_at = time.time()
        try:
            execute(
                self._checks, self._send, self._log, timeout=self._timeout, on_outcome=self._settle
            )
        except BaseException as exc:  # never leave an item waiting for ever
            self._failure = exc
        finally:
            self.finished_at = time.time()
            for event in self._judged.values():
                event.set()
