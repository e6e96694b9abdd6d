"""Serve the example staging app with uvicorn on 127.0.0.1 until SIGTERM or SIGINT.

    python examples/serve.py --release-root DIR [--defects a,b] [--latency 0.1]
                             [--upload-limit BYTES] [--port 0] [--port-file FILE]
                             [--access-log FILE]

Once the server accepts connections its base URL (``http://127.0.0.1:<port>``) is printed
and written to ``--port-file``. Each request is logged to ``--access-log`` (default
``DIR/access.log``), the file ``examples/staging-logs.sh`` reads. Tokens come from
``STAGING_ADMIN_TOKEN`` and ``STAGING_VIEWER_TOKEN`` in the environment, never from the
command line (where any local user could read them in the process list).
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from staging_app import DEFAULT_UPLOAD_LIMIT, DEFECTS, create_app

__all__ = ["main"]


class _Server(uvicorn.Server):
    """A uvicorn server that announces its URL once it is listening."""

    def __init__(self, config: uvicorn.Config, port_file: Path | None) -> None:
        super().__init__(config)
        self.port_file = port_file

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.should_exit:
            return
        port = self.servers[0].sockets[0].getsockname()[1]
        url = f"http://127.0.0.1:{port}"
        if self.port_file is not None:
            # Written whole, then renamed: a reader polling the file never sees half a URL.
            partial = self.port_file.with_name(self.port_file.name + ".partial")
            partial.write_text(url + "\n", encoding="utf-8")
            partial.replace(self.port_file)
        print(url, flush=True)


def _defects(value: str) -> frozenset[str]:
    names = frozenset(name.strip() for name in value.split(",") if name.strip())
    unknown = sorted(names - DEFECTS)
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown defect(s) {unknown}; known: {sorted(DEFECTS)}")
    return names


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--release-root", type=Path, required=True, help="deploy.sh's root")
    parser.add_argument("--defects", type=_defects, default=frozenset(), help="comma list")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added per response")
    parser.add_argument("--upload-limit", type=int, default=DEFAULT_UPLOAD_LIMIT, help="bytes")
    parser.add_argument("--port", type=int, default=0, help="0: any free port (default)")
    parser.add_argument("--port-file", type=Path, help="where to write the base URL once up")
    parser.add_argument("--access-log", type=Path, help="request log (default DIR/access.log)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the server until it is signalled to stop; the exit status of the process."""
    args = _parser().parse_args(argv)
    app = create_app(
        args.release_root.resolve(),
        defects=args.defects,
        latency=args.latency,
        admin_token=os.environ.get("STAGING_ADMIN_TOKEN") or None,
        viewer_token=os.environ.get("STAGING_VIEWER_TOKEN") or None,
        upload_limit=args.upload_limit,
        access_log=args.access_log or args.release_root.resolve() / "access.log",
    )
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=args.port,
        server_header=False,
        log_level="warning",
        timeout_graceful_shutdown=5,
    )
    server = _Server(config, args.port_file)
    # uvicorn handles SIGTERM/SIGINT: a graceful shutdown, after which it re-raises the
    # signal so that the parent sees the usual "terminated by signal" status.
    server.run()
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main())
