"""The raw-socket upload transport against real servers on 127.0.0.1 (threads, port 0).

Each server is a plain socket with a scripted behaviour: answer 413 early and stop reading,
read the whole body, abort with a reset, or say nothing. Waits are bounded everywhere; no
assertion depends on timing.
"""

from __future__ import annotations

import re
import resource
import shutil
import socket
import ssl
import struct
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import pytest

from pytest_rehearsal.checks._base import Probe, Upload
from pytest_rehearsal.upload_probe import multipart_framing, send_upload

MIB = 1024 * 1024
GIB = 1024 * MIB
WAIT = 20.0  # upper bound of any wait in these tests (never reached when all is well)
EARLY_413 = (
    b"HTTP/1.1 413 Payload Too Large\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 19\r\n\r\nbody exceeds limit\n"
)

Handler = Callable[[socket.socket, "RawServer"], None]


class RawServer:
    """Serves one connection with *handler* in a thread; stopped on exit, bounded."""

    def __init__(self, handler: Handler, tls: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.tls = tls
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(WAIT)
        self.release = threading.Event()
        self.received: dict[str, object] = {}
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.listener.getsockname()[1]}/upload?x=1"

    def _serve(self) -> None:
        try:
            conn, _ = self.listener.accept()
            conn.settimeout(WAIT)
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            with conn:
                self.handler(conn, self)
        except OSError as exc:
            self.errors.append(exc)

    def __enter__(self) -> RawServer:
        self.thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release.set()
        self.listener.close()
        self.thread.join(WAIT)
        assert not self.thread.is_alive()


def read_head(conn: socket.socket) -> tuple[bytes, bytes]:
    """The request head (up to the blank line) and any body bytes read with it."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk or len(data) > 65536:
            raise ConnectionError("no request head")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def content_length(head: bytes) -> int:
    match = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", head)
    assert match is not None
    return int(match.group(1))


def early_413_then_hold(conn: socket.socket, server: RawServer) -> None:
    """Answer 413 right after the head; then neither read nor close until released."""
    head, _ = read_head(conn)
    server.received["head"] = head
    conn.sendall(EARLY_413)
    server.release.wait(WAIT)


def abort_with_reset(conn: socket.socket, server: RawServer) -> None:
    read_head(conn)
    conn.recv(65536)  # some body bytes, so the client is mid-upload
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def silent(conn: socket.socket, server: RawServer) -> None:
    read_head(conn)
    server.release.wait(WAIT)


def reader(response: bytes) -> Handler:
    """Read the whole body (counting, keeping only its edges) and answer *response*."""

    def handle(conn: socket.socket, server: RawServer) -> None:
        head, body = read_head(conn)
        length = content_length(head)
        count, first, last = len(body), body[:512], body[-512:]
        zeros = body.count(0)
        while count < length:
            chunk = conn.recv(min(65536, length - count))
            if not chunk:
                break
            count += len(chunk)
            first = (first + chunk)[:512] if len(first) < 512 else first
            last = (last + chunk)[-512:]
            zeros += chunk.count(0)
        server.received.update(head=head, count=count, first=first, last=last, zeros=zeros)
        conn.sendall(response)

    return handle


def upload(size: int, field: str = "file", read_limit: int = 1 * MIB) -> Probe:
    return Probe(
        "POST",
        "/upload?x=1",
        upload=Upload(field, size),
        idempotent=False,
        read_limit=read_limit,
    )


# -- (a) early 413 from a server that then neither reads nor closes ---------------------------


def test_early_413_is_seen_although_the_server_stops_reading() -> None:
    with RawServer(early_413_then_hold) as server:
        reply = send_upload(server.url, upload(256 * MIB), {}, timeout=WAIT, ssl_context=None)
    assert reply.status == 413
    assert reply.reason == "Payload Too Large"
    assert reply.body == b"body exceeds limit\n"
    assert reply.error is None
    assert not reply.truncated
    assert reply.elapsed < WAIT  # bounded, not a speed claim


# -- (b) a server that reads everything: exact Content-Length and multipart framing ------------


@pytest.mark.parametrize(
    ("response", "body"),
    [
        (b'HTTP/1.1 201 Created\r\nContent-Length: 11\r\n\r\n{"size":1}\n', b'{"size":1}\n'),
        (
            b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
            b'5\r\n{"ok"\r\n5;ext=1\r\n:true\r\n1\r\n}\r\n0\r\n\r\n',
            b'{"ok":true}',
        ),
        (
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\n\r\nclose-delimited",
            b"close-delimited",
        ),
    ],
    ids=["content-length", "chunked", "interim-then-eof"],
)
def test_full_upload_has_exact_length_and_valid_multipart(response: bytes, body: bytes) -> None:
    size = 3 * MIB + 12345  # not a multiple of the chunk size
    with RawServer(reader(response)) as server:
        reply = send_upload(
            server.url,
            upload(size, field="doc"),
            {"Authorization": "Bearer t0k3n"},
            timeout=WAIT,
            ssl_context=None,
        )
    assert reply.status == 201, reply.error
    assert reply.body == body
    assert not reply.truncated
    head = server.received["head"]
    assert isinstance(head, bytes)
    assert head.startswith(b"POST /upload?x=1 HTTP/1.1\r\n")
    assert b"\r\nAuthorization: Bearer t0k3n" in head
    assert re.search(rb"(?m)^Host: 127\.0\.0\.1:\d+\r?$", head)
    assert content_length(head) == size
    assert server.received["count"] == size
    boundary = re.search(rb"boundary=(\S+)", head)
    assert boundary is not None
    first, last = server.received["first"], server.received["last"]
    assert isinstance(first, bytes)
    assert isinstance(last, bytes)
    assert first.startswith(b"--" + boundary.group(1) + b"\r\n")
    assert b'Content-Disposition: form-data; name="doc"; filename="rehearsal.bin"' in first
    assert last.endswith(b"\r\n--" + boundary.group(1) + b"--\r\n")
    preamble, zeros, epilogue = multipart_framing(Upload("doc", size), boundary.group(1).decode())
    assert len(preamble) + zeros + len(epilogue) == size
    assert server.received["zeros"] == zeros


def test_response_body_is_capped_at_the_read_limit() -> None:
    response = b"HTTP/1.1 201 Created\r\nContent-Length: 5000\r\n\r\n" + b"x" * 5000
    with RawServer(reader(response)) as server:
        reply = send_upload(
            server.url, upload(2048, read_limit=100), {}, timeout=WAIT, ssl_context=None
        )
    assert reply.status == 201
    assert reply.body == b"x" * 100
    assert reply.truncated


# -- (c) an abort (SO_LINGER 0) without a response ---------------------------------------------


def test_reset_without_status_becomes_a_reply_with_the_error() -> None:
    with RawServer(abort_with_reset) as server:
        reply = send_upload(server.url, upload(64 * MIB), {}, timeout=WAIT, ssl_context=None)
    assert reply.status is None
    assert reply.error is not None
    assert re.fullmatch(
        r"connection closed without a response \(reset after \d+ bytes sent\)", reply.error
    ), reply.error
    assert reply.probe.upload == Upload("file", 64 * MIB)


def test_silence_is_bounded_by_the_total_timeout() -> None:
    with RawServer(silent) as server:
        reply = send_upload(server.url, upload(64 * MIB), {}, timeout=1.0, ssl_context=None)
    assert reply.status is None
    assert reply.error is not None
    assert reply.error.startswith("no response within 1s (")


def test_connection_refused_is_a_reply_not_an_exception() -> None:
    with socket.create_server(("127.0.0.1", 0)) as probe_port:
        port = probe_port.getsockname()[1]
    reply = send_upload(f"http://127.0.0.1:{port}/u", upload(4096), {}, timeout=5, ssl_context=None)
    assert reply.status is None
    assert reply.error is not None
    assert reply.error.startswith("could not connect")


# -- (d) a 1 GiB declared upload: quick and flat in memory -------------------------------------


def test_one_gib_upload_to_an_early_413_server_keeps_memory_flat() -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    with RawServer(early_413_then_hold) as server:
        reply = send_upload(server.url, upload(GIB), {}, timeout=WAIT, ssl_context=None)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert reply.status == 413
    head = server.received["head"]
    assert isinstance(head, bytes)
    assert content_length(head) == GIB
    assert (after - before) * 1024 < 50 * MIB


# -- https ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_pair(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a fresh self-signed certificate, and a client trusting it."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    folder: Path = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=str(cert))
    return server, client


def test_https_early_413_and_full_upload(tls_pair: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    server_ctx, client_ctx = tls_pair
    with RawServer(early_413_then_hold, tls=server_ctx) as server:
        early = send_upload(server.url, upload(64 * MIB), {}, timeout=WAIT, ssl_context=client_ctx)
    assert early.status == 413, early.error
    response = b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"
    with RawServer(reader(response), tls=server_ctx) as server:
        full = send_upload(
            server.url, upload(2 * MIB + 1), {}, timeout=WAIT, ssl_context=client_ctx
        )
    assert full.status == 201, full.error
    assert server.received["count"] == 2 * MIB + 1


def test_https_untrusted_certificate_fails_verification(
    tls_pair: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    server_ctx, _ = tls_pair
    with RawServer(early_413_then_hold, tls=server_ctx) as server:
        reply = send_upload(server.url, upload(4096), {}, timeout=WAIT, ssl_context=None)
    assert reply.status is None
    assert reply.error is not None
    assert reply.error.startswith("TLS verification failed")


# -- guards ------------------------------------------------------------------------------------


def test_invalid_inputs_are_refused_before_connecting() -> None:
    with pytest.raises(ValueError, match="smaller than its framing"):
        send_upload("http://127.0.0.1:9/u", upload(10), {}, timeout=1, ssl_context=None)
    with pytest.raises(ValueError, match="invalid header"):
        send_upload(
            "http://127.0.0.1:9/u",
            upload(4096),
            {"X-A": "1\r\nX-B: 2"},
            timeout=1,
            ssl_context=None,
        )
    with pytest.raises(ValueError, match="needs a probe with an upload"):
        send_upload("http://127.0.0.1:9/u", Probe("POST", "/u"), {}, timeout=1, ssl_context=None)


def test_framing_quotes_field_and_file_names() -> None:
    preamble, _, _ = multipart_framing(Upload('a"b\r\n', 4096, filename='x".bin'), "B")
    assert b'name="a%22b%0D%0A"; filename="x%22.bin"' in preamble
