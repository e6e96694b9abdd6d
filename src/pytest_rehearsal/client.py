"""HTTP to staging: one pooled httpx client, credentials from the environment, safe retries.

Imported only when a rehearsal is active (it imports httpx and tenacity at the top).

- Only idempotent requests are retried, and only on transient failures: connection errors
  other than TLS, timeouts, and 502/503/504. A TLS failure is never retried or downgraded.
- Redirects are never followed: a 3xx is a result for the check to judge.
- Bodies are read with a cap, asking for ``identity`` encoding; an encoded body is inflated
  with a bound, so a small gzip bomb cannot become a large allocation.
"""

from __future__ import annotations

import dataclasses
import ssl
import time
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import tenacity

from . import __version__
from .checks._base import Probe, Reply, ReplyLog
from .config import RehearsalConfig
from .redact import Redactor, Secret

__all__ = [
    "TRANSIENT_STATUSES",
    "Credentials",
    "ProbeSender",
    "StagingClient",
    "describe_transport_error",
    "make_ssl_context",
]

TRANSIENT_STATUSES = frozenset({502, 503, 504})
USER_AGENT = f"pytest-rehearsal/{__version__}"
MAX_CONNECTIONS = 32
# Retries wait briefly: staging that is down for longer is a finding, not something to sit out.
_RETRY_WAIT = tenacity.wait_exponential_jitter(initial=0.1, max=1.0)


@dataclass(frozen=True)
class Credentials:
    """Header name and secret value per credential set: ``"default"`` and each role name."""

    header: str
    scheme: str | None
    tokens: Mapping[str, Secret]

    @classmethod
    def from_config(cls, config: RehearsalConfig, environ: Mapping[str, str]) -> Credentials:
        """Read every ``token_env`` variable; a missing one raises :class:`LookupError` by name."""
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
        for key, env_name in names.items():
            value = environ.get(env_name)
            if not value:
                where = "auth.token_env" if key == "default" else f"roles.{key}.token_env"
                raise LookupError(
                    f"environment variable {env_name} is not set (named by {where}); "
                    f"export it before the rehearsal: secrets only come from the environment"
                )
            tokens[key] = Secret(value)
        return cls(header, scheme, tokens)

    def headers_for(self, name: str | None) -> dict[str, str]:
        """The credential header for *name* (None: anonymous, an unknown name: none)."""
        token = self.tokens.get(name) if name else None
        if token is None:
            return {}
        value = f"{self.scheme} {token.reveal()}" if self.scheme else token.reveal()
        return {self.header: value}


def make_ssl_context(staging_url: str, ca_bundle: Path | None) -> ssl.SSLContext:
    """Verification is always on; a private CA is added with ``ca_bundle``.

    For an ``http://`` staging URL no trust store is loaded at all (that costs ~30 ms and
    no TLS happens): the context still verifies, so any https request fails closed.
    """
    if staging_url.startswith("https://") or ca_bundle is not None:
        return ssl.create_default_context(cafile=str(ca_bundle) if ca_bundle else None)
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def describe_transport_error(exc: BaseException) -> str:
    """A transport failure in words: which TLS problem, which socket error, which timeout."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    for item in chain:
        if isinstance(item, ssl.SSLCertVerificationError):
            return f"TLS verification failed: {item.verify_message or item.reason}"
        if isinstance(item, ssl.SSLError):
            return f"TLS handshake failed: {item.reason or item}"
    if isinstance(exc, httpx.TimeoutException):
        kind = type(exc).__name__.replace("Timeout", "").lower() or "request"
        return f"timed out ({kind} timeout)"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"protocol error: {exc}" if str(exc) else "server closed the connection"
    text = str(exc) or type(exc).__name__
    return f"connection failed: {text}"


def _is_transient_error(exc: BaseException) -> bool:
    if not isinstance(exc, httpx.TransportError):
        return False
    return not describe_transport_error(exc).startswith("TLS")


class _TransientReply(Exception):
    """Raised inside the retry loop so tenacity tries again; carries the last reply."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply


def _retrying(attempts: int, budget: float) -> tenacity.Retrying:
    return tenacity.Retrying(
        stop=tenacity.stop_after_attempt(max(attempts, 1)) | tenacity.stop_after_delay(budget),
        wait=_RETRY_WAIT,
        retry=tenacity.retry_if_exception_type(_TransientReply),
        reraise=True,
    )


def _inflate(chunks: Iterator[bytes], encoding: str, limit: int) -> Iterator[bytes]:
    """Decode a gzip/deflate stream without ever producing more than *limit* + 1 bytes."""
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
    decoder = zlib.decompressobj(wbits)
    budget = limit + 1
    for chunk in chunks:
        data = decoder.decompress(chunk, budget)
        budget -= len(data)
        yield data
        if budget <= 0:
            return


def read_capped(response: httpx.Response, limit: int, deadline: float) -> tuple[bytes, bool]:
    """Read at most *limit* bytes of the (decoded) body before *deadline* (monotonic)."""
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    raw = response.iter_raw()
    chunks = _inflate(raw, encoding, limit) if encoding in {"gzip", "deflate"} else raw
    body = bytearray()
    for chunk in chunks:
        body += chunk
        if len(body) > limit:
            return bytes(body[:limit]), True
        if time.monotonic() > deadline:
            raise httpx.ReadTimeout("the body took longer than the request's total deadline")
    return bytes(body), False


class ProbeSender:
    """Sends :class:`Probe` objects over one pooled client and records every :class:`Reply`."""

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

    def send(self, probe: Probe) -> Reply:
        """Send *probe* (retrying only when it is idempotent), record and return the reply."""
        attempts = 1 + self.retries if probe.is_idempotent else 1
        try:
            for attempt in _retrying(attempts, budget=self.timeout * attempts):
                with attempt:
                    reply, transient = self._send_once(probe, attempt.retry_state.attempt_number)
                    if transient:
                        raise _TransientReply(reply)
        except _TransientReply as exc:
            reply = exc.reply
        self.log.add(reply)
        return reply

    def _send_once(self, probe: Probe, attempt: int) -> tuple[Reply, bool]:
        """One attempt; the flag says whether the outcome is transient (worth another try)."""
        url = self.url_for(probe.path)
        headers = dict(probe.headers)
        headers.update(self.credentials.headers_for(probe.credentials))
        if probe.upload is not None:
            from .upload_probe import send_upload

            reply = send_upload(
                url, probe, headers, timeout=self.timeout, ssl_context=self.ssl_context
            )
            return dataclasses.replace(reply, attempts=attempt), False
        kwargs: dict[str, Any] = {"headers": headers}
        if probe.json is not None:
            kwargs["json"] = probe.json
        elif probe.content is not None:
            kwargs["content"] = probe.content
        started = time.monotonic()
        try:
            with self.client.stream(probe.method, url, **kwargs) as response:
                body, truncated = read_capped(
                    response, probe.read_limit, deadline=started + self.timeout
                )
        except httpx.TransportError as exc:
            error = Reply(probe, url, None, attempts=attempt, error=describe_transport_error(exc))
            return error, _is_transient_error(exc)
        reply = Reply(
            probe,
            url,
            response.status_code,
            reason=response.reason_phrase,
            headers=tuple(response.headers.multi_items()),
            body=body,
            truncated=truncated,
            elapsed=time.monotonic() - started,
            attempts=attempt,
        )
        return reply, response.status_code in TRANSIENT_STATUSES


class StagingClient(httpx.Client):
    """An :class:`httpx.Client` on the staging URL that retries idempotent requests.

    The ``staging`` fixture. Credentials are added per request by an auth flow, so
    ``client.headers`` never holds the token.
    """

    def __init__(self, *, retries: int, retry_budget: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._retries = retries
        self._retry_budget = retry_budget

    def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        if request.method.upper() not in {"GET", "HEAD", "OPTIONS", "PUT", "DELETE"}:
            return super().send(request, **kwargs)
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(1 + self._retries)
            | tenacity.stop_after_delay(self._retry_budget),
            wait=_RETRY_WAIT,
            retry=tenacity.retry_if_exception(_is_transient_error)
            | tenacity.retry_if_result(lambda r: r.status_code in TRANSIENT_STATUSES),
            retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
            reraise=True,
        )
        response: httpx.Response = retrying(self._send_and_release, request, **kwargs)
        return response

    def _send_and_release(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        response = super().send(request, **kwargs)
        if response.status_code in TRANSIENT_STATUSES:
            response.read()  # so the connection returns to the pool before the retry
        return response


class _CredentialAuth(httpx.Auth):
    def __init__(self, credentials: Credentials) -> None:
        self._credentials = credentials

    def auth_flow(self, request: httpx.Request) -> Any:
        for name, value in self._credentials.headers_for("default").items():
            request.headers.setdefault(name, value)
        yield request

    def __repr__(self) -> str:
        return "<credentials from the environment>"


def client_options(staging_url: str, timeout: float, ssl_context: ssl.SSLContext) -> dict[str, Any]:
    """Options shared by every client the rehearsal makes."""
    return {
        "base_url": staging_url,
        "timeout": httpx.Timeout(timeout),
        "follow_redirects": False,
        "verify": ssl_context,
        # Proxies and certificates from the environment would change what is rehearsed.
        "trust_env": False,
        "headers": {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
        "limits": httpx.Limits(
            max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS
        ),
    }


def make_probe_client(
    staging_url: str, timeout: float, ssl_context: ssl.SSLContext
) -> httpx.Client:
    """The pooled client the built-in checks share."""
    return httpx.Client(**client_options(staging_url, timeout, ssl_context))


def make_staging_client(
    staging_url: str,
    credentials: Credentials,
    *,
    timeout: float,
    retries: int,
    ssl_context: ssl.SSLContext,
) -> StagingClient:
    """The client behind the ``staging`` fixture."""
    return StagingClient(
        retries=retries,
        retry_budget=timeout * (1 + retries),
        auth=_CredentialAuth(credentials),
        **client_options(staging_url, timeout, ssl_context),
    )


def redactor_for(credentials: Credentials) -> Redactor:
    """A redactor that knows every token value read from the environment."""
    return Redactor(token.reveal() for token in credentials.tokens.values())
