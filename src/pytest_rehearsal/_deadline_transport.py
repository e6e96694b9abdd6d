"""The total deadline of a request, enforced on every socket operation under httpx.

httpx's timeouts limit each socket operation, so a server dripping one byte every 0.1 s
never trips them. Every request to staging also has a total
:class:`~pytest_rehearsal.deadline.Deadline`: the clients use a :class:`DeadlineBackend`,
httpcore's network backend with each name lookup, connect, TLS handshake, read and write given
``min(operation timeout, time left)``, the time left being read from a context variable that
the senders set around each request (:func:`deadline_scope`). When it runs out, the request
fails with "exceeded the 2s total deadline for GET /slow".

Imported only when a rehearsal is active (it imports httpx and httpcore).
"""

from __future__ import annotations

import contextvars
import functools
import select
import socket
import ssl
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import httpcore
import httpx

from .deadline import Deadline
from .sockets import open_connection

__all__ = ["DeadlineBackend", "DeadlineExceeded", "DeadlineTransport", "deadline_scope"]

_T = TypeVar("_T")


class DeadlineExceeded(httpcore.TimeoutException):
    """A request's :class:`Deadline` ran out (httpx re-raises it as a TimeoutException)."""


_DEADLINE: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar(
    "pytest_rehearsal_deadline", default=None
)


@contextmanager
def deadline_scope(deadline: Deadline) -> Iterator[None]:
    """Socket operations of this thread (through :class:`DeadlineBackend`) end by *deadline*."""
    token = _DEADLINE.set(deadline)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def _bound(timeout: float | None) -> tuple[float | None, Deadline | None]:
    """The timeout for one socket operation, and the deadline if it is what bounds it."""
    deadline = _DEADLINE.get()
    if deadline is None:
        return timeout, None
    left = deadline.left()
    if left <= 0:
        raise DeadlineExceeded(deadline.message())
    if timeout is not None and timeout <= left:
        return timeout, None
    return left, deadline


def _bounded(
    timeout: float | None,
    call: Callable[[float | None], _T],
    on_timeout: type[Exception],
    on_error: type[Exception],
) -> _T:
    """``call(limit)`` with the operation's bounded timeout, raising httpcore's exceptions."""
    limit, deadline = _bound(timeout)
    try:
        return call(limit)
    except TimeoutError as exc:
        if deadline is not None:
            raise DeadlineExceeded(deadline.message()) from exc
        raise on_timeout(str(exc) or "timed out") from exc
    except OSError as exc:
        raise on_error(str(exc) or type(exc).__name__) from exc


class _DeadlineStream(httpcore.NetworkStream):
    """A socket whose every operation ends by the current :class:`Deadline`."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def _timed(self, call: Callable[[], _T]) -> Callable[[float | None], _T]:
        def run(limit: float | None) -> _T:
            self._sock.settimeout(limit)
            return call()

        return run

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        receive = functools.partial(self._sock.recv, max_bytes)
        return _bounded(timeout, self._timed(receive), httpcore.ReadTimeout, httpcore.ReadError)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        view = memoryview(buffer)
        while view:
            # Bounded per send, and the loop re-checks the deadline: a server reading
            # slowly cannot stretch one write.
            send = functools.partial(self._sock.send, view)
            sent = _bounded(timeout, self._timed(send), httpcore.WriteTimeout, httpcore.WriteError)
            view = view[sent:]

    def close(self) -> None:
        self._sock.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        # The socket timeout bounds the whole handshake in CPython's ssl module, so a
        # server dripping its handshake also stops at the deadline.
        handshake = functools.partial(
            ssl_context.wrap_socket, self._sock, server_hostname=server_hostname
        )
        try:
            tls = _bounded(
                timeout, self._timed(handshake), httpcore.ConnectTimeout, httpcore.ConnectError
            )
        except Exception:
            self._sock.close()
            raise
        return _DeadlineStream(tls)

    def get_extra_info(self, info: str) -> Any:
        if info == "ssl_object":
            # An SSLSocket offers what httpcore asks of an SSLObject (ALPN, peer cert).
            return self._sock if isinstance(self._sock, ssl.SSLSocket) else None
        if info == "client_addr":
            return self._sock.getsockname()
        if info == "server_addr":
            return self._sock.getpeername()
        if info == "socket":
            return self._sock
        if info == "is_readable":
            return _is_readable(self._sock)
        return None


def _is_readable(sock: socket.socket) -> bool:
    """An idle keep-alive socket that is readable was closed by the server (or sent junk)."""
    if sock.fileno() < 0:
        return True
    poll = select.poll()
    poll.register(sock, select.POLLIN)
    return bool(poll.poll(0))


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's synchronous network backend, bounded by the current :class:`Deadline`.

    Every name lookup, connect, TLS handshake, read and write waits at most
    ``min(operation timeout, time left)`` (lookups through :mod:`.sockets`); with no
    deadline set it behaves like httpcore's own backend.
    """

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        source = None if local_address is None else (local_address, 0)

        def connect(limit: float | None) -> socket.socket:
            return open_connection(host, port, limit, source)

        sock = _bounded(timeout, connect, httpcore.ConnectTimeout, httpcore.ConnectError)
        for option in socket_options or ():
            sock.setsockopt(*option)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return _DeadlineStream(sock)


class DeadlineTransport(httpx.HTTPTransport):
    """``httpx.HTTPTransport`` whose connection pool uses :class:`DeadlineBackend`."""

    def __init__(self, ssl_context: ssl.SSLContext, limits: httpx.Limits) -> None:
        super().__init__(verify=ssl_context, trust_env=False, limits=limits)
        # httpx has no public way to choose httpcore's network backend; its transport keeps
        # the pool in `_pool` (since 0.18). Fail loudly rather than run without deadlines.
        if not isinstance(getattr(self, "_pool", None), httpcore.ConnectionPool):
            raise RuntimeError("unsupported httpx version: cannot bound request times")
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=DeadlineBackend(),
        )
