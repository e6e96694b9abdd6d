"""The ``logging`` check: marked requests with canary credentials, then the team's log command.

Three layers: the judgement, driven with hand-made log readings; the log reader, running real
scripts; and whole rehearsals against the example service, with and without each logging
defect, whose log command is the real ``examples/staging-logs.sh``.
"""

from __future__ import annotations

import re
import ssl
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from checkdriver import Recorder, answer, drive
from plugin_helpers import QUIET_CHECKS, load_report, write_config, write_rollback_script
from pytest_rehearsal.checks import logging as logging_check
from pytest_rehearsal.checks._base import ActionContext, Probe, Verdict
from pytest_rehearsal.checks.logging import LoggingCheck, ReadLogs
from pytest_rehearsal.config import ChecksConfig, LoggingCheckConfig, Meta, RehearsalConfig
from pytest_rehearsal.log_reader import LogLine, LogReading
from pytest_rehearsal.redact import Redactor
from servers import EXAMPLES_DIR, StagingAppFactory

CANARY = re.compile(r"rehearsal-canary-[0-9a-f]{32}")
STAGING_LOGS = EXAMPLES_DIR / "staging-logs.sh"


def make_check(within: float = 2.0, paths: tuple[str, ...] = ("/health",)) -> LoggingCheck:
    spec = LoggingCheckConfig(command=("./logs.sh",), paths=paths, within=within)
    (built,) = logging_check.build(RehearsalConfig(checks=ChecksConfig(logging=spec)))
    assert isinstance(built, LoggingCheck)
    return built


Reader = Callable[[ReadLogs, int], LogReading]


def run(check: LoggingCheck, reader: Reader, status: int | None = 200) -> tuple[Verdict, Recorder]:
    """Drive *check*: probes get *status*, the n-th log read gets ``reader(action, n)``."""
    reads: list[ReadLogs] = []

    def respond(request: Any) -> Any:
        if isinstance(request, Probe):
            return answer(request, status, error=None if status else "connection refused")
        reads.append(request)
        return reader(request, len(reads))

    recorder = Recorder(respond)
    return drive(check, recorder), recorder


def reading(n: int, *, seconds: float = 0.1, **fields: Any) -> LogReading:
    """The reading of the n-th run, *seconds* after the first began (at t=100)."""
    return LogReading(began=100.0, finished_at=100.0 + n * seconds, **fields)


# -- the plan and the judgement -------------------------------------------------------------


def test_built_only_when_configured_with_two_distinct_canaries() -> None:
    assert logging_check.build(RehearsalConfig()) == []
    check = make_check()
    assert check.id == "logging"
    assert len(set(check.secrets)) == 2
    assert all(CANARY.fullmatch(value) for value in check.secrets)
    assert make_check().secrets != check.secrets  # made up afresh for every rehearsal
    uuid.UUID(check.marker)  # services that validate request ids keep a UUID


def test_each_path_gets_the_marker_and_both_canaries_and_no_configured_credentials() -> None:
    check = make_check(paths=("/health", "/search?q=x"))
    verdict, recorder = run(check, lambda action, n: reading(n, marker=(LogLine(1, "x"),)))
    assert verdict.passed
    probes, (read,) = recorder.rounds
    assert [p.path for p in probes] == [
        f"/health?access_token={check.query_token}",
        f"/search?q=x&access_token={check.query_token}",
    ]
    for probe in probes:
        assert isinstance(probe, Probe)
        assert probe.method == "GET"
        assert probe.credentials is None
        assert dict(probe.headers) == {
            "X-Request-ID": check.marker,
            "Authorization": f"Bearer {check.bearer}",
        }
    assert isinstance(read, ReadLogs)
    assert (read.command, read.marker, read.began, read.pause) == (
        ("./logs.sh",),
        check.marker,
        None,
        0.0,
    )
    assert dict(read.canaries) == {"Authorization": check.bearer, "access_token": check.query_token}
    assert check.bearer not in repr(read)  # the canaries stay out of the action's repr


def test_since_is_utc_to_the_second_a_little_before_the_check_starts() -> None:
    spec = LoggingCheckConfig(command=("./logs.sh",))
    moment = datetime(2026, 3, 1, 13, 0, 7, 900000, tzinfo=timezone.utc)
    check = LoggingCheck(spec, Meta(), clock=lambda: moment)
    assert check.since() == "2026-03-01T13:00:02Z"
    _, recorder = run(check, lambda action, n: reading(n, marker=(LogLine(1, "x"),)))
    (read,) = recorder.rounds[1]
    assert isinstance(read, ReadLogs)
    assert read.since == "2026-03-01T13:00:02Z"


def test_the_marker_on_the_first_run_passes_with_a_note_and_asvs_properties() -> None:
    verdict, recorder = run(
        make_check(), lambda action, n: reading(n, lines=12, marker=(LogLine(7, "GET /x"),))
    )
    assert verdict.passed
    assert len(recorder.rounds) == 2
    (note,) = verdict.notes
    assert note.startswith("marker ")
    assert "in log line 7 after 1 run (100 ms); no canary credential in 12 lines" in note
    assert verdict.properties == {"asvs": "5.0.0: 16.2.5; 4.0.3: 7.1.1", "cwe": "532"}


def test_the_command_is_rerun_after_a_pause_until_the_marker_appears() -> None:
    check = make_check(within=10.0)
    verdict, recorder = run(
        check, lambda action, n: reading(n, marker=(LogLine(3, "x"),) if n == 3 else ())
    )
    assert verdict.passed
    assert "after 3 runs" in verdict.notes[0]
    reads = [batch[0] for batch in recorder.rounds[1:]]
    assert [(r.began, r.pause) for r in reads if isinstance(r, ReadLogs)] == [
        (None, 0.0),
        (100.0, check.pause),
        (100.0, check.pause),
    ]
    assert check.pause == 0.5  # a twentieth of within, from 250 ms up to 2 s
    assert make_check(within=1).pause == 0.25
    assert make_check(within=600).pause == 2.0


def test_a_marker_that_never_appears_fails_once_within_runs_out() -> None:
    verdict, recorder = run(
        make_check(within=2.0), lambda action, n: reading(n, seconds=0.5, lines=4, tail="a ⏎ b")
    )
    assert len(recorder.rounds) == 1 + 4  # 0.5 s a run: the fourth ends at 2 s
    (found,) = verdict.findings
    assert found.rule == "marker-not-logged"
    assert found.message == "the marker never appeared in the log output within 2 s"
    message = verdict.message
    assert "(log command), after GET https://staging.test/health?access_token=" in message
    assert "expected: the marker in the log command's output within 2 s" in message
    assert "4 runs of the command in 2.0 s; the last printed 4 lines, none with the marker" in (
        message
    )
    assert "(the requests got 200)" in message
    assert "health checks often are not: list a logged path in checks.logging.paths" in message
    assert "last output: a ⏎ b" in message
    assert "retry:    safe: the requests were GETs" in message


def test_each_canary_in_the_output_is_its_own_finding_with_the_line_masked() -> None:
    lines = {
        "Authorization": (LogLine(3, 'GET /health authorization="Bearer ***"'),),
        "access_token": (LogLine(3, "GET /health?access_token=*** 200"), LogLine(9, "again")),
    }
    verdict, _ = run(
        make_check(),
        lambda action, n: reading(n, marker=(LogLine(3, "x"),), canaries=tuple(lines.items())),
    )
    assert [f.rule for f in verdict.findings] == ["logged-authorization", "logged-query-credential"]
    assert [f.message for f in verdict.findings] == [
        "the Authorization header is logged: the canary bearer token appears · log line 3: "
        'GET /health authorization="Bearer ***"',
        "the full URL is logged with its query: the canary access_token appears · log line 3: "
        "GET /health?access_token=*** 200 (and 1 more line)",
    ]
    lines = verdict.message.splitlines()
    assert lines[1:] == [
        "  expected: no credential of those requests in the log output",
        "  got:      credentials are logged (OWASP ASVS 4.0.3 V7.1.1, CWE-532) with 2 problems:",
        f"    - {verdict.findings[0].message}",
        f"    - {verdict.findings[1].message}",
        "  retry:    safe: the requests were GETs, and reading the logs changes nothing",
    ]


def test_a_failing_command_fails_closed_even_when_the_marker_showed() -> None:
    verdict, recorder = run(
        make_check(),
        lambda action, n: reading(
            n,
            marker=(LogLine(1, "x"),),
            failure="the log command exited with status 3",
            tail="permission denied",
        ),
    )
    assert len(recorder.rounds) == 2  # not run again: failing closed is final
    (found,) = verdict.findings
    assert (found.rule, found.message) == (
        "log-command-failed",
        "the log command exited with status 3",
    )
    assert "expected: the log command exits 0, printing recent log lines" in verdict.message
    assert "last output: permission denied" in verdict.message


def test_a_command_that_times_out_is_told_not_to_follow_the_log() -> None:
    failure = "the log command killed by SIGTERM after timing out after 10 s"
    verdict, _ = run(make_check(), lambda a, n: reading(n, failure=failure, timed_out=True))
    assert "do not follow the log (-f)" in verdict.message
    assert "within the request timeout (--staging-timeout)" in verdict.message


def test_requests_that_all_got_no_response_fail_without_reading_the_logs() -> None:
    verdict, recorder = run(make_check(), lambda action, n: reading(n), status=None)
    assert len(recorder.rounds) == 1
    (found,) = verdict.findings
    assert found.rule == "request-failed"
    assert "got no response, so it cannot be in the logs: connection refused" in found.message


def test_output_too_long_to_scan_whole_is_noted() -> None:
    verdict, _ = run(
        make_check(),
        lambda a, n: reading(n, lines=10_000, scan_stopped=True, marker=(LogLine(1, "x"),)),
    )
    assert verdict.passed
    assert (
        "printed more than 10000 lines; only those were scanned for canaries" in (verdict.notes[1])
    )


# -- the log reader, with real commands -------------------------------------------------------


def perform(
    action: ReadLogs,
    cwd: Path,
    *,
    redactor: Redactor | None = None,
    env: dict[str, str] | None = None,
    budget: float = 10.0,
) -> LogReading:
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context = ActionContext(
        "http://127.0.0.1:9", budget, tls, redactor or Redactor(), cwd, env or {}
    )
    result = action.perform(context, time.monotonic() + budget)
    assert isinstance(result, LogReading)
    return result


def action_for(command: str, **kw: Any) -> ReadLogs:
    canaries = (("Authorization", "rehearsal-canary-" + "a" * 32), ("access_token", "tok-qqqqqq"))
    return ReadLogs((command,), "marker-1", "2026-01-01T00:00:00Z", canaries, **kw)


def test_the_reader_scans_raw_lines_and_returns_them_redacted(tmp_path: Path) -> None:
    bearer = "rehearsal-canary-" + "a" * 32
    write_rollback_script(
        tmp_path,
        "logs.sh",
        f"""\
        echo "start $REHEARSAL_SINCE $X_SETTING $(basename "$PWD")"
        echo "GET /a marker-1 Authorization=Bearer {bearer}"
        echo "GET /b?access_token=tok-qqqqqq marker-1"
        printf 'no newline at the end'
        """,
    )
    redactor = Redactor([bearer, "tok-qqqqqq"])
    result = perform(
        action_for("./logs.sh"), tmp_path, redactor=redactor, env={"X_SETTING": "from-env"}
    )
    assert (result.failure, result.lines) == (None, 4)
    assert [line.number for line in result.marker] == [2, 3]
    found = dict(result.canaries)
    assert [line.number for line in found["Authorization"]] == [2]
    assert found["access_token"] == (LogLine(3, "GET /b?access_token=*** marker-1"),)
    assert bearer not in repr(result)
    assert "tok-qqqqqq" not in repr(result)
    assert result.tail.startswith("GET /a marker-1 Authorization=Bearer *** ⏎ GET /b?access")
    assert result.tail.endswith("no newline at the end")
    assert result.began <= result.finished_at


def test_the_reader_passes_marker_since_and_the_rollback_env_in_cwd(tmp_path: Path) -> None:
    write_rollback_script(
        tmp_path, "logs.sh", 'echo "$REHEARSAL_MARKER $REHEARSAL_SINCE $X $(basename "$PWD")"\n'
    )
    result = perform(action_for("./logs.sh"), tmp_path, env={"X": "y"})
    assert result.tail == f"marker-1 2026-01-01T00:00:00Z y {tmp_path.name}"
    assert len(result.marker) == 1


def test_the_reader_reports_a_failing_command_with_its_output(tmp_path: Path) -> None:
    write_rollback_script(tmp_path, "logs.sh", "echo 'cannot reach the log API' >&2\nexit 3\n")
    result = perform(action_for("./logs.sh"), tmp_path)
    assert result.failure == "the log command exited with status 3"
    assert result.tail == "cannot reach the log API"


def test_the_reader_names_a_missing_command(tmp_path: Path) -> None:
    result = perform(action_for("./missing.sh"), tmp_path)
    assert result.failure is not None
    assert result.failure.startswith("log command './missing.sh' not found")


def test_the_reader_ends_a_command_that_outlives_its_deadline(tmp_path: Path) -> None:
    write_rollback_script(tmp_path, "logs.sh", "echo following\nexec sleep 30\n")
    started = time.monotonic()
    result = perform(action_for("./logs.sh"), tmp_path, budget=0.5)
    assert time.monotonic() - started < 5
    assert result.timed_out
    assert result.failure is not None
    assert "timed out after" in result.failure or "timing out" in result.failure


def test_the_reader_pauses_before_a_rerun_and_keeps_the_first_start(tmp_path: Path) -> None:
    write_rollback_script(tmp_path, "logs.sh", "exit 0\n")
    started = time.monotonic()
    result = perform(action_for("./logs.sh", began=12.5, pause=0.3), tmp_path)
    assert time.monotonic() - started >= 0.3
    assert (result.began, result.lines, result.tail, result.failure) == (12.5, 0, "", None)


# -- whole rehearsals against the example service ---------------------------------------------


def rehearse_logging(
    pytester: pytest.Pytester,
    url: str,
    log: Path,
    command: str = str(STAGING_LOGS),
    within: str = "3s",
) -> tuple[pytest.RunResult, dict[str, Any]]:
    write_config(
        pytester,
        QUIET_CHECKS
        + f"  logging: {{command: ['{command}'], paths: [/health], within: {within}}}\n"
        + f"rollback: {{env: {{STAGING_ACCESS_LOG: '{log}'}}}}\n",
    )
    result = pytester.runpytest(
        f"--staging-url={url}",
        "--no-rollback",
        "--rehearsal-report=report.json",
        "--junitxml=junit.xml",
        "-rA",
    )
    checks = {c["id"]: c for c in load_report(pytester.path / "report.json")["checks"]}
    return result, checks["rehearsal::logging"]


def test_the_good_example_service_passes(
    pytester: pytest.Pytester, staging_app_factory: StagingAppFactory, release_root: Path
) -> None:
    log = release_root / "access.log"
    result, record = rehearse_logging(pytester, staging_app_factory(), log)
    assert result.ret == 0, result.stdout.str()
    assert record["outcome"] == "passed"
    marker = re.match(r"marker ([0-9a-f-]{36}) in log line \d+ after 1 run", record["message"])
    assert marker is not None, record["message"]
    lines = log.read_text().splitlines()
    (marked,) = [line for line in lines if marker[1] in line]
    assert marked.endswith(f" GET /health 200 request_id={marker[1]}")  # no query, no token
    assert any(line.endswith(" GET /health 200 request_id=-") for line in lines)  # health


@pytest.mark.parametrize(
    ("defect", "message", "shown"),
    [
        ("log-authorization", "the Authorization header is logged", 'authorization="Bearer ***"'),
        ("log-full-url", "the full URL is logged", "GET /health?access_token=*** 200"),
    ],
)
def test_each_logging_defect_blocks_the_release_and_no_canary_is_shown(
    pytester: pytest.Pytester,
    staging_app_factory: StagingAppFactory,
    release_root: Path,
    defect: str,
    message: str,
    shown: str,
) -> None:
    log = release_root / "access.log"
    result, record = rehearse_logging(pytester, staging_app_factory(defect), log)
    output = result.stdout.str()
    assert result.ret == 1, output
    assert record["outcome"] == "failed"
    assert message in record["message"]
    assert shown in record["message"]
    assert "credentials are logged (OWASP ASVS 4.0.3 V7.1.1, CWE-532)" in record["message"]
    canaries = set(CANARY.findall(log.read_text()))
    assert len(canaries) == 1  # the app logged exactly the one canary of its defect
    everything = output + (pytester.path / "report.json").read_text()
    everything += (pytester.path / "junit.xml").read_text()
    assert not any(canary in everything for canary in canaries)
    assert "rehearsal-canary-" not in everything


def test_a_log_command_that_prints_nothing_blocks_the_release(
    pytester: pytest.Pytester, staging_app_factory: StagingAppFactory, release_root: Path
) -> None:
    script = write_rollback_script(pytester.path, "quiet.sh", "exit 0\n")
    started = time.monotonic()
    result, record = rehearse_logging(
        pytester, staging_app_factory(), release_root / "access.log", str(script), "1s"
    )
    assert time.monotonic() - started < 30
    assert result.ret == 1
    assert "expected: the marker in the log command's output within 1 s" in record["message"]
    assert "the last printed 0 lines, none with the marker" in record["message"]
    result.stdout.fnmatch_lines(["FAILED rehearsal::logging - *"])


def test_a_failing_log_command_blocks_the_release(
    pytester: pytest.Pytester, staging_app_factory: StagingAppFactory, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such.log"
    result, record = rehearse_logging(pytester, staging_app_factory(), missing)
    assert result.ret == 1
    assert "the log command exited with status 1" in record["message"]
    assert f"staging-logs.sh: no access log at {missing}" in record["message"]
