"""Hook specifications of pytest-rehearsal, added with ``pytest_addhooks``.

Implement them in a ``conftest.py`` or a plugin. All of them run on the controller only
(in a plain run, the one pytest process; under xdist, the process that starts the workers).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .config import RollbackConfig
    from .release import RollbackRecord

hookspec = pytest.hookspec


@hookspec(firstresult=True)
def pytest_rehearsal_before_rollback(
    config: pytest.Config, rollback: RollbackConfig, command: tuple[str, ...]
) -> str | None:
    """Called once, after every check has finished, just before the rollback command runs.

    Return a reason (a non-empty string) to veto the rollback: it is then not run, reported
    ``skipped`` with that reason, and the verdict is at best ``incomplete``. Return ``None``
    to let it run. The first non-``None`` answer wins.

    :param config: The pytest config object.
    :param rollback: The ``rollback`` section of the configuration.
    :param command: The argv that is about to run (``--rollback-command`` applied).

    Use in conftest plugins: yes.
    """


@hookspec
def pytest_rehearsal_after_rollback(config: pytest.Config, outcome: RollbackRecord) -> None:
    """Called once with the outcome of the rollback (also when it failed or was skipped).

    :param config: The pytest config object.
    :param outcome: What happened: ``outcome.outcome`` is ``passed``, ``failed`` or
        ``skipped``; ``outcome.message`` says why.

    Use in conftest plugins: yes.
    """


@hookspec
def pytest_rehearsal_report(config: pytest.Config, report: dict[str, Any]) -> None:
    """Called once at the end of the session with the final report.

    *report* is the document written by ``--rehearsal-report`` (schema
    ``pytest-rehearsal/report@1``), whether or not that option was given: a plugin can send
    it to a chat channel or a deployment tracker. Do not modify it.

    :param config: The pytest config object.
    :param report: The report as plain JSON-compatible data; secrets are already masked.

    Use in conftest plugins: yes.
    """
