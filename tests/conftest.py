"""Shared fixtures: the example staging app served for real on 127.0.0.1, and its releases.

Scopes at a glance (every server is a real uvicorn on an ephemeral port, so pytester
subprocesses can reach it too; under xdist each worker has its own session):

=========================== ========= ===========================================================
fixture                     scope     value
=========================== ========= ===========================================================
``admin_token``             session   the admin bearer token the example apps accept
``viewer_token``            session   the viewer bearer token the example apps accept
``deploy_script``           session   ``Path`` of ``examples/deploy.sh``
``release_root``            function  a fresh release root: 1.4.2 then 1.5.0 deployed
``staging_app_factory``     function  ``(defects=(), latency=0.0, *, release_root=None,
                                      upload_limit=...) -> url``; servers stop after the test;
                                      each logs to ``<release root>/access.log``
``example_url``             function  URL of the good app serving this test's ``release_root``
``shared_release_root``     session   a release root shared by the session: never deploy to it
``shared_app_factory``      session   like ``staging_app_factory``, cached per arguments for
                                      the whole session: for tests that only read
``example_server``          session   ``ExampleServer(url, release_root)``: the shared good app
``staging_tokens_env``      function  sets ``STAGING_TOKEN``/``VIEWER_TOKEN`` to the tokens
``tiny_staging``            function  ``(TinyStaging, url)``: a minimal staging double whose
                                      health the test can flip (``plugin_helpers``); its
                                      server is the module's, its state reset per test
=========================== ========= ===========================================================

``staging_url`` is deliberately not defined here: it is the plugin's own fixture.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from examples.staging_app import DEFAULT_UPLOAD_LIMIT, create_app

from plugin_helpers import TinyStaging
from servers import (
    DEPLOY_SCRIPT,
    ExampleServer,
    LiveServer,
    StagingAppFactory,
    make_release_root,
    parse_defects,
    serve_asgi,
    stop_all,
)

# Fixed, recognisable test values: a redaction test can search output for them verbatim.
ADMIN_TOKEN = "test-admin-token-5f0c2d8e"
VIEWER_TOKEN = "test-viewer-token-91b7a4c3"


@pytest.fixture(scope="session")
def admin_token() -> str:
    """The admin bearer token every example app started by these fixtures accepts."""
    return ADMIN_TOKEN


@pytest.fixture(scope="session")
def viewer_token() -> str:
    """The viewer bearer token (may read ``/admin``, not ``/admin/settings``)."""
    return VIEWER_TOKEN


@pytest.fixture(scope="session")
def deploy_script() -> Path:
    """``examples/deploy.sh``: ``deploy VERSION`` / ``rollback`` / ``status``."""
    return DEPLOY_SCRIPT


@pytest.fixture
def release_root(tmp_path: Path) -> Path:
    """(function) A fresh release root: current 1.5.0, previous 1.4.2, made by deploy.sh."""
    root = tmp_path / "staging"
    root.mkdir()
    return make_release_root(root)


def _app_factory(stack: ExitStack, default_root: Path, *, cached: bool) -> StagingAppFactory:
    started: dict[tuple[frozenset[str], float, Path, int], str] = {}
    servers: list[LiveServer] = []
    stack.callback(stop_all, servers)

    def start(
        defects: str | Iterable[str] = (),
        latency: float = 0.0,
        *,
        release_root: Path | None = None,
        upload_limit: int = DEFAULT_UPLOAD_LIMIT,
    ) -> str:
        key = (parse_defects(defects), latency, release_root or default_root, upload_limit)
        if cached and key in started:
            return started[key]
        app = create_app(
            key[2],
            defects=key[0],
            latency=latency,
            admin_token=ADMIN_TOKEN,
            viewer_token=VIEWER_TOKEN,
            upload_limit=upload_limit,
            # One log per release root, shared by its apps: lines are told apart by request id.
            access_log=key[2] / "access.log",
        )
        server = LiveServer(app)
        servers.append(server)
        started[key] = server.url
        return server.url

    return start


@pytest.fixture
def staging_app_factory(release_root: Path) -> Iterator[StagingAppFactory]:
    """(function) Start example apps; each call starts a new server, all stop after the test.

    ``staging_app_factory("soft-404,leak-secret", latency=0.1)`` -> ``"http://127.0.0.1:PORT"``.
    The release root defaults to this test's ``release_root``.
    """
    with ExitStack() as stack:
        yield _app_factory(stack, release_root, cached=False)


@pytest.fixture
def example_url(staging_app_factory: StagingAppFactory) -> str:
    """(function) The good app serving this test's ``release_root``: safe to roll back."""
    return staging_app_factory()


@pytest.fixture(scope="session")
def shared_release_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """(session) A release root shared by every test of the session: do not deploy to it."""
    return make_release_root(tmp_path_factory.mktemp("shared-staging"))


@pytest.fixture(scope="session")
def shared_app_factory(shared_release_root: Path) -> Iterator[StagingAppFactory]:
    """(session) Example apps that live for the whole session, one per distinct arguments.

    For tests that only send requests: the same defects give the same server (and the same
    order store), so do not roll back its release root or rely on fresh state.
    """
    with ExitStack() as stack:
        yield _app_factory(stack, shared_release_root, cached=True)


@pytest.fixture(scope="session")
def example_server(
    shared_app_factory: StagingAppFactory, shared_release_root: Path
) -> ExampleServer:
    """(session) The good app on ``shared_release_root``, shared by the session."""
    return ExampleServer(url=shared_app_factory(), release_root=shared_release_root)


@pytest.fixture
def staging_tokens_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """(function) ``STAGING_TOKEN`` and ``VIEWER_TOKEN`` set to the test tokens.

    These are the ``token_env`` names ``examples/rehearsal.yaml`` uses; pytester subprocess
    runs inherit them.
    """
    env = {"STAGING_TOKEN": ADMIN_TOKEN, "VIEWER_TOKEN": VIEWER_TOKEN}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture(autouse=True)
def _no_rehearsal_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A rehearsal in the developer's shell must not leak into pytester runs."""
    for name in ("STAGING_URL", "GITHUB_STEP_SUMMARY", "STAGING_TOKEN", "VIEWER_TOKEN", "RELEASE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def _tiny_staging_server() -> Iterator[tuple[TinyStaging, str]]:
    # One server per module: uvicorn takes a fifth of a second to stop.
    staging = TinyStaging()
    with serve_asgi(staging.app()) as url:
        yield staging, url


@pytest.fixture
def tiny_staging(
    _tiny_staging_server: tuple[TinyStaging, str],
) -> tuple[TinyStaging, str]:
    """A minimal staging double on 127.0.0.1 and its URL; tests flip its health.

    Healthy, on version 1.5.0 and with no request received at the start of every test.
    """
    staging, url = _tiny_staging_server
    fresh = TinyStaging()
    staging.health_status, staging.version = fresh.health_status, fresh.version
    staging.requests.clear()
    return staging, url
