"""Raw-socket servers on 127.0.0.1 for misbehaviour an ASGI app cannot produce.

``serve_raw(handler)`` accepts connections on an ephemeral port and runs ``handler(conn)``
for each in a daemon thread; it yields the base URL. On exit it closes the listening socket
and every open connection (so a handler blocked in ``send`` or ``recv`` returns at once)
and waits a bounded time for the threads. Handlers here are bounded in time too.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterator

__all__ = [
    "abort",
    "canned",
    "hang",
    "header_bomb",
    "header_drip",
    "many_headers",
    "read_request",
    "serve_raw",
]

Handler = Callable[[socket.socket], None]
JOIN_TIMEOUT = 5.0
ACCEPT_POLL = 0.05
REQUEST_LIMIT = 64 * 1024
REQUEST_TIMEOUT = 5.0
DRIP_INTERVAL = 0.1
MAX_DRIP_SECONDS = 60.0


@contextlib.contextmanager
def serve_raw(handler: Handler, *, tls: ssl.SSLContext | None = None) -> Iterator[str]:
    """Serve *handler* on 127.0.0.1 (over TLS with *tls*); yields ``http(s)://127.0.0.1:PORT``."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    open_connections: set[socket.socket] = set()
    threads: list[threading.Thread] = []
    lock = threading.Lock()

    def serve_one(conn: socket.socket) -> None:
        try:
            if tls is not None:
                conn.settimeout(REQUEST_TIMEOUT)
                conn = tls.wrap_socket(conn, server_side=True)
                with lock:
                    open_connections.add(conn)
            handler(conn)
        except (OSError, ssl.SSLError):
            pass  # the client went away or refused the certificate: that is the test's point
        finally:
            with lock:
                open_connections.discard(conn)
            conn.close()

    stopping = threading.Event()
    # accept() in one thread is not woken by close() in another: poll a stop flag instead.
    listener.settimeout(ACCEPT_POLL)

    def accept_loop() -> None:
        while not stopping.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            with lock:
                open_connections.add(conn)
            thread = threading.Thread(target=serve_one, args=(conn,), daemon=True)
            threads.append(thread)
            thread.start()

    acceptor = threading.Thread(target=accept_loop, name=f"raw:{port}", daemon=True)
    acceptor.start()
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    finally:
        stopping.set()
        acceptor.join(JOIN_TIMEOUT)
        listener.close()
        with lock:
            for conn in list(open_connections):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(JOIN_TIMEOUT)


def read_request(conn: socket.socket) -> bytes:
    """The request head (up to the blank line), read within a bounded time and size."""
    conn.settimeout(REQUEST_TIMEOUT)
    data = b""
    while b"\r\n\r\n" not in data and len(data) < REQUEST_LIMIT:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def canned(response: bytes) -> Handler:
    """Answer every request on the connection with *response*, then close."""

    def handle(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(response)

    return handle


def header_drip(conn: socket.socket) -> None:
    """Send a response head one byte every 0.1 s: a slowloris against the client."""
    read_request(conn)
    head = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 1000 + b"\r\nContent-Length: 2\r\n\r\nok"
    started = time.monotonic()
    for byte in head:
        if time.monotonic() - started > MAX_DRIP_SECONDS:
            return
        conn.sendall(bytes([byte]))
        time.sleep(DRIP_INTERVAL)


def abort(conn: socket.socket) -> None:
    """Read the request head, then reset the connection (RST) without any response."""
    read_request(conn)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def header_bomb(conn: socket.socket) -> None:
    """One response header of 1 MiB."""
    read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nX-Bomb: " + b"a" * (1024 * 1024) + b"\r\n\r\n")


def many_headers(conn: socket.socket) -> None:
    """100,000 small response headers (about 2 MB of head)."""
    read_request(conn)
    lines = b"".join(b"X-H%d: v\r\n" % i for i in range(100_000))
    conn.sendall(b"HTTP/1.1 200 OK\r\n" + lines + b"Content-Length: 0\r\n\r\n")


def hang(conn: socket.socket) -> None:
    """Read the request head, then never answer (until the client goes, at most a minute)."""
    read_request(conn)
    conn.settimeout(MAX_DRIP_SECONDS)
    with contextlib.suppress(OSError):
        while conn.recv(4096):
            pass
