"""The release lifecycle at the API level: the example service on loopback, real scripts.

Staging is the example app (``examples/staging_app``) serving a release root made with the
real ``examples/deploy.sh`` (current 1.5.0, previous 1.4.2); the fetcher is an httpx client,
as the plugin's probe client is. Times are kept short (``within`` of a second or two, the
watch every 100 ms).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from plugin_helpers import write_rollback_script
from pytest_rehearsal.config import RehearsalConfig, RollbackConfig, VerifyConfig
from pytest_rehearsal.config_loader import parse_config
from pytest_rehearsal.lifecycle import rehearse_deploy, rehearse_rollback
from pytest_rehearsal.lifecycle_steps import (
    NO_COMMAND_MESSAGE,
    NOT_ANSWERED_MESSAGE,
    RETRY_SAFE,
    RETRY_UNSAFE,
    Fetch,
    FetchResult,
)
from pytest_rehearsal.redact import Redactor
from pytest_rehearsal.release import DeployRecord, RollbackRecord, expected_result
from servers import DEPLOY_SCRIPT, StagingAppFactory, run_deploy

NO_SECRETS = Redactor()


def current(release_root: Path) -> str:
    return (release_root / "current").readlink().name


def make_fetch(client: httpx.Client) -> Fetch:
    """GET a path on staging as the lifecycle expects: never raises, elapsed measured."""

    def fetch(path: str) -> FetchResult:
        started = time.monotonic()
        try:
            response = client.get(path)
        except httpx.HTTPError as exc:
            return FetchResult(
                None, b"", f"{type(exc).__name__}: {exc}", time.monotonic() - started
            )
        return FetchResult(response.status_code, response.content, None, time.monotonic() - started)

    return fetch


@pytest.fixture
def fetch_from() -> Iterator[Callable[[str], Fetch]]:
    """``fetch_from(url)``: a fetcher on *url* (a short timeout; clients closed after the test)."""
    clients: list[httpx.Client] = []

    def make(url: str) -> Fetch:
        client = httpx.Client(base_url=url, timeout=2.0)
        clients.append(client)
        return make_fetch(client)

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def fetch(example_url: str, fetch_from: Callable[[str], Fetch]) -> Fetch:
    """A fetcher on the good example app serving this test's release root."""
    return fetch_from(example_url)


def config_for(
    tmp_path: Path,
    release_root: Path,
    rollback: str = "",
    *,
    verify: str = "{path: /health, track: [version], within: 2s}",
    restore: str = "['{deploy}', 'deploy', '${{RELEASE}}']",
    top: str = "",
    watch: str = "{interval: 100ms}",
    environ: dict[str, str] | None = None,
) -> RehearsalConfig:
    """A rehearsal.yaml around the real deploy.sh, through the real loader."""
    command = f"['{DEPLOY_SCRIPT}', 'rollback']"
    restore_line = f"  restore: {restore.format(deploy=DEPLOY_SCRIPT)}\n" if restore else ""
    text = (
        f"{top}"
        "rollback:\n"
        f"  command: {command}\n"
        f"  env: {{STAGING_RELEASE_ROOT: '{release_root}'}}\n"
        "  timeout: 10s\n"
        f"  verify: {verify}\n"
        f"{restore_line}"
        f"  watch: {watch}\n"
        f"{rollback}"
    )
    return parse_config(text, tmp_path / "rehearsal.yaml", environ or {"RELEASE": "1.5.0"})


def rollback(
    config: RehearsalConfig, fetch: Fetch, **kwargs: object
) -> tuple[RollbackRecord, list[str]]:
    lines: list[str] = []
    options: dict[str, object] = {
        "command_override": None,
        "fetch": fetch,
        "redactor": NO_SECRETS,
        "say": lines.append,
        "deploy": None,
    }
    options.update(kwargs)
    record = rehearse_rollback(config, **options)  # type: ignore[arg-type]
    return record, lines


def steps(record: RollbackRecord | DeployRecord) -> list[tuple[str, str]]:
    return [(step.step, step.outcome) for step in record.steps]


# ------------------------------------------------------------------------------------------
# the whole lifecycle passing


def test_a_real_rollback_goes_back_restores_and_reports_its_figures(
    tmp_path: Path, release_root: Path, fetch: Fetch
) -> None:
    config = config_for(tmp_path, release_root, "  owner: '@oncall'\n  note: 'symlink flips'\n")
    record, lines = rollback(config, fetch)
    assert (record.outcome, record.phase, record.exit_code) == ("passed", "done", 0), record.message
    assert steps(record) == [
        ("baseline", "passed"),
        ("preflight", "passed"),
        ("command", "passed"),
        ("verify", "passed"),
        ("restore", "passed"),
        ("restore_verify", "passed"),
    ]
    assert current(release_root) == "1.5.0"  # left as it was found
    assert record.baseline is not None
    assert record.baseline.tracked == {"version": "1.5.0"}
    assert record.reached is not None
    assert record.reached.tracked == {"version": "1.4.2"}
    assert record.restored is not None
    assert record.restored.tracked == {"version": "1.5.0"}
    assert record.notes == ()
    recovery = record.recovery
    assert recovery is not None
    assert recovery.watch is not None
    assert recovery.to_previous_s is not None
    assert recovery.to_restored_s is not None
    assert 0 < recovery.to_previous_s < recovery.to_restored_s < record.duration_s
    assert recovery.watch.polls >= 1
    assert recovery.watch.failed == 0
    # Each step starts after the one before it, on one wall-clock time line.
    starts = [step.started_at for step in record.steps]
    assert starts == sorted(starts)
    assert abs(starts[0] - time.time()) < 60

    line = record.summary_line()
    assert line.startswith("rollback passed: previous release (version 1.4.2) after ")
    assert ", restored 1.5.0 after " in line
    assert line.endswith(
        f"; 0 of {recovery.watch.polls} health poll{'s' * (recovery.watch.polls != 1)} failed"
    )

    assert lines[0] == f"rehearsal: rolling back: {DEPLOY_SCRIPT} rollback"
    assert "rollback | rollback: current 1.5.0 -> 1.4.2" in lines
    assert any(line.startswith("rehearsal: verifying: GET /health until") for line in lines)
    assert f"rehearsal: restoring: {DEPLOY_SCRIPT} deploy 1.5.0" in lines
    assert "restore | deploy: current 1.4.2 -> 1.5.0" in lines
    assert lines[-1] == line

    document = json.loads(json.dumps(record.to_json()))
    assert {
        "outcome",
        "command",
        "exit_code",
        "duration_s",
        "message",
        "output_tail",
        "owner",
        "note",
        "phase",
        "baseline",
        "steps",
        "recovery",
    } <= set(document)
    assert document["baseline"] == {"status": 200, "tracked": {"version": "1.5.0"}, "error": None}
    assert set(document["recovery"]["watch"]) == {
        "polls",
        "failed",
        "longest_outage_s",
        "slowest_s",
    }
    assert [s["step"] for s in document["steps"]][2:] == [
        "command",
        "verify",
        "restore",
        "restore_verify",
    ]
    assert (document["owner"], document["note"]) == ("@oncall", "symlink flips")

    props = record.properties()
    assert props["rollback_outcome"] == "passed"
    assert props["rollback_exit_code"] == props["restore_exit_code"] == "0"
    assert props["watch_failed"] == "0"
    assert float(props["rollback_to_previous_s"]) == pytest.approx(recovery.to_previous_s, abs=1e-3)


def test_a_verify_that_proves_nothing_passes_with_a_note(
    tmp_path: Path, release_root: Path, fetch: Fetch
) -> None:
    config = config_for(tmp_path, release_root, verify="{path: /health, within: 2s}")
    record, _ = rollback(config, fetch)
    assert record.outcome == "passed", record.message
    assert len(record.notes) == 1
    assert "not shown to change what staging serves" in record.notes[0]
    assert "(not shown to change what it serves)" in record.summary_line()
    assert "not shown to change" in record.properties()["rollback_notes"]


def test_without_a_restore_staging_is_left_rolled_back_and_the_notes_say_so(
    tmp_path: Path, release_root: Path, fetch: Fetch
) -> None:
    record, _ = rollback(config_for(tmp_path, release_root, restore=""), fetch)
    assert record.outcome == "passed"
    assert current(release_root) == "1.4.2"
    assert record.notes == (
        "no rollback.restore is configured: staging was left on the previous release",
    )
    assert "not restored (no rollback.restore)" in record.summary_line()


# ------------------------------------------------------------------------------------------
# baseline: nothing is rolled back when staging cannot show what it serves


def recording_rollback(directory: Path) -> Path:
    """``rollback.sh`` in *directory*, which only leaves a trace; returns the trace file."""
    trace = directory / "ran.txt"
    write_rollback_script(directory, "rollback.sh", f"echo ran >> {trace}\n")
    return trace


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_a_closed_port_means_the_command_is_never_run(
    tmp_path: Path, release_root: Path, fetch_from: Callable[[str], Fetch]
) -> None:
    trace = recording_rollback(tmp_path)
    record, lines = rollback(
        config_for(tmp_path, release_root),
        fetch_from(f"http://127.0.0.1:{closed_port()}"),
        command_override=(str(tmp_path / "rollback.sh"),),
    )
    assert (record.outcome, record.phase) == ("failed", "baseline")
    assert record.message.startswith(
        NOT_ANSWERED_MESSAGE + ": GET /health expected status 200, got an error: "
    )
    assert "(retrying is safe)" in record.message
    assert steps(record) == [("baseline", "failed")]
    assert not trace.exists()
    assert current(release_root) == "1.5.0"
    assert record.recovery is None
    assert record.notes == ()
    assert lines == [record.summary_line()]  # nothing started
    assert record.summary_line().startswith("rollback failed at baseline: staging did not answer")


def test_staging_that_went_down_before_the_rollback_is_not_rolled_back(
    tmp_path: Path,
    release_root: Path,
    staging_app_factory: StagingAppFactory,
    fetch_from: Callable[[str], Fetch],
) -> None:
    # Healthy during the checks, then its release vanishes: /health answers 503.
    url = staging_app_factory()
    fetch = fetch_from(url)
    assert fetch("/health").status == 200
    (release_root / "current").unlink()
    record, _ = rollback(config_for(tmp_path, release_root), fetch)
    assert (record.outcome, record.phase) == ("failed", "baseline")
    assert record.message.startswith(NOT_ANSWERED_MESSAGE)
    assert "got 503 " in record.message
    assert not (release_root / "current").exists()  # the rollback never ran
    assert (release_root / "previous").read_text().strip() == "1.4.2"


def test_a_baseline_that_already_meets_expect_json_cannot_tell_the_releases_apart(
    tmp_path: Path, release_root: Path, fetch: Fetch
) -> None:
    config = config_for(
        tmp_path, release_root, verify="{path: /health, expect_json: {ok: true}, within: 2s}"
    )
    record, _ = rollback(config, fetch)
    assert (record.outcome, record.phase) == ("failed", "baseline")
    assert "cannot tell the releases apart" in record.message
    assert record.message.endswith("nothing was rolled back (retrying is safe)")
    assert current(release_root) == "1.5.0"
    assert (release_root / "previous").read_text().strip() == "1.4.2"


def test_a_tracked_field_staging_does_not_serve_stops_before_the_rollback(
    tmp_path: Path, release_root: Path, fetch: Fetch
) -> None:
    config = config_for(
        tmp_path, release_root, verify="{path: /health, track: [verison], within: 2s}"
    )
    record, _ = rollback(config, fetch)
    assert (record.outcome, record.phase) == ("failed", "baseline")
    assert record.message.startswith("GET /health has no verison to track (verify.track)")
    assert '"version": "1.5.0"' in record.message
    assert current(release_root) == "1.5.0"


def test_a_verify_path_that_is_not_found_stops_before_the_rollback(
    tmp_path: Path, release_root: Path, fetch: Fetch
) -> None:
    config = config_for(
        tmp_path, release_root, verify="{path: /healthz, track: [version], within: 2s}"
    )
    record, _ = rollback(config, fetch)
    assert (record.outcome, record.phase) == ("failed", "baseline")
    assert "with 404 " in record.message
    assert "is verify.path right?" in record.message


# ------------------------------------------------------------------------------------------
# verify never met, restore, restore verify


def test_a_verify_never_met_still_restores(
    tmp_path: Path, release_root: Path, fetch: Fetch
) -> None:
    config = config_for(
        tmp_path,
        release_root,
        verify="{path: /health, expect_json: {version: '9.9.9'}, within: 1s}",
    )
    record, lines = rollback(config, fetch)
    assert (record.outcome, record.phase) == ("failed", "verify")
    assert steps(record)[2:] == [
        ("command", "passed"),
        ("verify", "failed"),
        ("restore", "passed"),
        ("restore_verify", "passed"),
    ]
    assert current(release_root) == "1.5.0"
    first, *rest = record.message.split("\n")
    assert first.startswith(
        "verification not met within 1 s: GET /health expected status 200 with JSON containing "
        '{"version": "9.9.9"}; last seen 200 {"ok": true, "version": "1.4.2"}'
    )
    assert "GET /health serves version 1.5.0 again, as before the rollback, after 1 poll" in rest
    assert record.recovery is not None
    assert record.recovery.to_previous_s is None
    assert record.recovery.to_restored_s is not None
    assert any("waiting for" not in line for line in lines)


def test_with_restore_after_verified_a_failed_verify_leaves_staging_rolled_back(
    tmp_path: Path, release_root: Path, fetch: Fetch
) -> None:
    config = config_for(
        tmp_path,
        release_root,
        "  restore_after: verified\n",
        verify="{path: /health, expect_json: {version: '9.9.9'}, within: 1s}",
    )
    record, lines = rollback(config, fetch)
    assert (record.outcome, record.phase) == ("failed", "verify")
    assert [step for step, _ in steps(record)] == ["baseline", "preflight", "command", "verify"]
    assert current(release_root) == "1.4.2"
    assert not any(line.startswith("rehearsal: restoring") for line in lines)
    note = (
        "the restore was not run (restore_after: verified): staging may be left on the "
        "previous release; check what it serves"
    )
    assert record.notes == (note,)
    assert record.message.endswith(note)


def test_a_restore_that_exits_0_but_leaves_the_old_version_fails_its_verify(
    tmp_path: Path, release_root: Path, fetch: Fetch
) -> None:
    config = config_for(
        tmp_path,
        release_root,
        restore="['{deploy}', 'status']",  # exits 0, changes nothing
        verify="{path: /health, track: [version], within: 1s}",
    )
    record, _ = rollback(config, fetch)
    assert (record.outcome, record.phase) == ("failed", "restore_verify")
    assert record.message.startswith(
        "restore not verified within 1 s: after the restore, GET /health serves version 1.4.2; "
        "expected version 1.5.0, as before the rollback"
    )
    assert current(release_root) == "1.4.2"
    assert "the restore did not bring staging back" in record.notes[-1]
    assert record.restored is None
    assert record.summary_line().startswith(
        "rollback failed at restore_verify: restore not verified"
    )


def test_a_failed_command_skips_the_verify_but_still_restores(
    tmp_path: Path, release_root: Path, fetch: Fetch
) -> None:
    write_rollback_script(tmp_path, "rollback.sh", "echo 'half done'\nexit 3\n")
    record, _ = rollback(
        config_for(tmp_path, release_root), fetch, command_override=(str(tmp_path / "rollback.sh"),)
    )
    assert (record.outcome, record.phase, record.exit_code) == ("failed", "command", 3)
    assert [step for step, _ in steps(record)][2:] == ["command", "restore", "restore_verify"]
    assert record.message.startswith(
        f"rollback command `{tmp_path / 'rollback.sh'}` exited with status 3"
    )
    assert "    half done" in record.message
    assert record.output_tail == "half done"
    assert record.properties()["rollback_exit_code"] == "3"


def test_a_restore_that_cannot_start_stops_everything_before_the_rollback(
    tmp_path: Path, release_root: Path, fetch: Fetch
) -> None:
    config = config_for(tmp_path, release_root, restore="['./roll-forward.sh']")
    record, _ = rollback(config, fetch)
    assert (record.outcome, record.phase) == ("failed", "preflight")
    assert record.message.startswith("restore command './roll-forward.sh' not found")
    assert record.message.endswith("; nothing was run (retrying is safe)")
    assert current(release_root) == "1.5.0"


def deleted_when_said(script: Path, said: str, lines: list[str]) -> Callable[[str], None]:
    """A *say* that deletes *script* on the line starting with *said*: after its preflight
    passed, right before it is started (a real race, made certain)."""

    def say(line: str) -> None:
        lines.append(line)
        if line.startswith(said):
            script.unlink()

    return say


def test_a_rollback_command_gone_after_preflight_did_not_run_and_is_safe_to_retry(
    tmp_path: Path, release_root: Path, fetch: Fetch
) -> None:
    script = write_rollback_script(tmp_path, "rollback.sh", "echo rolled back\n")
    lines: list[str] = []
    record, _ = rollback(
        config_for(tmp_path, release_root),
        fetch,
        command_override=(str(script),),
        say=deleted_when_said(script, "rehearsal: rolling back:", lines),
    )
    assert (record.outcome, record.phase) == ("failed", "command")
    # It never started: no verify, no restore, nothing measured, and staging untouched.
    assert steps(record) == [("baseline", "passed"), ("preflight", "passed"), ("command", "failed")]
    assert record.message.startswith(f"rollback command '{script}' not found (looked in ")
    assert record.message.splitlines()[0].endswith(f"; it did not run ({RETRY_SAFE})")
    assert RETRY_UNSAFE not in record.message
    assert record.recovery is None
    assert current(release_root) == "1.5.0"
    assert not any(line.startswith("rehearsal: verifying") for line in lines)


def test_a_deploy_gone_after_preflight_did_not_run_and_is_safe_to_retry(
    tmp_path: Path, release_root: Path, fetch: Fetch
) -> None:
    script = write_rollback_script(tmp_path, "deploy.sh", "echo deployed\n")
    config = deploy_config(tmp_path, release_root, [str(script)])
    lines: list[str] = []
    record = rehearse_deploy(
        config,
        fetch=fetch,
        redactor=NO_SECRETS,
        say=deleted_when_said(script, "rehearsal: deploying:", lines),
    )
    assert record.outcome == "failed"
    assert steps(record)[-1] == ("deploy", "failed")
    assert record.message.startswith(f"deploy command '{script}' not found (looked in ")
    assert record.message.endswith(f"; it did not run ({RETRY_SAFE})")


def test_a_restore_gone_after_preflight_leaves_staging_rolled_back_and_says_so(
    tmp_path: Path, release_root: Path, fetch: Fetch
) -> None:
    restore = write_rollback_script(tmp_path, "restore.sh", "echo restored\n")
    config = config_for(tmp_path, release_root, restore=f"['{restore}']")
    lines: list[str] = []
    record, _ = rollback(
        config, fetch, say=deleted_when_said(restore, "rehearsal: restoring:", lines)
    )
    assert (record.outcome, record.phase) == ("failed", "restore")
    assert steps(record)[-1] == ("restore", "failed")
    first, *notes = record.message.splitlines()
    assert first.startswith(f"restore command '{restore}' not found (looked in ")
    assert first.endswith(f"; it did not run ({RETRY_UNSAFE})")
    assert notes[-1] == (
        "the restore could not be started: staging was left on the previous release; "
        "check what it serves"
    )
    assert current(release_root) == "1.4.2"  # the rollback command did run


# ------------------------------------------------------------------------------------------
# watch and budgets


def outage_rollback(directory: Path, release_root: Path) -> tuple[str, ...]:
    """A rollback that takes the release away for a second (/health answers 503 meanwhile)."""
    write_rollback_script(
        directory,
        "rollback.sh",
        f"""\
        mv {release_root}/current {release_root}/current.off
        sleep 1
        mv {release_root}/current.off {release_root}/current
        exec {DEPLOY_SCRIPT} rollback
        """,
    )
    return (str(directory / "rollback.sh"),)


def test_a_rollback_that_takes_health_down_is_seen_by_the_watch(
    tmp_path: Path, release_root: Path, fetch: Fetch
) -> None:
    record, _ = rollback(
        config_for(tmp_path, release_root),
        fetch,
        command_override=outage_rollback(tmp_path, release_root),
    )
    assert record.outcome == "passed", record.message
    watch = record.recovery.watch if record.recovery else None
    assert watch is not None
    assert watch.failed >= 1
    assert 0.5 <= watch.longest_outage_s <= 3.0
    assert f"; {watch.failed} of {watch.polls} health polls failed" in record.summary_line()


def test_max_outage_zero_fails_a_rollback_with_any_failed_poll(
    tmp_path: Path, release_root: Path, fetch: Fetch
) -> None:
    config = config_for(tmp_path, release_root, "  max_outage: 0s\n")
    record, _ = rollback(config, fetch, command_override=outage_rollback(tmp_path, release_root))
    assert (record.outcome, record.phase) == ("failed", "done")
    assert record.message.startswith("staging failed its health check for ")
    assert "in a row during the rollback (" in record.message
    assert record.message.endswith("over max_outage 0 s (retrying is safe: staging was restored)")
    assert current(release_root) == "1.5.0"  # every step ran: only the budget failed
    assert record.summary_line().startswith("rollback failed its budget: staging failed")


def test_max_recovery_names_the_measured_time(
    tmp_path: Path, release_root: Path, fetch: Fetch
) -> None:
    config = config_for(tmp_path, release_root, "  max_recovery: 1ms\n")
    record, _ = rollback(config, fetch)
    assert (record.outcome, record.phase) == ("failed", "done")
    assert record.message.startswith("the rollback reached the previous release after ")
    assert record.message.endswith(
        ", over max_recovery 1 ms (retrying is safe: staging was restored)"
    )


def test_without_the_watch_there_are_no_poll_figures(
    tmp_path: Path, release_root: Path, fetch: Fetch
) -> None:
    off = config_for(tmp_path, release_root, watch="false")
    record, _ = rollback(off, fetch)
    assert record.outcome == "passed"
    assert record.recovery is not None
    assert record.recovery.watch is None
    assert "health poll" not in record.summary_line()


# ------------------------------------------------------------------------------------------
# the deploy, and the rollback after it


def deploy_config(
    tmp_path: Path, release_root: Path, deploy: list[str], **kwargs: str
) -> RehearsalConfig:
    top = f"deploy: {{command: {json.dumps(deploy)}, within: 2s}}\n"
    return config_for(tmp_path, release_root, top=top, **kwargs)


def deploy(config: RehearsalConfig, fetch: Fetch) -> tuple[DeployRecord, list[str]]:
    lines: list[str] = []
    record = rehearse_deploy(config, fetch=fetch, redactor=NO_SECRETS, say=lines.append)
    return record, lines


@pytest.fixture
def old_release(tmp_path: Path) -> Path:
    """A release root with only 1.4.2 deployed: the release under test is not there yet."""
    root = tmp_path / "old-staging"
    root.mkdir()
    run_deploy(root, "deploy", "1.4.2")
    return root


def test_a_deploy_then_its_rollback_return_to_the_release_before_it(
    tmp_path: Path,
    old_release: Path,
    staging_app_factory: StagingAppFactory,
    fetch_from: Callable[[str], Fetch],
) -> None:
    fetch = fetch_from(staging_app_factory(release_root=old_release))
    config = deploy_config(tmp_path, old_release, [str(DEPLOY_SCRIPT), "deploy", "${RELEASE}"])
    record, lines = deploy(config, fetch)
    assert record.outcome == "passed", record.message
    assert steps(record) == [
        ("preflight", "passed"),
        ("baseline", "passed"),
        ("deploy", "passed"),
        ("deploy_health", "passed"),
    ]
    assert record.command == (str(DEPLOY_SCRIPT), "deploy", "1.5.0")
    assert record.previous is not None
    assert record.previous.tracked == {"version": "1.4.2"}
    assert record.deployed is not None
    assert record.deployed.tracked == {"version": "1.5.0"}
    assert record.exit_code == 0
    assert lines[0] == f"rehearsal: deploying: {DEPLOY_SCRIPT} deploy 1.5.0"
    assert "deploy | deploy: current 1.4.2 -> 1.5.0" in lines
    assert lines[-1] == record.summary_line()
    assert record.summary_line().startswith("deploy passed in ")
    assert record.summary_line().endswith(": staging serves version 1.5.0 (before: version 1.4.2)")
    assert record.to_json()["previous"] == {
        "status": 200,
        "tracked": {"version": "1.4.2"},
        "error": None,
    }
    assert record.properties()["deploy_previous"] == "version 1.4.2"

    back, _ = rollback(config, fetch, deploy=record)
    assert back.outcome == "passed", back.message
    assert back.reached is not None
    assert back.reached.tracked == {"version": "1.4.2"}
    assert "version 1.4.2 (the release before the deploy)" in back.steps[3].message
    assert current(old_release) == "1.5.0"


def test_after_a_failed_deploy_the_rollback_has_no_baseline_and_no_restore(
    tmp_path: Path,
    old_release: Path,
    staging_app_factory: StagingAppFactory,
    fetch_from: Callable[[str], Fetch],
) -> None:
    # The deploy switches to 1.5.0, then its migration step fails.
    write_rollback_script(
        tmp_path, "deploy.sh", f'{DEPLOY_SCRIPT} deploy "$1"\necho "migration 42 failed"\nexit 1\n'
    )
    fetch = fetch_from(staging_app_factory(release_root=old_release))
    config = deploy_config(tmp_path, old_release, [str(tmp_path / "deploy.sh"), "${RELEASE}"])
    record, _ = deploy(config, fetch)
    assert (record.outcome, record.exit_code) == ("failed", 1)
    assert steps(record)[-1] == ("deploy", "failed")
    assert record.message.startswith(
        f"deploy command `{tmp_path / 'deploy.sh'} 1.5.0` exited with status 1"
    )
    assert record.output_tail.endswith("migration 42 failed")
    assert record.summary_line().startswith("deploy failed at deploy: deploy command ")
    assert current(old_release) == "1.5.0"

    back, lines = rollback(config, fetch, deploy=record)
    assert back.outcome == "passed", back.message
    assert [step for step, _ in steps(back)] == ["preflight", "command", "verify"]
    assert back.baseline is None
    assert back.reached is not None
    assert back.reached.tracked == {"version": "1.4.2"}
    assert current(old_release) == "1.4.2"  # as production would be left: no restore
    assert not any(line.startswith("rehearsal: restoring") for line in lines)
    assert "the deploy failed" in back.notes[0]


def test_a_failed_deploy_that_changed_nothing_is_not_rolled_back_further(
    tmp_path: Path,
    old_release: Path,
    staging_app_factory: StagingAppFactory,
    fetch_from: Callable[[str], Fetch],
) -> None:
    # The deploy fails before switching anything: staging still serves 1.4.2, and the team's
    # rollback (`deploy.sh rollback`, one release back) would leave it older than found.
    run_deploy(old_release, "deploy", "1.4.1")
    run_deploy(old_release, "deploy", "1.4.2")
    write_rollback_script(tmp_path, "deploy.sh", 'echo "registry unreachable"\nexit 1\n')
    fetch = fetch_from(staging_app_factory(release_root=old_release))
    config = deploy_config(tmp_path, old_release, [str(tmp_path / "deploy.sh"), "${RELEASE}"])
    record, _ = deploy(config, fetch)
    assert record.outcome == "failed"
    assert current(old_release) == "1.4.2"

    override = (str(tmp_path / "rollback.sh"), "--now")  # --rollback-command
    back, lines = rollback(config, fetch, deploy=record, command_override=override)
    assert back.outcome == "skipped"
    assert back.command == override  # what would have run, never the config's
    assert back.expect.startswith(f"`{tmp_path / 'rollback.sh'} --now` exits 0")
    assert back.phase == "baseline"
    assert steps(back) == [("baseline", "passed")]
    assert back.message.startswith(
        "the failed deploy left staging on the release before it (version 1.4.2)"
    )
    assert back.exit_code is None
    assert current(old_release) == "1.4.2"  # the rollback command never ran
    assert lines == [back.summary_line()]


@pytest.mark.parametrize("how", ["missing at preflight", "gone after preflight"])
def test_a_deploy_whose_command_never_started_is_not_rolled_back(
    tmp_path: Path, release_root: Path, fetch: Fetch, how: str
) -> None:
    # Staging serves 1.5.0 with 1.4.2 before it: rolling back after a deploy that changed
    # nothing would leave it on 1.4.2, with no restore after a failed deploy.
    script = tmp_path / "deploy.sh"
    lines: list[str] = []
    say = lines.append
    if how == "gone after preflight":
        write_rollback_script(tmp_path, "deploy.sh", "echo deployed\n")
        say = deleted_when_said(script, "rehearsal: deploying:", lines)
    config = deploy_config(tmp_path, release_root, [str(script)])
    record = rehearse_deploy(config, fetch=fetch, redactor=NO_SECRETS, say=say)
    assert record.outcome == "failed"
    assert not record.command_started

    back, _ = rollback(config, fetch, deploy=record)
    assert back.outcome == "skipped"
    failed_at = "preflight" if how == "missing at preflight" else "deploy"
    assert back.message == (
        f"the deploy failed at {failed_at} before its command ran: staging was not changed, "
        "there is nothing to roll back, and a rollback would go one release further back"
    )
    assert back.steps == ()
    assert current(release_root) == "1.5.0"  # the rollback command never ran


def test_a_deploy_that_never_gets_healthy_fails_at_deploy_health(
    tmp_path: Path,
    old_release: Path,
    staging_app_factory: StagingAppFactory,
    fetch_from: Callable[[str], Fetch],
) -> None:
    fetch = fetch_from(staging_app_factory("unhealthy", release_root=old_release))
    top = "checks: {health: {path: /health, expect_json: {ok: true}}}\n"
    config = config_for(
        tmp_path,
        old_release,
        top=top
        + f"deploy: {{command: ['{DEPLOY_SCRIPT}', 'deploy', '${{RELEASE}}'], within: 1s}}\n",
    )
    record, _ = deploy(config, fetch)
    assert record.outcome == "failed"
    assert steps(record)[-1] == ("deploy_health", "failed")
    assert record.message.startswith(
        "staging did not pass its health check within 1 s after the deploy: GET /health expected "
        'status 200 with JSON containing {"ok": true}; last seen 503 '
    )
    assert record.previous is not None
    assert record.previous.status == 503


def test_a_deploy_that_cannot_start_runs_nothing(
    tmp_path: Path, release_root: Path, fetch: Fetch
) -> None:
    config = deploy_config(tmp_path, release_root, ["./missing-deploy.sh"])
    record, lines = deploy(config, fetch)
    assert record.outcome == "failed"
    assert steps(record) == [("preflight", "failed")]
    assert record.message.startswith("deploy command './missing-deploy.sh' not found")
    assert lines == [record.summary_line()]
    with pytest.raises(ValueError, match="deploy section"):
        deploy(config_for(tmp_path, release_root), fetch)


# ------------------------------------------------------------------------------------------
# interrupts


def test_ctrl_c_during_the_command_fails_interrupted_and_restores_once(
    tmp_path: Path, release_root: Path, fetch: Fetch
) -> None:
    # The command rolls back, then hangs; a SIGTERM turned KeyboardInterrupt (as a cancelled CI
    # job sends, and as the plugin maps it) arrives while it hangs.
    write_rollback_script(
        tmp_path, "rollback.sh", f"{DEPLOY_SCRIPT} rollback\necho started\nsleep 300\n"
    )

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    timers: list[threading.Timer] = []

    def say(line: str) -> None:
        lines.append(line)
        if line == "rollback | started" and not timers:
            timers.append(threading.Timer(0.2, lambda: os.kill(os.getpid(), signal.SIGTERM)))
            timers[0].start()

    lines: list[str] = []
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        record, _ = rollback(
            config_for(tmp_path, release_root),
            fetch,
            command_override=(str(tmp_path / "rollback.sh"),),
            say=say,
        )
        timers[0].join(5)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert (record.outcome, record.phase, record.interrupted) == ("failed", "command", True)
    assert "was interrupted" in record.message
    assert [step for step, _ in steps(record)][2:] == ["command", "restore"]
    assert any(line.startswith("rehearsal: interrupted; restoring once") for line in lines)
    assert current(release_root) == "1.5.0"
    assert record.notes == ("interrupted: the restore ran once more and was not verified",)


def test_ctrl_c_during_the_verify_does_not_propagate(
    tmp_path: Path, release_root: Path, fetch: Fetch
) -> None:
    calls: list[str] = []

    def interrupting(path: str) -> FetchResult:
        calls.append(path)
        if len(calls) > 1:  # the baseline answers; the verify is interrupted
            raise KeyboardInterrupt
        return fetch(path)

    config = config_for(tmp_path, release_root, "  restore_after: verified\n", watch="false")
    record, _ = rollback(config, interrupting)
    assert (record.outcome, record.phase, record.interrupted) == ("failed", "verify", True)
    assert record.message.startswith("interrupted during the verify step")
    assert current(release_root) == "1.4.2"  # restore_after: verified, and it was not verified
    assert "the restore was not run (restore_after: verified)" in record.notes[0]


# ------------------------------------------------------------------------------------------
# polling, without a server: bounds, intervals, progress lines


class FakeTime:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def answers(*versions: str, status: int = 200) -> Fetch:
    """Answers the versions in turn, then keeps answering the last one."""
    seen: list[str] = []

    def fetch(path: str) -> FetchResult:
        version = versions[min(len(seen), len(versions) - 1)]
        seen.append(path)
        return FetchResult(status, json.dumps({"ok": True, "version": version}).encode())

    return fetch


def test_verify_polls_grow_stay_bounded_and_report_progress(tmp_path: Path) -> None:
    write_rollback_script(tmp_path, "rollback.sh", "exit 0\n")
    config = parse_config(
        "rollback: {command: ./rollback.sh, cwd: ., watch: false, "
        "verify: {track: [version], within: 60s}}\n",
        tmp_path / "r.yaml",
    )
    fake = FakeTime()
    record, lines = rollback(config, answers("1.5.0"), clock=fake.clock, sleep=fake.sleep)
    assert (record.outcome, record.phase) == ("failed", "verify")
    assert fake.sleeps[:3] == [0.5, 0.75, 1.125]
    assert max(fake.sleeps) == 2.0
    assert sum(fake.sleeps) <= 60.0
    assert record.verify_polls <= 60 / 0.5 + 1
    progress = [line for line in lines if line.startswith("rehearsal: GET /health: ")]
    assert (
        progress[0] == "rehearsal: GET /health: version 1.5.0, waiting for a change, 4.1 s of 60 s"
    )
    assert 10 <= len(progress) <= 25  # every few seconds, not every poll
    assert record.message.startswith(
        "verification not met within 60 s: GET /health expected status 200 and version other "
        'than 1.5.0; last seen 200 {"ok": true, "version": "1.5.0"}'
    )


def test_verify_polls_stay_bounded_when_the_clock_stands_still(tmp_path: Path) -> None:
    write_rollback_script(tmp_path, "rollback.sh", "exit 0\n")
    calls: list[str] = []

    def fetch(path: str) -> FetchResult:
        calls.append(path)
        if len(calls) == 1:
            return FetchResult(200, b'{"version": "1.5.0"}')
        return FetchResult(None, error="connection refused")

    config = parse_config(
        "rollback: {command: ./rollback.sh, cwd: ., watch: false, "
        "verify: {track: [version], within: 3s}}\n",
        tmp_path / "r.yaml",
    )
    record, _ = rollback(config, fetch, sleep=lambda s: None, clock=lambda: 0.0)
    assert record.phase == "verify"
    assert len(calls) == 1 + 7  # the baseline, then 3 s / 0.5 s + 1 polls
    assert "last seen an error: connection refused" in record.message


def test_a_key_staging_serves_that_the_run_does_not_know_is_masked_too(tmp_path: Path) -> None:
    write_rollback_script(tmp_path, "rollback.sh", "exit 0\n")
    key = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"

    def fetch(path: str) -> FetchResult:
        return FetchResult(200, json.dumps({"version": "1.5.0", "stripe": key}).encode())

    config = parse_config(
        "rollback: {command: ./rollback.sh, cwd: ., watch: false, "
        "verify: {track: [version], within: 1s}}\n",
        tmp_path / "r.yaml",
    )
    fake = FakeTime()
    record, _ = rollback(config, fetch, clock=fake.clock, sleep=fake.sleep)
    assert record.phase == "verify"
    assert key not in record.message
    assert '"stripe": "sk_l…"' in record.message


def test_secrets_staging_serves_are_masked_in_every_field(tmp_path: Path) -> None:
    secret = "s3cr3t-t0ken-value"
    write_rollback_script(tmp_path, "rollback.sh", f"echo 'using {secret}'\n")
    config = parse_config(
        "rollback: {command: ./rollback.sh, cwd: ., watch: false, "
        "verify: {track: [version], within: 1s}}\n",
        tmp_path / "r.yaml",
    )
    fake = FakeTime()
    record, lines = rollback(
        config,
        answers(f"1.5.0-{secret}"),
        redactor=Redactor([secret]),
        clock=fake.clock,
        sleep=fake.sleep,
    )
    text = (
        json.dumps(record.to_json())
        + record.summary_line()
        + "".join(lines)
        + str(record.properties())
    )
    assert secret not in text
    assert "1.5.0-***" in text


# ------------------------------------------------------------------------------------------
# retry advice: every failure says whether running the rehearsal again is safe

#: One failure of each kind: (config, the rollback's or deploy's script, the restore's, a
#: fresh fetch, where it fails, whether a retry is safe). Scripts run in tmp_path.
_ANY = (
    "rollback: {command: ./rollback.sh, cwd: ., watch: false, "
    "verify: {track: [version], within: 1s}"
)
_DEPLOY = "rollback: {cwd: .}\ndeploy: {command: ./deploy.sh, within: 1s}"


def _refused() -> Fetch:
    return lambda path: FetchResult(None, error="connection refused")


def _interrupted_after(answered: int, fetch: Fetch) -> Fetch:
    calls: list[str] = []

    def interrupting(path: str) -> FetchResult:
        calls.append(path)
        if len(calls) > answered:
            raise KeyboardInterrupt
        return fetch(path)

    return interrupting


def _down_while_rolling_back() -> Fetch:
    """/health fails (the watch sees it); the verify path /version goes 1.5.0 -> 1.4.2."""
    versions = answers("1.5.0", "1.4.2")

    def fetch(path: str) -> FetchResult:
        return FetchResult(503, b"down") if path == "/health" else versions(path)

    return fetch


RETRY_CASES: dict[str, tuple[str, str, str | None, Callable[[], Fetch], str, bool]] = {
    "no-command": ("rollback: {cwd: .}", "", None, _refused, "preflight", True),
    "baseline-no-answer": (_ANY + "}", "exit 0", None, _refused, "baseline", True),
    "baseline-status": (
        _ANY + "}",
        "exit 0",
        None,
        lambda: answers("1.5.0", status=404),
        "baseline",
        True,
    ),
    "baseline-untracked": (
        "rollback: {command: ./rollback.sh, cwd: ., verify: {track: [build.sha]}}",
        "exit 0",
        None,
        lambda: answers("1.5.0"),
        "baseline",
        True,
    ),
    "baseline-same": (
        "rollback: {command: ./rollback.sh, cwd: ., verify: {expect_json: {version: '1.5.0'}}}",
        "exit 0",
        None,
        lambda: answers("1.5.0"),
        "baseline",
        True,
    ),
    "interrupted-baseline": (
        _ANY + "}",
        "exit 0",
        None,
        lambda: _interrupted_after(0, answers("1.5.0")),
        "baseline",
        True,
    ),
    "preflight": (_ANY + "}", "", None, lambda: answers("1.5.0"), "preflight", True),
    "command-exit": (_ANY + "}", "exit 3", None, lambda: answers("1.5.0"), "command", False),
    "command-timeout": (
        _ANY + ", timeout: 200ms}",
        "sleep 5",
        None,
        lambda: answers("1.5.0"),
        "command",
        False,
    ),
    "verify": (_ANY + "}", "exit 0", None, lambda: answers("1.5.0"), "verify", False),
    # Staging never changed, or went back: once the restore verify sees it as it was found,
    # a retry is safe whatever failed first.
    "verify-restored": (
        _ANY + ", restore: ./restore.sh}",
        "exit 0",
        "exit 0",
        lambda: answers("1.5.0"),
        "verify",
        True,
    ),
    "command-exit-restored": (
        _ANY + ", restore: ./restore.sh}",
        "exit 3",
        "exit 0",
        lambda: answers("1.5.0"),
        "command",
        True,
    ),
    "interrupted-verify": (
        _ANY + "}",
        "exit 0",
        None,
        lambda: _interrupted_after(1, answers("1.5.0")),
        "verify",
        False,
    ),
    "restore": (
        _ANY + ", restore: ./restore.sh}",
        "exit 0",
        "exit 4",
        lambda: answers("1.5.0", "1.4.2"),
        "restore",
        False,
    ),
    "restore-verify": (
        _ANY + ", restore: ./restore.sh}",
        "exit 0",
        "exit 0",
        lambda: answers("1.5.0", "1.4.2"),
        "restore_verify",
        False,
    ),
    "max-recovery-restored": (
        _ANY + ", restore: ./restore.sh, max_recovery: 1ms}",
        "sleep 0.05",
        "exit 0",
        lambda: answers("1.5.0", "1.4.2", "1.5.0"),
        "done",
        True,
    ),
    "max-outage": (
        "rollback: {command: ./rollback.sh, cwd: ., watch: {interval: 100ms}, max_outage: 0s, "
        "verify: {path: /version, track: [version], within: 1s}}",
        "sleep 0.3",
        None,
        _down_while_rolling_back,
        "done",
        False,
    ),
    "deploy-preflight": (_DEPLOY, "", None, _refused, "preflight", True),
    "deploy-exit": (_DEPLOY, "exit 1", None, _refused, "deploy", False),
    "deploy-health": (
        _DEPLOY,
        "exit 0",
        None,
        lambda: answers("1.5.0", status=503),
        "deploy_health",
        False,
    ),
    "deploy-interrupted": (
        _DEPLOY,
        "exit 0",
        None,
        lambda: _interrupted_after(0, answers("1.5.0")),
        "interrupted",
        False,
    ),
}


@pytest.mark.parametrize("case", list(RETRY_CASES))
def test_every_failure_says_whether_retrying_is_safe(tmp_path: Path, case: str) -> None:
    config_text, script, restore, new_fetch, where, safe = RETRY_CASES[case]
    fetch = new_fetch()
    deploying = "deploy:" in config_text
    if script:
        write_rollback_script(tmp_path, "deploy.sh" if deploying else "rollback.sh", script)
    if restore:
        write_rollback_script(tmp_path, "restore.sh", restore)
    config = parse_config(config_text + "\n", tmp_path / "rehearsal.yaml")
    fake = FakeTime()
    # A fake clock lets verify and health polls run out at once; budgets need the real one.
    clocks = {} if where in ("command", "done") else {"clock": fake.clock, "sleep": fake.sleep}
    record: RollbackRecord | DeployRecord
    if deploying:
        record = rehearse_deploy(config, fetch=fetch, redactor=NO_SECRETS, say=print, **clocks)
        failed_at = record.failed_step or ("interrupted" if record.interrupted else None)
    else:
        record, _ = rollback(config, fetch, **clocks)
        failed_at = record.phase
    assert (record.outcome, failed_at) == ("failed", where), record.message
    advice = RETRY_SAFE if safe else RETRY_UNSAFE
    first_line = record.message.split("\n", 1)[0]
    assert advice in first_line, record.message  # so every summary line carries it too
    assert advice in record.summary_line()
    if safe:
        assert RETRY_UNSAFE not in record.message
    for step in record.steps:
        if step.outcome == "failed":
            assert RETRY_SAFE in step.message or RETRY_UNSAFE in step.message, step.message


# ------------------------------------------------------------------------------------------
# no command, skipped, expected text


def test_no_command_fails_with_the_contract_message_without_touching_staging(
    tmp_path: Path,
) -> None:
    def untouchable(path: str) -> FetchResult:
        raise AssertionError(f"no request expected, got GET {path}")

    record, _ = rollback(RehearsalConfig(), untouchable)
    assert (record.outcome, record.phase, record.message) == (
        "failed",
        "preflight",
        NO_COMMAND_MESSAGE,
    )
    assert record.expect.startswith("a configured rollback command exits 0 within 2 min")


def test_skipped_for_no_rollback() -> None:
    config = RollbackConfig(command=("./deploy.sh", "rollback"), owner="@ops", note="n")
    record = RollbackRecord.skipped("--no-rollback was given", config, config.command)
    assert (record.outcome, record.command, record.owner) == (
        "skipped",
        ("./deploy.sh", "rollback"),
        "@ops",
    )
    assert record.properties()["rollback_outcome"] == "skipped"
    assert record.summary_line() == "rollback skipped: --no-rollback was given"
    assert record.to_json()["recovery"] is None


def test_expected_text_is_generated_from_the_config() -> None:
    config = RollbackConfig(
        command=("./deploy.sh", "rollback"),
        timeout=120.0,
        verify=VerifyConfig(expect_json={"ok": True}, track=("version",)),
        restore=("./deploy.sh", "deploy", "1.5.0"),
    )
    assert expected_result(config) == (
        "`./deploy.sh rollback` exits 0 within 2 min, then GET /health answers status 200 with "
        'JSON containing {"ok": true} with version changed within 60 s, then the restore '
        "`./deploy.sh deploy 1.5.0` exits 0 and staging answers as before the rollback"
    )
    explicit = RollbackConfig(command=("x",), expect="staging is on 1.4.2 again")
    assert RollbackRecord.skipped("r", explicit, ("x",)).expect == "staging is on 1.4.2 again"


def test_a_skipped_rollback_names_the_command_that_would_have_run() -> None:
    config = RollbackConfig(command=("./deploy.sh", "rollback"))
    record = RollbackRecord.skipped("vetoed", config, ("./other.sh", "--fast"))
    assert record.command == ("./other.sh", "--fast")
    assert record.expect.startswith("`./other.sh --fast` exits 0")
    assert record.properties()["rollback_command"] == "./other.sh --fast"
    nothing = RollbackRecord.skipped("r", RollbackConfig(), None)
    assert nothing.command == ()
    assert nothing.expect.startswith("a configured rollback command exits 0")
