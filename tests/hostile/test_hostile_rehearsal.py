"""Whole rehearsals against a hostile staging service, in a pytester subprocess.

For each misbehaviour the health check is pointed at it and the run must end: within the
staging timeout plus slack (hang guards), with the verdict ``blocked`` and a message that
names what went wrong, a peak RSS under 150 MiB, and the token in none of stdout, stderr,
JUnit XML, the JSON report or the Markdown summary (the rollback script echoes it, too,
where staging answers well enough to be rolled back at all).
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import pytest
import raw_servers
from hostile_support import SLACK, TIMEOUT, Run, rehearse

from conftest import Hostile
from processes import read_pids, survivors

MIB = 1024 * 1024
#: The rehearsal itself (the report's duration: from the plugin's start to the report)
#: ends within the budget plus SLACK; the whole subprocess, Python's start-up included,
#: within the budget plus this much, a hang guard that a loaded machine does not trip.
SUBPROCESS_SLACK = 30.0
MAX_RSS = 150 * MIB
TRUNCATED = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello"


@dataclass(frozen=True)
class Case:
    """A hostile behaviour: where it is served, and what the health check must report."""

    path: str
    got: str  # the start of the failure message's "got:" value; {url}/{other} filled in
    raw: raw_servers.Handler | None = None  # a raw-socket server instead of the hostile app
    # Whether it answers the expected status (200) all the same, so the baseline before the
    # rollback passes and the rollback runs; otherwise nothing is rolled back.
    answers: bool = False


CASES = {
    "15-body-drip": Case("/drip", "no response (exceeded the 2 s total deadline for GET /drip)"),
    "15-header-drip": Case(
        "/health",
        "no response (exceeded the 2 s total deadline for GET /health)",
        raw=raw_servers.header_drip,
    ),
    "18-endless-body": Case(
        "/endless",
        "200 OK (body longer than 1MiB; only the first 1MiB was read) · xxxxxxxx",
        answers=True,
    ),
    "19-gzip-bomb": Case(
        "/gzip-bomb",
        "200 OK (gzip body although identity was asked for, over 1MiB once inflated; "
        "only the first 1MiB was read)",
        answers=True,
    ),
    "14-redirect-loop": Case(
        "/loop", "302 Found (redirect to {url}/loop, not followed) · empty body"
    ),
    "12-redirect-away": Case(
        "/away", "302 Found (redirect to {other}/catch, not followed) · empty body"
    ),
    "22-reset": Case(
        "/health",
        "no response (the server reset the connection ([Errno 104] Connection reset by peer))",
        raw=raw_servers.abort,
    ),
    "23-retry-after-3600": Case(
        "/rate-limited",
        "429 Too Many Requests (rate limited: Retry-After 3600 s exceeds the 2 s budget) "
        "· slow down",
    ),
    "20-header-bomb": Case(
        "/health",
        "no response (protocol error: the response head is too large (Receive buffer too long))",
        raw=raw_servers.header_bomb,
    ),
    "20-truncated-body": Case(
        "/health",
        "no response (protocol error: peer closed connection without sending complete "
        "message body (received 5 bytes, expected 100))",
        raw=raw_servers.canned(TRUNCATED),
    ),
    "24-500-echoing-the-token": Case(
        "/echo-auth",
        "500 Internal Server Error · Traceback (most recent call last): "
        'File "/srv/app/views.py", line 42, in orders check(request.headers) '
        "# Authorization: Bearer *** PermissionError: token=***",
    ),
}


def assert_bounded_and_clean(run: Run) -> None:
    assert run.report["duration_s"] < TIMEOUT + SLACK
    assert run.elapsed < TIMEOUT + SUBPROCESS_SLACK
    assert 0 < run.peak_rss < MAX_RSS, f"peak RSS {run.peak_rss / MIB:.0f} MiB"
    run.assert_no_secret()


@pytest.fixture(params=list(CASES), ids=list(CASES))
def case(request: pytest.FixtureRequest) -> Case:
    chosen: Case = CASES[request.param]
    return chosen


@pytest.fixture
def target(case: Case, hostile: Hostile) -> Iterator[str]:
    server: AbstractContextManager[str] = (
        raw_servers.serve_raw(case.raw) if case.raw else nullcontext(hostile.url)
    )
    with server as url:
        yield url


def test_a_hostile_staging_service_blocks_the_release_within_bounds(
    pytester: pytest.Pytester, case: Case, target: str, hostile: Hostile, token_env: str
) -> None:
    run = rehearse(pytester, target, case.path)
    assert run.ret == 1, run.stdout
    assert run.report["verdict"] == "blocked"
    health = run.check()
    assert health["outcome"] == "failed"
    got = "  got:      " + case.got.format(url=target, other=hostile.other_url)
    assert got in health["message"]
    assert got in run.stdout
    rollback = run.report["rollback"]
    if case.answers:
        assert rollback["output_tail"] == "rolling back as ***"  # case 39
    else:  # staging that cannot answer before the rollback is never rolled back
        assert (rollback["phase"], rollback["output_tail"]) == ("baseline", "")
        assert rollback["message"].startswith(
            ("staging did not answer before the rollback", "staging answered GET")
        )
    assert hostile.other.received == []  # case 12: nothing was followed anywhere
    assert_bounded_and_clean(run)


def test_a_refused_connection_blocks_the_release_naming_the_cause(
    pytester: pytest.Pytester, token_env: str
) -> None:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
    run = rehearse(pytester, f"http://127.0.0.1:{port}", "/health")
    assert run.ret == 1
    assert (
        "  got:      no response (connection failed: [Errno 111] Connection refused)"
        in (run.check()["message"])
    )
    assert_bounded_and_clean(run)


def test_a_flaky_502_then_200_is_ready(
    pytester: pytest.Pytester, hostile: Hostile, token_env: str
) -> None:
    run = rehearse(pytester, hostile.url, "/flaky")
    assert run.ret == 0, run.stdout
    assert run.report["verdict"] == "ready"
    # The check retried the 502; then the baseline, the verify and the watch asked again.
    assert hostile.app.hits["/flaky"] >= 2 + 2
    assert run.report["rollback"]["output_tail"] == "rolling back as ***"  # case 39
    assert_bounded_and_clean(run)


USER_TESTS = """
import pytest

@pytest.mark.rehearsal(owner="@web")
def test_echo(staging):
    assert staging.get("/echo-auth").text == "nothing secret"

@pytest.mark.rehearsal(owner="@web")
def test_drip(staging):
    staging.get("/drip")

@pytest.mark.rehearsal(owner="@web")
def test_endless(staging):
    staging.get("/endless")

@pytest.mark.rehearsal(owner="@web")
def test_loop(staging):
    staging.get("/loop", follow_redirects=True)

@pytest.mark.rehearsal(owner="@web")
def test_away(staging):
    staging.get("/away", follow_redirects=True)
"""


def test_user_checks_on_a_hostile_service_fail_clearly_even_with_locals_shown(
    pytester: pytest.Pytester, hostile: Hostile, token_env: str
) -> None:
    """Cases 12, 14, 15, 18, 24 through the ``staging`` fixture; 37: ``-l --tb=long``."""
    run = rehearse(pytester, hostile.url, "/health", "-l", "--tb=long", user_tests=USER_TESTS)
    assert run.ret == 1
    outcomes = {c["id"].rsplit("::", 1)[-1]: c["outcome"] for c in run.report["checks"]}
    assert outcomes == {
        "health": "passed",
        "test_echo": "failed",
        "test_drip": "failed",
        "test_endless": "failed",
        "test_loop": "failed",
        "test_away": "failed",
    }
    # The reports keep the head of a long traceback; the terminal has the whole of it.
    for line in [
        "E       assert 'Traceback (m...***\"}}\\n' == 'nothing secret'",
        f"httpx.TimeoutException: exceeded the 2 s total deadline for GET {hostile.url}/drip",
        f"pytest_rehearsal.client.BodyTooLarge: the body of GET "
        f"{hostile.url}/endless is larger than 16MiB, the most the staging client reads "
        f"into memory; read it piece by piece with staging.stream(...)",
        f"httpx.TooManyRedirects: stopped after 5 redirects (a loop?); "
        f"the next was to {hostile.url}/loop",
        f"pytest_rehearsal.client.RedirectRefused: refused to follow a redirect "
        f"to {hostile.other_url}/catch: another origin than {hostile.url}/; the rehearsal "
        f"only talks to staging",
    ]:
        assert line in run.stdout, line
    assert hostile.other.received == []
    assert_bounded_and_clean(run)


def test_many_secrets_paths_against_a_hanging_server_take_one_timeout_not_many(
    pytester: pytest.Pytester, token_env: str
) -> None:
    """Issue 11.9: every request's deadline runs from the start of its round, so 200 paths
    queued for 32 connections still end within about one timeout, not 200 / 32 of them."""
    paths = ", ".join(f"/leak-{index}.env" for index in range(200))
    with raw_servers.serve_raw(raw_servers.hang) as url:
        run = rehearse(pytester, url, "/health", secrets=f"{{paths: [{paths}]}}")
    assert run.ret == 1
    secrets = [c for c in run.report["checks"] if c["id"].startswith("rehearsal::secrets[/")]
    assert len(secrets) == 200
    assert {c["outcome"] for c in secrets} == {"failed"}
    assert "total deadline" in secrets[-1]["message"]
    # Two rounds at most (the checks, the rollback's own requests are none): not 7 x 2 s.
    assert run.report["duration_s"] < 2 * TIMEOUT + SLACK


def test_deeply_nested_json_on_the_health_path_is_a_judged_failure(
    pytester: pytest.Pytester, hostile: Hostile, token_env: str
) -> None:
    """Issue 11.5: ``[[[[...`` 200 000 deep is a body like any other that is not the JSON
    expected, never a RecursionError (INTERNALERROR) in the judgement."""
    run = rehearse(pytester, hostile.url, "/deep-json")
    assert run.ret == 1, run.stdout
    assert "INTERNALERROR" not in run.stdout + run.stderr
    assert run.report["verdict"] == "blocked"
    health = run.check()
    assert health["outcome"] == "failed"
    assert 'expected: status 200 with JSON containing {"ok": true}' in health["message"]
    assert "  got:      200 OK · [[[[" in health["message"]
    assert run.report["rollback"]["outcome"] == "passed"
    assert_bounded_and_clean(run)


def test_deeply_nested_json_on_the_verify_path_fails_the_rollback_verification(
    pytester: pytest.Pytester, hostile: Hostile, token_env: str
) -> None:
    """Issue 11.5: the same body from the rollback's verify path fails the verification."""
    verify = "{path: /deep-json, expect_json: {ok: true}, within: 1s}"
    run = rehearse(
        pytester,
        hostile.url,
        "/health",
        rollback=f"{{command: ./rollback.sh, verify: {verify}}}",
    )
    assert run.ret == 1, run.stdout
    assert "INTERNALERROR" not in run.stdout + run.stderr
    assert run.report["verdict"] == "blocked"
    assert run.check()["outcome"] == "passed"
    rollback = run.report["rollback"]
    assert rollback["outcome"] == "failed"
    assert "verification not met within 1 s: GET /deep-json" in rollback["message"]
    assert hostile.app.hits["/deep-json"] >= 1
    assert_bounded_and_clean(run)


SCRIPTS = Path(__file__).parent.parent / "rollback_scripts"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="Linux /proc")
def test_a_rollback_that_leaves_a_job_in_its_session_passes_with_a_note_and_no_orphan(
    pytester: pytest.Pytester, hostile: Hostile, token_env: str
) -> None:
    """Issue 11.17: ``set -m; sleep 300 &; exit 0`` left an orphan and the rollback passed
    with no note."""
    pidfile = pytester.path / "job.pid"
    script = SCRIPTS / "leave_session.sh"
    run = rehearse(pytester, hostile.url, "/health", rollback=f"{{command: [{script}, {pidfile}]}}")
    (pid,) = read_pids(pidfile)
    assert survivors([pid]) == []
    assert run.ret == 0, run.stdout
    rollback = run.report["rollback"]
    assert rollback["outcome"] == "passed"
    # The job is named as it was when killed: bash until it has exec'd sleep.
    note = re.search(
        rf"killed 1 process left in its session outside its process group: {pid} \((sleep|bash)\)",
        rollback["message"],
    )
    assert note is not None, rollback["message"]
    assert note[0] in run.summary


def _health_that_hangs_once(flag: Path, version: Path) -> raw_servers.Handler:
    """``/health`` answers until *flag* exists, then hangs; ``/version`` serves *version*."""

    def handle(conn: socket.socket) -> None:
        head = raw_servers.read_request(conn)
        if head.startswith(b"GET /health ") and flag.exists():
            raw_servers.hang(conn)  # the request head is read; no answer ever comes
            return
        body = b'{"ok": true}' if head.startswith(b"GET /health ") else b""
        if head.startswith(b"GET /version "):
            body = b'{"version": "%s"}' % version.read_bytes().strip()
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )

    return handle


def test_a_staging_that_stops_answering_during_the_rollback_fails_max_outage(
    pytester: pytest.Pytester, token_env: str
) -> None:
    """Its health hangs from the rollback on (the verify path still answers): the poll
    left unanswered is an outage, though the rollback ends within one request timeout."""
    flag, version = pytester.path / "hang", pytester.path / "version"
    version.write_text("1.5.0")
    flip = pytester.path / "flip.sh"
    flip.write_text(f"#!/bin/sh\ntouch {flag}\necho 1.4.2 > {version}\nsleep 1\n")
    flip.chmod(0o755)
    rollback = (
        "{command: ./flip.sh, verify: {path: /version, track: [version], within: 5s}, "
        "watch: {interval: 100ms}, max_outage: 300ms}"
    )
    with raw_servers.serve_raw(_health_that_hangs_once(flag, version)) as url:
        run = rehearse(pytester, url, "/health", rollback=rollback)
    assert run.ret == 1, run.stdout
    rollback_record = run.report["rollback"]
    assert (rollback_record["outcome"], rollback_record["phase"]) == ("failed", "done")
    watch = rollback_record["recovery"]["watch"]
    assert watch["failed"] == 1
    assert watch["longest_outage_s"] > 0.3
    assert "over max_outage 300 ms" in rollback_record["message"]
    run.assert_no_secret()
