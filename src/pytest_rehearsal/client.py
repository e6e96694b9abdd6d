"""HTTP to staging that survives a hostile service: bounded in time and memory, no secret leaked.

Imported only when a rehearsal is active (it imports httpx, httpcore and tenacity at the top).

Time. httpx's timeouts limit each socket operation, so a server dripping one byte every
0.1 s never trips them. Every request here also has a total :class:`Deadline`: the clients
use a :class:`DeadlineBackend`, httpcore's network backend with each connect, TLS
handshake, read and write given ``min(operation timeout, time left)``, the time left being
read from a context variable that :class:`ProbeSender` and :class:`StagingClient` set around
each request. When it runs out, the request fails with "exceeded the 2s total deadline for
GET /slow". A request never takes longer than the staging timeout, retries and
``Retry-After`` waits included; a ``Retry-After`` longer than what is left is not waited for.

Memory. Bodies are read with a cap, asking for ``identity`` encoding; a gzip or deflate
body sent anyway is inflated in pieces of at most 64 KiB, so a 51 KB gzip bomb never
becomes a 50 MiB allocation.

Retries. Only idempotent requests, only on failures that may pass: connection errors other
than TLS, a server that closed the connection, and 429/502/503/504. Never a TLS failure
(verification is never downgraded either), never a request that ran out of time. Both
senders retry through one policy, :func:`with_retries` (tenacity, in :mod:`.retry`).

Redirects. The built-in checks never follow them: a 3xx is a result, its reply says where it
pointed. The ``staging`` client follows them only when asked (``follow_redirects=True``), and
then only within staging's origin, never from https to http, and at most 5 hops.

Secrets. Tokens stay :class:`~pytest_rehearsal.redact.Secret` until an auth flow puts them in
a header, and only on requests to staging's origin.
"""

from __future__ import annotations

import contextvars
import dataclasses
import email.utils
import functools
import itertools
import select
import socket
import ssl
import time
import zlib
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import httpcore
import httpx

from . import __version__
from .checks._base import Probe, Reply, ReplyLog
from .config import RehearsalConfig
from .deadline import Deadline
from .redact import Redactor, Secret, mask_url
from .sockets import open_connection
from .units import format_size

if TYPE_CHECKING:
    from .retry import Pushback

__all__ = [
    "MAX_REDIRECTS",
    "MIN_TOKEN_LENGTH",
    "STAGING_BODY_LIMIT",
    "TRANSIENT_STATUSES",
    "BodyTooLarge",
    "Credentials",
    "DeadlineBackend",
    "DeadlineExceeded",
    "ProbeSender",
    "RedirectRefused",
    "StagingClient",
    "client_options",
    "describe_transport_error",
    "inflate",
    "make_probe_client",
    "make_ssl_context",
    "make_staging_client",
    "parse_retry_after",
    "read_capped",
    "redactor_for",
    "with_retries",
]

TRANSIENT_STATUSES = frozenset({429, 502, 503, 504})
USER_AGENT = f"pytest-rehearsal/{__version__}"
MAX_CONNECTIONS = 32
MAX_REDIRECTS = 5
#: The most the ``staging`` client reads into memory for one response (``stream()`` is free).
STAGING_BODY_LIMIT = 16 * 1024 * 1024
#: Inflated bodies come out in pieces no larger than this, however well they compress.
INFLATE_PIECE = 64 * 1024
_REPLAYABLE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_INFLATABLE = frozenset({"gzip", "x-gzip", "deflate"})
_T = TypeVar("_T")


# -- credentials ----------------------------------------------------------------------------


#: Shorter tokens are a usage error: masking "lock" would mask "blocked" in every report.
MIN_TOKEN_LENGTH = 8


@dataclass(frozen=True)
class Credentials:
    """Header name and secret value per credential set: ``"default"`` and each role name."""

    header: str
    scheme: str | None
    tokens: Mapping[str, Secret]

    @classmethod
    def from_config(cls, config: RehearsalConfig, environ: Mapping[str, str]) -> Credentials:
        """Read every ``token_env`` variable: the default auth's and each role's.

        Raises :class:`LookupError` naming every variable that is missing or unusable, one
        a line (never a value): unset or empty, shorter than :data:`MIN_TOKEN_LENGTH`
        characters, with surrounding whitespace, or not UTF-8 text.
        """
        auth = config.auth
        header = auth.header if auth else "Authorization"
        scheme = auth.scheme if auth else "Bearer"
        names: dict[str, str] = {}
        if auth and auth.token_env:
            names["default"] = auth.token_env
        if config.checks.permissions:
            for role, spec in config.checks.permissions.roles.items():
                names[role] = spec.token_env
        tokens: dict[str, Secret] = {}
        problems: dict[str, str] = {}  # by variable: two roles may share one
        for key, env_name in names.items():
            where = "auth.token_env" if key == "default" else f"roles.{key}.token_env"
            value = environ.get(env_name, "")
            problem = _token_problem(value)
            if problem is None:
                tokens[key] = Secret(value)
            elif env_name not in problems:
                problems[env_name] = f"environment variable {env_name} {problem} (named by {where})"
        if problems:
            raise LookupError("\n".join(problems.values()))
        return cls(header, scheme, tokens)

    def headers_for(self, name: str | None) -> dict[str, str]:
        """The credential header for *name* (None: anonymous, an unknown name: none)."""
        token = self.tokens.get(name) if name else None
        if token is None:
            return {}
        value = f"{self.scheme} {token.reveal()}" if self.scheme else token.reveal()
        return {self.header: value}


def _token_problem(value: str) -> str | None:
    """What makes *value* unusable as a token, or ``None``; never shows the value."""
    if not value:
        return "is not set; export it before the rehearsal: secrets only come from the environment"
    if value != value.strip():
        # A trailing newline from TOKEN=$(cat file) would be masked as part of the token
        # and leak on the lines it ends.
        return (
            "has whitespace around its value (a newline from $(cat file)?); "
            "strip it: a token is one word"
        )
    if len(value) < MIN_TOKEN_LENGTH:
        return (
            f"is shorter than {MIN_TOKEN_LENGTH} characters; such a token could not be masked "
            "in output without masking ordinary words"
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "holds bytes that are not UTF-8; a token is text"
    return None


class _CredentialAuth(httpx.Auth):
    """Adds one credential set's header, only to requests for staging's own origin.

    The token is revealed inside this flow only, so no frame of the rehearsal's own code
    holds it as a plain string (tracebacks with ``-l`` show locals).
    """

    def __init__(self, credentials: Credentials, name: str | None, origin: httpx.URL) -> None:
        self._credentials = credentials
        self._name = name
        self._origin = _origin(origin)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if _origin(request.url) == self._origin:
            for header, value in self._credentials.headers_for(self._name).items():
                request.headers.setdefault(header, value)
        yield request

    def __repr__(self) -> str:
        return "<credentials from the environment>"


def redactor_for(credentials: Credentials) -> Redactor:
    """A redactor that knows every token value read from the environment."""
    return Redactor(token.reveal() for token in credentials.tokens.values())


# -- TLS and errors ---------------------------------------------------------------------------


def make_ssl_context(staging_url: str, ca_bundle: Path | None) -> ssl.SSLContext:
    """Verification is always on; a private CA is added with ``ca_bundle``.

    For an ``http://`` staging URL no trust store is loaded at all (that costs ~30 ms and
    no TLS happens): the context still verifies, so any https request fails closed.
    """
    if staging_url.startswith("https://") or ca_bundle is not None:
        return ssl.create_default_context(cafile=str(ca_bundle) if ca_bundle else None)
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def _chain(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


_UNTRUSTED_ISSUER = (18, 19, 20, 21)  # self-signed, self-signed in chain, unknown issuer


def describe_transport_error(exc: BaseException) -> str:
    """A transport failure in words: which deadline, which TLS problem, which socket error."""
    chain = _chain(exc)
    for item in chain:
        if isinstance(item, DeadlineExceeded):
            return str(item)
        if isinstance(item, ssl.SSLCertVerificationError):
            problem = item.verify_message or getattr(item, "reason", None) or str(item)
            text = f"TLS verification failed: {problem}"
            if item.verify_code in _UNTRUSTED_ISSUER:
                text += " (for a private CA, pass --staging-ca-bundle or set ca_bundle:)"
            return text
        if isinstance(item, ssl.SSLError):
            reason = getattr(item, "reason", None) or str(item)
            if reason == "WRONG_VERSION_NUMBER":
                return "TLS handshake failed: WRONG_VERSION_NUMBER (is that port plain HTTP?)"
            return f"TLS handshake failed: {reason}"
    text = str(exc)
    if isinstance(exc, httpx.TimeoutException):
        kind = type(exc).__name__.replace("Timeout", "").lower() or "request"
        return f"timed out ({kind} timeout)"
    if isinstance(exc, httpx.RemoteProtocolError):
        if "without sending" in text and "response" in text:
            return "the server closed the connection without a response"
        if "Receive buffer too long" in text:
            return "protocol error: the response head is too large (Receive buffer too long)"
        return f"protocol error: {text}" if text else "the server closed the connection"
    if isinstance(exc, httpx.ConnectError):
        return f"connection failed: {text or type(exc).__name__}"
    if isinstance(exc, (httpx.ReadError, httpx.WriteError)):
        if any(isinstance(item, ConnectionResetError) for item in chain):
            return f"the server reset the connection ({text})"
        doing = "reading the response" if isinstance(exc, httpx.ReadError) else "sending"
        return f"{doing} failed: {text or type(exc).__name__}"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _is_transient_error(exc: BaseException) -> bool:
    """Whether another attempt may succeed: not TLS, not out of time, not our own bug."""
    if not isinstance(exc, httpx.TransportError) or isinstance(exc, httpx.TimeoutException):
        return False
    if isinstance(exc, (httpx.UnsupportedProtocol, httpx.LocalProtocolError, httpx.ProxyError)):
        return False
    return not any(isinstance(item, ssl.SSLError) for item in _chain(exc))


class BodyTooLarge(httpx.RequestError):
    """The ``staging`` client refused to read a body larger than its limit into memory."""


class RedirectRefused(httpx.RequestError):
    """The ``staging`` client refused to follow a redirect off staging or to plain http."""


# -- deadlines --------------------------------------------------------------------------------


class DeadlineExceeded(httpcore.TimeoutException):
    """A request's :class:`Deadline` ran out (httpx re-raises it as a TimeoutException)."""


_DEADLINE: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar(
    "pytest_rehearsal_deadline", default=None
)


@contextmanager
def _deadline_scope(deadline: Deadline) -> Iterator[None]:
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


class _DeadlineTransport(httpx.HTTPTransport):
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


# -- bodies -----------------------------------------------------------------------------------


def inflate(chunks: Iterable[bytes], piece: int = INFLATE_PIECE) -> Iterator[bytes]:
    """Decode a gzip or zlib stream, yielding pieces of at most *piece* bytes.

    The output is produced only as it is pulled, so a consumer that stops at a cap never
    holds more than the cap plus one piece, however small the compressed input was.
    Raises :class:`httpx.DecodingError` on a corrupt stream.
    """
    decoder = zlib.decompressobj(32 + zlib.MAX_WBITS)  # 32: accept a gzip or a zlib header
    try:
        for chunk in chunks:
            data = chunk
            while True:
                out = decoder.decompress(data, piece)
                if out:
                    yield out
                data = decoder.unconsumed_tail
                # A full piece may leave output inside zlib even with no input left.
                if decoder.eof or (not data and len(out) < piece):
                    break
            if decoder.eof:
                return
        tail = decoder.flush()
    except zlib.error as exc:
        raise httpx.DecodingError(f"corrupt compressed body: {exc}") from None
    if tail:
        yield tail


def _content_encoding(headers: httpx.Headers) -> str:
    return str(headers.get("content-encoding", "")).strip().lower()


def read_capped(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """At most *limit* bytes of the body (gzip/deflate inflated), and whether there was more.

    Other encodings (``br``, ``zstd``) are returned undecoded: the rehearsal asked for
    ``identity``. Time is bounded by the request's deadline, not here.
    """
    encoding = _content_encoding(response.headers)
    raw = response.iter_raw()
    chunks = inflate(raw) if encoding in _INFLATABLE else raw
    body = bytearray()
    for chunk in chunks:
        body += chunk
        if len(body) > limit:
            return bytes(body[:limit]), True
    return bytes(body), False


class _GuardedStream(httpx.SyncByteStream):
    """A response body read under the request's deadline, inflated in bounded pieces, and
    (for a body read into memory) capped at a size."""

    def __init__(
        self,
        inner: httpx.SyncByteStream,
        deadline: Deadline,
        *,
        inflating: bool,
        limit: int | None,
    ) -> None:
        self._inner = inner
        self._deadline = deadline
        self._inflating = inflating
        self._limit = limit

    def _raw(self) -> Iterator[bytes]:
        chunks = iter(self._inner)
        while True:
            # Set around each pull only: a generator shares its consumer's context.
            with _deadline_scope(self._deadline):
                chunk = next(chunks, None)
            if chunk is None:
                return
            yield chunk

    def __iter__(self) -> Iterator[bytes]:
        received = 0
        for chunk in inflate(self._raw()) if self._inflating else self._raw():
            received += len(chunk)
            if self._limit is not None and received > self._limit:
                raise BodyTooLarge(
                    f"the body of {self._deadline.what} is larger than "
                    f"{format_size(self._limit)}, the most the staging client reads into "
                    f"memory; read it piece by piece with staging.stream(...)"
                )
            yield chunk

    def close(self) -> None:
        self._inner.close()


# -- retries ----------------------------------------------------------------------------------


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds from now (delta-seconds or an HTTP date), or ``None``."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def with_retries(
    attempt: Callable[[], _T],
    attempts: int,
    deadline: Deadline,
    pushback: Callable[[_T], Pushback | None],
    *,
    release: Callable[[_T], object] | None = None,
    noted: Callable[[_T, str], _T] | None = None,
) -> _T:
    """Call *attempt* at most *attempts* times within *deadline*, by :mod:`.retry`'s policy.

    A transport error is retried when :func:`_is_transient_error` says so; a result when
    *pushback* gives its status and ``Retry-After`` (``None``: the result is final).
    *release* frees a result before it is retried; *noted* adds to the last result why no
    further attempt fitted. The last result is returned, or the last error raised.
    """
    # The first attempt is made here, without the policy: most requests succeed at once, and
    # only a retry needs tenacity (importing it costs every rehearsal ~5 ms of start-up).
    try:
        result = attempt()
    except Exception as exc:
        if attempts == 1 or not _is_transient_error(exc):
            raise
        error = exc

        def first() -> _T:
            raise error

    else:
        if attempts == 1 or pushback(result) is None:
            return result

        def first() -> _T:
            return result

    from .retry import retrying

    # The policy takes over with the first outcome as its first attempt.
    pending = [first]
    policy = retrying(
        attempts, deadline, _is_transient_error, pushback, release=release, noted=noted
    )
    return policy(lambda: pending.pop()() if pending else attempt())


# -- the built-in checks' sender --------------------------------------------------------------


class ProbeSender:
    """Sends :class:`Probe` objects over one pooled client and records every :class:`Reply`.

    *client* must come from :func:`make_probe_client` (its transport enforces deadlines).
    Each probe, every attempt and wait included, ends within *timeout* seconds.
    """

    def __init__(
        self,
        client: httpx.Client,
        credentials: Credentials,
        *,
        timeout: float,
        retries: int,
        log: ReplyLog,
        ssl_context: ssl.SSLContext,
    ) -> None:
        self.client = client
        self.credentials = credentials
        self.timeout = timeout
        self.retries = retries
        self.log = log
        self.ssl_context = ssl_context

    def url_for(self, path: str) -> str:
        return str(self.client.base_url).rstrip("/") + path

    def send(self, probe: Probe, *, not_after: float | None = None) -> Reply:
        """Send *probe*, retrying only when it is idempotent; record and return the reply.

        *not_after* (``time.monotonic()``) ends it earlier, for a check's own deadline.
        """
        deadline = Deadline.after(
            self.timeout, f"{probe.method.upper()} {mask_url(probe.path)}", not_after
        )
        numbers = itertools.count(1)
        reply, _ = with_retries(
            lambda: self._send_once(probe, next(numbers), deadline),
            1 + self.retries if probe.is_idempotent else 1,
            deadline,
            _reply_pushback,
            noted=lambda outcome, note: (_noted(outcome[0], note), outcome[1]),
        )
        self.log.add(reply)
        return reply

    def _send_once(self, probe: Probe, attempt: int, deadline: Deadline) -> tuple[Reply, bool]:
        """One attempt; the flag says whether the outcome is transient (worth another try)."""
        url = self.url_for(probe.path)
        shown = mask_url(url)
        if probe.upload is not None:
            from .upload_probe import send_upload

            headers = dict(probe.headers)
            headers.update(self.credentials.headers_for(probe.credentials))
            with _deadline_scope(deadline):
                reply = send_upload(
                    url, probe, headers, timeout=deadline.left(), ssl_context=self.ssl_context
                )
            return dataclasses.replace(reply, attempts=attempt), False
        kwargs: dict[str, Any] = {
            "headers": dict(probe.headers),
            "auth": _CredentialAuth(self.credentials, probe.credentials, self.client.base_url),
        }
        if probe.json is not None:
            kwargs["json"] = probe.json
        elif probe.content is not None:
            kwargs["content"] = probe.content
        started = time.monotonic()
        try:
            with (
                _deadline_scope(deadline),
                self.client.stream(probe.method, url, **kwargs) as response,
            ):
                body, truncated = read_capped(response, probe.read_limit)
        except (httpx.TransportError, httpx.DecodingError) as exc:
            failed = Reply(probe, shown, None, attempts=attempt, error=_describe(exc))
            return failed, _is_transient_error(exc)
        except Exception as exc:  # one unforeseen failure must not take every check down
            failed = Reply(probe, shown, None, attempts=attempt, error=_describe(exc))
            return failed, False
        reply = Reply(
            probe,
            shown,
            response.status_code,
            reason=_reason(response, truncated, probe.read_limit),
            headers=tuple(response.headers.multi_items()),
            body=body,
            truncated=truncated,
            elapsed=time.monotonic() - started,
            attempts=attempt,
        )
        return reply, response.status_code in TRANSIENT_STATUSES


def _reply_pushback(outcome: tuple[Reply, bool]) -> Pushback | None:
    """What :func:`with_retries` needs of a probe's attempt (``None``: not worth another)."""
    reply, transient = outcome
    return (reply.status, parse_retry_after(reply.header("retry-after"))) if transient else None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, httpx.DecodingError):
        return f"could not decode the body: {exc}"
    if isinstance(exc, httpx.TransportError):
        return describe_transport_error(exc)
    return f"unexpected {type(exc).__name__}: {exc}"


def _reason(response: httpx.Response, truncated: bool, limit: int) -> str:
    """The reason phrase, plus what a failure message needs to know about the response."""
    notes: list[str] = []
    next_request = response.next_request
    if next_request is not None:
        notes.append(f"redirect to {mask_url(str(next_request.url))}, not followed")
    encoding = _content_encoding(response.headers)
    if truncated:
        size = format_size(limit)
        longer = f"body longer than {size}"
        if encoding in _INFLATABLE:
            longer = f"{encoding} body although identity was asked for, over {size} once inflated"
        notes.append(f"{longer}; only the first {size} was read")
    if encoding and encoding != "identity" and encoding not in _INFLATABLE:
        notes.append(f"body left {encoding}-encoded: identity was asked for")
    reason = response.reason_phrase
    return f"{reason} ({'; '.join(notes)})".strip() if notes else reason


def _noted(reply: Reply, note: str) -> Reply:
    reason = f"{reply.reason} ({note})".strip()
    return dataclasses.replace(reply, reason=reason)


# -- the ``staging`` fixture's client --------------------------------------------------------


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    default = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host, url.port or default


def _refusal(
    request: httpx.Request, first: httpx.URL, there: httpx.URL, hops: int
) -> httpx.RequestError | None:
    """Why the redirect from *request* to *there* must not be followed (None: it may)."""
    target = mask_url(str(there))
    if hops > MAX_REDIRECTS:
        return httpx.TooManyRedirects(
            f"stopped after {MAX_REDIRECTS} redirects (a loop?); the next was to {target}",
            request=request,
        )
    if request.url.scheme == "https" and there.scheme != "https":
        return RedirectRefused(
            f"refused to follow a redirect from https to {target}: that would drop TLS",
            request=request,
        )
    if _origin(there) != _origin(first):
        origin = mask_url(str(first.copy_with(path="/", query=None, fragment=None)))
        return RedirectRefused(
            f"refused to follow a redirect to {target}: another origin than {origin}; "
            f"the rehearsal only talks to staging",
            request=request,
        )
    return None


class StagingClient(httpx.Client):
    """An :class:`httpx.Client` on the staging URL: the ``staging`` fixture.

    - Each call of :meth:`send` (every request method goes through it), its retries,
      ``Retry-After`` waits, redirects and body included, ends within *request_budget*
      seconds (the staging timeout; a larger ``timeout=`` passed for one request extends
      it), or raises :class:`httpx.TimeoutException` saying so. A streamed body must be
      read within the same budget.
    - Idempotent requests with a replayable body are retried on transient failures
      (connection errors other than TLS, 429/502/503/504), within that budget.
    - Redirects are followed only when asked (``follow_redirects=True``), only within the
      origin of the request, never from https to http, at most :data:`MAX_REDIRECTS` hops;
      otherwise :class:`RedirectRefused` or :class:`httpx.TooManyRedirects`.
    - A body read into memory is capped at *body_limit* (:class:`BodyTooLarge`); gzip and
      deflate bodies sent although ``identity`` was asked for are inflated here, in bounded
      pieces, so such responses no longer carry ``Content-Encoding``.
    - Credentials are added per request by an auth flow, only for staging's origin, so
      ``client.headers`` never holds the token.
    """

    def __init__(
        self, *, retries: int, request_budget: float, body_limit: int, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._retries = retries
        self._request_budget = request_budget
        self._body_limit = body_limit

    def send(
        self,
        request: httpx.Request,
        *,
        stream: bool = False,
        auth: Any = httpx.USE_CLIENT_DEFAULT,
        follow_redirects: Any = httpx.USE_CLIENT_DEFAULT,
    ) -> httpx.Response:
        follow = (
            self.follow_redirects
            if follow_redirects is httpx.USE_CLIENT_DEFAULT
            else bool(follow_redirects)
        )
        what = f"{request.method} {mask_url(str(request.url))}"
        deadline = Deadline.after(self._budget_for(request), what)
        limit = None if stream else self._body_limit
        first = request.url
        history: list[httpx.Response] = []
        while True:
            response = self._send_with_retries(request, auth, deadline)
            _guard(response, deadline, limit)
            response.history = list(history)
            next_request = response.next_request
            if not follow or next_request is None:
                break
            refusal = _refusal(request, first, next_request.url, len(history) + 1)
            # Closed unread: a redirect's body is not worth reading, and it could be endless.
            response.close()
            if refusal is not None:
                raise refusal
            history.append(response)
            request = next_request
        if not stream:
            try:
                response.read()
            except BaseException:
                response.close()
                raise
        return response

    def _budget_for(self, request: httpx.Request) -> float:
        """The staging timeout, or a larger timeout passed for this request (``timeout=60``)."""
        own = request.extensions.get("timeout")
        values = [float(v) for v in own.values() if v is not None] if isinstance(own, dict) else []
        return max([self._request_budget, *values])

    def _send_with_retries(
        self, request: httpx.Request, auth: Any, deadline: Deadline
    ) -> httpx.Response:
        replayable = request.method.upper() in _REPLAYABLE_METHODS and isinstance(
            request.stream, httpx.ByteStream
        )
        return with_retries(
            functools.partial(self._send_once, request, auth, deadline),
            1 + self._retries if replayable else 1,
            deadline,
            _response_pushback,
            release=httpx.Response.close,
        )

    def _send_once(self, request: httpx.Request, auth: Any, deadline: Deadline) -> httpx.Response:
        with _deadline_scope(deadline):
            return super().send(request, stream=True, auth=auth, follow_redirects=False)


def _response_pushback(response: httpx.Response) -> Pushback | None:
    """What :func:`with_retries` needs of a response (``None``: not worth another attempt)."""
    if response.status_code not in TRANSIENT_STATUSES:
        return None
    return response.status_code, parse_retry_after(response.headers.get("retry-after"))


def _guard(response: httpx.Response, deadline: Deadline, limit: int | None) -> None:
    """Bound the reading of *response*'s body in time, in memory, and in decoding."""
    encoding = _content_encoding(response.headers)
    if encoding and encoding != "identity":
        # httpx would decode it without any bound on the output: we inflate it ourselves.
        del response.headers["content-encoding"]
    assert isinstance(response.stream, httpx.SyncByteStream)
    response.stream = _GuardedStream(
        response.stream, deadline, inflating=encoding in _INFLATABLE, limit=limit
    )


# -- construction -----------------------------------------------------------------------------


def client_options(staging_url: str, timeout: float, ssl_context: ssl.SSLContext) -> dict[str, Any]:
    """Options shared by every client the rehearsal makes."""
    limits = httpx.Limits(
        max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS
    )
    return {
        "base_url": staging_url,
        "timeout": httpx.Timeout(timeout),
        "follow_redirects": False,
        "max_redirects": MAX_REDIRECTS,
        "transport": _DeadlineTransport(ssl_context, limits),
        # Proxies and certificates from the environment would change what is rehearsed.
        "trust_env": False,
        "headers": {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
    }


def make_probe_client(
    staging_url: str, timeout: float, ssl_context: ssl.SSLContext
) -> httpx.Client:
    """The pooled client the built-in checks share (deadlines enforced by its transport)."""
    return httpx.Client(**client_options(staging_url, timeout, ssl_context))


def make_staging_client(
    staging_url: str,
    credentials: Credentials,
    *,
    timeout: float,
    retries: int,
    ssl_context: ssl.SSLContext,
    body_limit: int = STAGING_BODY_LIMIT,
) -> StagingClient:
    """The client behind the ``staging`` fixture."""
    options = client_options(staging_url, timeout, ssl_context)
    return StagingClient(
        retries=retries,
        request_budget=timeout,
        body_limit=body_limit,
        auth=_CredentialAuth(credentials, "default", httpx.URL(staging_url)),
        **options,
    )
