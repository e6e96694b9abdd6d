"""pytest glue: options, marker, fixtures and activation. Kept thin and cheap to import.

pytest imports this module on every run of every project that installs the plugin, so it
imports only the standard library and pytest. The engine (:mod:`pytest_rehearsal.session` in the
controller, :mod:`pytest_rehearsal.engine` in an xdist worker; they bring yaml, and httpx
and tenacity when staging is reached) is imported only when a staging URL is given; it
builds itself (:meth:`~pytest_rehearsal.engine.ProcessEngine.start`), and this module only
registers it.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from .markers import MARKER_HELP, marker_problem

if TYPE_CHECKING:
    import httpx

    from .config import RehearsalConfig
    from .engine import ProcessEngine

DORMANT_REASON = "no staging URL (pass --staging-url)"
#: Where the active rehearsal's engine lives; absent while the plugin is dormant.
ENGINE_KEY = pytest.StashKey["ProcessEngine"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rehearsal", "staging rehearsal (pytest-rehearsal)")
    group.addoption(
        "--staging-url",
        dest="staging_url",
        metavar="URL",
        help="Staging URL to rehearse the release against; the plugin is dormant without one "
        "(also env STAGING_URL, or staging_url: in the config file)",
    )
    group.addoption(
        "--rehearsal-config",
        dest="rehearsal_config",
        metavar="PATH",
        help="Rehearsal config file (default: rehearsal.yaml in the rootdir, if it exists)",
    )
    group.addoption(
        "--rollback-command",
        dest="rollback_command",
        metavar="CMD",
        help="Rollback command to rehearse, overriding rollback.command (split like a shell, "
        "never run by one)",
    )
    group.addoption(
        "--no-rollback",
        dest="no_rollback",
        action="store_true",
        default=False,
        help="Run the checklist only (no deploy, no rollback); the verdict is then at best "
        "'incomplete'",
    )
    group.addoption(
        "--staging-wait",
        dest="staging_wait",
        metavar="DURATION",
        help="Before any check, poll the health check until it passes or DURATION runs out "
        "(default: 0, no waiting)",
    )
    group.addoption(
        "--staging-timeout",
        dest="staging_timeout",
        metavar="DURATION",
        help="Timeout of each request to staging (default: 10s)",
    )
    group.addoption(
        "--staging-ca-bundle",
        dest="staging_ca_bundle",
        metavar="PATH",
        help="PEM file of the CA that signed staging's certificate (verification stays on)",
    )
    group.addoption(
        "--rehearsal-report",
        dest="rehearsal_report",
        metavar="PATH",
        help="Write the JSON report (schema pytest-rehearsal/report@1) to PATH, atomically",
    )
    group.addoption(
        "--rehearsal-summary",
        dest="rehearsal_summary",
        metavar="PATH",
        help="Write a Markdown summary to PATH (also appended to $GITHUB_STEP_SUMMARY when set)",
    )
    group.addoption(
        "--rehearsal-plan",
        dest="rehearsal_plan",
        action="store_true",
        default=False,
        help="Print what the rehearsal would do (each check's requests, the commands with their "
        "cwd and timeouts, the verify plan) and exit 0, sending no request and running no command",
    )
    group.addoption(
        "--rehearsal-init",
        dest="rehearsal_init",
        action="store_true",
        default=False,
        help="Write a commented starter rehearsal.yaml in the rootdir (never overwriting one) "
        "and exit without running tests",
    )
    parser.addini(
        "rehearsal_config",
        help="Rehearsal config file, relative to the rootdir (default: rehearsal.yaml)",
        default=None,
    )


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    if config.option.rehearsal_plan:
        from .cli import print_plan

        return print_plan(config)
    if not config.option.rehearsal_init:
        return None
    from .starter import describe_next_steps, write_starter_config

    try:
        path = write_starter_config(config.rootpath)
    except FileExistsError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return int(pytest.ExitCode.USAGE_ERROR)
    print(describe_next_steps(path), end="")
    return int(pytest.ExitCode.OK)


@pytest.hookimpl
def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from . import hooks

    pluginmanager.add_hookspecs(hooks)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    from .activation import find_config_file, rehearsal_requested
    from .errors import ConfigError

    option = config.option
    try:
        config_file = find_config_file(
            option.rehearsal_config,
            config.getini("rehearsal_config"),
            config.rootpath,
            config.invocation_params.dir,
        )
    except ConfigError as exc:
        if rehearsal_requested(option.staging_url, os.environ, None):
            from .outputs import usage_error

            raise usage_error(config, str(exc)) from None
        raise pytest.UsageError(str(exc)) from None
    if not rehearsal_requested(option.staging_url, os.environ, config_file):
        return
    from ._loading import load_own_modules_plainly

    config.add_cleanup(load_own_modules_plainly())
    with collector_paused():
        # Only now, with a rehearsal ahead, is yaml imported (httpx when staging is reached).
        engine_class: type[ProcessEngine]
        if hasattr(config, "workerinput"):  # an xdist worker runs the team's tests only
            from .engine import ProcessEngine as engine_class
        else:
            from .session import RehearsalSession as engine_class
        engine = engine_class.start(config, config_file)
    if engine is not None:
        config.stash[ENGINE_KEY] = engine
        config.pluginmanager.register(engine, "rehearsal-session")


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for the ``with`` block, as it was after.

    Building the engine allocates some 20 000 objects (its modules, the schema, the checks)
    that all live for the whole run: collecting meanwhile frees nothing, yet it cost a full
    collection, 20-30 ms of a 0.4 s rehearsal. Only the engine's construction is paused,
    before any test runs; a collector the team switched off stays off.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def pytest_unconfigure(config: pytest.Config) -> None:
    engine = _engine(config)
    if engine is not None:
        engine.stop()
        config.pluginmanager.unregister(engine)
        del config.stash[ENGINE_KEY]


def pytest_report_header(config: pytest.Config) -> str | None:
    engine = _engine(config)
    return engine.header_line() if engine is not None else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _engine(config) is not None:
        return  # the engine validates the marker itself, and runs what it marks
    # A skip marker (rather than pytest.skip in a hook) reports each test at its own location.
    skip = pytest.mark.skip(reason=DORMANT_REASON)
    for item in items:
        problem = marker_problem(item)
        if problem is not None:
            raise pytest.UsageError(problem)
        if item.get_closest_marker("rehearsal") is not None:
            item.add_marker(skip)


def _engine(config: pytest.Config) -> ProcessEngine | None:
    return config.stash.get(ENGINE_KEY, None)


def _require_engine(request: pytest.FixtureRequest) -> ProcessEngine:
    engine = _engine(request.config)
    if engine is None:
        pytest.skip(DORMANT_REASON)
    return engine


@pytest.fixture(scope="session")
def staging_url(request: pytest.FixtureRequest) -> str:
    """The staging URL under rehearsal (skips the test when no rehearsal is active)."""
    return _require_engine(request).settings.staging_url


@pytest.fixture(scope="session")
def staging(request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    """An ``httpx.Client`` on the staging URL: auth from the environment, the rehearsal's
    timeouts, and retries of idempotent requests on transient failures."""
    with _require_engine(request).staging_client() as client:
        yield client


@pytest.fixture(scope="session")
def rehearsal_config(request: pytest.FixtureRequest) -> RehearsalConfig:
    """The parsed rehearsal configuration (``rehearsal.yaml``)."""
    return _require_engine(request).settings.config
