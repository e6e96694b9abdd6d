"""The checklist against real frameworks: Django under gunicorn and Flask on Werkzeug.

Each configuration is a real server in a subprocess on 127.0.0.1, started once for the
module when a test first needs it, on a socket this process bound: the port is known before
the server starts, and no other process can take it. The apps are in ``tests/frameworks``.

- Django, hardened (``DEBUG = False``, ``SecurityMiddleware``, a CSP), over http: every
  check passes, so with ``--no-rollback`` the verdict is ``incomplete``. Its ``csrftoken``
  has no ``Secure`` (right over http) and no ``HttpOnly`` (right for a CSRF cookie); the
  same cookies judged as if staging were https lack ``Secure``.
- The same site with ``DEBUG = True``: blocked, by exactly its two debug pages.
- Flask with the Werkzeug debugger: blocked, by exactly its three defects.

Each rehearsal runs in-process (pytester) against its server: a few seconds in all.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from checkdriver import answer
from plugin_helpers import load_report, write_config
from pytest_rehearsal.checks._base import Probe
from pytest_rehearsal.checks.headers import HeaderPolicy, judge

FRAMEWORKS = Path(__file__).parent / "frameworks"
BIN = Path(sys.executable).parent
STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
CONFIG = """\
checks:
  health: {path: /health, expect_json: {ok: true}}
"""


@dataclass(frozen=True)
class Server:
    """A framework server in a subprocess, and the file its output goes to."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


def _start(name: str, argv: list[str], logs: Path, env: dict[str, str] | None = None) -> Server:
    """Start *argv* on a listening socket bound here; ``{fd}`` in *argv* is its number."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    fd = listener.fileno()
    log = logs / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [arg.format(fd=fd) for arg in argv],
            pass_fds=[fd],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=FRAMEWORKS,
        )
    port = listener.getsockname()[1]
    listener.close()  # the server holds its own copy
    return Server(name, f"http://127.0.0.1:{port}", process, log)


def _wait_until_healthy(server: Server, deadline: float) -> None:
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                break
            try:
                if client.get(server.url + "/health").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
    raise RuntimeError(f"{server.name} did not start on {server.url}:\n{server.output()}")


def _stop(server: Server) -> None:
    try:
        server.process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(STOP_TIMEOUT)


_GUNICORN = [str(BIN / "gunicorn"), "--bind", "fd://{fd}", "--threads", "8"]
_GUNICORN += ["--graceful-timeout", "1", "django_site:application"]
#: Each configuration: its command and its environment.
CONFIGURATIONS: dict[str, tuple[list[str], dict[str, str]]] = {
    "django": (_GUNICORN, {}),
    "django-debug": (_GUNICORN, {"REHEARSAL_DJANGO_DEBUG": "1"}),
    "flask": ([sys.executable, "flask_site.py", "{fd}"], {}),
}


class Servers:
    """The configurations, each started on first use and all stopped together.

    On first use, not all at once: under ``-n`` each worker starts only the servers its own
    tests need (each start costs a framework import), and a worker that runs them all waits
    about a second for each.
    """

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.started: dict[str, Server] = {}

    def __getitem__(self, name: str) -> Server:
        if name not in self.started:
            argv, env = CONFIGURATIONS[name]
            self.started[name] = _start(name, argv, self.logs, env)
            _wait_until_healthy(self.started[name], time.monotonic() + STARTUP_TIMEOUT)
        return self.started[name]

    def stop(self) -> None:
        for server in self.started.values():
            # Quick shutdown for gunicorn (TERM waits for its workers), KeyboardInterrupt
            # for the Werkzeug server.
            server.process.send_signal(signal.SIGINT)
        for server in self.started.values():
            _stop(server)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """The framework servers of this module: ``servers["django"]`` starts it if need be."""
    running = Servers(tmp_path_factory.mktemp("framework-logs"))
    try:
        yield running
    finally:
        running.stop()


def rehearse(pytester: pytest.Pytester, server: Server) -> dict[str, Any]:
    """A rehearsal of *server* with the default checklist, ``--no-rollback``; its report."""
    write_config(pytester, CONFIG)
    # No user test here: without assert rewriting, hypothesis and xdist, the in-process run
    # does not re-import and re-compile their modules (2 s a run otherwise; under a second now).
    result = pytester.runpytest(
        f"--staging-url={server.url}",
        "--no-rollback",
        "--rehearsal-report=report.json",
        "--assert=plain",
        *("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:xdist"),
    )
    assert result.ret in (0, 1), result.stdout.str()
    return load_report(pytester.path / "report.json")


def failures(report: dict[str, Any], url: str) -> dict[str, str]:
    """Every check that did not pass, with its message (the staging URL as ``URL``)."""
    return {
        check["id"].removeprefix("rehearsal::"): check["message"].replace(url, "URL")
        for check in report["checks"]
        if check["outcome"] != "passed"
    }


def assert_readable(report: dict[str, Any]) -> None:
    """No message is mojibake, raw bytes or a tautology."""
    for check in report["checks"]:
        text = check["message"]
        for bad in ("\ufffd", "\\x00", "\x00", "should not be served", "a page ("):
            assert bad not in text, (check["id"], text)


def test_a_hardened_django_over_http_passes_every_check_and_needs_secure_on_https(
    pytester: pytest.Pytester, servers: Servers
) -> None:
    report = rehearse(pytester, servers["django"])
    assert report["verdict"] == "incomplete"  # --no-rollback: nothing else is missing
    assert report["rollback"]["outcome"] == "skipped"
    assert failures(report, servers["django"].url) == {}
    ids = {check["id"] for check in report["checks"]}
    assert {"rehearsal::health", "rehearsal::headers[/]", "rehearsal::secrets[/.env]"} <= ids
    assert "rehearsal::secrets[responses]" in ids
    (headers,) = [c for c in report["checks"] if c["id"] == "rehearsal::headers[/]"]
    assert "nor the cookies' Secure attribute" in headers["message"]
    assert_cookies_need_secure_only_over_https(servers["django"])


def assert_cookies_need_secure_only_over_https(server: Server) -> None:
    """The very cookies the site sent, judged as if staging were https, and as it is."""
    response = httpx.get(server.url + "/", timeout=10)
    cookies = response.headers.get_list("set-cookie")
    assert [c.split("=", 1)[0] for c in cookies] == ["csrftoken", "sessionid"]
    headers = tuple(response.headers.multi_items())
    for base, expected in (
        ("http://staging.test", []),
        (
            "https://staging.test",
            ["Set-Cookie csrftoken: missing Secure", "Set-Cookie sessionid: missing Secure"],
        ),
    ):
        reply = answer(Probe("GET", "/"), 200, headers, response.content, base=base)
        violations, _ = judge(reply, HeaderPolicy())
        shown = [v.describe().split(" (seen")[0] for v in violations if "Cookie" in v.header]
        assert shown == expected, base


def test_a_debug_django_is_blocked_by_its_two_debug_pages(
    pytester: pytest.Pytester, servers: Servers
) -> None:
    server = servers["django-debug"]
    report = rehearse(pytester, server)
    assert report["verdict"] == "blocked"
    found = failures(report, server.url)
    assert sorted(found) == ["secrets[/.env]", "secrets[responses]"]
    # A crash on a secrets path: the 500 debug page, said as such.
    assert found["secrets[/.env]"] == (
        "GET URL/.env\n"
        "  expected: not served (this path must not expose an environment file)\n"
        "  got:      500 Internal Server Error · answers 500 with Django's DEBUG page, which "
        'shows the traceback and the settings ("DEBUG = True in your Django settings file")\n'
        "  retry:    safe: GET does not change staging"
    )
    # Every other secrets path gets the technical 404: reported once, as every path's page.
    scan = found["secrets[responses]"].splitlines()
    assert re.fullmatch(r"GET URL/__rehearsal_[0-9a-f]{32}", scan[0])
    assert scan[2] == (
        "  got:      404 Not Found · the page of a random path that cannot exist · every unknown "
        "path answers 404 with Django's DEBUG 404 page, which lists the URL patterns (DEBUG = "
        'True) ("Django tried these URL patterns")'
    )
    assert len(scan) == 4
    assert_readable(report)


def test_flask_with_the_werkzeug_debugger_is_blocked_by_its_three_defects(
    pytester: pytest.Pytester, servers: Servers
) -> None:
    server = servers["flask"]
    report = rehearse(pytester, server)
    assert report["verdict"] == "blocked"
    found = failures(report, server.url)
    assert sorted(found) == ["headers[/]", "secrets[/.env]"]
    software = httpx.get(server.url + "/health", timeout=10).headers["server"]
    assert software.startswith("Werkzeug/")
    # Over http: no Secure asked of any cookie; HttpOnly of the session-like one only (the
    # csrf_token cookie is meant for scripts; Flask's own session cookie is HttpOnly).
    assert found["headers[/]"] == (
        "GET URL/\n"
        "  expected: the html secure-headers policy (see docs/checks.md#headers)\n"
        "  got:      200 OK with 2 header problems:\n"
        "    - Set-Cookie remember_token: missing HttpOnly (a session cookie) (seen: "
        '"remember_token=…; path; samesite")\n'
        f'    - Server: discloses a software version (seen: "{software}")\n'
        "  retry:    safe: GET does not change staging"
    )
    assert found["secrets[/.env]"] == (
        "GET URL/.env\n"
        "  expected: not served (this path must not expose an environment file)\n"
        "  got:      500 INTERNAL SERVER ERROR · answers 500 with the Werkzeug interactive "
        'debugger, which lets anyone run code on the server ("Werkzeug Debugger")\n'
        "  retry:    safe: GET does not change staging"
    )
    assert_readable(report)
