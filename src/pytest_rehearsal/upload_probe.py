"""The transport for upload probes: a streamed multipart body over a raw HTTP/1.1 socket.

Why not httpx: a server that rejects an upload answers 413 *before* reading the body and
may then stop reading without closing. httpx keeps writing until its write timeout fires.
Here the socket is polled for readability between writes, so the early answer is seen at
once and the rest of the body is never sent. The body (``preamble`` + zeros + ``epilogue``)
is generated in 64 KiB chunks from one buffer: a 1 GiB upload costs no memory.

Only this module speaks raw HTTP; it reads the status line, the headers and a capped body,
and turns a reset or EOF without a status into a :class:`Reply` with ``status=None``.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import ssl
import time
import uuid
from collections.abc import Mapping
from urllib.parse import urlsplit

from .checks._base import Probe, Reply, Upload
from .redact import mask_url
from .sockets import open_connection

__all__ = ["CHUNK_SIZE", "multipart_framing", "send_upload"]

CHUNK_SIZE = 64 * 1024
_ZEROS = memoryview(bytes(CHUNK_SIZE))
_HEAD_LIMIT = 64 * 1024
_RECV_SIZE = 64 * 1024
# Headers this module owns: the framing must match the generated body exactly.
_FRAMING = {"host", "content-length", "content-type", "transfer-encoding", "connection", "expect"}
_NO_BODY = {204, 304}


class _Closed(Exception):
    """The peer closed (EOF) or reset the connection."""

    def __init__(self, reset: bool) -> None:
        super().__init__("reset" if reset else "closed")
        self.reset = reset


class _Deadline(Exception):
    """The overall timeout of the upload ran out."""


class _BadResponse(Exception):
    """The bytes that came back are not an HTTP/1.x response."""


def multipart_framing(upload: Upload, boundary: str) -> tuple[bytes, int, bytes]:
    """Preamble, number of zero bytes, epilogue: together exactly ``upload.size`` bytes."""
    field = _quote(upload.field)
    filename = _quote(upload.filename)
    preamble = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    epilogue = f"\r\n--{boundary}--\r\n".encode()
    data = upload.size - len(preamble) - len(epilogue)
    if data < 0:
        overhead = len(preamble) + len(epilogue)
        raise ValueError(
            f"an upload of {upload.size} bytes is smaller than its framing ({overhead})"
        )
    return preamble, data, epilogue


def _quote(value: str) -> str:
    # HTML form encoding: quotes and line breaks are percent-encoded in a disposition value.
    return value.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def _check_header(name: str, value: str) -> None:
    if any(c in name + value for c in "\r\n\0") or not name or ":" in name:
        raise ValueError(f"invalid header for an upload: {name!r}")


class _Connection:
    """A non-blocking socket with a total deadline, remembering what was sent and received."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock = sock
        self.deadline = deadline
        self.sent = 0
        self.reset_seen = False
        self.received = bytearray()
        sock.setblocking(False)
        self.selector = selectors.DefaultSelector()
        self.selector.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)

    def close(self) -> None:
        self.selector.close()
        self.sock.close()

    def _wait(self, write: bool) -> tuple[bool, bool]:
        """Block until readable (or writable when *write*); raise at the deadline."""
        if isinstance(self.sock, ssl.SSLSocket) and self.sock.pending():
            return True, False
        mask = selectors.EVENT_READ | (selectors.EVENT_WRITE if write else 0)
        self.selector.modify(self.sock, mask)
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise _Deadline
        events = self.selector.select(remaining)
        ready = events[0][1] if events else 0
        return bool(ready & selectors.EVENT_READ), bool(ready & selectors.EVENT_WRITE)

    def _recv_nowait(self) -> bool:
        """Take what has arrived; False when nothing (a TLS record without data counts)."""
        try:
            data = self.sock.recv(_RECV_SIZE)
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return False
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError) as exc:
            self.reset_seen = True
            raise _Closed(reset=True) from exc
        if not data:
            raise _Closed(reset=False)
        self.received += data
        return True

    def send(self, data: memoryview) -> bool:
        """Send *data*; True when a response started arriving first (stop sending then)."""
        while data:
            readable, writable = self._wait(write=True)
            if readable and self._recv_nowait():
                return True
            if not writable:
                continue
            try:
                count = self.sock.send(data)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                continue
            except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError) as exc:
                self.reset_seen = True
                raise _Closed(reset=True) from exc
            self.sent += count
            data = data[count:]
        return False

    def recv_more(self) -> None:
        """Wait for more response bytes; raise :class:`_Closed` at EOF or reset."""
        while True:
            readable, _ = self._wait(write=False)
            if readable and self._recv_nowait():
                return

    def take(self, count: int) -> bytes:
        data = bytes(self.received[:count])
        del self.received[:count]
        return data

    def read_until(self, separator: bytes, limit: int) -> bytes:
        while (index := self.received.find(separator)) < 0:
            if len(self.received) > limit:
                raise _BadResponse(f"no end of headers in the first {limit} bytes")
            self.recv_more()
        return self.take(index + len(separator))


class _Response:
    """The response as far as it has been read (it survives a deadline or an EOF)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.status: int | None = None
        self.reason = ""
        self.headers: list[tuple[str, str]] = []
        self.body = bytearray()
        self.complete = False

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name), None)

    def read(self, conn: _Connection) -> None:
        while self.status is None or self.status < 200:  # skip 1xx interim responses
            self._parse_head(conn.read_until(b"\r\n\r\n", _HEAD_LIMIT))
        assert self.status is not None
        length = self.header("content-length")
        if self.status in _NO_BODY:
            self.complete = True
        elif "chunked" in (self.header("transfer-encoding") or "").lower():
            self._read_chunked(conn)
        elif length is not None and length.strip().isdigit():
            self._read_exact(conn, int(length))
        else:
            self._read_to_eof(conn)

    def _parse_head(self, head: bytes) -> None:
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise _BadResponse(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
        self.status, self.reason = int(parts[1]), (parts[2] if len(parts) > 2 else "")
        self.headers = []
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                self.headers.append((name.strip(), value.strip()))

    def _keep(self, data: bytes) -> bool:
        """Keep *data* up to the limit; False once the limit is reached."""
        room = self.limit - len(self.body)
        self.body += data[:room]
        return len(data) <= room

    def _read_exact(self, conn: _Connection, length: int) -> None:
        wanted = min(length, self.limit)
        while len(conn.received) < wanted - len(self.body):
            self._keep(conn.take(len(conn.received)))
            conn.recv_more()
        self._keep(conn.take(wanted - len(self.body)))
        self.complete = length <= self.limit

    def _read_chunked(self, conn: _Connection) -> None:
        while True:
            size_line = conn.read_until(b"\r\n", _HEAD_LIMIT).split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError as exc:
                raise _BadResponse(f"bad chunk size {size_line[:20]!r}") from exc
            if size == 0:
                self.complete = True
                return
            while size > 0:  # taken piece by piece: a huge chunk is never buffered whole
                if not conn.received:
                    conn.recv_more()
                piece = conn.take(min(size, len(conn.received)))
                size -= len(piece)
                if not self._keep(piece):
                    return
            conn.read_until(b"\r\n", _HEAD_LIMIT)

    def _read_to_eof(self, conn: _Connection) -> None:
        try:
            while self._keep(conn.take(len(conn.received))):
                conn.recv_more()
        except _Closed:
            self.complete = True


def _connect(host: str, port: int, tls: ssl.SSLContext | None, deadline: float) -> socket.socket:
    remaining = max(deadline - time.monotonic(), 0.001)
    sock = open_connection(host, port, remaining)
    if tls is None:
        return sock
    try:
        sock.settimeout(max(deadline - time.monotonic(), 0.001))
        return tls.wrap_socket(sock, server_hostname=host)
    except BaseException:
        sock.close()
        raise


def _connect_error(exc: OSError) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS verification failed: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed: {exc.reason or exc}"
    if isinstance(exc, socket.gaierror):
        return f"could not resolve the host: {exc.strerror}"
    if isinstance(exc, TimeoutError):
        return "could not connect before the timeout"
    return f"could not connect: {exc.strerror or exc}"


def _request_head(
    url: str, probe: Probe, headers: Mapping[str, str], boundary: str, size: int
) -> bytes:
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    lines = [
        f"{probe.method.upper()} {target} HTTP/1.1",
        f"Host: {parts.netloc.rpartition('@')[2]}",
        f"Content-Type: multipart/form-data; boundary={boundary}",
        f"Content-Length: {size}",
        "Connection: close",
    ]
    extra = [*probe.headers, *headers.items()]
    if all(name.lower() != "accept-encoding" for name, _ in extra):
        extra.append(("Accept-Encoding", "identity"))
    for name, value in extra:
        _check_header(name, value)
        if name.lower() not in _FRAMING:
            lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _send_request(conn: _Connection, head: bytes, framing: tuple[bytes, int, bytes]) -> None:
    """Send head and body; stop as soon as the server starts answering."""
    preamble, zeros, epilogue = framing
    if conn.send(memoryview(head)) or conn.send(memoryview(preamble)):
        return
    while zeros > 0:
        if conn.send(_ZEROS[: min(zeros, CHUNK_SIZE)]):
            return
        zeros -= CHUNK_SIZE
    conn.send(memoryview(epilogue))


def send_upload(
    url: str,
    probe: Probe,
    headers: Mapping[str, str],
    *,
    timeout: float,
    ssl_context: ssl.SSLContext | None,
) -> Reply:
    """Send ``probe.upload`` to *url* and return what came back, within *timeout* in total.

    *headers* are added to the request (credentials, user agent); the framing headers are
    this function's own. *ssl_context* verifies https (the default context when None).
    """
    upload = probe.upload
    if upload is None:
        raise ValueError("send_upload needs a probe with an upload")
    started = time.monotonic()
    deadline = started + timeout
    boundary = f"rehearsal-{uuid.uuid4().hex}"
    framing = multipart_framing(upload, boundary)
    head = _request_head(url, probe, headers, boundary, upload.size)
    parts = urlsplit(url)
    https = parts.scheme.lower() == "https"
    tls = (ssl_context or ssl.create_default_context()) if https else None

    def reply(response: _Response | None, error: str | None = None) -> Reply:
        return Reply(
            probe=probe,
            url=mask_url(url),
            status=None if response is None else response.status,
            reason="" if response is None else response.reason,
            headers=() if response is None else tuple(response.headers),
            body=b"" if response is None else bytes(response.body),
            truncated=response is not None and not response.complete,
            elapsed=time.monotonic() - started,
            error=error,
        )

    try:
        sock = _connect(parts.hostname or "", parts.port or (443 if https else 80), tls, deadline)
    except OSError as exc:
        return reply(None, _connect_error(exc))
    conn = _Connection(sock, deadline)
    response = _Response(probe.read_limit)
    try:
        # The server may have answered before it closed: read what arrived either way.
        with contextlib.suppress(_Closed):
            _send_request(conn, head, framing)
        response.read(conn)
    except (_Closed, _Deadline, _BadResponse, OSError) as exc:
        if response.status is None:
            return reply(None, _failure(exc, conn, timeout))
    finally:
        conn.close()
    return reply(response)


def _failure(exc: BaseException, conn: _Connection, timeout: float) -> str:
    """Why no status came back, in words (how many bytes went out before)."""
    if isinstance(exc, _BadResponse):
        return f"invalid response: {exc}"
    if isinstance(exc, _Deadline):
        return f"no response within {timeout:g}s ({conn.sent} bytes sent)"
    if isinstance(exc, _Closed):
        how = "reset" if conn.reset_seen else "closed"
        return f"connection closed without a response ({how} after {conn.sent} bytes sent)"
    return f"connection failed after {conn.sent} bytes sent: {exc}"
