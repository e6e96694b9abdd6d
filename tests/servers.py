"""Run any ASGI app with uvicorn on 127.0.0.1 in a background thread, for tests.

Also the helpers behind the example-app fixtures in ``conftest.py`` (release roots made with
``examples/deploy.sh``, the factory protocol), for tests that need them outside a fixture.

The server listens on a real socket with an ephemeral port, so it is reachable from the test
process, from pytester subprocesses and from any other client on the machine::

    with serve_asgi(app) as url:
        httpx.get(url + "/health")
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import uvicorn
from examples.staging_app import DEFAULT_UPLOAD_LIMIT

if TYPE_CHECKING:
    from starlette.types import ASGIApp

__all__ = [
    "DEPLOY_SCRIPT",
    "EXAMPLES_DIR",
    "RELEASES",
    "ExampleServer",
    "LiveServer",
    "StagingAppFactory",
    "make_release_root",
    "parse_defects",
    "run_deploy",
    "serve_asgi",
    "stop_all",
]

STARTUP_TIMEOUT = 10.0
SHUTDOWN_TIMEOUT = 10.0
_POLL = 0.01


class LiveServer:
    """A uvicorn server running *app* in a daemon thread; :meth:`stop` ends it."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        startup_timeout: float = STARTUP_TIMEOUT,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """Bind 127.0.0.1:0, start serving, and return once the server accepts connections.

        With *tls* (a server context) it serves https. Raises :class:`RuntimeError` if the
        server does not start within *startup_timeout*.
        """
        # Binding here, not in uvicorn, makes the port known before the thread starts. The
        # protocol must be named: asyncio sets TCP_NODELAY only on sockets whose proto is TCP,
        # and without it each keep-alive response stalls ~40 ms on a delayed ACK.
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        port = self._socket.getsockname()[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            server_header=False,
            log_level="warning",
            # Bounded shutdown even if a client keeps a connection open.
            timeout_graceful_shutdown=2,
        )
        if tls is not None:
            # uvicorn builds its context from files only; a loaded config keeps this one.
            config.load()
            config.ssl = tls
        self._server = uvicorn.Server(config)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"uvicorn:{port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + startup_timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"uvicorn did not start on {self.url} within {startup_timeout}s"
                    + (f": {self._error!r}" if self._error else "")
                )
            time.sleep(_POLL)

    def _run(self) -> None:
        try:
            self._server.run(sockets=[self._socket])
        except BaseException as exc:  # reported by the starting thread, not lost in this one
            self._error = exc

    def request_stop(self) -> None:
        """Ask the server to exit without waiting (see :func:`stop_all`)."""
        self._server.should_exit = True

    def stop(self, timeout: float = SHUTDOWN_TIMEOUT) -> None:
        """Ask the server to exit and wait for its thread (forcing it after half the time)."""
        self.request_stop()
        self._thread.join(timeout / 2)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout / 2)
        self._socket.close()
        if self._thread.is_alive():
            raise RuntimeError(f"uvicorn on {self.url} did not stop within {timeout}s")


def stop_all(servers: Iterable[LiveServer]) -> None:
    """Stop several servers, letting them shut down side by side rather than one by one."""
    servers = list(servers)
    for server in servers:
        server.request_stop()
    for server in servers:
        server.stop()


@contextmanager
def serve_asgi(
    app: ASGIApp, *, startup_timeout: float = STARTUP_TIMEOUT, tls: ssl.SSLContext | None = None
) -> Iterator[str]:
    """Serve *app* on 127.0.0.1 (https with a *tls* server context) during the block; yields
    its base URL."""
    server = LiveServer(app, startup_timeout=startup_timeout, tls=tls)
    try:
        yield server.url
    finally:
        server.stop()


# -- the example staging service ----------------------------------------------------------------

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES_DIR = REPO_ROOT / "examples"
DEPLOY_SCRIPT = EXAMPLES_DIR / "deploy.sh"
#: The versions :func:`make_release_root` deploys, in order: the last one is current.
RELEASES = ("1.4.2", "1.5.0")


def run_deploy(
    release_root: Path, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run ``examples/deploy.sh *args`` on *release_root*; output is captured as text.

    With *check*, a non-zero exit raises :class:`AssertionError` showing the output.
    """
    env = {**os.environ, "STAGING_RELEASE_ROOT": str(release_root)}
    result = subprocess.run(
        [str(DEPLOY_SCRIPT), *args], env=env, capture_output=True, text=True, timeout=30
    )
    if check and result.returncode != 0:
        output = result.stdout + result.stderr
        raise AssertionError(f"deploy.sh {' '.join(args)} exited {result.returncode}:\n{output}")
    return result


def make_release_root(path: Path) -> Path:
    """Deploy 1.4.2 then 1.5.0 into *path* with deploy.sh: current 1.5.0, previous 1.4.2."""
    for version in RELEASES:
        run_deploy(path, "deploy", version)
    return path


def parse_defects(defects: str | Iterable[str]) -> frozenset[str]:
    """Defect names from ``"a,b"`` or any iterable of names."""
    names = defects.split(",") if isinstance(defects, str) else defects
    return frozenset(name.strip() for name in names if name.strip())


class StagingAppFactory(Protocol):
    """Start the example app (see ``examples/staging_app``) and return its base URL."""

    def __call__(
        self,
        defects: str | Iterable[str] = (),
        latency: float = 0.0,
        *,
        release_root: Path | None = None,
        upload_limit: int = DEFAULT_UPLOAD_LIMIT,
    ) -> str: ...


@dataclass(frozen=True)
class ExampleServer:
    """A running example app: its base URL and the release root it serves."""

    url: str
    release_root: Path
