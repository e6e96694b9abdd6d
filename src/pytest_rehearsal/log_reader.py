"""Running the team's log command for the logging check, and scanning what it prints.

The command runs through :func:`pytest_rehearsal.command.run_command` (no shell, own process
group, bounded in time and memory) with ``rollback.cwd`` and ``rollback.env``, plus
``REHEARSAL_MARKER`` and ``REHEARSAL_SINCE``. Its lines are scanned as they arrive, raw: the
canaries are secrets the rehearsal's redactor masks, so the scan must see the text before
redaction. Nothing raw leaves this module: every line kept for a message, the output's end
and the failure are redacted with the rehearsal's redactor before they are returned.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .checks._base import ActionContext
from .command import LIVE_LINES, CommandResult, run_command
from .redact import Redactor
from .text import excerpt

__all__ = ["LINES_KEPT", "LogLine", "LogReading", "read_logs"]

#: Lines kept per kind (marker, each canary) for messages; the rest are only counted.
LINES_KEPT = 3
_LINE_CHARS = 300
_TAIL_LINES = 3
# SIGTERM to SIGKILL after a timeout: short, a log reader has nothing to clean up.
_GRACE_S = 0.5


@dataclass(frozen=True)
class LogLine:
    """One line of the log command's output: its number (from 1) and its redacted text."""

    number: int
    text: str


@dataclass(frozen=True)
class LogReading:
    """What one run of the log command showed; every text already redacted.

    ``began`` is when the first run started (``time.monotonic()``): ``within`` counts from it.
    ``canaries`` maps each canary's name to the lines it appears in (at most a few each).
    """

    began: float
    finished_at: float
    lines: int = 0
    marker: tuple[LogLine, ...] = ()
    canaries: tuple[tuple[str, tuple[LogLine, ...]], ...] = ()
    scan_stopped: bool = False  # the output had more lines than are scanned
    failure: str | None = None  # why the command failed, a sentence: it did not exit 0 in time
    timed_out: bool = False
    tail: str = ""  # the end of the output, one line, for messages


class _Scanner:
    """Looks for the marker and the canaries in each line, keeping a few redacted lines."""

    def __init__(
        self, marker: str, canaries: Sequence[tuple[str, str]], redact: Callable[[str], str]
    ) -> None:
        self._marker = marker
        self._canaries = canaries
        self._redact = redact
        self.last: deque[str] = deque(maxlen=_TAIL_LINES)  # raw: redacted whole, never cut
        self.lines = 0
        self.stopped = False
        self.marker: list[LogLine] = []
        self.found: dict[str, list[LogLine]] = {}

    def feed(self, line: str) -> None:
        if self.lines >= LIVE_LINES:
            self.stopped = True  # run_command's own notice that it stops passing lines on
            return
        self.lines += 1
        self.last.append(line)
        if self._marker in line:
            self._keep(self.marker, line)
        for name, value in self._canaries:
            if value in line:
                self._keep(self.found.setdefault(name, []), line)

    def _keep(self, kept: list[LogLine], line: str) -> None:
        if len(kept) < LINES_KEPT:
            kept.append(LogLine(self.lines, self.shown(line)))

    def shown(self, line: str) -> str:
        """*line* as a message may show it: redacted first, then cut (no fragment survives)."""
        return excerpt(self._redact(line), _LINE_CHARS)


def read_logs(
    command: Sequence[str],
    *,
    marker: str,
    since: str,
    canaries: Sequence[tuple[str, str]],
    began: float | None,
    pause: float,
    context: ActionContext,
    not_after: float,
) -> LogReading:
    """Run the log *command* once, after *pause* seconds, ending by *not_after*, and scan its
    output for the *marker* and the *canaries* (``(name, value)`` pairs)."""
    if pause > 0:
        # At most half the time left: the command's own run must not be starved by the pause.
        time.sleep(max(0.0, min(pause, (not_after - time.monotonic()) / 2)))
    started = time.monotonic()
    began = started if began is None else began
    scanner = _Scanner(marker, canaries, context.redactor)
    env = {**context.env, "REHEARSAL_MARKER": marker, "REHEARSAL_SINCE": since}
    result = run_command(
        command,
        cwd=context.cwd,
        env=env,
        timeout=max(not_after - started, 0.001),
        grace=_GRACE_S,
        redactor=Redactor(),  # raw lines for the scan; redacted below, before they leave
        on_line=scanner.feed,
        label="log command",
    )
    redact = context.redactor
    return LogReading(
        began=began,
        finished_at=time.monotonic(),
        lines=scanner.lines,
        marker=tuple(scanner.marker),
        canaries=tuple((name, tuple(lines)) for name, lines in scanner.found.items()),
        scan_stopped=scanner.stopped,
        failure=None if result.ok else redact(_failure(result)),
        timed_out=result.timed_out,
        tail=scanner.shown(" ⏎ ".join(scanner.last)),
    )


def _failure(result: CommandResult) -> str:
    """What went wrong, as a sentence: a start error names the command itself."""
    text = result.describe()
    return text if result.error is not None else f"the log command {text}"
