"""The release lifecycle end to end (issue 12): deploy, checks, rollback, verify, restore.

pytester runs against the example service on loopback, with the real ``examples/deploy.sh``
as the team's deploy, rollback and restore. Before each run staging serves 1.4.2 (1.5.0 is
the release under test, ``RELEASE``); the deploy is the rehearsal's own first step.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from plugin_helpers import load_report, write_config, write_rollback_script
from servers import DEPLOY_SCRIPT, run_deploy

LIFECYCLE = """\
checks: {{headers: false, secrets: false}}
deploy: {{command: ['{deploy}', 'deploy', '${{RELEASE}}'], timeout: 30s, within: 10s}}
rollback:
  command: ['{deploy}', 'rollback']
  env: {{STAGING_RELEASE_ROOT: '{root}'}}
  timeout: 30s
  verify: {{path: /health, track: [version], within: 10s}}
  restore: ['{deploy}', 'deploy', '${{RELEASE}}']
  watch: {{interval: 100ms}}
"""
USER_CHECK = """
import pytest

@pytest.mark.rehearsal(owner="@web")
def test_health_reports_the_release(staging):
    assert staging.get("/health").json()["version"] == "1.5.0"
"""


@pytest.fixture
def staging_on_the_previous_release(release_root: Path, example_url: str) -> str:
    """The example app on 1.4.2 (1.5.0 is deployed by the rehearsal itself)."""
    run_deploy(release_root, "rollback")
    return example_url


def _project(pytester: pytest.Pytester, release_root: Path, deploy: Path = DEPLOY_SCRIPT) -> None:
    write_config(pytester, LIFECYCLE.format(deploy=deploy, root=release_root))
    pytester.makepyfile(test_user=USER_CHECK)


def _rehearse(
    pytester: pytest.Pytester, url: str, *args: str
) -> tuple[pytest.RunResult, dict[str, Any]]:
    """A rehearsal of *url* in a subprocess, with its JSON report."""
    result = pytester.runpytest_subprocess(
        f"--staging-url={url}", "--rehearsal-report=r.json", "-p", "no:cacheprovider", *args
    )
    return result, load_report(pytester.path / "r.json")


def _junit_properties(path: Path) -> dict[str, str]:
    import xml.etree.ElementTree as ElementTree

    tree = ElementTree.parse(path)
    case = next(c for c in tree.iter("testcase") if c.get("name") == "rollback")
    return {p.get("name", ""): p.get("value", "") for p in case.iter("property")}


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["plain", "xdist"])
def test_a_full_rehearsal_deploys_checks_rolls_back_and_restores_with_its_figures(
    pytester: pytest.Pytester,
    release_root: Path,
    staging_on_the_previous_release: str,
    monkeypatch: pytest.MonkeyPatch,
    xdist: tuple[str, ...],
) -> None:
    url = staging_on_the_previous_release
    monkeypatch.setenv("RELEASE", "1.5.0")
    _project(pytester, release_root)
    result = pytester.runpytest_subprocess(
        f"--staging-url={url}",
        "--rehearsal-report=r.json",
        "--rehearsal-summary=s.md",
        "--junitxml=junit.xml",
        "-p",
        "no:cacheprovider",
        *xdist,
    )
    assert result.ret == 0, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*deploy | deploy: current 1.4.2 -> 1.5.0*",
            "*rollback | rollback: current 1.5.0 -> 1.4.2*",
            "*restore | deploy: current 1.4.2 -> 1.5.0*",
            "rollback passed: previous release (version 1.4.2) after *, restored 1.5.0 "
            "after *; 0 of * health poll* failed",
        ]
    )
    report = load_report(pytester.path / "r.json")
    assert report["verdict"] == "ready"
    assert report["deploy"]["outcome"] == "passed"
    assert report["deploy"]["previous"]["tracked"] == {"version": "1.4.2"}
    rollback = report["rollback"]
    assert rollback["baseline"]["tracked"] == {"version": "1.5.0"}
    assert [step["step"] for step in rollback["steps"]] == [
        "baseline",
        "preflight",
        "command",
        "verify",
        "restore",
        "restore_verify",
    ]
    assert rollback["recovery"]["to_previous_s"] > 0
    assert rollback["recovery"]["watch"]["failed"] == 0
    user = next(c for c in report["checks"] if c["id"].endswith("test_health_reports_the_release"))
    assert user["outcome"] == "passed"  # the team's test ran after the deploy
    assert (release_root / "current").readlink().name == "1.5.0"  # left as it was found
    properties = _junit_properties(pytester.path / "junit.xml")
    assert float(properties["rollback_to_previous_s"]) > 0
    assert properties["watch_failed"] == "0"
    summary = (pytester.path / "s.md").read_text()
    assert "### Deploy" in summary
    assert "| restore_verify | passed |" in summary
    assert "```mermaid\ngantt" in summary


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["plain", "xdist"])
def test_a_failed_deploy_blocks_skips_the_checks_and_rehearses_the_rollback_as_in_production(
    pytester: pytest.Pytester,
    release_root: Path,
    staging_on_the_previous_release: str,
    monkeypatch: pytest.MonkeyPatch,
    xdist: tuple[str, ...],
) -> None:
    url = staging_on_the_previous_release
    monkeypatch.setenv("RELEASE", "1.5.0")
    broken = pytester.path / "deploy-broken.sh"
    # Deploys, then fails its migration, as a real deploy may; rollback and restore are real.
    broken.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = deploy ]; then {DEPLOY_SCRIPT} deploy "$2"; echo "migration failed" >&2;'
        " exit 7; fi\n"
        f'exec {DEPLOY_SCRIPT} "$@"\n'
    )
    broken.chmod(0o755)
    write_config(
        pytester,
        LIFECYCLE.format(deploy=DEPLOY_SCRIPT, root=release_root).replace(
            f"['{DEPLOY_SCRIPT}', 'deploy', '${{RELEASE}}'], timeout",
            f"['{broken}', 'deploy', '${{RELEASE}}'], timeout",
        ),
    )
    pytester.makepyfile(test_user=USER_CHECK)
    result, report = _rehearse(pytester, url, "-rs", *xdist)
    assert result.ret == 1, result.stdout.str()
    assert report["verdict"] == "blocked"
    assert report["deploy"]["outcome"] == "failed"
    assert "exited with status 7" in report["deploy"]["message"]
    outcomes = {c["id"]: c["outcome"] for c in report["checks"]}
    assert set(outcomes.values()) == {"skipped"}, outcomes  # checks and the team's test
    assert "deploy failed" in json.dumps(report["checks"])
    # The team's test is skipped at its own location, not in the plugin's code.
    result.stdout.fnmatch_lines(["SKIPPED [[]1[]] test_user.py:*: deploy failed: *"])
    assert "release_run.py" not in result.stdout.str()
    assert report["rollback"]["outcome"] == "passed"  # back to 1.4.2, the release before
    assert report["rollback"]["reached"]["tracked"] == {"version": "1.4.2"}
    steps = [step["step"] for step in report["rollback"]["steps"]]
    assert "baseline" not in steps
    assert "restore" not in steps


@pytest.mark.parametrize(
    "selection", [("-k", "health"), ("--no-rollback",)], ids=["rollback-deselected", "no-rollback"]
)
def test_a_deploy_nothing_would_roll_back_is_not_run(
    pytester: pytest.Pytester,
    release_root: Path,
    staging_on_the_previous_release: str,
    monkeypatch: pytest.MonkeyPatch,
    selection: tuple[str, ...],
) -> None:
    monkeypatch.setenv("RELEASE", "1.5.0")
    write_config(pytester, LIFECYCLE.format(deploy=DEPLOY_SCRIPT, root=release_root))
    result, report = _rehearse(pytester, staging_on_the_previous_release, *selection)
    assert result.ret == 0, result.stdout.str()
    assert (release_root / "current").readlink().name == "1.4.2"  # staging as it was found
    assert report["verdict"] == "incomplete"
    assert report["deploy"] is None
    assert report["not_rehearsed"][:1] == ["deploy"]
    assert "rehearsal::rollback" in report["not_rehearsed"]
    if selection == ("-k", "health"):
        result.stdout.fnmatch_lines(
            ["*rehearsal: deploy not run: rehearsal::rollback is not selected*"]
        )


def _rollback_skipped_after_a_failed_deploy(
    pytester: pytest.Pytester, release_root: Path, url: str, deploy: Path
) -> tuple[pytest.RunResult, dict[str, Any]]:
    """A rehearsal (``-rs``) whose deploy command is *deploy*, run with no arguments, which
    must fail the deploy, skip the rollback, and leave staging on 1.4.2 as it was found."""
    config = LIFECYCLE.format(deploy=DEPLOY_SCRIPT, root=release_root)
    config = config.replace(
        f"deploy: {{command: ['{DEPLOY_SCRIPT}', 'deploy', '${{RELEASE}}']",
        f"deploy: {{command: ['{deploy}']",
    )
    write_config(pytester, config)
    result, report = _rehearse(pytester, url, "-rs")
    assert result.ret == 1, result.stdout.str()
    assert (release_root / "current").readlink().name == "1.4.2"  # not one release further
    assert report["verdict"] == "blocked"
    assert report["deploy"]["outcome"] == "failed"
    assert report["rollback"]["outcome"] == "skipped"
    return result, report


def test_a_failed_deploy_that_changed_nothing_shows_the_rollback_skipped(
    pytester: pytest.Pytester,
    release_root: Path,
    staging_on_the_previous_release: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RELEASE", "1.5.0")
    failing = write_rollback_script(pytester.path, "deploy-fails.sh", "echo unreachable\nexit 1\n")
    result, _ = _rollback_skipped_after_a_failed_deploy(
        pytester, release_root, staging_on_the_previous_release, failing
    )
    # Not "PASSED": no command ran.
    result.stdout.fnmatch_lines(
        ["SKIPPED [[]1[]] rehearsal::rollback: the failed deploy left staging on the release*"]
    )


def test_a_deploy_that_cannot_start_leaves_staging_untouched_and_rolls_nothing_back(
    pytester: pytest.Pytester,
    release_root: Path,
    staging_on_the_previous_release: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RELEASE", "1.5.0")
    missing = pytester.path / "no-such-deploy.sh"
    result, report = _rollback_skipped_after_a_failed_deploy(
        pytester, release_root, staging_on_the_previous_release, missing
    )
    assert [step["step"] for step in report["deploy"]["steps"]] == ["preflight"]
    result.stdout.fnmatch_lines(
        [
            "*deploy */no-such-deploy.sh (WILL FAIL: *not found*",
            "SKIPPED [[]1[]] rehearsal::rollback: the deploy failed at preflight before its "
            "command ran: staging was not changed*",
        ]
    )


def test_a_deploy_whose_rollback_cannot_start_is_not_run(
    pytester: pytest.Pytester,
    release_root: Path,
    staging_on_the_previous_release: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RELEASE", "1.5.0")
    config = LIFECYCLE.format(deploy=DEPLOY_SCRIPT, root=release_root)
    missing = pytester.path / "no-such-rollback.sh"
    config = config.replace(f"command: ['{DEPLOY_SCRIPT}', 'rollback']", f"command: ['{missing}']")
    write_config(pytester, config)
    result, report = _rehearse(pytester, staging_on_the_previous_release)
    assert result.ret == 1, result.stdout.str()
    assert (release_root / "current").readlink().name == "1.4.2"  # staging as it was found
    assert report["verdict"] == "blocked"
    assert report["deploy"] is None
    assert report["not_rehearsed"][:1] == ["deploy"]
    assert report["rollback"]["outcome"] == "failed"
    result.stdout.fnmatch_lines(["*rehearsal: deploy not run: the rollback cannot start (*"])


ROLLBACK_ONLY = """\
checks: {{headers: false, secrets: false}}
rollback:
  command: {command}
  env: {{STAGING_RELEASE_ROOT: '{root}'}}
  timeout: 30s
  verify: {verify}
  restore: {restore}
  watch: {{interval: 100ms}}
{extra}"""


def _rollback_project(
    pytester: pytest.Pytester,
    release_root: Path,
    *,
    command: str = f"['{DEPLOY_SCRIPT}', 'rollback']",
    verify: str = "{path: /health, track: [version], within: 1s}",
    restore: str = f"['{DEPLOY_SCRIPT}', 'deploy', '1.5.0']",
    extra: str = "",
) -> None:
    write_config(
        pytester,
        ROLLBACK_ONLY.format(
            command=command, root=release_root, verify=verify, restore=restore, extra=extra
        ),
    )


def _rollback_report(pytester: pytest.Pytester, url: str) -> dict[str, Any]:
    result = pytester.runpytest(
        f"--staging-url={url}", "--rehearsal-report=r.json", "-k", "rollback"
    )
    report = load_report(pytester.path / "r.json")
    assert result.ret == (0 if report["verdict"] != "blocked" else 1), result.stdout.str()
    rollback: dict[str, Any] = report["rollback"]
    return rollback


def _steps(rollback: dict[str, Any]) -> list[str]:
    return [f"{step['step']}:{step['outcome']}" for step in rollback["steps"]]


def test_a_wrong_staging_url_never_touches_staging(
    pytester: pytest.Pytester, release_root: Path
) -> None:
    import socket

    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
    _rollback_project(pytester, release_root)
    rollback = _rollback_report(pytester, f"http://127.0.0.1:{port}")
    assert (rollback["outcome"], rollback["phase"]) == ("failed", "baseline")
    assert rollback["message"].startswith("staging did not answer before the rollback")
    assert _steps(rollback) == ["baseline:failed"]
    assert (release_root / "current").readlink().name == "1.5.0"  # nothing was rolled back


@pytest.mark.parametrize("restore_after", ["always", "verified"])
def test_a_verify_never_met_restores_unless_told_to_restore_only_once_verified(
    pytester: pytest.Pytester, release_root: Path, example_url: str, restore_after: str
) -> None:
    _rollback_project(
        pytester,
        release_root,
        verify="{path: /health, expect_json: {version: '9.9.9'}, within: 1s}",
        extra=f"  restore_after: {restore_after}\n",
    )
    rollback = _rollback_report(pytester, example_url)
    assert (rollback["outcome"], rollback["phase"]) == ("failed", "verify")
    if restore_after == "always":
        assert _steps(rollback)[-2:] == ["restore:passed", "restore_verify:passed"]
        assert (release_root / "current").readlink().name == "1.5.0"
    else:
        assert "restore:passed" not in _steps(rollback)
        assert (release_root / "current").readlink().name == "1.4.2"
        assert "the restore was not run (restore_after: verified)" in rollback["notes"][0]


def test_a_restore_that_leaves_the_old_version_fails_naming_both_versions(
    pytester: pytest.Pytester, release_root: Path, example_url: str
) -> None:
    _rollback_project(pytester, release_root, restore=f"['{DEPLOY_SCRIPT}', 'status']")
    rollback = _rollback_report(pytester, example_url)
    assert (rollback["outcome"], rollback["phase"]) == ("failed", "restore_verify")
    assert "serves version 1.4.2; expected version 1.5.0" in rollback["message"]


def test_an_outage_during_the_rollback_is_measured_and_fails_a_zero_budget(
    pytester: pytest.Pytester, release_root: Path, example_url: str
) -> None:
    outage = pytester.path / "outage.sh"
    outage.write_text(
        "#!/bin/sh\n"
        f"mv {release_root}/current {release_root}/current.off\nsleep 1\n"
        f"mv {release_root}/current.off {release_root}/current\nexec {DEPLOY_SCRIPT} rollback\n"
    )
    outage.chmod(0o755)
    _rollback_project(pytester, release_root, command=f"['{outage}']", extra="  max_outage: 0s\n")
    rollback = _rollback_report(pytester, example_url)
    assert (rollback["outcome"], rollback["phase"]) == ("failed", "done")
    assert rollback["recovery"]["watch"]["failed"] >= 1
    assert rollback["message"].endswith(
        "over max_outage 0 s (retrying is safe: staging was restored)"
    )
