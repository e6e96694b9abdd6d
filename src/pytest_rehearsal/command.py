"""Running one command for real: preflight, then a bounded, redacted subprocess.

Pure module, no pytest glue. :func:`preflight` resolves the executable the way execution
will and names what is wrong with it; :func:`run_command` runs one command safely (no shell,
own process group, one-thread selector loop with a deadline, bounded capture, secrets
redacted) and returns a :class:`CommandResult`. The rollback (:mod:`.rollback`) runs its
command and its restore through it.

The command leads a session of its own, and every signal it gets goes to its process group
and, on Linux, to every process left in its session outside that group (a job that
``set -m`` put in a group of its own): ``/proc`` is scanned for the session id. Neither is a
sandbox: a command that calls ``setsid`` leaves both and cannot be killed through them. Such
an escapee is detected only while it holds the output pipe; it is then abandoned
(``escaped=True``) so the run never hangs. Only cgroups contain everything.
"""

from __future__ import annotations

import contextlib
import errno
import os
import selectors
import shutil
import signal
import stat
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .text import printable
from .units import format_duration

if TYPE_CHECKING:
    from .redact import Redactor

__all__ = [
    "HEAD_BYTES",
    "LINE_CHARS",
    "LIVE_LINES",
    "TAIL_BYTES",
    "CommandResult",
    "preflight",
    "run_command",
]

HEAD_BYTES = 16 * 1024  # kept from the start of the output
TAIL_BYTES = 64 * 1024  # kept from the end of the output
# Raw bytes kept beyond every cut, so a secret that spans a cut is still seen whole and masked.
_CUT_MARGIN = 4096
LINE_CHARS = 2000  # longest line passed to on_line
LIVE_LINES = 10_000  # lines streamed to on_line; later output is still counted and captured
_READ_CHUNK = 64 * 1024
_POLL_S = 0.05  # how often the loop looks at the leader while nothing is readable
_LINGER_S = 1.0  # after the leader exits, how long the pipe may stay open before the group dies
_ESCAPE_WAIT_S = 0.5  # after that SIGKILL, how long before the pipe is abandoned as escaped
_INTERRUPT_GRACE_S = 1.0  # SIGTERM grace on Ctrl-C: the user is waiting
_REAP_WAIT_S = 5.0  # a leader that survives SIGKILL this long (D state) is left behind
_TAIL_LINES = 20
_TAIL_CHARS = 4096  # the contract's "last <= 4 KiB of output" in messages and reports
_SWEEP_ROUNDS = 5  # session sweeps per signal: a process may fork while it is being swept
_NOTED_PROCESSES = 5  # processes named in a note; the rest are counted


# --------------------------------------------------------------------------------------------
# preflight


def preflight(
    argv: Sequence[str],
    cwd: Path | None,
    *,
    env: Mapping[str, str] | None = None,
    label: str = "rollback command",
) -> str | None:
    """Why *argv* cannot be started from *cwd*, or ``None`` when it can.

    Resolution matches execution: a name with a slash is relative to *cwd*; a bare name is
    looked up on ``PATH`` (the configured *env* overrides the inherited one), whose relative
    entries (``bin``, ``.``, an empty one) are relative to *cwd* too, as they are for the
    started command. Each cause has
    its own message: working directory missing, not found, a directory, not executable (with
    the mode and a ``chmod +x`` hint), or the ``#!`` interpreter missing. *label* names the
    command in messages ("rollback command", "restore command").
    """
    if not argv or not argv[0]:
        return f"{label} is empty"
    if cwd is not None and not Path(cwd).is_dir():
        return f"{label} working directory {cwd} does not exist (or is not a directory)"
    base = Path(cwd) if cwd is not None else Path.cwd()
    search_path = _search_path(env, base)
    name = argv[0]
    if "/" in name:
        path = Path(os.path.abspath(base / name))
    else:
        found = shutil.which(name, path=search_path)
        if found is None:
            # which() skips non-executable files; find one to say what is wrong with it.
            candidates = (Path(d) / name for d in search_path.split(os.pathsep))
            existing = next((c for c in candidates if c.exists()), None)
            if existing is None:
                return f"{label} {name!r} not found on PATH ({search_path})"
            path = existing
        else:
            path = Path(found)
    return _check_executable(path, name, label, base, search_path)


def _search_path(env: Mapping[str, str] | None, base: Path) -> str:
    """The command's ``PATH``, each relative entry made absolute from *base* (its cwd)."""
    value = (env or {}).get("PATH", os.environ.get("PATH", os.defpath))
    # exec joins each entry to the name and runs that from the command's cwd; "" means ".".
    return os.pathsep.join(
        entry if os.path.isabs(entry) else os.path.normpath(base / entry)
        for entry in value.split(os.pathsep)
    )


def _check_executable(
    path: Path, name: str, label: str, base: Path, search_path: str
) -> str | None:
    try:
        info = path.stat()
    except FileNotFoundError:
        return f"{label} {name!r} not found (looked in {path.parent})"
    except OSError as exc:
        return f"{label} {name!r} cannot be inspected ({path}: {exc.strerror})"
    if stat.S_ISDIR(info.st_mode):
        return f"{label} {name!r} is a directory ({path}), not an executable file"
    if not stat.S_ISREG(info.st_mode) or not os.access(path, os.X_OK):
        mode = stat.S_IMODE(info.st_mode)
        return f"{label} {name!r} is not executable (mode {mode:04o}): run chmod +x {path}"
    return _check_interpreter(path, name, label, base, search_path)


def _check_interpreter(
    path: Path, name: str, label: str, base: Path, search_path: str
) -> str | None:
    """A missing ``#!`` interpreter; Popen would blame the script itself (ENOENT on it)."""
    try:
        with path.open("rb") as script:
            first = script.read(256)
    except OSError:
        return None  # unreadable scripts fail at exec with their own clear error
    if not first.startswith(b"#!"):
        return None
    words = first[2:].split(b"\n", 1)[0].decode(errors="replace").split()
    if not words:
        return f"{label} {name!r} cannot start: its #! line names no interpreter"
    interpreter = words[0]
    shown = printable(interpreter)  # the script's bytes: never raw on a terminal
    resolved = Path(interpreter) if os.path.isabs(interpreter) else base / interpreter
    if not resolved.exists():
        return (
            f"{label} {name!r} cannot start: its interpreter {shown} (from the #! line) is missing"
        )
    if resolved.is_dir() or not os.access(resolved, os.X_OK):
        return (
            f"{label} {name!r} cannot start: its interpreter {shown} "
            "(from the #! line) is not executable"
        )
    via_env = resolved.name == "env" and len(words) > 1 and not words[1].startswith("-")
    if via_env and shutil.which(words[1], path=search_path) is None:
        return (
            f"{label} {name!r} cannot start: its interpreter {printable(words[1])} "
            f"(from the #! line, via {shown}) is not on PATH"
        )
    return None


# --------------------------------------------------------------------------------------------
# running one command


@dataclass(frozen=True)
class CommandResult:
    """What one command run did. All text (``argv``, ``head``, ``tail``, ``error``) is redacted.

    ``tail`` is the last ~64 KiB of output and ``head`` the first ~16 KiB before it; when
    nothing was dropped (``omitted_bytes == 0``) ``head + tail`` is the whole output and a
    short output is all in ``tail``.
    """

    argv: tuple[str, ...]
    exit_code: int | None
    signal: int | None = None  # from a negative return code
    timed_out: bool = False
    escalated_to_kill: bool = False  # SIGTERM was not enough after the timeout
    interrupted: bool = False  # KeyboardInterrupt during the run; the group was killed
    escaped: bool = False  # a process left the group (setsid) and kept the output open
    held_open: bool = False  # after the command exited, a child kept the output open (killed)
    # (pid, name) of each process signalled in the command's session outside its group
    session_killed: tuple[tuple[int, str], ...] = ()
    duration_s: float = 0.0
    output_bytes: int = 0
    omitted_bytes: int = 0
    head: str = ""
    tail: str = ""
    error: str | None = None  # the command could not be started (or reaped)
    timeout_s: float | None = None
    started: bool = True  # False: it could not be started, so nothing of it ran

    @property
    def ok(self) -> bool:
        """Exited 0 on its own, in time."""
        return (
            self.exit_code == 0
            and not self.timed_out
            and not self.interrupted
            and self.error is None
        )

    def output_tail(self, lines: int = _TAIL_LINES) -> str:
        """The last *lines* lines of output (at most ~4 KiB), marked when the middle was dropped."""
        text = self.tail if self.omitted_bytes else self.head + self.tail
        shown = "\n".join(text.splitlines()[-lines:]) if lines > 0 else ""
        if len(shown) > _TAIL_CHARS:
            shown = shown[-_TAIL_CHARS:]
            newline = shown.find("\n")
            if 0 <= newline < len(shown) - 1:
                shown = shown[newline + 1 :]
        if self.omitted_bytes:
            shown = f"… {self.omitted_bytes:,} bytes omitted …\n{shown}"
        return shown

    def describe(self) -> str:
        """What happened, as a predicate: ``exited with status 3``, ``was interrupted``, ..."""
        if self.error is not None:
            text = self.error
        elif self.interrupted:
            text = "was interrupted (its process group was killed)"
        elif self.timed_out:
            after = format_duration(self.timeout_s) if self.timeout_s is not None else "its limit"
            if self.signal is not None:
                text = f"killed by {_signal_name(self.signal)} after timing out after {after}"
                if self.escalated_to_kill:
                    text += " (ignored SIGTERM)"
            else:
                text = f"timed out after {after} (exited with status {self.exit_code} on SIGTERM)"
        elif self.signal is not None:
            text = f"was killed by {_signal_name(self.signal)}"
        else:
            text = f"exited with status {self.exit_code}"
        return "; ".join((text, *self.notes))

    def status_properties(self, prefix: str) -> dict[str, str]:
        """JUnit properties ``<prefix>_exit_code`` and ``<prefix>_signal``, when known."""
        props: dict[str, str] = {}
        if self.exit_code is not None:
            props[f"{prefix}_exit_code"] = str(self.exit_code)
        if self.signal is not None:
            props[f"{prefix}_signal"] = _signal_name(self.signal)
        return props

    @property
    def notes(self) -> tuple[str, ...]:
        """Warnings about processes the command left behind (also part of :meth:`describe`)."""
        notes = []
        if self.held_open:
            notes.append("a background process kept its output open and was killed")
        if self.session_killed:
            named = ", ".join(
                f"{pid} ({printable(name)})" for pid, name in self.session_killed[:_NOTED_PROCESSES]
            )
            rest = len(self.session_killed) - _NOTED_PROCESSES
            more = f" and {rest} more" if rest > 0 else ""
            count = len(self.session_killed)
            notes.append(
                f"killed {count} {'process' if count == 1 else 'processes'} left in its "
                f"session outside its process group: {named}{more}"
            )
        if self.escaped:
            notes.append(
                "a process escaped the process group (setsid) while holding its output "
                "and was left running"
            )
        return tuple(notes)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def run_command(
    argv: Sequence[str],
    *,
    cwd: Path | None,
    env: Mapping[str, str],
    timeout: float,
    grace: float = 2.0,
    redactor: Redactor,
    on_line: Callable[[str], None] | None = None,
    label: str = "rollback command",
) -> CommandResult:
    """Run *argv* (never through a shell) and return what happened; never raises for the command.

    The child gets ``os.environ`` plus *env* (configured values win): a deploy script needs
    the CI job's credentials, PATH and tool configuration as the team's own runs have them,
    and every secret value the redactor knows is masked in whatever it prints. stdin is
    ``/dev/null``, stderr goes to stdout, and the child leads a new session, so the whole
    process group can be signalled.

    Output is read by one thread with a selector and a deadline (a reader thread blocked in
    ``read`` deadlocks ``close`` when an escaped process holds the pipe). Memory is bounded:
    the first 16 KiB and the last 64 KiB are kept, the total is counted. Each complete line,
    redacted and capped at ``LINE_CHARS``, goes to *on_line* as it arrives (the first
    ``LIVE_LINES`` lines).

    On timeout the group gets SIGTERM, then SIGKILL after *grace* seconds. After the leader
    exits the pipe may stay open for up to a second (children finishing), then the group is
    killed; a final SIGKILL to the group always follows, so no orphan outlives the run. A
    pipe still open after that belongs to a process that left the group: it is abandoned and
    ``escaped`` is set. A KeyboardInterrupt during the run kills the group (SIGTERM, a short
    grace, SIGKILL) and returns with ``interrupted=True`` instead of propagating. Failing to
    start (missing, not executable, bad interpreter, missing cwd) sets ``error`` and clears
    ``started``.
    """
    if timeout <= 0:
        raise ValueError(f"timeout must be positive, got {timeout!r}")
    shown_argv = tuple(redactor(arg) for arg in argv)
    started = time.monotonic()
    # Ctrl-C or SIGTERM while Popen runs would leave a started child with no handle to kill
    # it by; such a signal is held back until the loop below, which ends the group cleanly.
    held_back: list[int] = []
    previous_handlers = _hold_back_interrupts(held_back)
    try:
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    except OSError as exc:
        _restore_handlers(previous_handlers)
        if held_back:
            raise KeyboardInterrupt from None
        # The executable may have changed since preflight; preflight names the cause best.
        problem = preflight(argv, cwd, env=env, label=label) or _start_error(argv, exc, label)
        return CommandResult(
            argv=shown_argv,
            exit_code=None,
            duration_s=time.monotonic() - started,
            error=redactor(problem),
            timeout_s=timeout,
            started=False,
        )
    assert proc.stdout is not None  # stdout=PIPE
    group = _Group(proc)
    capture = _Capture(redactor, on_line)
    state = _RunState()
    try:
        try:
            _restore_handlers(previous_handlers)
            if held_back:
                raise KeyboardInterrupt
            _pump(group, proc.stdout.fileno(), capture, state, timeout, grace)
        except KeyboardInterrupt:
            state.interrupted = True
            group.stop(min(grace, _INTERRUPT_GRACE_S))
        capture.finish()
    finally:
        group.signal(signal.SIGKILL)  # always: nothing of the group or session outlives the run
        proc.stdout.close()
        returncode = _reap(proc)
    head, tail, omitted = capture.texts()
    error = None
    if returncode is None:
        error = "did not exit even after SIGKILL (left running, probably stuck in the kernel)"
    return CommandResult(
        argv=shown_argv,
        exit_code=returncode if returncode is not None and returncode >= 0 else None,
        signal=-returncode if returncode is not None and returncode < 0 else None,
        timed_out=state.timed_out,
        escalated_to_kill=state.escalated,
        interrupted=state.interrupted,
        escaped=state.escaped,
        held_open=state.held_open,
        session_killed=group.session_killed(),
        duration_s=time.monotonic() - started,
        output_bytes=capture.total,
        omitted_bytes=omitted,
        head=head,
        tail=tail,
        error=error,
        timeout_s=timeout,
    )


_INTERRUPTS = (signal.SIGINT, signal.SIGTERM)


def _hold_back_interrupts(held_back: list[int]) -> dict[signal.Signals, Any] | None:
    """Record SIGINT/SIGTERM in *held_back* instead of acting on them; returns the old handlers.

    Only the main thread may set handlers (and only it runs them): elsewhere nothing changes.
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    previous = {sig: signal.getsignal(sig) for sig in _INTERRUPTS}
    for sig in _INTERRUPTS:
        signal.signal(sig, lambda number, frame: held_back.append(number))
    return previous


def _restore_handlers(previous: dict[signal.Signals, Any] | None) -> None:
    for sig, handler in (previous or {}).items():
        # None: a handler not installed from Python; the default is the closest we can restore.
        signal.signal(sig, signal.SIG_DFL if handler is None else handler)


def _start_error(argv: Sequence[str], exc: OSError, label: str) -> str:
    reason = exc.strerror or str(exc)
    text = f"{label} {argv[0]!r} could not be started: {reason}"
    if exc.errno == errno.ENOEXEC:
        text += " (a script needs a #! line naming its interpreter)"
    return text


@dataclass
class _RunState:
    timed_out: bool = False
    escalated: bool = False
    interrupted: bool = False
    escaped: bool = False
    held_open: bool = False


class _Group:
    """The command's process group and session, both led by the command (``start_new_session``).

    The leader stays unreaped until the run ends, so neither its pgid nor its sid (its pid)
    can be taken by an unrelated process before the final signals.
    """

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self._proc = proc
        self._pgid = proc.pid
        self._swept: dict[int, str] = {}

    def exited(self) -> bool:
        """Whether the leader has exited, leaving it unreaped."""
        if self._proc.returncode is not None:
            return True
        if hasattr(os, "waitid"):
            try:
                flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
                return os.waitid(os.P_PID, self._proc.pid, flags) is not None
            except ChildProcessError:
                pass  # reaped elsewhere (a SIGCHLD handler): Popen knows the rest
        return self._proc.poll() is not None

    def signal(self, sig: signal.Signals) -> None:
        """Signal every process still in the group, and those left in the session outside it."""
        with contextlib.suppress(ProcessLookupError, PermissionError):  # the group is gone
            os.killpg(self._pgid, sig)
        for _ in range(_SWEEP_ROUNDS):
            found = _session_members(self._pgid, exclude_group=self._pgid)
            for pid, name in found:
                if _signal_process(pid, self._pgid, sig):
                    self._swept.setdefault(pid, name)
            if not found or sig != signal.SIGKILL:
                return

    def session_killed(self) -> tuple[tuple[int, str], ...]:
        """``(pid, name)`` of every process signalled in the session outside the group."""
        return tuple(self._swept.items())

    def stop(self, grace: float) -> None:
        """SIGTERM the group, wait up to *grace* for the leader, then SIGKILL."""
        try:
            self.signal(signal.SIGTERM)
            end = time.monotonic() + grace
            while not self.exited() and time.monotonic() < end:
                time.sleep(0.02)
        except KeyboardInterrupt:
            pass  # a second Ctrl-C: straight to SIGKILL
        finally:
            self.signal(signal.SIGKILL)


def _pump(
    group: _Group, fd: int, capture: _Capture, state: _RunState, timeout: float, grace: float
) -> None:
    """Read output until the pipe closes (or is abandoned) and the leader has exited."""
    os.set_blocking(fd, False)
    deadline = time.monotonic() + timeout
    kill_at = give_up_at = 0.0
    exited_at: float | None = None
    killed_after_exit_at: float | None = None
    pipe_open = True
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while True:
            now = time.monotonic()
            if exited_at is None and group.exited():
                exited_at = now
            if exited_at is None:
                if not state.timed_out and now >= deadline:
                    state.timed_out = True
                    group.signal(signal.SIGTERM)
                    kill_at = now + grace
                elif state.timed_out and not state.escalated and now >= kill_at:
                    state.escalated = True
                    group.signal(signal.SIGKILL)
                    give_up_at = now + _REAP_WAIT_S
                elif state.escalated and now >= give_up_at:
                    return  # the leader ignores SIGKILL (uninterruptible): stop waiting
            elif not pipe_open:
                return
            elif killed_after_exit_at is None and now >= exited_at + _LINGER_S:
                # The command is done but something it started still holds the output.
                state.held_open = True
                group.signal(signal.SIGKILL)
                killed_after_exit_at = now
            elif killed_after_exit_at is not None and now >= killed_after_exit_at + _ESCAPE_WAIT_S:
                state.escaped = True  # only a process outside the group can still hold it
                return
            if not pipe_open:
                time.sleep(_POLL_S)  # output closed early; wait for the leader
                continue
            if not selector.select(_POLL_S):
                continue
            try:
                data = os.read(fd, _READ_CHUNK)
            except BlockingIOError:
                continue
            if data:
                capture.feed(data)
            else:
                pipe_open = False
                selector.unregister(fd)


def _session_members(sid: int, *, exclude_group: int) -> list[tuple[int, str]]:
    """``(pid, name)`` of the live processes of session *sid* outside group *exclude_group*.

    Linux only (``/proc/<pid>/stat``); elsewhere, and where ``/proc`` cannot be read,
    nothing is found and only the process group is signalled.
    """
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    members = []
    for entry in entries:
        if entry.isdigit():
            info = _process_info(int(entry))
            if info is not None and info[1] == sid and info[0] != exclude_group:
                members.append((int(entry), info[2]))
    return members


def _process_info(pid: int) -> tuple[int, int, str] | None:
    """``(pgid, sid, name)`` of a live process; ``None`` when gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat_file:
            raw = stat_file.read()
    except OSError:
        return None
    # "pid (name) state ppid pgrp session ...": the name may hold spaces and parentheses.
    head, _, rest = raw.rpartition(b")")
    fields = rest.split()
    if len(fields) < 4 or fields[0] in (b"Z", b"X"):
        return None
    name = head.partition(b"(")[2].decode(errors="replace")
    return int(fields[2]), int(fields[3]), name


def _signal_process(pid: int, sid: int, sig: signal.Signals) -> bool:
    """Send *sig* to *pid* if it is still in session *sid*; whether it was sent.

    Through a pidfd where there is one, so that a pid freed and reused between the scan and
    the signal cannot be hit.
    """
    pidfd = None
    if hasattr(os, "pidfd_open") and hasattr(signal, "pidfd_send_signal"):
        with contextlib.suppress(OSError):
            pidfd = os.pidfd_open(pid)
    try:
        info = _process_info(pid)
        if info is None or info[1] != sid:
            return False
        if pidfd is not None:
            signal.pidfd_send_signal(pidfd, sig)
        else:
            os.kill(pid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _reap(proc: subprocess.Popen[bytes]) -> int | None:
    try:
        return proc.wait(timeout=_REAP_WAIT_S)
    except subprocess.TimeoutExpired:
        return None


class _Capture:
    """Bounded capture of one output stream, plus live, redacted lines for *on_line*."""

    def __init__(self, redactor: Redactor, on_line: Callable[[str], None] | None) -> None:
        self._redactor = redactor
        self._on_line = on_line
        self.total = 0
        self._head = bytearray()
        self._tail = bytearray()
        self._line = bytearray()
        self._line_dropped = 0
        self._lines_sent = 0

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        room = HEAD_BYTES + _CUT_MARGIN - len(self._head)
        if room > 0:
            self._head += data[:room]
        self._tail += data
        keep = TAIL_BYTES + _CUT_MARGIN
        if len(self._tail) > 2 * keep:  # trim in batches: one memmove per ~keep bytes read
            del self._tail[: len(self._tail) - keep]
        if self._on_line is not None and self._lines_sent < LIVE_LINES:
            self._split_lines(data)

    def _split_lines(self, data: bytes) -> None:
        start = 0
        while self._lines_sent < LIVE_LINES:
            newline = data.find(b"\n", start)
            self._add_to_line(data[start:] if newline < 0 else data[start:newline])
            if newline < 0:
                return
            self._emit_line()
            start = newline + 1

    def _add_to_line(self, piece: bytes) -> None:
        room = max(0, LINE_CHARS * 4 + _CUT_MARGIN - len(self._line))  # UTF-8: <= 4 bytes/char
        self._line += piece[:room]
        self._line_dropped += max(0, len(piece) - room)

    def _emit_line(self) -> None:
        assert self._on_line is not None
        raw = bytes(self._line).rstrip(b"\r")
        size = len(raw) + self._line_dropped
        self._line.clear()
        self._line_dropped = 0
        text = raw.decode(errors="replace")
        # Redacted first (a secret is matched as the command wrote it), then escaped: an
        # escape sequence in a deploy tool's output must not drive the user's terminal.
        if len(text) > LINE_CHARS:
            text = printable(_redact_before(self._redactor, text, LINE_CHARS))
            text += f" … (line cut, {size:,} bytes)"
        else:
            text = printable(self._redactor(text))
        self._on_line(text)
        self._lines_sent += 1
        if self._lines_sent == LIVE_LINES:
            self._on_line(
                f"… live output stops after {LIVE_LINES:,} lines; the rest is still counted "
                "and its end kept for the report"
            )

    def finish(self) -> None:
        """Pass on an unterminated last line."""
        live = self._on_line is not None and self._lines_sent < LIVE_LINES
        if live and (self._line or self._line_dropped):
            self._emit_line()

    def texts(self) -> tuple[str, str, int]:
        """``(head, tail, omitted_bytes)``, decoded, redacted and with control characters
        escaped (``\\x1b``; CRLF line ends become LF)."""
        redactor = self._redactor
        if self.total <= HEAD_BYTES + TAIL_BYTES:
            # Head and tail buffers overlap or meet: the whole output is still here.
            overlap = len(self._head) + len(self._tail) - self.total
            whole = redactor((bytes(self._head) + self._tail[overlap:]).decode(errors="replace"))
            split = max(0, len(whole) - TAIL_BYTES)
            return _shown(whole[:split]), _shown(whole[split:]), 0
        head = _redact_before(redactor, self._head.decode(errors="replace"), HEAD_BYTES)
        tail_text = self._tail[-(TAIL_BYTES + _CUT_MARGIN) :].decode(errors="replace")
        tail = _redact_after(redactor, tail_text, len(tail_text) - TAIL_BYTES)
        return _shown(head), _shown(tail), self.total - HEAD_BYTES - TAIL_BYTES


def _shown(text: str) -> str:
    return printable(text.replace("\r\n", "\n"))


def _redact_before(redactor: Redactor, text: str, cut: int) -> str:
    """``text[:cut]`` redacted, cut earlier if *cut* falls inside a secret."""
    return redactor(text[: _safe_cut(redactor, text, cut, backwards=True)])


def _redact_after(redactor: Redactor, text: str, cut: int) -> str:
    """``text[cut:]`` redacted, cut later if *cut* falls inside a secret."""
    return redactor(text[_safe_cut(redactor, text, cut, backwards=False) :])


def _safe_cut(redactor: Redactor, text: str, cut: int, *, backwards: bool) -> int:
    """A position near *cut* that splits no secret, so neither side shows a fragment of one.

    A cut splits a secret exactly when redacting the two sides apart differs from
    redacting them together; move it (at most ``_CUT_MARGIN``) until it does not.
    """
    cut = max(0, min(cut, len(text)))
    if not redactor:
        return cut
    low, high = max(0, cut - _CUT_MARGIN), min(len(text), cut + _CUT_MARGIN)
    together = redactor(text[low:high])
    stop = low if backwards else high
    for position in range(cut, stop, -1 if backwards else 1):
        if redactor(text[low:position]) + redactor(text[position:high]) == together:
            return position
    return stop
