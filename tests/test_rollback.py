"""The command runner (preflight, run_command) against real subprocesses and hostile commands.

The lifecycle built on it (baseline, verify, restore, watch) is tested in test_lifecycle.py.
"""

from __future__ import annotations

import _thread
import contextlib
import os
import resource
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType

import pytest

from processes import alive, read_pids, survivors
from pytest_rehearsal.command import (
    HEAD_BYTES,
    LINE_CHARS,
    LIVE_LINES,
    TAIL_BYTES,
    CommandResult,
    preflight,
    run_command,
)
from pytest_rehearsal.redact import Redactor

SCRIPTS = Path(__file__).parent / "rollback_scripts"
SECRET = "s3cr3t-t0ken-value"
NO_SECRETS = Redactor()


def run(argv: list[str], **kwargs: object) -> CommandResult:
    """run_command with test defaults: short timeout, no secrets, no extra env."""
    options: dict[str, object] = {"cwd": None, "env": {}, "timeout": 10.0, "redactor": NO_SECRETS}
    options.update(kwargs)
    return run_command(argv, **options)  # type: ignore[arg-type]


def script(directory: Path, name: str, body: str, mode: int = 0o755) -> Path:
    path = directory / name
    path.write_text(body)
    path.chmod(mode)
    return path


@pytest.fixture
def kill_later() -> Iterator[list[int]]:
    """PIDs to SIGKILL after the test, for processes that deliberately escape the runner."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


# ------------------------------------------------------------------------------------------
# exit status and output


def test_exit_zero_passes_and_streams_the_configured_env(tmp_path: Path) -> None:
    lines: list[str] = []
    result = run(
        [str(SCRIPTS / "exit_with.sh"), "0"],
        cwd=tmp_path,
        env={"DEPLOY_ENV": "staging"},
        on_line=lines.append,
    )
    assert (result.ok, result.exit_code) == (True, 0)
    assert "step 2: env is staging" in lines
    assert result.output_tail().endswith("step 3: done, exiting 0")


def test_exit_three_fails_with_status_and_last_lines(tmp_path: Path) -> None:
    result = run([str(SCRIPTS / "exit_with.sh"), "3"], cwd=tmp_path)
    assert (result.ok, result.exit_code) == (False, 3)
    assert result.describe() == "exited with status 3"
    assert "step 3: done, exiting 3" in result.output_tail()
    assert result.status_properties("rollback") == {"rollback_exit_code": "3"}


def test_small_output_is_kept_whole_and_exact() -> None:
    result = run([sys.executable, "-c", "print('a\\nb'); print('é', end='')"])
    assert result.ok
    assert (result.head, result.tail) == ("", "a\nb\né")
    assert (result.output_bytes, result.omitted_bytes) == (len("a\nb\né".encode()), 0)
    assert result.output_tail(lines=2) == "b\né"
    assert result.describe() == "exited with status 0"


def test_killed_by_a_signal_is_named() -> None:
    result = run(["sh", "-c", "echo bye; kill -9 $$"])
    assert (result.exit_code, result.signal) == (None, signal.SIGKILL)
    assert result.describe() == "was killed by SIGKILL"
    assert not result.ok


# ------------------------------------------------------------------------------------------
# preflight: one distinct message per cause


def test_preflight_accepts_a_good_script_and_a_bare_name(tmp_path: Path) -> None:
    script(tmp_path, "deploy.sh", "#!/bin/sh\nexit 0\n")
    assert preflight(["./deploy.sh", "rollback"], tmp_path) is None
    assert preflight(["sh", "-c", "true"], tmp_path) is None


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        pytest.param(
            lambda d: None, "rollback command './deploy.sh' not found (looked in {d})", id="missing"
        ),
        pytest.param(
            lambda d: script(d, "deploy.sh", "#!/bin/sh\n", mode=0o644),
            "rollback command './deploy.sh' is not executable (mode 0644): "
            "run chmod +x {d}/deploy.sh",
            id="mode-0644",
        ),
        pytest.param(
            lambda d: (d / "deploy.sh").mkdir(),
            "rollback command './deploy.sh' is a directory ({d}/deploy.sh), not an executable file",
            id="directory",
        ),
        pytest.param(
            lambda d: script(d, "deploy.sh", "#!/nonexistent/bash\necho hi\n"),
            "rollback command './deploy.sh' cannot start: its interpreter /nonexistent/bash "
            "(from the #! line) is missing",
            id="shebang",
        ),
        pytest.param(
            lambda d: script(d, "deploy.sh", "#!/usr/bin/env no-such-interpreter-x\n"),
            "rollback command './deploy.sh' cannot start: its interpreter no-such-interpreter-x "
            "(from the #! line, via /usr/bin/env) is not on PATH",
            id="env-shebang",
        ),
    ],
)
def test_broken_commands_get_distinct_messages_before_anything_runs(
    tmp_path: Path, setup: Callable[[Path], object], expected: str
) -> None:
    setup(tmp_path)
    message = expected.format(d=tmp_path)
    assert preflight(["./deploy.sh", "rollback"], tmp_path) == message
    # The same from run_command, for a file that broke after preflight: Popen's error is mapped.
    result = run(["./deploy.sh"], cwd=tmp_path)
    if "via /usr/bin/env" in message:
        assert (result.error, result.exit_code, result.started) == (None, 127, True)
    else:  # above: env itself started, then failed; here nothing started
        assert (result.error, result.exit_code, result.started) == (message, None, False)


def test_preflight_names_a_missing_working_directory(tmp_path: Path) -> None:
    missing = tmp_path / "gone"
    assert preflight(["./deploy.sh"], missing) == (
        f"rollback command working directory {missing} does not exist (or is not a directory)"
    )


def test_preflight_searches_the_configured_path_for_bare_names(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    script(tmp_path / "bin", "deployer", "#!/bin/sh\n", mode=0o644)
    env = {"PATH": str(tmp_path / "bin")}
    assert preflight(["nothing-here"], None, env=env) == (
        f"rollback command 'nothing-here' not found on PATH ({tmp_path / 'bin'})"
    )
    assert preflight(["deployer"], None, env=env, label="restore command") == (
        f"restore command 'deployer' is not executable (mode 0644): "
        f"run chmod +x {tmp_path / 'bin' / 'deployer'}"
    )


@pytest.mark.parametrize("entry", ["bin", "./bin", "", "."], ids=["bin", "dot-bin", "empty", "dot"])
def test_preflight_resolves_relative_path_entries_against_cwd_as_exec_does(
    tmp_path: Path, entry: str
) -> None:
    """Issue 11.18: ``rollback.env: {PATH: bin}`` with ``cwd``: preflight said "not found"."""
    where = tmp_path / "deploy" / ("bin" if "bin" in entry else "")
    where.mkdir(parents=True, exist_ok=True)
    script(where, "deployer", "#!/bin/sh\necho deployed from $PWD\n")
    env = {"PATH": f"/nonexistent{os.pathsep}{entry}"}
    cwd = tmp_path / "deploy"
    assert preflight(["deployer"], cwd, env=env) is None
    result = run(["deployer"], cwd=cwd, env=env)  # and it does run
    assert result.ok, result.describe()
    assert result.tail == f"deployed from {cwd}\n"
    # From elsewhere the same PATH finds nothing, and the message shows where it looked.
    problem = preflight(["deployer"], tmp_path, env=env)
    assert problem is not None
    assert problem.startswith("rollback command 'deployer' not found on PATH (/nonexistent:")
    assert str(tmp_path) in problem


def test_a_shebang_with_control_characters_is_named_escaped(tmp_path: Path) -> None:
    script(tmp_path, "deploy.sh", "#!/usr/bin/\x1b[2Jzsh\necho hi\n")
    assert preflight(["./deploy.sh"], tmp_path) == (
        "rollback command './deploy.sh' cannot start: its interpreter /usr/bin/\\x1b[2Jzsh "
        "(from the #! line) is missing"
    )


def test_script_without_shebang_gets_a_hint(tmp_path: Path) -> None:
    script(tmp_path, "deploy.sh", "echo hi\n")
    result = run(["./deploy.sh"], cwd=tmp_path)
    assert result.error is not None
    assert "Exec format error" in result.error
    assert "#! line" in result.error


def test_argv_is_never_run_by_a_shell(tmp_path: Path) -> None:
    # The config refuses a string command with shell operators (test_config_loader); argv
    # that holds them anyway, as a list may, passes them on as plain arguments.
    victim = tmp_path / "x"
    victim.mkdir()
    script(tmp_path, "rollback.sh", (SCRIPTS / "record_args.sh").read_text())
    assert preflight(["./rollback.sh;", "rm", "-rf", "x"], tmp_path) == (
        f"rollback command './rollback.sh;' not found (looked in {tmp_path})"
    )
    result = run(["./rollback.sh", ";", "rm", "-rf", "x", "&&", "$(id)"], cwd=tmp_path)
    assert result.ok
    assert result.started
    assert victim.is_dir()
    assert (tmp_path / "ran.txt").read_text() == "ran with: ; rm -rf x && $(id)\n"


def test_vanished_executable_is_an_error_result(tmp_path: Path) -> None:
    result = run(["/nonexistent/dir/deploy.sh"])
    assert (
        result.error
        == "rollback command '/nonexistent/dir/deploy.sh' not found (looked in /nonexistent/dir)"
    )
    assert not result.ok
    assert not result.started
    assert result.describe() == result.error


# ------------------------------------------------------------------------------------------
# hostile commands


def test_timeout_kills_a_group_that_ignores_sigterm(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    started = time.monotonic()
    result = run([str(SCRIPTS / "ignore_term.sh"), str(pidfile)], timeout=1.0, grace=1.0)
    elapsed = time.monotonic() - started
    assert elapsed < 1.0 + 1.0 + 3.0
    assert result.timed_out
    assert result.escalated_to_kill
    assert result.signal == signal.SIGKILL
    assert result.describe() == "killed by SIGKILL after timing out after 1 s (ignored SIGTERM)"
    assert result.tail == "started\n"
    pids = read_pids(pidfile)
    assert len(pids) == 3
    assert survivors(pids) == []


def test_a_timeout_below_a_second_is_named_in_milliseconds(tmp_path: Path) -> None:
    result = run([str(SCRIPTS / "ignore_term.sh"), str(tmp_path / "pids")], timeout=0.5, grace=0.5)
    assert result.exit_code is None
    assert result.describe() == "killed by SIGKILL after timing out after 500 ms (ignored SIGTERM)"
    assert result.status_properties("rollback") == {"rollback_signal": "SIGKILL"}
    assert survivors(read_pids(tmp_path / "pids")) == []


def test_two_hundred_megabytes_of_output_stay_bounded() -> None:
    lines: list[str] = []
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = run(["sh", "-c", "yes | head -c 200000000"], timeout=120.0, on_line=lines.append)
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert result.ok
    assert result.output_bytes == 200_000_000
    assert len(result.head) <= HEAD_BYTES
    assert len(result.tail) <= TAIL_BYTES
    assert result.omitted_bytes == 200_000_000 - HEAD_BYTES - TAIL_BYTES
    assert grown_kib < 64 * 1024  # nowhere near the 195 MiB it printed
    assert result.output_tail(lines=3) == "… 199,918,080 bytes omitted …\ny\ny\ny"
    # Live lines stop after LIVE_LINES, with one notice; the capture goes on.
    assert len(lines) == LIVE_LINES + 1
    assert lines[0] == "y"
    assert "live output stops" in lines[-1]


def test_a_child_holding_stdout_is_killed_after_the_linger(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    started = time.monotonic()
    result = run([str(SCRIPTS / "hold_stdout.sh"), str(pidfile)])
    assert time.monotonic() - started < 5.0  # not the child's 300 s
    assert (result.exit_code, result.held_open, result.escaped) == (0, True, False)
    assert result.ok
    assert "kept its output open and was killed" in result.describe()
    assert survivors(read_pids(pidfile)) == []


def test_background_children_that_let_go_of_stdout_are_still_killed(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    result = run(["sh", "-c", f"sleep 300 >/dev/null 2>&1 & echo $! > {pidfile}; echo done"])
    assert (result.exit_code, result.held_open) == (0, False)
    assert survivors(read_pids(pidfile)) == []


def test_a_setsid_escapee_is_abandoned_without_hanging(
    tmp_path: Path, kill_later: list[int]
) -> None:
    pidfile = tmp_path / "pid"
    started = time.monotonic()
    result = run([str(SCRIPTS / "escape.sh"), str(pidfile)])
    kill_later.extend(read_pids(pidfile))
    assert time.monotonic() - started < 6.0
    assert (result.exit_code, result.escaped) == (0, True)
    assert "escaped the process group" in result.describe()
    assert result.tail == "leader done\n"
    assert alive(kill_later[0])  # documented: a process group is no sandbox


def _group_and_session(pid: int) -> tuple[int, int]:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[2]), int(fields[3])


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="Linux /proc")
@pytest.mark.parametrize("holding", ["", "hold"], ids=["let-go-of-stdout", "holding-stdout"])
def test_a_job_left_in_the_session_outside_the_group_is_killed_and_named(
    tmp_path: Path, holding: str, kill_later: list[int]
) -> None:
    """Issue 11.17: ``set -m; sleep 300 &; exit 0`` left the sleep running (another process
    group, same session) and the rollback passed with no note."""
    pidfile = tmp_path / "pid"
    seen: list[tuple[int, int]] = []

    def on_line(line: str) -> None:
        if line == "leader done":  # the job is started: where does it live?
            pid = read_pids(pidfile)[0]
            kill_later.append(pid)
            seen.append(_group_and_session(pid))

    started = time.monotonic()
    result = run([str(SCRIPTS / "leave_session.sh"), str(pidfile), holding], on_line=on_line)
    assert time.monotonic() - started < 6.0
    (pid,) = read_pids(pidfile)
    ((group, session),) = seen
    assert group == pid  # a group of its own
    assert session != pid  # in the command's session
    assert survivors([pid]) == []
    assert result.ok
    ((killed, name),) = result.session_killed
    assert killed == pid
    assert name in ("sleep", "bash")  # as it was when killed: bash until it has exec'd sleep
    assert not result.escaped
    assert (
        f"killed 1 process left in its session outside its process group: {pid} ({name})"
        in result.describe()
    )


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="Linux /proc")
def test_on_timeout_the_session_is_killed_too(tmp_path: Path, kill_later: list[int]) -> None:
    pidfile = tmp_path / "pid"
    result = run([str(SCRIPTS / "leave_session.sh"), str(pidfile), "", "hang"], timeout=1.0)
    kill_later.extend(read_pids(pidfile))
    assert result.timed_out
    assert survivors(read_pids(pidfile)) == []
    assert [pid for pid, _ in result.session_killed] == read_pids(pidfile)
    assert "left in its session outside its process group" in result.describe()


def test_a_command_that_leaves_nothing_behind_has_no_session_note(tmp_path: Path) -> None:
    result = run(["sh", "-c", "echo fine"])
    assert result.session_killed == ()
    assert result.describe() == "exited with status 0"


# ------------------------------------------------------------------------------------------
# secrets and live lines


def test_secret_values_are_masked_in_head_tail_lines_and_messages(tmp_path: Path) -> None:
    redactor = Redactor([SECRET])
    lines: list[str] = []
    program = (
        "import os, sys\n"
        "s = os.environ['STAGING_TOKEN']\n"
        "print('token is', s)\n"
        "print('x' * 100_000)\n"
        "print('still', s)\n"
        "sys.exit(4)\n"
    )
    result = run(
        [sys.executable, "-c", program],
        cwd=tmp_path,
        env={"STAGING_TOKEN": SECRET},
        redactor=redactor,
        on_line=lines.append,
    )
    assert result.omitted_bytes > 0
    assert result.head.startswith("token is ***\n")
    assert result.tail.endswith("still ***\n")
    assert lines[0] == "token is ***"
    assert lines[2] == "still ***"
    everything = [result.head, result.tail, *lines, result.describe(), result.output_tail()]
    assert not [text for text in everything if SECRET in text]
    assert len(lines[1]) < LINE_CHARS + 100
    assert lines[1].endswith("(line cut, 100,000 bytes)")


def test_a_secret_straddling_a_cut_leaves_no_fragment() -> None:
    redactor = Redactor([SECRET])
    # The first secret spans the head's cut; the second spans the tail's.
    program = (
        "import os, sys\n"
        "s = os.environ['STAGING_TOKEN']\n"
        f"sys.stdout.write('a' * ({HEAD_BYTES} - 5) + s + 'b' * 200_000 + s"
        f" + 'c' * ({TAIL_BYTES} - 5))\n"
    )
    result = run([sys.executable, "-c", program], env={"STAGING_TOKEN": SECRET}, redactor=redactor)
    assert result.ok
    assert result.omitted_bytes > 0
    assert SECRET[:5] not in result.head
    assert SECRET[-5:] not in result.tail
    assert set(result.head) == {"a"}
    assert set(result.tail) == {"c"}


def test_on_line_receives_lines_live_and_in_order(tmp_path: Path) -> None:
    go = tmp_path / "go"
    lines: list[str] = []

    def on_line(line: str) -> None:
        lines.append(line)
        if line == "ready":
            go.touch()  # the script only says "saw go" if this happens while it runs

    result = run([str(SCRIPTS / "wait_for_go.sh"), str(go)], timeout=30.0, on_line=on_line)
    assert result.ok
    assert lines == ["ready", "saw go"]


def test_control_characters_in_output_are_shown_escaped_never_raw() -> None:
    """Issue 11.19: a deploy tool's escape sequences must not drive the user's terminal."""
    lines: list[str] = []
    program = r"printf 'a\033[2Jb\r\nlink \033]8;;http://x\007hi\033]8;;\007\nbell\007 tab\tok\n'"
    result = run(["sh", "-c", program], on_line=lines.append)
    assert lines == [
        "a\\x1b[2Jb",
        "link \\x1b]8;;http://x\\x07hi\\x1b]8;;\\x07",
        "bell\\x07 tab\tok",
    ]
    assert result.tail == "\n".join(lines) + "\n"
    assert "\x1b" not in result.output_tail()


def test_an_unterminated_last_line_is_passed_on() -> None:
    lines: list[str] = []
    run(["printf", "one\\r\\ntwo"], on_line=lines.append)
    assert lines == ["one", "two"]


def test_an_error_in_on_line_still_kills_the_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"

    def on_line(line: str) -> None:
        raise RuntimeError("terminal gone")

    with pytest.raises(RuntimeError, match="terminal gone"):
        run(["sh", "-c", f"sleep 300 & echo $! > {pidfile}; echo hi; wait"], on_line=on_line)
    assert survivors(read_pids(pidfile)) == []


# ------------------------------------------------------------------------------------------
# interrupts


def interrupt_when_started(
    trigger: Callable[[], None],
) -> tuple[Callable[[str], None], list[threading.Timer]]:
    """An on_line that fires *trigger* from another thread once the command printed "started"."""
    timers: list[threading.Timer] = []

    def on_line(line: str) -> None:
        if line == "started" and not timers:
            timer = threading.Timer(0.2, trigger)
            timers.append(timer)
            timer.start()

    return on_line, timers


def test_ctrl_c_kills_the_group_and_returns_interrupted(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    on_line, timers = interrupt_when_started(_thread.interrupt_main)
    started = time.monotonic()
    result = run([str(SCRIPTS / "ignore_term.sh"), str(pidfile)], timeout=60.0, on_line=on_line)
    timers[0].join(5)
    assert time.monotonic() - started < 10.0
    assert result.interrupted
    assert not result.timed_out
    assert result.describe() == "was interrupted (its process group was killed)"
    assert survivors(read_pids(pidfile)) == []


def test_a_sigterm_handler_raising_keyboardinterrupt_is_an_interrupt(tmp_path: Path) -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    pidfile = tmp_path / "pids"
    on_line, timers = interrupt_when_started(lambda: os.kill(os.getpid(), signal.SIGTERM))
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        result = run([str(SCRIPTS / "ignore_term.sh"), str(pidfile)], timeout=60.0, on_line=on_line)
        timers[0].join(5)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert (result.interrupted, result.timed_out) == (True, False)
    assert result.describe() == "was interrupted (its process group was killed)"
    assert survivors(read_pids(pidfile)) == []
