"""The example staging service: a release-aware FastAPI app that the rehearsal is pointed at.

Release model: ``release_root/current`` is a symlink to ``release_root/releases/<version>``
and each release directory holds a ``VERSION`` file; ``examples/deploy.sh`` flips the link.
``/health`` reads the version on every request, so a rollback is visible at once.

The good app passes every built-in check. Each name in :data:`DEFECTS` switches on one
realistic mistake and changes nothing else, so a check can be shown to catch it.

With ``access_log`` the app writes a log of its own: one line per request, with the time
(UTC, to the second), method, path, status and request id (``X-Request-ID``); the logging
check reads it through ``examples/staging-logs.sh``. The ``log-authorization`` and
``log-full-url`` defects log what a careless access log does: the ``Authorization`` header,
and the URL with its query string (where ``access_token`` parameters live).

Run it with ``examples/serve.py``, or ``uvicorn examples.staging_app.app:app`` with the
``STAGING_*`` environment variables described in :func:`create_app_from_env`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import re
import traceback
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from email.message import Message
from html import escape
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Request
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import HTTPException, RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.types import Message as ASGIMessage

__all__ = [
    "DEFAULT_UPLOAD_LIMIT",
    "DEFECTS",
    "AccessLog",
    "MalformedMultipart",
    "MultipartCounter",
    "create_app",
    "create_app_from_env",
]

DEFAULT_UPLOAD_LIMIT = 1024 * 1024

#: Every defect switch, by the name other tests use for it.
DEFECTS: frozenset[str] = frozenset(
    {
        "unhealthy",
        "missing-header",
        "version-header",
        "exposed-env",
        "soft-404",
        "open-admin",
        "viewer-admin",
        "unlimited-upload",
        "broken-idempotency",
        "traceback",
        "leak-secret",
        "weak-cookie",
        "cors-reflect",
        "log-authorization",
        "log-full-url",
    }
)

JSON_CSP = "default-src 'none'; frame-ancestors 'none'"
HTML_CSP = "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
# Removed by the ``missing-header`` defect: the three a browser relies on against sniffing,
# injection and framing.
_DROPPABLE = frozenset({b"x-content-type-options", b"content-security-policy", b"x-frame-options"})
_MAX_IDEMPOTENCY_KEY = 255
_MAX_STORED_KEYS = 10_000
_MAX_PART_HEADER = 16 * 1024


# -- middleware ---------------------------------------------------------------------------------


class ResponsePolicy:
    """ASGI middleware: the latency and the response header policy of every HTTP response.

    A plain ASGI wrapper rather than ``BaseHTTPMiddleware``, so streamed bodies and early
    413 answers pass through untouched.
    """

    def __init__(self, app: ASGIApp, *, defects: frozenset[str], latency: float) -> None:
        self.app = app
        self.defects = defects
        self.latency = latency

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        origin = _request_header(scope, b"origin")
        https = scope.get("scheme") == "https"

        async def send_with_policy(message: ASGIMessage) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = self._headers(list(message.get("headers", [])), origin, https)
            await send(message)

        await self.app(scope, receive, send_with_policy)

    def _headers(
        self, headers: list[tuple[bytes, bytes]], origin: bytes | None, https: bool
    ) -> list[tuple[bytes, bytes]]:
        content_type = next((v for k, v in headers if k.lower() == b"content-type"), b"")
        csp = HTML_CSP if content_type.startswith(b"text/html") else JSON_CSP
        policy: list[tuple[str, str]] = [
            ("X-Content-Type-Options", "nosniff"),
            ("Content-Security-Policy", csp),
            ("X-Frame-Options", "DENY"),
            ("Referrer-Policy", "no-referrer"),
            ("Cache-Control", "no-store"),
        ]
        if https:
            policy.append(("Strict-Transport-Security", "max-age=31536000; includeSubDomains"))
        if "version-header" in self.defects:
            policy += [("Server", "uvicorn/0.29.0"), ("X-Powered-By", "FastAPI/0.110")]
        added = [(k.lower().encode(), v.encode()) for k, v in policy]
        if "cors-reflect" in self.defects and origin is not None:
            added += [
                (b"access-control-allow-origin", origin),
                (b"access-control-allow-credentials", b"true"),
                (b"vary", b"Origin"),
            ]
        if "missing-header" in self.defects:
            added = [(k, v) for k, v in added if k not in _DROPPABLE]
        names = {k for k, _ in added}
        return [(k, v) for k, v in headers if k.lower() not in names] + added


class AccessLog:
    """ASGI middleware: one line per HTTP request appended to *path* as it is answered.

    ``2026-01-01T12:00:00Z GET /health 200 request_id=6f1c...``; the request id is the
    client's ``X-Request-ID``, or ``-``. The line is written before the response goes out,
    so a client that has its answer finds it logged. Values from the request are logged
    with control characters and quotes escaped, so a request cannot forge a line.
    """

    def __init__(self, app: ASGIApp, *, path: Path, defects: frozenset[str]) -> None:
        self.app = app
        self.path = path
        self.defects = defects

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        logged = False

        async def log_then_send(message: ASGIMessage) -> None:
            nonlocal logged
            if message["type"] == "http.response.start" and not logged:
                logged = True
                self._write(scope, message["status"])
            await send(message)

        try:
            await self.app(scope, receive, log_then_send)
        except Exception:
            if not logged:
                self._write(scope, 500)  # what the server answers for an escaped exception
            raise

    def _write(self, scope: Scope, status: int) -> None:
        target = scope["path"]
        query = scope.get("query_string", b"")
        if "log-full-url" in self.defects and query:
            target += "?" + query.decode("latin-1")
        request_id = _request_header(scope, b"x-request-id")
        fields = [
            datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            scope["method"],
            _loggable(target),
            str(status),
            f"request_id={_loggable(request_id.decode('latin-1')) if request_id else '-'}",
        ]
        authorization = _request_header(scope, b"authorization")
        if "log-authorization" in self.defects and authorization:
            fields.append(f'authorization="{_loggable(authorization.decode("latin-1"))}"')
        with self.path.open("a", encoding="utf-8") as log:
            log.write(" ".join(fields) + "\n")


def _loggable(text: str) -> str:
    return "".join(c if c.isprintable() and c != '"' else f"\\x{ord(c):02x}" for c in text)


def _request_header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value)
    return None


# -- multipart ----------------------------------------------------------------------------------


class MalformedMultipart(ValueError):
    """The body does not follow the multipart/form-data framing."""


class MultipartCounter:
    """Counts the bytes of each part of a multipart/form-data body as it streams past.

    Nothing but a delimiter-sized tail is kept in memory, so the same code serves the limited
    upload and the ``unlimited-upload`` defect, which reads and discards.
    """

    def __init__(self, boundary: bytes) -> None:
        self._first = b"--" + boundary
        self._delimiter = b"\r\n--" + boundary
        self._buffer = bytearray()
        self._state = "preamble"
        self._name: str | None = None
        self._size = 0
        #: Part name -> size in bytes, for every complete part seen so far.
        self.sizes: dict[str, int] = {}

    def feed(self, chunk: bytes) -> None:
        """Consume the next piece of the body; raises :class:`MalformedMultipart`."""
        self._buffer += chunk
        while self._step():
            pass

    def finish(self) -> dict[str, int]:
        """The part sizes once the body has ended; raises if the closing delimiter is missing."""
        if self._state != "done":
            raise MalformedMultipart("the body ended before the closing boundary")
        return dict(self.sizes)

    def _step(self) -> bool:
        """Advance the state machine by one step; False when more input is needed."""
        buffer = self._buffer
        if self._state == "preamble":
            at = buffer.find(self._first)
            if at < 0:
                del buffer[: max(0, len(buffer) - len(self._first))]
                return False
            del buffer[: at + len(self._first)]
            self._state = "after-delimiter"
            return True
        if self._state == "after-delimiter":
            if len(buffer) < 2:
                return False
            marker = bytes(buffer[:2])
            del buffer[:2]
            if marker == b"--":
                self._state = "done"
            elif marker == b"\r\n":
                self._state = "headers"
            else:
                raise MalformedMultipart("unexpected bytes after a boundary")
            return True
        if self._state == "headers":
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > _MAX_PART_HEADER:
                    raise MalformedMultipart("part headers are too long")
                return False
            self._name = _part_name(bytes(buffer[:end]))
            del buffer[: end + 4]
            self._size = 0
            self._state = "body"
            return True
        if self._state == "body":
            at = buffer.find(self._delimiter)
            if at < 0:
                # Keep a tail that could be the start of a delimiter split across chunks.
                safe = len(buffer) - (len(self._delimiter) - 1)
                if safe > 0:
                    self._size += safe
                    del buffer[:safe]
                return False
            self._size += at
            del buffer[: at + len(self._delimiter)]
            if self._name is not None:
                self.sizes[self._name] = self._size
            self._state = "after-delimiter"
            return True
        buffer.clear()  # the epilogue after the closing boundary carries no data
        return False


_NAME = re.compile(r'(?:^|;)\s*name="([^"]*)"', re.IGNORECASE)


def _part_name(raw_headers: bytes) -> str | None:
    for line in raw_headers.decode("latin-1").split("\r\n"):
        key, _, value = line.partition(":")
        if key.strip().lower() == "content-disposition":
            match = _NAME.search(value)
            return match.group(1) if match else None
    return None


def _boundary(content_type: str) -> bytes | None:
    message = Message()
    message["content-type"] = content_type
    if message.get_content_type() != "multipart/form-data":
        return None
    boundary = message.get_param("boundary")
    return boundary.encode("latin-1") if isinstance(boundary, str) and boundary else None


# -- releases, auth, orders ---------------------------------------------------------------------


def current_version(release_root: Path) -> str | None:
    """The version of the release ``current`` points at, or None when nothing is deployed."""
    try:
        return (release_root / "current" / "VERSION").read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


@dataclass(frozen=True)
class Tokens:
    """The configured bearer tokens; a role without a token cannot authenticate at all."""

    admin: str | None
    viewer: str | None

    def role_of(self, authorization: str | None) -> str | None:
        """``"admin"``, ``"viewer"`` or None for a missing, malformed or unknown credential."""
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        for role, expected in (("admin", self.admin), ("viewer", self.viewer)):
            # Constant-time comparison, so response timing does not leak a token prefix.
            if expected and hmac.compare_digest(token.encode(), expected.encode()):
                return role
        return None


class OrderIn(BaseModel):
    """An order request; ``quantity`` is strict so that ``"x"``, ``"2"`` and ``true`` fail."""

    sku: str = Field(min_length=1, max_length=64)
    quantity: int = Field(default=1, ge=1, strict=True)


@dataclass(frozen=True)
class StoredResponse:
    """What the first request under an Idempotency-Key got, replayed for the same payload."""

    fingerprint: str
    status: int
    body: Mapping[str, Any]


def _idempotency_key(raw: str) -> str:
    """The key from an ``Idempotency-Key`` value: an sf-string (``"k"``) or a bare token."""
    value = raw.strip()
    if len(value) >= 2 and value.startswith('"') and value.endswith('"'):
        value = value[1:-1]
        if '"' in value or "\\" in value:
            raise HTTPException(400, "Idempotency-Key must be a simple quoted string")
    if not value or len(value) > _MAX_IDEMPOTENCY_KEY:
        raise HTTPException(400, f"Idempotency-Key must be 1 to {_MAX_IDEMPOTENCY_KEY} chars")
    return value


def _fingerprint(payload: Any) -> str:
    # The raw JSON, canonicalised: any change a client makes to its payload is a different one.
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


# -- pages --------------------------------------------------------------------------------------


def _fake_private_key() -> str:
    # A made-up key (hash output, not a key), assembled at runtime so that secret scanners
    # reading this repository do not flag the source file itself.
    body = base64.b64encode(b"".join(hashlib.sha256(bytes([i])).digest() for i in range(12)))
    lines = [body[i : i + 64].decode() for i in range(0, len(body), 64)]
    kind = "RSA " + "PRIVATE KEY"
    return "\n".join([f"-----BEGIN {kind}-----", *lines, f"-----END {kind}-----"])


_LEAKED = (
    "<!-- deploy debug: aws_access_key_id="
    + "AKIA"
    + "2E3QXN7RZK4VHM5T\n"
    + _fake_private_key()
    + "\n-->\n"
)

_ENV_FILE = (
    "APP_NAME=staging-example\n"
    "APP_ENV=staging\n"
    "APP_KEY=base64:" + base64.b64encode(hashlib.sha256(b"app-key").digest()).decode() + "\n"
    "DB_HOST=db.internal\n"
    "DB_USERNAME=app\n"
    "DB_PASSWORD=" + hashlib.sha256(b"db-password").hexdigest()[:24] + "\n"
)

_GIT_CONFIG = (
    "[core]\n"
    "\trepositoryformatversion = 0\n"
    "\tfilemode = true\n"
    "\tbare = false\n"
    '[remote "origin"]\n'
    "\turl = git@github.example.com:shop/staging-example.git\n"
    "\tfetch = +refs/heads/*:refs/remotes/origin/*\n"
)


def _home_page(version: str | None, leak: bool) -> str:
    release = escape(version or "none")
    return (
        "<!doctype html>\n"
        '<html lang="en">\n'
        '<head><meta charset="utf-8"><title>Example staging service</title></head>\n'
        "<body>\n"
        "<h1>Example staging service</h1>\n"
        f"<p>Release {release}</p>\n" + (_LEAKED if leak else "") + "</body>\n</html>\n"
    )


# -- the app ------------------------------------------------------------------------------------


def create_app(
    release_root: Path,
    *,
    defects: frozenset[str] = frozenset(),
    latency: float = 0.0,
    admin_token: str | None,
    viewer_token: str | None,
    upload_limit: int = DEFAULT_UPLOAD_LIMIT,
    access_log: Path | None = None,
) -> FastAPI:
    """The example staging service serving the release that ``release_root/current`` names.

    *defects* switches on named mistakes (see :data:`DEFECTS`); *latency* seconds are added
    to every response; *upload_limit* is the largest request body ``POST /upload`` accepts;
    *access_log* is the file it logs each request to (None: no log). Raises
    :class:`ValueError` for an unknown defect name.
    """
    unknown = sorted(set(defects) - DEFECTS)
    if unknown:
        raise ValueError(f"unknown defect(s) {unknown}; known: {sorted(DEFECTS)}")
    if latency < 0 or upload_limit < 0:
        raise ValueError("latency and upload_limit must not be negative")
    tokens = Tokens(admin=admin_token, viewer=viewer_token)
    orders: dict[str, StoredResponse] = {}

    app = FastAPI(title="Example staging service", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(ResponsePolicy, defects=defects, latency=latency)
    if access_log is not None:
        # Added last, so outermost: it logs the status the client really gets.
        app.add_middleware(AccessLog, path=access_log, defects=defects)

    # Dependencies are passed as defaults, not in Annotated[...]: FastAPI resolves string
    # annotations against module globals, where these closures do not exist.
    def require(allowed: frozenset[str], *, admin_area: bool = False) -> Any:
        def dependency(authorization: Annotated[str | None, Header()] = None) -> str | None:
            who = tokens.role_of(authorization)
            if admin_area and "open-admin" in defects:
                return who
            if who is None:
                raise HTTPException(401, "Not authenticated", {"WWW-Authenticate": "Bearer"})
            if who not in allowed:
                raise HTTPException(403, "Forbidden")
            return who

        return Depends(dependency)

    anyone_signed_in = require(frozenset({"admin", "viewer"}), admin_area=True)
    settings_roles = {"admin", "viewer"} if "viewer-admin" in defects else {"admin"}
    settings_access = require(frozenset(settings_roles), admin_area=True)

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404 and "soft-404" in defects:
            # Like a catch-all single-page app: every unknown path is the home page.
            return HTMLResponse(_home_page(current_version(release_root), "leak-secret" in defects))
        return await http_exception_handler(request, exc)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> Response:
        if "traceback" in defects:
            # A debug-mode server: the exception escapes into the response body.
            try:
                raise exc
            except RequestValidationError:
                return PlainTextResponse(traceback.format_exc(), status_code=500)
        return await request_validation_exception_handler(request, exc)

    @app.get("/", response_class=HTMLResponse)
    def home() -> HTMLResponse:
        page = HTMLResponse(_home_page(current_version(release_root), "leak-secret" in defects))
        hardened = "weak-cookie" not in defects
        page.set_cookie(
            "session",
            uuid.uuid4().hex,
            path="/",
            secure=hardened,
            httponly=hardened,
            samesite="lax",
        )
        return page

    @app.get("/health")
    def health() -> JSONResponse:
        version = current_version(release_root)
        if version is None:
            return JSONResponse({"ok": False, "version": None, "detail": "no current release"}, 503)
        if "unhealthy" in defects:
            return JSONResponse({"ok": False, "version": version, "detail": "database down"}, 503)
        return JSONResponse({"ok": True, "version": version})

    @app.get("/admin")
    def admin(who: str | None = anyone_signed_in) -> dict[str, Any]:
        return {"area": "admin", "role": who}

    @app.get("/admin/settings")
    def admin_settings(who: str | None = settings_access) -> dict[str, Any]:
        return {"role": who, "settings": {"maintenance": False, "upload_limit": upload_limit}}

    @app.post("/upload", status_code=201)
    async def upload(request: Request) -> JSONResponse:
        limit = None if "unlimited-upload" in defects else upload_limit
        too_large = JSONResponse({"detail": f"Request body exceeds {limit} bytes"}, 413)
        declared = request.headers.get("content-length", "")
        if limit is not None and declared.isdigit() and int(declared) > limit:
            return too_large  # before reading a byte: the client learns it at once
        boundary = _boundary(request.headers.get("content-type", ""))
        if boundary is None:
            return JSONResponse({"detail": "Content-Type must be multipart/form-data"}, 415)
        counter = MultipartCounter(boundary)
        received = 0
        try:
            async for chunk in request.stream():
                received += len(chunk)
                if limit is not None and received > limit:
                    return too_large  # a chunked body has no Content-Length to refuse early
                counter.feed(chunk)
            sizes = counter.finish()
        except MalformedMultipart as exc:
            return JSONResponse({"detail": f"Malformed multipart body: {exc}"}, 400)
        if "file" not in sizes:
            missing = {"type": "missing", "loc": ["body", "file"], "msg": "Field required"}
            return JSONResponse({"detail": [missing]}, 422)
        return JSONResponse({"size": sizes["file"]}, 201)

    @app.post("/orders", status_code=201, dependencies=[require(frozenset({"admin"}))])
    async def create_order(
        order: OrderIn,
        request: Request,
        idempotency_key: Annotated[str | None, Header()] = None,
    ) -> JSONResponse:
        created = {
            "id": f"ord_{uuid.uuid4().hex[:16]}",
            "sku": order.sku,
            "quantity": order.quantity,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        }
        if idempotency_key is None or "broken-idempotency" in defects:
            return JSONResponse(created, 201)
        key = _idempotency_key(idempotency_key)
        fingerprint = _fingerprint(await request.json())
        # No await between the lookup and the store: concurrent first uses cannot both create.
        stored = orders.get(key)
        if stored is None:
            if len(orders) >= _MAX_STORED_KEYS:
                # Real services expire keys after a day or so; here the oldest go first, so a
                # long benchmark cannot grow the store without bound.
                del orders[next(iter(orders))]
            orders[key] = StoredResponse(fingerprint, 201, created)
            return JSONResponse(created, 201)
        if stored.fingerprint != fingerprint:
            return JSONResponse({"detail": "Idempotency-Key reused with a different payload"}, 422)
        return JSONResponse(dict(stored.body), stored.status, {"Idempotent-Replayed": "true"})

    if "exposed-env" in defects:

        @app.get("/.env")
        def dot_env() -> PlainTextResponse:
            return PlainTextResponse(_ENV_FILE)

        @app.get("/.git/config")
        def git_config() -> PlainTextResponse:
            return PlainTextResponse(_GIT_CONFIG)

    return app


def create_app_from_env(environ: Mapping[str, str] | None = None) -> FastAPI:
    """The app configured from ``STAGING_*`` environment variables.

    ``STAGING_RELEASE_ROOT`` (required), ``STAGING_DEFECTS`` (comma list),
    ``STAGING_LATENCY`` (seconds), ``STAGING_UPLOAD_LIMIT`` (bytes), ``STAGING_ADMIN_TOKEN``,
    ``STAGING_VIEWER_TOKEN``, ``STAGING_ACCESS_LOG`` (a file; unset: no log). Raises
    :class:`ValueError` naming a missing or bad value.
    """
    env = os.environ if environ is None else environ
    root = env.get("STAGING_RELEASE_ROOT", "").strip()
    if not root:
        raise ValueError("STAGING_RELEASE_ROOT is not set: the directory deploy.sh deploys into")
    defects = frozenset(d.strip() for d in env.get("STAGING_DEFECTS", "").split(",") if d.strip())
    latency_raw = env.get("STAGING_LATENCY", "").strip() or "0"
    limit_raw = env.get("STAGING_UPLOAD_LIMIT", "").strip() or str(DEFAULT_UPLOAD_LIMIT)
    try:
        latency = float(latency_raw)
    except ValueError:
        raise ValueError(f"STAGING_LATENCY={latency_raw!r} is not a number of seconds") from None
    if not limit_raw.isdigit():
        raise ValueError(f"STAGING_UPLOAD_LIMIT={limit_raw!r} is not a number of bytes")
    return create_app(
        Path(root),
        defects=defects,
        latency=latency,
        admin_token=env.get("STAGING_ADMIN_TOKEN") or None,
        viewer_token=env.get("STAGING_VIEWER_TOKEN") or None,
        upload_limit=int(limit_raw),
        access_log=Path(env["STAGING_ACCESS_LOG"]) if env.get("STAGING_ACCESS_LOG") else None,
    )


def __getattr__(name: str) -> FastAPI:
    # ``app`` is built on first access (``uvicorn examples.staging_app.app:app``), not at
    # import, so that importing create_app does not require the STAGING_* environment.
    if name == "app":
        return create_app_from_env()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
