"""Drives many checks at once; each goes on as soon as its own requests are answered.

A check is a generator of request batches (see :mod:`pytest_rehearsal.checks._base`). The
executor sends each batch concurrently over the shared connection pool and hands the check
its replies the moment the last of them is in, so one slow request holds up only the check
that waits for it: a rehearsal costs about as many round trips as its longest chain of
dependent requests. Identical safe requests (the soft-404 baseline every ``secrets[...]``
check asks for) are sent once and their reply shared.

Every request of a batch ends within ``timeout`` seconds of the moment its batch was
handed over, however many requests queue for the pool: a check with 200 paths takes about
one timeout against a server that never answers, not 200 / pool size of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from .checks._base import Check, CheckRun, Probe, ReplyLog, Request, Verdict

__all__ = ["CheckOutcome", "execute"]

#: As many as the probe client's pool has connections (client.MAX_CONNECTIONS).
MAX_PARALLEL_REQUESTS = 32
MAX_PARALLEL_UPLOADS = 4
# RFC 9110 safe methods: a second identical request can learn nothing new.
_SAFE_METHODS = frozenset({"GET", "HEAD"})

#: ``send(request, not_after)``: the reply (or an action's result); never raises for staging's
#: sake, and ends by ``not_after`` (``time.monotonic()``).
Send = Callable[[Request, float], Any]


@dataclass(frozen=True)
class CheckOutcome:
    """A check's verdict, or the exception its own code raised (a bug, reported as an error)."""

    verdict: Verdict | None
    error: BaseException | None = None


def execute(
    checks: Iterable[Check],
    send: Send,
    log: ReplyLog,
    *,
    timeout: float,
    clock: Callable[[], float] = time.monotonic,
    on_outcome: Callable[[str, CheckOutcome], None] | None = None,
) -> dict[str, CheckOutcome]:
    """Run *checks* to completion; ``runs_last`` checks start after all the others.

    *on_outcome* hears of each check the moment it is judged (from the executor's thread).
    """
    ordered = list(checks)
    outcomes: dict[str, CheckOutcome] = {}
    with (
        ThreadPoolExecutor(MAX_PARALLEL_REQUESTS, "rehearsal-request") as pool,
        ThreadPoolExecutor(MAX_PARALLEL_UPLOADS, "rehearsal-upload") as uploads,
    ):
        shared: dict[Probe, Future[Any]] = {}

        def submit(request: Request, not_after: float) -> Future[Any]:
            if isinstance(request, Probe) and _shareable(request):
                if request not in shared:
                    shared[request] = pool.submit(send, request, not_after)
                return shared[request]
            # Uploads go over sockets of their own (upload_probe), not the client's pool:
            # on threads of their own they never make a pooled request wait.
            is_upload = isinstance(request, Probe) and request.upload is not None
            return (uploads if is_upload else pool).submit(send, request, not_after)

        for last in (False, True):
            group = [check for check in ordered if check.runs_last is last]
            _Driver(submit, log, timeout, clock, outcomes, on_outcome).drive(group)
    return outcomes


def _shareable(probe: Probe) -> bool:
    """Whether one reply to *probe* can answer every check that sends the same request."""
    return (
        probe.method.upper() in _SAFE_METHODS
        and probe.json is None
        and probe.content is None
        and probe.upload is None
    )


class _Driver:
    """Advances each check of a group as soon as its pending batch is answered."""

    def __init__(
        self,
        submit: Callable[[Request, float], Future[Any]],
        log: ReplyLog,
        timeout: float,
        clock: Callable[[], float],
        outcomes: dict[str, CheckOutcome],
        on_outcome: Callable[[str, CheckOutcome], None] | None,
    ) -> None:
        self._submit = submit
        self._on_outcome = on_outcome
        self._log = log
        self._timeout = timeout
        self._clock = clock
        self._outcomes = outcomes
        self._waiting: dict[str, tuple[CheckRun, list[Future[Any]]]] = {}

    def drive(self, checks: Sequence[Check]) -> None:
        for check in checks:
            self._advance(check.id, check.run(self._log), None)
        while self._waiting:
            ready = [
                (check_id, run, batch)
                for check_id, (run, batch) in self._waiting.items()
                if all(future.done() for future in batch)
            ]
            if not ready:
                # Wait for the pending futures only: a done one would end every wait at
                # once, and the loop would spin, holding the GIL the request threads need.
                pending = [f for _, batch in self._waiting.values() for f in batch if not f.done()]
                wait(pending, return_when=FIRST_COMPLETED)
                continue
            for check_id, run, batch in ready:
                del self._waiting[check_id]
                self._resume(check_id, run, batch)

    def _resume(self, check_id: str, run: CheckRun, batch: list[Future[Any]]) -> None:
        try:
            answer = [future.result() for future in batch]
        except Exception as exc:  # a sender's bug: the check cannot be judged
            run.close()
            self._settle(check_id, CheckOutcome(None, exc))
            return
        self._advance(check_id, run, answer)

    def _settle(self, check_id: str, outcome: CheckOutcome) -> None:
        self._outcomes[check_id] = outcome
        if self._on_outcome is not None:
            self._on_outcome(check_id, outcome)

    def _advance(self, check_id: str, run: CheckRun, answer: list[Any] | None) -> None:
        """Resume one check with its replies; file its next batch or its outcome."""
        while True:
            try:
                batch = next(run) if answer is None else run.send(answer)
            except StopIteration as stop:
                self._settle(check_id, CheckOutcome(stop.value))
                return
            except Exception as exc:  # a bug in a check must not take the other checks down
                self._settle(check_id, CheckOutcome(None, exc))
                return
            if batch:
                break
            answer = []  # an empty batch asks for nothing: resume at once with no replies
        not_after = self._clock() + self._timeout
        self._waiting[check_id] = (run, [self._submit(request, not_after) for request in batch])
