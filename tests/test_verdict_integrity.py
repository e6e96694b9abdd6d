"""Issue 11: a verdict that cannot be fooled (collection errors, deselection, xdist, usage
errors) and secrets masked wherever a test report or warning reaches output.

Every run is a real pytester run against a small staging double on loopback, with a real
rollback script that records whether it ran.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from plugin_helpers import TinyStaging, load_report, write_config, write_rollback_script

# Three built-in checks (health, headers[/], secrets[responses] off) keep runs small.
CHECKS = """\
checks:
  health: {path: /health}
  headers: false
  secrets: {paths: [/.env, /.git/config], scan_bodies: false}
"""
CONFIGURED = ["rehearsal::health", "rehearsal::secrets[/.env]", "rehearsal::secrets[/.git/config]"]


def _project(pytester: pytest.Pytester, extra: str = "") -> Path:
    """Config with CHECKS and a rollback that appends to ``rolled-back.log``; its log."""
    log = pytester.path / "rolled-back.log"
    write_rollback_script(pytester.path, "rollback.sh", f"echo rolled back >> {log}\n")
    write_config(pytester, CHECKS + "rollback: {command: ./rollback.sh}\n" + extra)
    return log


def _run(pytester: pytest.Pytester, url: str, *args: str) -> tuple[pytest.RunResult, Any]:
    result = pytester.runpytest_subprocess(
        f"--staging-url={url}", "--rehearsal-report=report.json", "-p", "no:cacheprovider", *args
    )
    report_path = pytester.path / "report.json"
    return result, load_report(report_path) if report_path.exists() else None


# -- 1. collection errors ---------------------------------------------------------------------


def _deploying_project(pytester: pytest.Pytester) -> tuple[Path, Path]:
    """``_project`` with a deploy that appends to ``deployed.log``: the rollback's log, its log."""
    deployed = pytester.path / "deployed.log"
    write_rollback_script(pytester.path, "deploy.sh", f"echo deployed >> {deployed}\n")
    return _project(pytester, "deploy: {command: ./deploy.sh, within: 5s}\n"), deployed


@pytest.mark.parametrize(
    ("args", "exit_status"),
    [
        ((), 2),
        (("--continue-on-collection-errors",), 1),
        (("-n", "2"), 1),
        (("-n", "2", "--continue-on-collection-errors"), 1),
    ],
    ids=["plain", "continue-on-collection-errors", "xdist", "xdist-continue"],
)
def test_a_collection_error_blocks_and_neither_the_deploy_nor_the_rollback_runs(
    pytester: pytest.Pytester,
    tiny_staging: tuple[TinyStaging, str],
    args: tuple[str, ...],
    exit_status: int,
) -> None:
    # Under xdist the deploy once ran while the workers were still collecting; and a deploy
    # that the rollback will not follow (a collection error) would leave staging on the
    # new release with its rollback never rehearsed.
    _, url = tiny_staging
    rolled_back, deployed = _deploying_project(pytester)
    pytester.makepyfile(test_broken="def test_broken(:\n    pass\n")
    result, report = _run(pytester, url, *args)
    assert result.ret == exit_status, result.stdout.str()
    assert not deployed.exists(), "the deploy ran despite a collection error"
    assert not rolled_back.exists(), "the rollback ran despite a collection error"
    assert report["verdict"] == "blocked"
    assert report["collection_errors"] == ["test_broken.py"]
    assert report["deploy"] is None
    assert report["not_rehearsed"][:1] == ["deploy"]
    assert report["rollback"]["outcome"] == "skipped"
    assert report["rollback"]["message"] == "not started: 1 collection error (test_broken.py)"
    result.stdout.fnmatch_lines(
        ["rehearsal: deploy not run: the rollback will not start (1 collection error*"]
    )


def _run_with_workers_crashing_while_collecting(
    pytester: pytest.Pytester, url: str
) -> tuple[pytest.RunResult, Any]:
    """A run under ``-n 2`` whose workers die while collecting, and are not replaced."""
    pytester.makeconftest(
        """
        import os

        def pytest_collection_modifyitems(config):
            if hasattr(config, "workerinput"):
                os._exit(3)
        """
    )
    pytester.makepyfile(test_team="def test_team():\n    pass\n")
    return _run(pytester, url, "-n", "2", "--max-worker-restart=0")


def test_workers_that_crash_while_collecting_leave_staging_untouched(
    pytester: pytest.Pytester, tiny_staging: tuple[TinyStaging, str]
) -> None:
    # The deploy waits for the workers' collection; when none completes, neither the deploy
    # nor a rollback (from the release staging was found on) may run.
    _, url = tiny_staging
    rolled_back, deployed = _deploying_project(pytester)
    result, report = _run_with_workers_crashing_while_collecting(pytester, url)
    assert not deployed.exists(), "the deploy ran before any worker had collected"
    assert not rolled_back.exists(), "the rollback ran though nothing was deployed"
    assert report["verdict"] != "ready", result.stdout.str()
    assert report["not_rehearsed"][:1] == ["deploy"]
    assert report["rollback"]["message"] == (
        "not started: 1 collection error (2 of 2 xdist workers never finished collecting)"
    )


def test_workers_that_crash_while_collecting_block_the_verdict_without_a_deploy_too(
    pytester: pytest.Pytester, tiny_staging: tuple[TinyStaging, str]
) -> None:
    # The team's tests never ran: a gate that said "ready" would promote an untested release.
    _, url = tiny_staging
    rolled_back = _project(pytester)
    result, report = _run_with_workers_crashing_while_collecting(pytester, url)
    assert result.ret == 1, result.stdout.str()
    assert report["verdict"] == "blocked"
    assert report["collection_errors"] == ["2 of 2 xdist workers never finished collecting"]
    assert not rolled_back.exists()
    result.stdout.fnmatch_lines(["*blocked*2 of 2 xdist workers never finished collecting*"])


def test_workers_that_collect_different_tests_hold_the_deploy_back(
    pytester: pytest.Pytester, tiny_staging: tuple[TinyStaging, str]
) -> None:
    # xdist reports differing collections as a collection error only after the last worker
    # has collected, and then runs no test: the deploy must not have run before.
    _, url = tiny_staging
    rolled_back, deployed = _deploying_project(pytester)
    pytester.makepyfile(
        test_random="""
        import random
        import pytest

        @pytest.mark.parametrize("n", [random.random()])
        def test_random(n):
            pass
        """
    )
    result, report = _run(pytester, url, "-n", "2")
    assert result.ret == 1, result.stdout.str()
    assert "Different tests were collected" in result.stdout.str()
    assert not deployed.exists(), "the deploy ran though the workers' collections differ"
    assert not rolled_back.exists()
    assert report["verdict"] == "blocked"
    assert report["not_rehearsed"][:1] == ["deploy"]


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["plain", "xdist"])
def test_a_deploy_runs_once_before_the_team_s_tests_and_the_rollback_once_after(
    pytester: pytest.Pytester, tiny_staging: tuple[TinyStaging, str], xdist: tuple[str, ...]
) -> None:
    _, url = tiny_staging
    log = pytester.path / "events.log"
    write_rollback_script(pytester.path, "deploy.sh", f"echo deploy >> {log}\n")
    write_rollback_script(pytester.path, "rollback.sh", f"echo rollback >> {log}\n")
    write_config(
        pytester,
        CHECKS + "deploy: {command: ./deploy.sh, within: 5s}\nrollback: {command: ./rollback.sh}\n",
    )
    pytester.makepyfile(
        test_team=f"""
        import pytest

        @pytest.mark.parametrize("n", range(4))
        def test_team(n):
            with open({str(log)!r}, "a") as log:
                log.write("test\\n")
        """
    )
    result, report = _run(pytester, url, *xdist)
    assert result.ret == 0, result.stdout.str()
    assert report["verdict"] == "ready"
    assert log.read_text().splitlines() == ["deploy", *["test"] * 4, "rollback"]


# -- 2. deselection ---------------------------------------------------------------------------


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["plain", "xdist"])
def test_a_deselected_check_makes_the_rehearsal_incomplete_and_is_named(
    pytester: pytest.Pytester, tiny_staging: tuple[TinyStaging, str], xdist: tuple[str, ...]
) -> None:
    _, url = tiny_staging
    log = _project(pytester)
    result, report = _run(
        pytester, url, "-k", "health or rollback", "--rehearsal-summary=s.md", *xdist
    )
    assert result.ret == 0, result.stdout.str()
    assert report["verdict"] == "incomplete"
    assert report["not_rehearsed"] == CONFIGURED[1:]
    result.stdout.fnmatch_lines(
        [
            "*verdict: incomplete — 1 of 3 built-in checks selected, 1 of 1 checks passed, "
            "rollback passed*",
            "not rehearsed: rehearsal::secrets[/.env], rehearsal::secrets[/.git/config]",
        ]
    )
    summary = (pytester.path / "s.md").read_text()
    assert "**Not rehearsed:** `rehearsal::secrets[/.env]`, `rehearsal::secrets[/.git/config]`" in (
        summary
    )
    assert log.read_text() == "rolled back\n"


def test_deselect_and_markers_deselect_checks_and_the_rollback_too(
    pytester: pytest.Pytester, tiny_staging: tuple[TinyStaging, str]
) -> None:
    staging, url = tiny_staging
    log = _project(pytester)
    pytester.makepyfile(test_user="def test_plain():\n    pass\n")
    result, report = _run(pytester, url, "--deselect", "rehearsal::secrets[/.env]")
    assert report["verdict"] == "incomplete"
    assert report["not_rehearsed"] == ["rehearsal::secrets[/.env]"]
    # -m 'not rehearsal' deselects every rehearsal item: nothing of the rehearsal runs.
    staging.requests.clear()
    log.unlink()
    result, report = _run(pytester, url, "-m", "not rehearsal")
    assert result.ret == 0
    assert report["verdict"] == "incomplete"
    assert report["not_rehearsed"] == [*CONFIGURED, "rehearsal::rollback"]
    assert staging.requests == []
    assert not log.exists()


def test_x_stops_the_team_s_tests_but_every_selected_check_and_the_rollback_still_run(
    pytester: pytest.Pytester, tiny_staging: tuple[TinyStaging, str]
) -> None:
    _, url = tiny_staging
    log = _project(pytester)
    pytester.makepyfile(test_a_first="def test_fails():\n    assert False\n")
    result, report = _run(pytester, url, "-x")
    assert result.ret == 1
    assert report["verdict"] == "blocked"
    assert report["not_rehearsed"] == []
    assert {check["id"] for check in report["checks"]} >= set(CONFIGURED)
    verdict = next(line for line in result.outlines if line.startswith("verdict:"))
    assert verdict.startswith("verdict: blocked — 3 of 3 checks passed, 1 other test failed")
    assert log.read_text() == "rolled back\n"


def test_selecting_only_the_rollback_rehearses_it_alone(
    pytester: pytest.Pytester, tiny_staging: tuple[TinyStaging, str]
) -> None:
    staging, url = tiny_staging
    log = _project(pytester)
    listing = pytester.runpytest(f"--staging-url={url}", "--collect-only", "-q")
    listing.stdout.fnmatch_lines([*CONFIGURED, "rehearsal::rollback"])
    result, report = _run(pytester, url, "-k", "rollback", "-rA")
    assert result.ret == 0
    assert report["verdict"] == "incomplete"
    assert report["not_rehearsed"] == CONFIGURED
    assert report["rollback"]["outcome"] == "passed"
    assert log.read_text() == "rolled back\n"
    assert all(path != "/.env" for _, path, _ in staging.requests)  # no check was sent
    result.stdout.fnmatch_lines(["PASSED rehearsal::rollback"])


# -- 4. usage errors leave a report -----------------------------------------------------------


def test_a_usage_error_still_writes_the_named_reports(
    pytester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(pytester, "checks: {helth: {}}\n")
    step_summary = tmp_path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    result = pytester.runpytest(
        "--staging-url=http://127.0.0.1:9",
        "--rehearsal-report=out/r.json",
        "--rehearsal-summary=s.md",
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    report = json.loads((pytester.path / "out/r.json").read_text())
    assert report["verdict"] == "blocked"
    assert "unknown key 'helth'" in report["error"]
    assert report["rollback"] is None
    for summary in (pytester.path / "s.md", step_summary):
        text = summary.read_text()
        assert text.startswith("## ❌ Staging rehearsal: blocked")
        assert "unknown key 'helth'" in text


def test_a_usage_error_does_not_write_over_a_path_that_is_not_a_file(
    pytester: pytest.Pytester,
) -> None:
    (pytester.path / "a-dir").mkdir()
    write_config(pytester, "checks: {helth: {}}\n")
    result = pytester.runpytest("--staging-url=http://127.0.0.1:9", "--rehearsal-report=a-dir")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert list((pytester.path / "a-dir").iterdir()) == []


# -- 12. a token in every place a test report or warning reaches ---------------------------

TOKEN = "tok-id-secret-3a7f9c"
LEAKY_TESTS = """
import os, warnings, pytest

TOKEN = os.environ["STAGING_TOKEN"]

@pytest.mark.rehearsal(owner="@web")
@pytest.mark.parametrize("token", [TOKEN])
def test_with_the_token_in_its_id(token, record_property):
    record_property("seen", f"token={token}")
    warnings.warn(f"deprecated call with {token}")

@pytest.mark.xfail(reason=f"known bug with {TOKEN}")
def test_xfail_naming_the_token():
    assert False
"""
HOOK_CONFTEST = """
import json

def pytest_rehearsal_report(config, report):
    with open("hook.json", "w") as handle:
        json.dump(report, handle)
"""


def test_the_token_is_masked_in_ids_properties_warnings_xfail_reasons_and_hooks(
    pytester: pytest.Pytester,
    tiny_staging: tuple[TinyStaging, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, url = tiny_staging
    monkeypatch.setenv("STAGING_TOKEN", TOKEN)
    _project(pytester, "auth: {token_env: STAGING_TOKEN}\n")
    pytester.makepyfile(test_leaky=LEAKY_TESTS)
    pytester.makeconftest(HOOK_CONFTEST)
    result, report = _run(pytester, url, "-v", "-rA", "--junitxml=junit.xml")
    assert result.ret == 0, result.stdout.str()
    outputs = {
        "stdout": result.stdout.str(),
        "stderr": result.stderr.str(),
        "junit": (pytester.path / "junit.xml").read_text(),
        "report": json.dumps(report),
        "hook": (pytester.path / "hook.json").read_text(),
    }
    leaks = [name for name, text in outputs.items() if TOKEN in text]
    assert not leaks, f"the token leaked into {leaks}"
    assert "test_with_the_token_in_its_id[***]" in outputs["stdout"]
    assert "test_leaky.py::test_with_the_token_in_its_id[***]" in outputs["hook"]
    assert "deprecated call with ***" in outputs["stdout"]
    assert "known bug with ***" in outputs["stdout"]
    assert 'value="token=***"' in outputs["junit"]


def test_a_collection_error_naming_the_token_is_masked(
    pytester: pytest.Pytester,
    tiny_staging: tuple[TinyStaging, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, url = tiny_staging
    monkeypatch.setenv("STAGING_TOKEN", TOKEN)
    _project(pytester, "auth: {token_env: STAGING_TOKEN}\n")
    broken = "import os\nraise RuntimeError('cannot start with ' + os.environ['STAGING_TOKEN'])\n"
    pytester.makepyfile(test_broken=broken)
    result, report = _run(pytester, url)
    assert result.ret == 2
    assert "cannot start with ***" in result.stdout.str()
    assert TOKEN not in result.stdout.str() + json.dumps(report)


# -- 13 (second half). masking never touches the report's own words -------------------------


def test_a_token_that_is_a_word_of_the_report_leaves_the_report_valid(
    pytester: pytest.Pytester,
    tiny_staging: tuple[TinyStaging, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, url = tiny_staging
    monkeypatch.setenv("STAGING_TOKEN", "incomplete")
    _project(pytester, "auth: {token_env: STAGING_TOKEN}\n")
    result, report = _run(pytester, url, "--no-rollback")
    assert result.ret == 0
    assert report["verdict"] == "incomplete"  # a value, not masked as the token
    assert report["rollback"]["outcome"] == "skipped"


# -- 15. a secret in PYTEST_ADDOPTS -----------------------------------------------------------


def test_a_secret_in_pytest_addopts_is_refused_like_one_on_argv(
    pytester: pytest.Pytester,
    tiny_staging: tuple[TinyStaging, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, url = tiny_staging
    log = _project(pytester, "auth: {token_env: STAGING_TOKEN}\n")
    monkeypatch.setenv("STAGING_TOKEN", TOKEN)
    monkeypatch.setenv("PYTEST_ADDOPTS", f"--rollback-command='./rollback.sh {TOKEN}'")
    result = pytester.runpytest_subprocess(f"--staging-url={url}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "a secret value is on the command line" in result.stderr.str()
    assert TOKEN not in result.stdout.str() + result.stderr.str()
    assert not log.exists()
