"""Helpers for end-to-end plugin runs: a tiny staging app and a project laid out in pytester."""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

TOKEN = "tok_REHEARSAL_SECRET_4f9a2c"


@dataclass
class TinyStaging:
    """A mutable staging double: tests flip its health and read what it received."""

    health_status: int = 200
    version: str = "1.5.0"
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)

    def app(self) -> Starlette:
        async def health(request: Request) -> Response:
            self.requests.append(("GET", "/health", request.headers.get("authorization")))
            body = {"ok": self.health_status == 200, "version": self.version}
            return JSONResponse(body, status_code=self.health_status)

        async def echo_auth(request: Request) -> Response:
            # A careless endpoint that reflects the credentials it received.
            return JSONResponse({"you_sent": request.headers.get("authorization")}, 500)

        async def moved(request: Request) -> Response:
            return Response(status_code=302, headers={"location": "https://api.prod.example/x"})

        return Starlette(
            routes=[Route("/health", health), Route("/echo", echo_auth), Route("/moved", moved)]
        )


def write_rollback_script(directory: Path, name: str, body: str) -> Path:
    script = directory / name
    script.write_text("#!/bin/sh\n" + textwrap.dedent(body))
    script.chmod(0o755)
    return script


def write_config(pytester: pytest.Pytester, text: str) -> Path:
    path = pytester.path / "rehearsal.yaml"
    path.write_text(textwrap.dedent(text))
    return path


QUIET_CHECKS = """\
checks:
  headers: false
  secrets: false
"""


def load_report(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def counting_rollback(pytester: pytest.Pytester, extra_config: str = "") -> Path:
    """A project whose rollback appends ``rollback`` to the returned log file on each run.

    Only the health check is on (``QUIET_CHECKS``); tests append their own lines to the log
    to show the order of events.
    """
    log = pytester.path / "events.log"
    write_rollback_script(pytester.path, "rollback.sh", f"echo rollback >> {log}\n")
    write_config(pytester, QUIET_CHECKS + "rollback: {command: ./rollback.sh}\n" + extra_config)
    return log
