"""The rollback rehearsal end to end: preflight, verification, -x, xdist, interrupts, hooks."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from plugin_helpers import (
    QUIET_CHECKS,
    TinyStaging,
    counting_rollback,
    load_report,
    write_config,
    write_rollback_script,
)
from processes import read_pids, survivors


def test_a_missing_rollback_is_announced_in_the_header_and_fails_after_the_checks(
    pytester: pytest.Pytester, tiny_staging: tuple[TinyStaging, str]
) -> None:
    staging, url = tiny_staging
    write_config(pytester, QUIET_CHECKS + "rollback: {command: ./missing.sh}\n")
    result = pytester.runpytest(f"--staging-url={url}", "--junitxml=junit.xml", "-rA")
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "rehearsal: * · rollback ./missing.sh (WILL FAIL: *not found*)",
            "rehearsal E*[[]100%[]]",
            "*verdict: blocked — 1 of 1 checks passed, rollback failed*",
            "PASSED rehearsal::health",
            "ERROR rehearsal::rollback*not found*",
        ]
    )
    assert staging.requests  # the checklist still ran, so the team sees everything
    junit = (pytester.path / "junit.xml").read_text()
    assert "<error" in junit


def test_a_rollback_that_leaves_staging_on_the_new_version_fails_verification(
    pytester: pytest.Pytester, tiny_staging: tuple[TinyStaging, str]
) -> None:
    _, url = tiny_staging  # staging reports 1.5.0 whatever the script does
    write_rollback_script(pytester.path, "rollback.sh", "echo 'flipped (or so it says)'\n")
    write_config(
        pytester,
        QUIET_CHECKS + "rollback:\n  command: ./rollback.sh\n"
        "  verify: {path: /health, expect_json: {version: '1.4.2'}, within: 1s}\n",
    )
    result = pytester.runpytest(f"--staging-url={url}", "--rehearsal-report=r.json")
    assert result.ret == 1
    message = load_report(pytester.path / "r.json")["rollback"]["message"]
    assert '{"version": "1.4.2"}' in message
    assert '"version": "1.5.0"' in message
    assert "within 1 s" in message


def test_a_hanging_rollback_that_ignores_sigterm_is_killed_with_its_children(
    pytester: pytest.Pytester, tiny_staging: tuple[TinyStaging, str]
) -> None:
    _, url = tiny_staging
    pids = pytester.path / "pids"
    write_rollback_script(
        pytester.path,
        "rollback.sh",
        f"""\
        trap '' TERM
        sleep 300 &
        echo $! >> {pids}
        echo $$ >> {pids}
        echo started
        wait
        """,
    )
    write_config(pytester, QUIET_CHECKS + "rollback: {command: ./rollback.sh, timeout: 1s}\n")
    started = time.monotonic()
    result = pytester.runpytest(f"--staging-url={url}", "--rehearsal-report=r.json")
    elapsed = time.monotonic() - started
    assert result.ret == 1
    assert elapsed < 1 + 10  # timeout + grace + a generous margin: a hang guard, not a benchmark
    rollback = load_report(pytester.path / "r.json")["rollback"]
    assert "SIGKILL" in rollback["message"]
    assert survivors(read_pids(pids), within=0) == []


def test_with_x_the_rollback_still_runs_once(
    pytester: pytest.Pytester, tiny_staging: tuple[TinyStaging, str]
) -> None:
    _, url = tiny_staging
    log = counting_rollback(pytester)
    pytester.makepyfile("def test_a():\n    assert False\n\ndef test_b():\n    pass\n")
    result = pytester.runpytest(f"--staging-url={url}", "-x", "-rA")
    assert result.ret == 1
    assert log.read_text().splitlines() == ["rollback"]
    result.stdout.fnmatch_lines(["PASSED rehearsal::rollback", "FAILED *test_a*"])


def test_a_crashing_xdist_worker_does_not_stop_the_single_rollback(
    pytester: pytest.Pytester, tiny_staging: tuple[TinyStaging, str]
) -> None:
    _, url = tiny_staging
    log = counting_rollback(pytester)
    pytester.makepyfile(
        """
        import os
        import pytest

        @pytest.mark.parametrize("n", range(6))
        def test_n(n):
            if n == 3:
                os._exit(3)
        """
    )
    result = pytester.runpytest_subprocess(
        f"--staging-url={url}", "-n", "2", "-p", "no:cacheprovider", "--rehearsal-report=r.json"
    )
    assert result.ret == 1
    assert log.read_text().splitlines() == ["rollback"]
    report = load_report(pytester.path / "r.json")
    assert report["verdict"] == "blocked"  # a crashed test fails the run: never "ready"
    assert report["other_failures"] == 1


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupt_before_the_rollback_means_it_is_not_started(
    pytester: pytest.Pytester, tiny_staging: tuple[TinyStaging, str], sig: signal.Signals
) -> None:
    _, url = tiny_staging
    log = counting_rollback(pytester)
    pytester.makepyfile(
        f"""
        import os, signal, time

        def test_cancelled():
            os.kill(os.getpid(), {int(sig)})
            time.sleep(5)
        """
    )
    result = pytester.runpytest_subprocess(
        f"--staging-url={url}", "--rehearsal-report=r.json", "-p", "no:cacheprovider"
    )
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert not log.exists()
    report = load_report(pytester.path / "r.json")
    assert report["verdict"] == "blocked"
    assert report["interrupted"] is True
    assert report["rollback"]["outcome"] == "skipped"
    assert "interrupted before the rollback" in report["rollback"]["message"]


def test_an_interrupt_during_the_rollback_ends_its_process_group(
    pytester: pytest.Pytester, tiny_staging: tuple[TinyStaging, str]
) -> None:
    _, url = tiny_staging
    pids = pytester.path / "pids"
    write_rollback_script(
        pytester.path,
        "rollback.sh",
        f"""\
        sleep 300 &
        echo $! >> {pids}
        kill -TERM $PPID
        wait
        """,
    )
    write_config(pytester, QUIET_CHECKS + "rollback: {command: ./rollback.sh, timeout: 30s}\n")
    started = time.monotonic()
    result = pytester.runpytest_subprocess(
        f"--staging-url={url}", "--rehearsal-report=r.json", "-p", "no:cacheprovider"
    )
    assert time.monotonic() - started < 20
    assert result.ret == pytest.ExitCode.INTERRUPTED
    rollback = load_report(pytester.path / "r.json")["rollback"]
    assert rollback["outcome"] == "failed"
    assert "interrupted" in rollback["message"]
    assert survivors(read_pids(pids), within=0) == []


def test_a_redirect_towards_production_fails_the_check_naming_the_hop(
    pytester: pytest.Pytester, tiny_staging: tuple[TinyStaging, str]
) -> None:
    _, url = tiny_staging
    write_rollback_script(pytester.path, "rollback.sh", "exit 0\n")
    write_config(
        pytester,
        "production: ['prod\\.example']\n"
        "checks: {headers: false, secrets: false, health: {path: /moved}}\n"
        "rollback: {command: ./rollback.sh}\n",
    )
    result = pytester.runpytest(f"--staging-url={url}")
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        ["*302 redirect to https://api.prod.example/x, which matches production pattern*"]
    )


HOOKS_CONFTEST = """
import json

def pytest_rehearsal_before_rollback(config, rollback, command):
    print("HOOK before", list(command))
    return {veto!r}

def pytest_rehearsal_after_rollback(config, outcome):
    print("HOOK after", outcome.outcome, outcome.message)

def pytest_rehearsal_report(config, report):
    print("HOOK report", report["schema"], report["verdict"], len(report["checks"]))
"""


@pytest.mark.parametrize("veto", [None, "staging is shared today"])
def test_hooks_around_the_rollback_and_the_report(
    pytester: pytest.Pytester, tiny_staging: tuple[TinyStaging, str], veto: str | None
) -> None:
    _, url = tiny_staging
    write_rollback_script(pytester.path, "rollback.sh", "echo ran\n")
    write_config(pytester, QUIET_CHECKS + "rollback: {command: ./rollback.sh}\n")
    pytester.makeconftest(HOOKS_CONFTEST.format(veto=veto))
    result = pytester.runpytest(f"--staging-url={url}", "-s")
    assert result.ret == 0
    if veto is None:
        result.stdout.fnmatch_lines(
            ["*HOOK before [[]'./rollback.sh'[]]", "*HOOK after passed *", "*HOOK report * ready 1"]
        )
    else:
        result.stdout.fnmatch_lines(
            [
                "*HOOK before [[]'./rollback.sh'[]]",
                "*HOOK after skipped vetoed by a plugin: staging is shared today",
                "*HOOK report pytest-rehearsal/report@1 incomplete 1",
            ]
        )


def test_sigterm_to_the_controller_stops_the_workers_and_skips_the_rollback(
    pytester: pytest.Pytester, tiny_staging: tuple[TinyStaging, str]
) -> None:
    _, url = tiny_staging
    log = counting_rollback(pytester)
    worker_pids = pytester.path / "workers"
    pytester.makepyfile(
        f"""
        import os, time, pytest

        @pytest.mark.parametrize("n", range(4))
        def test_slow(staging, n):
            with open({str(worker_pids)!r}, "a") as handle:
                handle.write(f"{{os.getpid()}}\\n")
            for _ in range(300):  # keeps talking to staging until stopped
                staging.get("/health")
                time.sleep(0.1)
        """
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            f"--staging-url={url}",
            "-n",
            "2",
            "-p",
            "no:cacheprovider",
            "--rehearsal-report=r.json",
        ],
        cwd=pytester.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if worker_pids.exists() and len(worker_pids.read_text().split()) >= 2:
                break
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
    assert proc.returncode == pytest.ExitCode.INTERRUPTED
    assert not log.exists()
    assert survivors(read_pids(worker_pids), within=10) == []
    assert load_report(pytester.path / "r.json")["interrupted"] is True
