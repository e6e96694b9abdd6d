"""The staging service of the benchmarks: the example app on uvicorn, with a request counter.

    python bench/service.py --release-root DIR --port-file FILE [--latency 0.1]
                            [--upload-limit BYTES]

The app is ``examples/staging_app`` exactly as ``examples/serve.py`` serves it (``--latency``
seconds are added to every response). One thing is added in front of it: ``GET /__bench__/count``
answers how many HTTP requests the app has served so far. It is neither counted nor delayed,
so the bench can show how many requests each suite sent (every peer must send the same ones).
Tokens come from ``STAGING_ADMIN_TOKEN`` and ``STAGING_VIEWER_TOKEN`` in the environment.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from examples.staging_app import DEFAULT_UPLOAD_LIMIT, create_app

__all__ = ["COUNT_PATH", "RequestCounter", "main"]

COUNT_PATH = "/__bench__/count"


class RequestCounter:
    """ASGI middleware: counts the HTTP requests that reach *app*; answers :data:`COUNT_PATH`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.count = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == COUNT_PATH:
            body = str(self.count).encode()
            headers = [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(body))]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        self.count += 1
        await self.app(scope, receive, send)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--release-root", type=Path, required=True, help="deploy.sh's root")
    parser.add_argument("--port-file", type=Path, required=True, help="where the URL goes")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added per response")
    parser.add_argument("--upload-limit", type=int, default=DEFAULT_UPLOAD_LIMIT, help="bytes")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT; the URL is written to ``--port-file`` before serving."""
    args = _parser().parse_args(argv)
    app = create_app(
        args.release_root.resolve(),
        latency=args.latency,
        admin_token=os.environ.get("STAGING_ADMIN_TOKEN") or None,
        viewer_token=os.environ.get("STAGING_VIEWER_TOKEN") or None,
        upload_limit=args.upload_limit,
    )
    # Bound here so the port is known at once. The protocol must be named: asyncio sets
    # TCP_NODELAY only on sockets whose proto is TCP, and without it every keep-alive
    # response waits ~40 ms for a delayed ACK, which would swamp the figures.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        RequestCounter(app),
        server_header=False,
        log_level="warning",
        timeout_graceful_shutdown=2,
        # The scale-out target opens one connection per test worker and per client.
        backlog=512,
    )
    partial = args.port_file.with_name(args.port_file.name + ".partial")
    partial.write_text(f"http://127.0.0.1:{sock.getsockname()[1]}\n", encoding="utf-8")
    partial.replace(args.port_file)
    # The URL is known before uvicorn accepts: readers poll COUNT_PATH to know it is up.
    uvicorn.Server(config).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
