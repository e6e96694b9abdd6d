"""Drive a built-in check's plan with hand-made replies: its judgement, tested purely.

``drive(check, responder)`` runs ``check.run()`` to its verdict, answering every probe of
every batch with ``responder(probe)``; ``answer(...)`` builds such a reply.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from pytest_rehearsal.checks._base import Check, Probe, Reply, ReplyLog, Verdict

__all__ = ["STAGING", "Recorder", "answer", "drive"]

STAGING = "https://staging.test"
#: A bounded plan: no check needs more rounds than this.
MAX_ROUNDS = 20


def answer(
    probe: Probe,
    status: int | None = 200,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes | str = b"",
    *,
    base: str = STAGING,
    reason: str = "",
    error: str | None = None,
) -> Reply:
    """A reply to *probe* as the executor would build it (URL = *base* + probe path)."""
    data = body.encode() if isinstance(body, str) else body
    return Reply(
        probe=probe,
        url=base + probe.path,
        status=status,
        reason=reason,
        headers=tuple(headers),
        body=data,
        error=error,
    )


class Recorder:
    """A responder that records every probe it answered (in rounds) and delegates."""

    def __init__(self, respond: Callable[[Probe], Reply]) -> None:
        self.respond = respond
        self.rounds: list[list[Probe]] = []

    def __call__(self, probe: Probe) -> Reply:
        return self.respond(probe)

    @property
    def probes(self) -> list[Probe]:
        return [probe for batch in self.rounds for probe in batch]


def drive(
    check: Check, responder: Callable[[Probe], Reply], seen: ReplyLog | None = None
) -> Verdict:
    """Run *check* to its verdict, answering each probe with ``responder(probe)``."""
    log = seen if seen is not None else ReplyLog()
    run = check.run(log)
    replies: Any = None
    for _ in range(MAX_ROUNDS):
        try:
            batch = next(run) if replies is None else run.send(replies)
        except StopIteration as stop:
            verdict = stop.value
            assert isinstance(verdict, Verdict)
            return verdict
        if isinstance(responder, Recorder):
            responder.rounds.append(list(batch))
        replies = [responder(probe) for probe in batch]
        for reply in replies:
            log.add(reply)
    raise AssertionError(f"{check.id} did not finish within {MAX_ROUNDS} rounds")
