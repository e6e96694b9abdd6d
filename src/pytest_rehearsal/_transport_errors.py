"""What a transport failure was, in words, and whether another attempt may pass.

Retrying is worth it only for failures that may pass: connection errors other than TLS, and
a server that closed the connection. Never a TLS failure (verification is never downgraded
either), never a request that ran out of time, never a request the client itself got wrong.

Imported only when a rehearsal is active (it imports httpx).
"""

from __future__ import annotations

import ssl

import httpx

from ._deadline_transport import DeadlineExceeded

__all__ = ["describe_transport_error", "is_transient_error"]


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


def is_transient_error(exc: BaseException) -> bool:
    """Whether another attempt may succeed: not TLS, not out of time, not our own bug."""
    if not isinstance(exc, httpx.TransportError) or isinstance(exc, httpx.TimeoutException):
        return False
    if isinstance(exc, (httpx.UnsupportedProtocol, httpx.LocalProtocolError, httpx.ProxyError)):
        return False
    return not any(isinstance(item, ssl.SSLError) for item in _chain(exc))
