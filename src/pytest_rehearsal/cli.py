"""What the engine reads of pytest's command line, and the plugin's own ``--rehearsal-plan``.

pytest glue: the options as the user wrote them become :class:`~.settings.Settings`
(:mod:`.settings` decides which source wins), and every argument the run was given is
collected for the check that no secret is on it.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

import pytest

from .errors import ConfigError
from .settings import Options, Settings, resolve

__all__ = ["command_line", "print_plan", "settings_of"]


def settings_of(config: pytest.Config, config_file: Path | None) -> Settings | None:
    """The run's settings from its options, environment and file (``None``: dormant)."""
    option = config.option
    options = Options(
        staging_url=option.staging_url,
        rollback_command=option.rollback_command,
        no_rollback=option.no_rollback,
        staging_wait=option.staging_wait,
        staging_timeout=option.staging_timeout,
        report_path=option.rehearsal_report,
        summary_path=option.rehearsal_summary,
        ca_bundle=option.staging_ca_bundle,
    )
    return resolve(options, os.environ, config_file, config.invocation_params.dir)


def print_plan(config: pytest.Config) -> int:
    """``--rehearsal-plan``: print what the rehearsal would do; the exit status (0, or 4)."""
    from .activation import find_config_file
    from .plan import render_plan

    try:
        config_file = find_config_file(
            config.option.rehearsal_config,
            config.getini("rehearsal_config"),
            config.rootpath,
            config.invocation_params.dir,
        )
        settings = settings_of(config, config_file)
    except ConfigError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return int(pytest.ExitCode.USAGE_ERROR)
    if settings is None:
        print("rehearsal plan: no staging URL (pass --staging-url): nothing would be rehearsed")
        return int(pytest.ExitCode.OK)
    rehearsal = settings.config
    names = [rehearsal.auth.token_env] if rehearsal.auth and rehearsal.auth.token_env else []
    if rehearsal.checks.permissions:
        names += [role.token_env for role in rehearsal.checks.permissions.roles.values()]
    from .checks import build_checks  # the plan only: a worker never needs the checks

    checks = build_checks(rehearsal, settings.staging_url)
    print(render_plan(settings, checks, names), end="")
    return int(pytest.ExitCode.OK)


def command_line(config: pytest.Config) -> list[str]:
    """Every argument the run was given: argv, the ini's addopts and ``PYTEST_ADDOPTS``."""
    arguments = [*config.invocation_params.args, *config.getini("addopts")]
    try:
        arguments += shlex.split(os.environ.get("PYTEST_ADDOPTS", ""))
    except ValueError:  # pytest itself refuses an unparsable PYTEST_ADDOPTS
        arguments.append(os.environ.get("PYTEST_ADDOPTS", ""))
    return arguments
