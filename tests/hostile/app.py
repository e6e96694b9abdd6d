"""A staging service with hostile behaviours, as a plain ASGI app (no framework in the way).

Routes (every endless or slow one stops when the client goes away, and within a minute):

=================  ===========================================================================
``/health``        200 ``{"ok": true}``
``/drip``          200, then the body one byte every 0.1 s
``/endless``       200, then 64 KiB chunks for as long as the client reads
``/gzip-bomb``     200 ``Content-Encoding: gzip`` whatever was asked: ~51 KB inflating to 50 MiB
``/gzip-small``    200 ``{"ok": true}`` gzip-encoded, whatever was asked
``/hop``           302 to ``/health`` (same origin)
``/loop``          302 to itself, forever
``/away``          302 to ``other_origin`` + ``/catch`` (another port: another origin)
``/rate-limited``  429 ``Retry-After: 3600``
``/busy-once``     503 ``Retry-After: 1`` the first time, then 200 ``{"ok": true}``
``/flaky``         502 the first time, then 200 ``{"ok": true}``
``/echo-auth``     500 with a traceback that quotes the ``Authorization`` header it received
``/catch``         200; records the headers it received (the other origin's endpoint)
``/deep-json``     200 ``application/json``: a list nested 200 000 deep (``[[[[...]]]]``)
=================  ===========================================================================
"""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from functools import cache
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

BOMB_SIZE = 50 * 1024 * 1024
DEEP_JSON_LEVELS = 200_000
CHUNK = 64 * 1024
DRIP_INTERVAL = 0.1
# Hard stop for anything slow or endless, in case a client never goes away.
MAX_STREAM_SECONDS = 60.0


@cache
def gzip_bomb() -> bytes:
    """50 MiB of zero bytes, gzipped (about 51 KB)."""
    return gzip.compress(bytes(BOMB_SIZE), compresslevel=9)


class HostileApp:
    """The hostile staging service; ``received`` holds ``(path, headers)`` of every request."""

    def __init__(self, other_origin: str = "") -> None:
        gzip_bomb()  # built now (once per process), not while a client's deadline runs
        self.other_origin = other_origin
        self.received: list[tuple[str, dict[str, str]]] = []
        self.hits: Counter[str] = Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        self.received.append((path, headers))
        self.hits[path] += 1
        handler = getattr(self, "_" + path.strip("/").replace("-", "_"), None)
        if handler is None:
            await _respond(send, 404, b"not found")
            return
        await handler(receive, send, headers)

    async def _health(self, receive: Receive, send: Send, headers: dict[str, str]) -> None:
        await _respond(send, 200, b'{"ok": true}', content_type="application/json")

    _catch = _health

    async def _drip(self, receive: Receive, send: Send, headers: dict[str, str]) -> None:
        async with _until_disconnect(receive) as gone:
            await _start(send, 200, [(b"content-type", b"application/json")])
            while not gone.is_set() and gone.time_left() > 0:
                await send({"type": "http.response.body", "body": b" ", "more_body": True})
                await asyncio.sleep(DRIP_INTERVAL)

    async def _endless(self, receive: Receive, send: Send, headers: dict[str, str]) -> None:
        chunk = b"x" * CHUNK
        async with _until_disconnect(receive) as gone:
            await _start(send, 200, [(b"content-type", b"application/octet-stream")])
            while not gone.is_set() and gone.time_left() > 0:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await asyncio.sleep(0)  # let the disconnect be noticed

    async def _gzip_bomb(self, receive: Receive, send: Send, headers: dict[str, str]) -> None:
        body = gzip_bomb()
        extra = [(b"content-encoding", b"gzip"), (b"content-length", str(len(body)).encode())]
        await _start(send, 200, [(b"content-type", b"application/json"), *extra])
        await send({"type": "http.response.body", "body": body})

    async def _gzip_small(self, receive: Receive, send: Send, headers: dict[str, str]) -> None:
        body = gzip.compress(b'{"ok": true}')
        await _respond(
            send, 200, body, content_type="application/json", extra=[(b"content-encoding", b"gzip")]
        )

    async def _hop(self, receive: Receive, send: Send, headers: dict[str, str]) -> None:
        await _respond(send, 302, b"", extra=[(b"location", b"/health")])

    async def _loop(self, receive: Receive, send: Send, headers: dict[str, str]) -> None:
        await _respond(send, 302, b"", extra=[(b"location", b"/loop")])

    async def _away(self, receive: Receive, send: Send, headers: dict[str, str]) -> None:
        location = f"{self.other_origin}/catch".encode()
        await _respond(send, 302, b"", extra=[(b"location", location)])

    async def _rate_limited(self, receive: Receive, send: Send, headers: dict[str, str]) -> None:
        await _respond(send, 429, b"slow down", extra=[(b"retry-after", b"3600")])

    async def _busy_once(self, receive: Receive, send: Send, headers: dict[str, str]) -> None:
        if self.hits["/busy-once"] == 1:
            await _respond(send, 503, b"busy", extra=[(b"retry-after", b"1")])
        else:
            await _respond(send, 200, b'{"ok": true}', content_type="application/json")

    async def _flaky(self, receive: Receive, send: Send, headers: dict[str, str]) -> None:
        if self.hits["/flaky"] == 1:
            await _respond(send, 502, b"bad gateway")
        else:
            await _respond(send, 200, b'{"ok": true}', content_type="application/json")

    async def _deep_json(self, receive: Receive, send: Send, headers: dict[str, str]) -> None:
        body = b"[" * DEEP_JSON_LEVELS + b"]" * DEEP_JSON_LEVELS  # 400 KB, under every read cap
        await _respond(send, 200, body, content_type="application/json")

    async def _echo_auth(self, receive: Receive, send: Send, headers: dict[str, str]) -> None:
        credential = headers.get("authorization", "(none)")
        token = credential.split()[-1]
        body = (
            "Traceback (most recent call last):\n"
            '  File "/srv/app/views.py", line 42, in orders\n'
            f"    check(request.headers)  # Authorization: {credential}\n"
            f"PermissionError: token={token} is not allowed here\n"
            f"{json.dumps({'headers': headers})}\n"
        )
        await _respond(send, 500, body.encode())


class _Disconnect:
    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.started = time.monotonic()

    def is_set(self) -> bool:
        return self.event.is_set()

    def time_left(self) -> float:
        return MAX_STREAM_SECONDS - (time.monotonic() - self.started)


@asynccontextmanager
async def _until_disconnect(receive: Receive) -> AsyncIterator[_Disconnect]:
    """``async with _until_disconnect(receive) as gone``: ``gone`` is set once the client left."""
    gone = _Disconnect()

    async def watch() -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                gone.event.set()
                return

    task = asyncio.create_task(watch())
    try:
        yield gone
    finally:
        task.cancel()


async def _start(send: Send, status: int, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    *,
    content_type: str = "text/plain",
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
        *(extra or []),
    ]
    await _start(send, status, headers)
    await send({"type": "http.response.body", "body": body})
