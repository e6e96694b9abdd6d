"""The release lifecycle inside a pytest run: the deploy before the checks, the rollback item after.

pytest glue over :mod:`.lifecycle` (the steps themselves) and :mod:`.release` (their
records). One object per process, registered as a plugin by the engine:

- on the controller, :meth:`ReleaseRun.deploy` runs the real deploy before any check; after
  a failed one every rehearsal test is skipped, on the xdist workers too (they learn of it
  through a file whose path each gets in its ``workerinput``);
- :meth:`ReleaseRun.decide` says, once every test has run, whether the rollback is to run at
  all (collection errors, ``--no-rollback``, a plugin's veto); the ``rehearsal::rollback``
  item then asks :meth:`preflight` in its setup and :meth:`rehearse` in its call.
"""

from __future__ import annotations

import shlex
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .items import ROLLBACK_NODEID, RehearsalItem, RollbackItem
from .live import LiveLines
from .redact import Redactor
from .settings import Settings
from .text import plural

if TYPE_CHECKING:
    # The records, the lifecycle and the timeline are imported by the controller, when it
    # uses them: a worker needs none of them.
    from .checks._base import Probe, Reply
    from .lifecycle_steps import FetchResult
    from .markdown import Phase
    from .release import DeployRecord, RollbackRecord, StepRecord

__all__ = ["DEPLOY_FLAG_KEY", "ReleaseRun", "describe_collection_errors"]

#: In an xdist worker's ``workerinput``: the file whose existence says the deploy failed.
DEPLOY_FLAG_KEY = "rehearsal_deploy_failed"


class ReleaseRun:
    """The deploy and the rollback of one pytest run, and what they left for the reports."""

    def __init__(
        self,
        config: pytest.Config,
        settings: Settings,
        redact: Redactor,
        send: Callable[[Probe], Reply],
        live: LiveLines,
    ) -> None:
        self._config = config
        self._settings = settings
        self._redact = redact
        self._send = send
        self._live = live
        self.is_controller = not hasattr(config, "workerinput")
        self.deploy_record: DeployRecord | None = None
        self.rollback_record: RollbackRecord | None = None
        self.interrupted = False  # Ctrl-C or SIGTERM during the deploy or the rollback
        self._deploy_reached = False  # deploy() was called: the run got as far as the deploy
        self._deploy_failure: str | None = None
        #: The team's rehearsal tests this process skipped because the deploy failed.
        self.skipped_after_deploy: set[str] = set()
        self._skip_rollback: str | None = None
        # Under xdist: where the controller tells the workers that the deploy failed.
        self._deploy_flag: Path | None = None
        if not self.is_controller:
            flag = config.workerinput.get(DEPLOY_FLAG_KEY)  # type: ignore[attr-defined]
            self._deploy_flag = Path(flag) if flag else None
        self.rollback_problem = self._rollback_preflight() if self.is_controller else None
        self.deploy_problem = self._deploy_preflight() if self.is_controller else None

    def stop(self) -> None:
        if self.is_controller and self._deploy_flag is not None:
            shutil.rmtree(self._deploy_flag.parent, ignore_errors=True)

    # -- the deploy ------------------------------------------------------------------------

    def deploy(self, rollback_selected: bool, collection_errors: Sequence[str] = ()) -> bool:
        """The real deploy, when configured and its rollback will run; whether the checks
        may start. Called once every test is collected (*collection_errors*: those found).
        Raises :class:`KeyboardInterrupt` when it was interrupted."""
        self._deploy_reached = True
        settings = self._settings
        if settings.config.deploy is None:
            return True
        held_back = self.deploy_held_back(rollback_selected, collection_errors)
        if held_back is not None:
            if not settings.no_rollback:  # the header already says --no-rollback
                self._live(f"rehearsal: deploy not run: {held_back}")
            return True
        from .lifecycle import rehearse_deploy

        record = rehearse_deploy(
            settings.config, fetch=self._fetch, redactor=self._redact, say=self._live
        )
        self.deploy_record = record
        if record.interrupted:
            self.interrupted = True
            raise KeyboardInterrupt("interrupted during the deploy")
        if record.outcome == "failed":
            self._deploy_failure = self._redact(f"deploy failed: {record.message.splitlines()[0]}")
            if self._deploy_flag is not None:
                self._deploy_flag.write_text(self._deploy_failure, encoding="utf-8")
            return False
        return True

    def deploy_held_back(
        self, rollback_selected: bool, collection_errors: Sequence[str] = ()
    ) -> str | None:
        """Why the configured deploy is not to run (``None``: it runs).

        A deploy that nothing rolls back would leave staging on the new release: under
        --no-rollback, with rehearsal::rollback deselected (-k health), after a collection
        error (--continue-on-collection-errors runs the tests, never the rollback), or
        with a rollback already known not to start (the header said why), it is not run.
        """
        settings = self._settings
        if settings.no_rollback:
            return "--no-rollback was given"
        if not rollback_selected:
            return "rehearsal::rollback is not selected"
        if collection_errors:
            return f"the rollback will not start ({describe_collection_errors(collection_errors)})"
        if not settings.rollback_command:
            return "the rollback cannot start (no rollback command is configured)"
        if self.rollback_problem:
            return f"the rollback cannot start ({self.rollback_problem})"
        return None

    @property
    def deploy_failure(self) -> str | None:
        """Why the rehearsal tests are skipped: the deploy failed (``None``: it did not)."""
        return self._deploy_failure

    @property
    def deploy_reached(self) -> bool:
        """The run got as far as the deploy (whether it then ran or was held back)."""
        return self._deploy_reached

    @property
    def deploy_not_rehearsed(self) -> bool:
        """A deploy is configured and did not run."""
        return self._settings.config.deploy is not None and self.deploy_record is None

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """xdist: each worker learns where to look for a failed deploy (a file)."""
        if self._settings.config.deploy is None:
            return
        if self._deploy_flag is None:
            self._deploy_flag = Path(tempfile.mkdtemp(prefix="rehearsal-")) / "deploy-failed"
        node.workerinput[DEPLOY_FLAG_KEY] = str(self._deploy_flag)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        """After a failed deploy the team's rehearsal tests are skipped, as the checks are."""
        if isinstance(item, (RehearsalItem, RollbackItem)):
            return
        if item.get_closest_marker("rehearsal") is None:
            return
        reason = self._deploy_failure
        if reason is None and self._deploy_flag is not None and self._deploy_flag.exists():
            reason = self._deploy_flag.read_text(encoding="utf-8")
        if reason is not None:
            self.skipped_after_deploy.add(item.nodeid)
            pytest.skip(reason)

    # -- the rollback ----------------------------------------------------------------------

    def item_metadata(self) -> RollbackRecord:
        """What the rollback item shows before it runs: owner, expected result, note."""
        return self._skipped("not run yet")

    def decide(self, collection_errors: Sequence[str]) -> None:
        """Once every test has run: whether the rollback is to run at all."""
        self._skip_rollback = self._reason_not_to_roll_back(collection_errors)
        if self._skip_rollback is not None:
            self._done(self._skipped(self._skip_rollback))

    def preflight(self) -> str | None:
        """The rollback item's setup: skips it when it is not to run; why it cannot start."""
        if self._skip_rollback is not None:
            pytest.skip(self._redact(self._skip_rollback))
        if not self._settings.rollback_command or self._rollback_preflight() is not None:
            # Nothing is run: the rehearsal stops at its first step and says why.
            record = self._run()
            self._done(record)
            self._live.resume_progress(ROLLBACK_NODEID)
            return self._redact(record.message)
        return None

    def rehearse(self, item: RollbackItem) -> None:
        """The rollback item's call: run the rollback for real; fail the item when it failed."""
        record = self._run()
        self._done(record)
        self._live.resume_progress(ROLLBACK_NODEID)
        item.user_properties.extend(record.properties().items())
        if record.outcome == "failed":
            pytest.fail(self._redact(record.message), pytrace=False)
        if record.outcome == "skipped":  # a failed deploy left nothing to roll back
            pytest.skip(self._redact(record.message))

    def final_rollback(self, reason: str) -> RollbackRecord:
        """The rollback's record for the reports (*reason*: why, if it never ran)."""
        if self.rollback_record is not None:
            return self.rollback_record
        return self._skipped(reason)

    def phases(self) -> tuple[list[Phase], list[Phase]]:
        """The timeline's bars of the deploy and of the rollback."""
        deploy = self.deploy_record.steps if self.deploy_record is not None else ()
        rollback = self.rollback_record.steps if self.rollback_record is not None else ()
        return [_phase("Deploy", step) for step in deploy], [
            _phase("Rollback", step) for step in rollback
        ]

    def header(self) -> str:
        """``deploy <command> · rollback <command>`` for pytest's header, with what will fail."""
        settings = self._settings
        deploy = ""
        if settings.config.deploy is not None:
            if settings.no_rollback:
                deploy = "deploy not rehearsed (--no-rollback) · "
            else:
                deploy = f"deploy {shlex.join(settings.config.deploy.command)}"
                if self.deploy_problem:
                    deploy += f" (WILL FAIL: {self.deploy_problem})"
                deploy += " · "
        if settings.no_rollback:
            rollback = "not rehearsed (--no-rollback)"
        elif settings.rollback_command is None:
            rollback = "NONE CONFIGURED (the rehearsal will be blocked)"
        else:
            rollback = " ".join(settings.rollback_command)
            if self.rollback_problem:
                rollback += f" (WILL FAIL: {self.rollback_problem})"
        return f"{deploy}rollback {rollback}"

    def _skipped(self, reason: str) -> RollbackRecord:
        """A rollback not rehearsed, naming the command that would have run."""
        settings = self._settings
        from .release import RollbackRecord

        return RollbackRecord.skipped(reason, settings.config.rollback, settings.rollback_command)

    def _done(self, record: RollbackRecord) -> None:
        self.rollback_record = record
        if record.interrupted:
            self.interrupted = True
        self._config.hook.pytest_rehearsal_after_rollback(config=self._config, outcome=record)

    def _reason_not_to_roll_back(self, collection_errors: Sequence[str]) -> str | None:
        settings = self._settings
        if collection_errors:
            return f"not started: {describe_collection_errors(collection_errors)}"
        if settings.no_rollback:
            return "--no-rollback was given"
        if settings.config.deploy is not None and not self._deploy_reached:
            # Under xdist the deploy waits for every worker's collection: workers that crashed
            # or a run stopped before it leave staging on the release it was found on, and
            # a rollback from there would take it one release further back.
            return "not started: the run stopped before the deploy; nothing was deployed"
        command = settings.rollback_command
        if command:
            veto = self._config.hook.pytest_rehearsal_before_rollback(
                config=self._config, rollback=settings.config.rollback, command=command
            )
            if veto:
                return f"vetoed by a plugin: {veto}"
        return None

    def _run(self) -> RollbackRecord:
        from .lifecycle import rehearse_rollback

        settings = self._settings
        return rehearse_rollback(
            settings.config,
            command_override=settings.rollback_command,
            fetch=self._fetch,
            redactor=self._redact,
            say=self._live,
            deploy=self.deploy_record,
        )

    def _fetch(self, path: str) -> FetchResult:
        """One GET for the lifecycle (thread-safe: the watch polls beside the verify)."""
        from .checks._base import Probe
        from .lifecycle_steps import FetchResult

        reply = self._send(Probe("GET", path))
        return FetchResult(reply.status, reply.body, reply.error, reply.elapsed)

    def _rollback_preflight(self) -> str | None:
        """What already stands in the way of the rollback (the header says it at start-up)."""
        command = self._settings.rollback_command
        if command is None or self._settings.no_rollback:
            return None
        from .command import preflight  # only a run that will roll back needs the runner

        rollback = self._settings.config.rollback
        problem = preflight(command, rollback.cwd, env=rollback.env)
        if problem is None and rollback.restore:
            problem = preflight(
                rollback.restore, rollback.cwd, env=rollback.env, label="restore command"
            )
        return problem

    def _deploy_preflight(self) -> str | None:
        """What stands in the way of the deploy command (the header says it at start-up)."""
        deploy = self._settings.config.deploy
        if deploy is None or self._settings.no_rollback:
            return None
        from .command import preflight

        rollback = self._settings.config.rollback
        return preflight(deploy.command, rollback.cwd, env=rollback.env, label="deploy command")


def describe_collection_errors(errors: Sequence[str]) -> str:
    """``2 collection errors (test_a.py, test_b.py)``: the first three named."""
    return f"{plural(len(errors), 'collection error')} ({', '.join(errors[:3])})"


def _phase(section: str, step: StepRecord) -> Phase:
    from .markdown import Phase

    return Phase(section, step.step, step.started_at, step.duration_s, step.outcome)
