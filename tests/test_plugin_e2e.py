"""End-to-end runs of the plugin through pytester against a real server on 127.0.0.1."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest

from plugin_helpers import (
    QUIET_CHECKS,
    TOKEN,
    TinyStaging,
    counting_rollback,
    load_report,
    write_config,
    write_rollback_script,
)


def _project(pytester: pytest.Pytester, rollback: str = "exit 0", extra: str = "") -> None:
    write_rollback_script(pytester.path, "rollback.sh", f"echo rolling back\n{rollback}\n")
    write_config(
        pytester,
        QUIET_CHECKS + "  health: {path: /health, expect_json: {ok: true}, owner: '@platform', "
        "rollback_note: 'flip the symlink back'}\n"
        "rollback:\n  command: ['./rollback.sh']\n  owner: '@oncall'\n" + extra,
    )


def test_healthy_staging_and_rollback_make_the_release_ready(
    pytester: pytest.Pytester, tiny_staging: tuple[TinyStaging, str]
) -> None:
    _, url = tiny_staging
    _project(pytester)
    result = pytester.runpytest(f"--staging-url={url}", "--rehearsal-report=out/report.json", "-rA")
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            f"rehearsal: {url} · config *rehearsal.yaml · rollback ./rollback.sh",
            "collected 2 items",
            "rehearsal .*",
            "rollback | rolling back",
            "rehearsal .*[[]100%[]]",
            "*staging rehearsal*",
            "PASSED   1 check (-v lists them)",
            "PASSED   rehearsal::rollback  @oncall",
            "*verdict: ready — 1 of 1 checks passed, rollback passed*",
            "PASSED rehearsal::health",
            "PASSED rehearsal::rollback",
        ]
    )
    report = load_report(pytester.path / "out/report.json")
    assert report["schema"] == "pytest-rehearsal/report@1"
    assert report["verdict"] == "ready"
    assert report["staging_url"] == url
    (health,) = report["checks"]
    assert health["id"] == "rehearsal::health"
    assert health["outcome"] == "passed"
    assert health["owner"] == "@platform"
    assert health["rollback_note"] == "flip the symlink back"
    assert report["rollback"]["outcome"] == "passed"
    assert report["rollback"]["exit_code"] == 0
    assert report["rollback"]["command"] == ["./rollback.sh"]
    assert "rolling back" in report["rollback"]["output_tail"]


def test_unhealthy_staging_blocks_the_release_naming_check_owner_and_expectation(
    pytester: pytest.Pytester, tiny_staging: tuple[TinyStaging, str]
) -> None:
    staging, url = tiny_staging
    staging.health_status = 503
    _project(pytester)
    result = pytester.runpytest(f"--staging-url={url}", "--rehearsal-report=report.json")
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            f"GET {url}/health",
            '  expected: status 200 with JSON containing {"ok": true}',
            '  got:      503 Service Unavailable after 3 attempts · {"ok":false,"version":"1.5.0"}',
            "  retry:    safe: GET does not change staging",
            "FAILED   rehearsal::health  @platform",
            '         expected status 200 with JSON containing {"ok": true}, got 503 Service',
            "         Unavailable after 3 attempts",
            "*verdict: blocked — 0 of 1 checks passed, 1 failed, rollback failed*",
        ]
    )
    report = load_report(pytester.path / "report.json")
    assert report["verdict"] == "blocked"
    assert report["checks"][0]["outcome"] == "failed"
    assert "503" in report["checks"][0]["message"]
    # Unhealthy staging is not rolled back: the baseline finds it down first.
    assert report["rollback"]["phase"] == "baseline"
    # 503 is transient: the idempotent GET was retried (retries: 2 by default) before failing,
    # by the check and by the baseline.
    assert staging.requests.count(("GET", "/health", None)) == 3 + 3


def test_a_failing_rollback_blocks_even_when_every_check_passed(
    pytester: pytest.Pytester, tiny_staging: tuple[TinyStaging, str]
) -> None:
    _, url = tiny_staging
    _project(pytester, rollback="echo 'cannot reach the cluster' >&2\nexit 3")
    result = pytester.runpytest(f"--staging-url={url}", "--junitxml=junit.xml", "-rA")
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "rollback | cannot reach the cluster",
            "rehearsal F*[[]100%[]]",
            "rollback command `./rollback.sh` exited with status 3 (retrying is not safe *)",
            "*cannot reach the cluster",
            "*verdict: blocked — 1 of 1 checks passed, rollback failed*",
            "PASSED rehearsal::health",
            "FAILED rehearsal::rollback - *rollback command `./rollback.sh` exited*",
        ]
    )
    junit = (pytester.path / "junit.xml").read_text()
    assert 'name="rollback"' in junit
    assert 'classname="rehearsal"' in junit
    assert "<failure" in junit
    assert 'name="rehearsal_owner" value="@oncall"' in junit


def test_without_a_rollback_command_the_release_is_not_ready(
    pytester: pytest.Pytester, tiny_staging: tuple[TinyStaging, str]
) -> None:
    _, url = tiny_staging
    write_config(pytester, QUIET_CHECKS)
    result = pytester.runpytest(f"--staging-url={url}", "-rA")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*no rollback command is configured*", "*verdict: blocked*"])


def test_no_rollback_gives_an_incomplete_verdict_and_exit_0(
    pytester: pytest.Pytester, tiny_staging: tuple[TinyStaging, str]
) -> None:
    _, url = tiny_staging
    _project(pytester, rollback="exit 9")
    result = pytester.runpytest(f"--staging-url={url}", "--no-rollback", "-rA")
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [
            "rehearsal .s*[[]100%[]]",
            "SKIPPED  rehearsal::rollback  @oncall*",
            "*verdict: incomplete — 1 of 1 checks passed, rollback not rehearsed (--no-rollback*",
            "not rehearsed: rehearsal::rollback",
            "SKIPPED [[]1[]] rehearsal::rollback: --no-rollback was given",
        ]
    )


def test_rollback_command_option_overrides_the_config(
    pytester: pytest.Pytester, tiny_staging: tuple[TinyStaging, str]
) -> None:
    _, url = tiny_staging
    _project(pytester, rollback="exit 5")
    write_rollback_script(pytester.path, "other.sh", "echo other rollback ran\n")
    result = pytester.runpytest(f"--staging-url={url}", "--rollback-command=./other.sh --fast")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*rollback | other rollback ran*"])


@pytest.mark.parametrize("skip", ["--no-rollback", "-k health"])
def test_a_skipped_rollback_names_the_command_given_on_the_command_line(
    pytester: pytest.Pytester, tiny_staging: tuple[TinyStaging, str], skip: str
) -> None:
    _, url = tiny_staging
    _project(pytester)
    result = pytester.runpytest(
        f"--staging-url={url}",
        "--rollback-command=./other.sh --fast",
        "--rehearsal-report=r.json",
        *skip.split(),
    )
    assert result.ret == 0, result.stdout.str()
    rollback = load_report(pytester.path / "r.json")["rollback"]
    assert rollback["outcome"] == "skipped"
    assert rollback["command"] == ["./other.sh", "--fast"]
    assert rollback["expect"].startswith("`./other.sh --fast` exits 0")


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://staging.example.com", "ftp://staging.example.com"),
        ("staging.example.com", "staging.example.com"),
        ("https://", "https://"),
    ],
)
def test_a_bad_url_is_a_usage_error(pytester: pytest.Pytester, url: str, problem: str) -> None:
    result = pytester.runpytest(f"--staging-url={url}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert problem in result.stderr.str()
    assert "--staging-url" in result.stderr.str()


def test_url_from_the_environment_and_from_the_config_file(
    pytester: pytest.Pytester,
    tiny_staging: tuple[TinyStaging, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, url = tiny_staging
    _project(pytester, extra=f"staging_url: {url}\n")
    result = pytester.runpytest("-rA")
    assert result.ret == 0
    result.stdout.fnmatch_lines([f"rehearsal: {url} *", "PASSED rehearsal::health"])
    monkeypatch.setenv("STAGING_URL", url + "/")
    result = pytester.runpytest("-rA", "-p", "no:cacheprovider")
    assert result.ret == 0


def test_production_urls_are_refused_before_any_request(
    pytester: pytest.Pytester, tiny_staging: tuple[TinyStaging, str]
) -> None:
    staging, url = tiny_staging
    _project(pytester, extra="production: ['127\\.0\\.0\\.1']\n")
    result = pytester.runpytest(f"--staging-url={url}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "production" in result.stderr.str()
    assert staging.requests == []


def test_a_typo_in_the_config_names_file_line_and_the_key_meant(
    pytester: pytest.Pytester, tiny_staging: tuple[TinyStaging, str]
) -> None:
    _, url = tiny_staging
    write_config(pytester, "checks:\n  health: {path: /health}\nrollbak:\n  command: ./x\n")
    result = pytester.runpytest(f"--staging-url={url}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "rehearsal.yaml:3" in err
    assert "did you mean 'rollback'" in err


def test_user_checks_carry_their_metadata_into_reports_and_junit(
    pytester: pytest.Pytester,
    tiny_staging: tuple[TinyStaging, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, url = tiny_staging
    monkeypatch.setenv("STAGING_TOKEN", TOKEN)
    _project(pytester, extra="auth: {token_env: STAGING_TOKEN}\n")
    pytester.makepyfile(
        test_user="""
        import pytest

        @pytest.mark.rehearsal(owner="@web", rollback_note="revert the CDN config")
        def test_home(staging, staging_url, rehearsal_config):
            '''The health endpoint reports ok to an authenticated caller.'''
            assert staging_url.startswith("http://127.0.0.1")
            assert rehearsal_config.rollback.owner == "@oncall"
            assert staging.get("/health").json()["ok"] is True

        @pytest.mark.rehearsal(owner="@web", expect="the token is echoed back safely")
        def test_leaky(staging):
            assert staging.get("/echo").json()["you_sent"] == "nope"

        def test_plain():
            pass
        """
    )
    summary = pytester.path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = pytester.runpytest(
        f"--staging-url={url}",
        "--rehearsal-report=report.json",
        "--rehearsal-summary=summary.md",
        "--junitxml=junit.xml",
        "-rA",
        "-l",
    )
    assert result.ret == 1
    report = load_report(pytester.path / "report.json")
    checks = {c["id"]: c for c in report["checks"]}
    assert set(checks) == {
        "rehearsal::health",
        "test_user.py::test_home",
        "test_user.py::test_leaky",
    }
    home = checks["test_user.py::test_home"]
    assert home["outcome"] == "passed"
    assert home["owner"] == "@web"
    assert home["expect"] == "The health endpoint reports ok to an authenticated caller."
    assert home["rollback_note"] == "revert the CDN config"
    assert checks["test_user.py::test_leaky"]["outcome"] == "failed"
    assert checks["test_user.py::test_leaky"]["expect"] == "the token is echoed back safely"
    junit = (pytester.path / "junit.xml").read_text()
    assert 'name="rehearsal_owner" value="@web"' in junit
    markdown = (pytester.path / "summary.md").read_text()
    assert "❌ Staging rehearsal: blocked" in markdown
    assert "`test_user.py::test_leaky`" in markdown
    assert summary.read_text() == markdown
    everything = "\n".join(
        [
            result.stdout.str(),
            result.stderr.str(),
            junit,
            markdown,
            (pytester.path / "report.json").read_text(),
        ]
    )
    assert TOKEN not in everything
    assert "***" in everything


def test_staging_wait_polls_until_healthy(
    pytester: pytest.Pytester, tiny_staging: tuple[TinyStaging, str]
) -> None:
    staging, url = tiny_staging
    staging.health_status = 503
    _project(pytester)

    import threading

    done = threading.Event()

    def recover_after_the_first_poll() -> None:
        # Staging comes up once the first poll has failed: its three attempts got 503.
        while not done.is_set() and len(staging.requests) < 3:
            time.sleep(0.02)
        done.wait(0.3)
        staging.health_status = 200

    flipper = threading.Thread(target=recover_after_the_first_poll, daemon=True)
    flipper.start()
    try:
        result = pytester.runpytest(f"--staging-url={url}", "--staging-wait=20s")
    finally:
        done.set()
        flipper.join(5)
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        ["*waiting up to 20 s for /health*", "*staging not ready (503*", "*staging is up (200*"]
    )


def test_deselecting_checks_with_k_and_m(
    pytester: pytest.Pytester, tiny_staging: tuple[TinyStaging, str]
) -> None:
    _, url = tiny_staging
    _project(pytester)
    pytester.makepyfile(test_user="def test_plain():\n    pass\n")
    result = pytester.runpytest(f"--staging-url={url}", "-m", "not rehearsal", "-rA")
    result.stdout.fnmatch_lines(["PASSED test_user.py::test_plain"])
    assert (
        "rehearsal::health"
        not in result.stdout.str().split("short test summary")[-1].split("staging rehearsal")[0]
    )
    result = pytester.runpytest(f"--staging-url={url}", "-k", "health", "--co", "-q")
    result.stdout.fnmatch_lines(["rehearsal::health", "*1/3 tests collected (2 deselected)*"])


def test_the_checks_first_requests_share_one_connection_pool(
    pytester: pytest.Pytester, tiny_staging: tuple[TinyStaging, str]
) -> None:
    # The checks' first requests start on many threads at once; each used to find no client
    # yet and build its own, leaving pools that were never closed.
    _, url = tiny_staging
    write_config(
        pytester,
        "checks:\n  headers: false\n  health: {path: /health}\n"
        "  secrets: {paths: [/.env, /.git/config, /.git/HEAD, /backup.sql], scan_bodies: false}\n",
    )
    pytester.makeconftest(
        """
        import time

        import pytest_rehearsal.client

        built = []
        make = pytest_rehearsal.client.make_probe_client

        def slow_make(*args):
            built.append(1)
            time.sleep(0.2)  # every other first request arrives meanwhile
            return make(*args)

        pytest_rehearsal.client.make_probe_client = slow_make

        def pytest_sessionfinish(session):
            print(f"CLIENTS BUILT: {len(built)}")
        """
    )
    result = pytester.runpytest_subprocess(f"--staging-url={url}", "--no-rollback", "-s")
    result.assert_outcomes(passed=5, skipped=1)
    result.stdout.fnmatch_lines(["*CLIENTS BUILT: 1*"])


def test_under_xdist_the_rollback_runs_once_after_every_check(
    pytester: pytest.Pytester, tiny_staging: tuple[TinyStaging, str]
) -> None:
    _, url = tiny_staging
    log = counting_rollback(pytester)
    pytester.makepyfile(
        test_many=f"""
        import pytest

        @pytest.mark.rehearsal(owner="@team")
        @pytest.mark.parametrize("n", range(40))
        def test_check(staging, n):
            assert staging.get("/health").status_code == 200
            with open({str(log)!r}, "a") as handle:
                handle.write(f"check {{n}}\\n")
        """
    )
    result = pytester.runpytest_subprocess(
        f"--staging-url={url}", "-n", "4", "-p", "no:cacheprovider", "--junitxml=junit.xml"
    )
    assert result.ret == 0, result.stdout.str()
    events = log.read_text().splitlines()
    assert events.count("rollback") == 1
    assert events[-1] == "rollback"
    assert len(events) == 40 + 1  # every check, then exactly one rollback
    assert 'name="rollback"' in (pytester.path / "junit.xml").read_text()


def test_under_xdist_the_workers_have_the_controller_s_settings_not_a_second_reading(
    pytester: pytest.Pytester, tiny_staging: tuple[TinyStaging, str]
) -> None:
    # The controller hands its settings to each worker: a config file changed once the
    # controller has read it cannot make a worker disagree with the controller.
    _, url = tiny_staging
    write_config(pytester, QUIET_CHECKS + "  health: {path: /health}\n")
    pytester.makeconftest(
        """
        def pytest_configure_node(node):
            with open("rehearsal.yaml", "w") as changed:
                changed.write("checks: {health: {path: /changed}}\\n")
        """
    )
    pytester.makepyfile(
        f"""
        def test_the_health_path(rehearsal_config, staging_url):
            assert rehearsal_config.checks.health.path == "/health"
            assert staging_url == {url!r}
        """
    )
    result = pytester.runpytest_subprocess(f"--staging-url={url}", "--no-rollback", "-n", "2")
    result.assert_outcomes(passed=2, skipped=1)


def test_environment_is_left_clean() -> None:
    assert "STAGING_URL" not in os.environ


@pytest.mark.parametrize("dist", ["load", "worksteal", "loadgroup"])
def test_under_xdist_the_verdict_does_not_depend_on_the_scheduling(
    pytester: pytest.Pytester, shared_app_factory: Any, dist: str
) -> None:
    """Issue 11.3: the built-in checks run on the controller, so the body scan sees every
    reply of the checklist whatever --dist does with the team's tests."""
    url = shared_app_factory("leak-secret")
    write_rollback_script(pytester.path, "rollback.sh", "exit 0\n")
    write_config(
        pytester,
        "checks: {secrets: {paths: [/.env, /.git/config]}}\nrollback: {command: ./rollback.sh}\n",
    )
    pytester.makepyfile(
        test_user="import pytest\n\n@pytest.mark.parametrize('n', range(8))\n"
        "def test_n(n):\n    pass\n"
    )
    result = pytester.runpytest_subprocess(
        f"--staging-url={url}",
        "-n",
        "2",
        f"--dist={dist}",
        "-v",
        "-p",
        "no:cacheprovider",
        "--rehearsal-report=r.json",
    )
    assert result.ret == 1
    on_workers = [
        line for line in result.stdout.lines if line.startswith("[gw") and "rehearsal::" in line
    ]
    assert on_workers == []  # no built-in item went to a worker
    report = load_report(pytester.path / "r.json")
    assert report["verdict"] == "blocked"
    checks = {c["id"]: c for c in report["checks"]}
    assert checks["rehearsal::secrets[responses]"]["outcome"] == "failed"
    assert checks["rehearsal::headers[/]"]["outcome"] == "passed"
    assert sum(c["id"].startswith("test_user.py") for c in report["checks"]) == 0
    assert report["rollback"]["outcome"] == "passed"
    # What a check reports beside its verdict reaches the JSON report (and JUnit properties).
    assert checks["rehearsal::headers[/]"]["properties"]["profile"] == "html"
    assert checks["rehearsal::headers[/]"]["properties"]["asvs"]


def test_a_report_that_cannot_be_written_fails_the_run_clearly(
    pytester: pytest.Pytester, tiny_staging: tuple[TinyStaging, str]
) -> None:
    _, url = tiny_staging
    _project(pytester)
    (pytester.path / "taken").write_text("a file where the report's folder should be")
    result = pytester.runpytest(f"--staging-url={url}", "--rehearsal-report=taken/report.json")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["rehearsal: ERROR: could not write *taken*"])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
