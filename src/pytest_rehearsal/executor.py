"""Drives many checks at once: each round sends every pending probe of every check together.

A check is a generator of probe batches (see :mod:`pytest_rehearsal.checks._base`). Round by
round, the executor collects the next batch of every unfinished check, sends all of them
concurrently over the shared connection pool, and hands each check its replies. A rehearsal
therefore costs about as many round trips as its longest chain of dependent requests.
Identical safe requests of one round are sent once and their reply shared.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from .checks._base import Check, CheckRun, Probe, Reply, ReplyLog, Verdict

__all__ = ["CheckOutcome", "execute"]

#: As many as the probe client's pool has connections (client.MAX_CONNECTIONS).
MAX_PARALLEL_REQUESTS = 32
MAX_PARALLEL_UPLOADS = 4
# RFC 9110 safe methods: a second identical request in the same round can learn nothing new.
_SAFE_METHODS = frozenset({"GET", "HEAD"})


@dataclass(frozen=True)
class CheckOutcome:
    """A check's verdict, or the exception its own code raised (a bug, reported as an error)."""

    verdict: Verdict | None
    error: BaseException | None = None


def execute(
    checks: Iterable[Check], send: Callable[[Probe], Reply], log: ReplyLog
) -> dict[str, CheckOutcome]:
    """Run *checks* to completion; ``runs_last`` checks start after all the others."""
    ordered = list(checks)
    outcomes: dict[str, CheckOutcome] = {}
    with (
        ThreadPoolExecutor(max_workers=MAX_PARALLEL_REQUESTS) as pool,
        ThreadPoolExecutor(max_workers=MAX_PARALLEL_UPLOADS) as uploads,
    ):

        def send_all(probes: Sequence[Probe]) -> list[Reply]:
            # Identical safe requests of one round (the soft-404 baseline that every
            # secrets[...] check asks for) go out once; every check gets the reply.
            keys = [probe if _shareable(probe) else index for index, probe in enumerate(probes)]
            distinct = dict(zip(keys, probes, strict=True))
            # Uploads go over sockets of their own (upload_probe), not the client's pool:
            # on threads of their own they never make a pooled request wait a round trip.
            futures = [
                (uploads if probe.upload is not None else pool).submit(send, probe)
                for probe in distinct.values()
            ]
            replies = dict(zip(distinct, (f.result() for f in futures), strict=True))
            return [replies[key] for key in keys]

        for phase in (False, True):
            _drive([c for c in ordered if c.runs_last is phase], send_all, log, outcomes)
    return outcomes


def _shareable(probe: Probe) -> bool:
    """Whether one reply to *probe* can answer every check that sends the same request."""
    return (
        probe.method.upper() in _SAFE_METHODS
        and probe.json is None
        and probe.content is None
        and probe.upload is None
    )


def _drive(
    checks: list[Check],
    send_all: Callable[[Sequence[Probe]], list[Reply]],
    log: ReplyLog,
    outcomes: dict[str, CheckOutcome],
) -> None:
    runs: dict[str, CheckRun] = {}
    pending: dict[str, Sequence[Probe]] = {}
    for check in checks:
        run = check.run(log)
        runs[check.id] = run
        _advance(check.id, run, None, pending, outcomes)
    while pending:
        batches = list(pending.items())
        pending.clear()
        replies = send_all([probe for _, batch in batches for probe in batch])
        offset = 0
        for check_id, batch in batches:
            answer = replies[offset : offset + len(batch)]
            offset += len(batch)
            _advance(check_id, runs[check_id], answer, pending, outcomes)


def _advance(
    check_id: str,
    run: CheckRun,
    answer: list[Reply] | None,
    pending: dict[str, Sequence[Probe]],
    outcomes: dict[str, CheckOutcome],
) -> None:
    """Resume one check with its replies; file its next batch or its outcome."""
    try:
        batch = next(run) if answer is None else run.send(answer)
    except StopIteration as stop:
        outcomes[check_id] = CheckOutcome(stop.value)
        return
    except Exception as exc:  # a bug in a check must not take the other checks down
        outcomes[check_id] = CheckOutcome(None, exc)
        return
    if batch:
        pending[check_id] = list(batch)
    else:
        # An empty batch asks for nothing: resume at once with no replies.
        _advance(check_id, run, [], pending, outcomes)
