"""The senders of HTTP to staging: the built-in checks' and the ``staging`` fixture's.

Imported only when a rehearsal is active (it imports httpx at the top). Each request is
bounded in time by its total deadline (:mod:`._deadline_transport`) and in memory
(:mod:`._bodies`), carries credentials only to staging (:mod:`._credentials`), and is
described in words when the transport fails (:mod:`._transport_errors`). A request never takes
longer than the staging timeout, retries and ``Retry-After`` waits included; a
``Retry-After`` longer than what is left is not waited for.

Retries. Only idempotent requests, only on failures that may pass
(:func:`~._transport_errors.is_transient_error`) and on 429/502/503/504. Both senders retry
through one policy, :func:`with_retries` (tenacity, in :mod:`.retry`).

Redirects. The built-in checks never follow them: a 3xx is a result, its reply says where it
pointed. The ``staging`` client follows them only when asked (``follow_redirects=True``), and
then only within staging's origin, never from https to http, and at most 5 hops.
"""

from __future__ import annotations

import dataclasses
import email.utils
import functools
import itertools
import ssl
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from . import __version__
from ._auth import CredentialAuth, origin_of
from ._bodies import INFLATABLE, content_encoding, inflate, read_capped
from ._credentials import Credentials
from ._deadline_transport import DeadlineTransport, deadline_scope
from ._transport_errors import describe_transport_error, is_transient_error
from .checks._base import Probe, Reply, ReplyLog
from .deadline import Deadline
from .redact import mask_url
from .units import format_size

if TYPE_CHECKING:
    from .retry import Pushback

__all__ = [
    "MAX_REDIRECTS",
    "STAGING_BODY_LIMIT",
    "TRANSIENT_STATUSES",
    "BodyTooLarge",
    "ProbeSender",
    "RedirectRefused",
    "StagingClient",
    "client_options",
    "make_probe_client",
    "make_ssl_context",
    "make_staging_client",
    "parse_retry_after",
    "with_retries",
]

TRANSIENT_STATUSES = frozenset({429, 502, 503, 504})
USER_AGENT = f"pytest-rehearsal/{__version__}"
MAX_CONNECTIONS = 32
MAX_REDIRECTS = 5
#: The most the ``staging`` client reads into memory for one response (``stream()`` is free).
STAGING_BODY_LIMIT = 16 * 1024 * 1024
_REPLAYABLE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_T = TypeVar("_T")


# The ``staging`` fixture's own errors live here, beside it: a team's failing test shows them
# as ``pytest_rehearsal.client.BodyTooLarge``, and may catch them by that name.
class BodyTooLarge(httpx.RequestError):
    """The ``staging`` client refused to read a body larger than its limit into memory."""


class RedirectRefused(httpx.RequestError):
    """The ``staging`` client refused to follow a redirect off staging or to plain http."""


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

    A transport error is retried when :func:`is_transient_error` says so; a result when
    *pushback* gives its status and ``Retry-After`` (``None``: the result is final).
    *release* frees a result before it is retried; *noted* adds to the last result why no
    further attempt fitted. The last result is returned, or the last error raised.
    """
    # The first attempt is made here, without the policy: most requests succeed at once, and
    # only a retry needs tenacity (importing it costs every rehearsal ~5 ms of start-up).
    try:
        result = attempt()
    except Exception as exc:
        if attempts == 1 or not is_transient_error(exc):
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
        attempts, deadline, is_transient_error, pushback, release=release, noted=noted
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

        *not_after* (``time.monotonic()``) is the end of the probe's round, which started
        before the probe did: it ends the probe earlier (see :meth:`Deadline.after`).
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
            with deadline_scope(deadline):
                reply = send_upload(
                    url, probe, headers, timeout=deadline.left(), ssl_context=self.ssl_context
                )
            return dataclasses.replace(reply, attempts=attempt), False
        kwargs: dict[str, Any] = {
            "headers": dict(probe.headers),
            "auth": CredentialAuth(self.credentials, probe.credentials, self.client.base_url),
        }
        if probe.json is not None:
            kwargs["json"] = probe.json
        elif probe.content is not None:
            kwargs["content"] = probe.content
        started = time.monotonic()
        try:
            with (
                deadline_scope(deadline),
                self.client.stream(probe.method, url, **kwargs) as response,
            ):
                body, truncated = read_capped(response, probe.read_limit)
        except (httpx.TransportError, httpx.DecodingError) as exc:
            failed = Reply(probe, shown, None, attempts=attempt, error=_describe(exc))
            return failed, is_transient_error(exc)
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
    encoding = content_encoding(response.headers)
    if truncated:
        size = format_size(limit)
        longer = f"body longer than {size}"
        if encoding in INFLATABLE:
            longer = f"{encoding} body although identity was asked for, over {size} once inflated"
        notes.append(f"{longer}; only the first {size} was read")
    if encoding and encoding != "identity" and encoding not in INFLATABLE:
        notes.append(f"body left {encoding}-encoded: identity was asked for")
    reason = response.reason_phrase
    return f"{reason} ({'; '.join(notes)})".strip() if notes else reason


def _noted(reply: Reply, note: str) -> Reply:
    reason = f"{reply.reason} ({note})".strip()
    return dataclasses.replace(reply, reason=reason)


# -- the ``staging`` fixture's client --------------------------------------------------------


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
    if origin_of(there) != origin_of(first):
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
        with deadline_scope(deadline):
            return super().send(request, stream=True, auth=auth, follow_redirects=False)


def _response_pushback(response: httpx.Response) -> Pushback | None:
    """What :func:`with_retries` needs of a response (``None``: not worth another attempt)."""
    if response.status_code not in TRANSIENT_STATUSES:
        return None
    return response.status_code, parse_retry_after(response.headers.get("retry-after"))


def _guard(response: httpx.Response, deadline: Deadline, limit: int | None) -> None:
    """Bound the reading of *response*'s body in time, in memory, and in decoding."""
    encoding = content_encoding(response.headers)
    if encoding and encoding != "identity":
        # httpx would decode it without any bound on the output: we inflate it ourselves.
        del response.headers["content-encoding"]
    assert isinstance(response.stream, httpx.SyncByteStream)
    response.stream = _GuardedStream(
        response.stream, deadline, inflating=encoding in INFLATABLE, limit=limit
    )


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
            with deadline_scope(self._deadline):
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


# -- construction -----------------------------------------------------------------------------


def make_ssl_context(staging_url: str, ca_bundle: Path | None) -> ssl.SSLContext:
    """Verification is always on; a private CA is added with ``ca_bundle``.

    For an ``http://`` staging URL no trust store is loaded at all (that costs ~30 ms and
    no TLS happens): the context still verifies, so any https request fails closed.
    """
    if staging_url.startswith("https://") or ca_bundle is not None:
        return ssl.create_default_context(cafile=str(ca_bundle) if ca_bundle else None)
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


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
        "transport": DeadlineTransport(ssl_context, limits),
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
        auth=CredentialAuth(credentials, "default", httpx.URL(staging_url)),
        **options,
    )
