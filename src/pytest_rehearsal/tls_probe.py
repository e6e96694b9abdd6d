"""TLS handshakes with staging for the TLS check: standard library ``ssl`` only.

A handshake opens a TCP connection (:func:`pytest_rehearsal.sockets.open_connection`, name
lookup bounded too), completes TLS, reads the version, cipher and certificate dates, and
closes: nothing is sent over it. Everything ends by the action's deadline.

The *capped* handshake offers at most one old version. It does not check trust: it only asks
which version the server agrees to, and nothing is sent over it, so a forged answer could
only make the check fail, never pass. The local OpenSSL may refuse to offer old versions
(OpenSSL 3 drops TLS 1.0 and 1.1 at its default security level); the context lowers the
security level for this one handshake, and a ClientHello written to memory first shows
whether the version can be offered at all.
"""

from __future__ import annotations

import contextlib
import ssl
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from .checks._base import ActionContext
from .sockets import open_connection
from .units import format_duration

__all__ = ["HandshakeResult", "capped_context", "handshake"]

# TLS record layout: type (1), version (2), length (2), handshake type (1), length (3),
# then the ClientHello's client_version (2): the newest version offered.
_HELLO_VERSION = slice(9, 11)
_WIRE_VERSIONS = {b"\x03\x01": "TLSv1", b"\x03\x02": "TLSv1.1", b"\x03\x03": "TLSv1.2"}
_UNTRUSTED_ISSUER = (18, 19, 20, 21)  # self-signed, self-signed in chain, unknown issuer


@dataclass(frozen=True)
class HandshakeResult:
    """What one handshake showed. ``error`` set: it failed (``refused``: by the server).

    ``unavailable`` says why the local OpenSSL could not even offer the capped version.
    ``not_after`` and ``checked_at`` are POSIX times (the certificate's end, the handshake).
    """

    version: str | None = None
    cipher: str | None = None
    not_after: float | None = None
    checked_at: float = 0.0
    error: str | None = None
    refused: bool = False
    unavailable: str | None = None


def handshake(context: ActionContext, not_after: float, at_most: str | None) -> HandshakeResult:
    """One handshake with staging, by *not_after*; *at_most* caps the version offered."""
    parts = urlsplit(context.staging_url)
    host, port = parts.hostname or "", parts.port or 443
    if at_most is None:
        tls = context.ssl_context
    else:
        capped = capped_context(at_most)
        if isinstance(capped, str):
            return HandshakeResult(unavailable=capped)
        tls = capped
    left = not_after - time.monotonic()
    try:
        sock = open_connection(host, port, max(left, 0.001))
    except OSError as exc:
        return HandshakeResult(error=f"no connection to {host}:{port}: {_os_problem(exc, left)}")
    try:
        sock.settimeout(max(not_after - time.monotonic(), 0.001))
        with tls.wrap_socket(sock, server_hostname=host) as secured:
            certificate = secured.getpeercert() if at_most is None else None
            cipher = secured.cipher()
            return HandshakeResult(
                version=secured.version(),
                cipher=cipher[0] if cipher else None,
                not_after=_not_after(certificate),
                checked_at=time.time(),
            )
    except ssl.SSLCertVerificationError as exc:
        return HandshakeResult(error=_verification_problem(exc))
    except ssl.SSLError as exc:
        reason = exc.reason or str(exc)
        return HandshakeResult(error=f"TLS handshake failed: {reason}", refused=True)
    except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError) as exc:
        # Some servers simply hang up on a ClientHello they will not serve.
        return HandshakeResult(
            error=f"connection closed during the handshake ({exc})", refused=True
        )
    except OSError as exc:
        return HandshakeResult(error=f"TLS handshake failed: {_os_problem(exc, left)}")
    finally:
        sock.close()


def capped_context(at_most: str) -> ssl.SSLContext | str:
    """A client context offering at most *at_most*, or why the local OpenSSL cannot."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    # OpenSSL 3 offers TLS < 1.2 only at security level 0; other libraries refuse the
    # keyword, and their defaults are what they can offer.
    with contextlib.suppress(ssl.SSLError):
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
    try:
        # Setting an old version warns that it is deprecated: offering it is the point here.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
            context.maximum_version = ssl.TLSVersion[at_most.replace(".", "_")]
    except (ValueError, KeyError) as exc:
        return f"{ssl.OPENSSL_VERSION} cannot offer {at_most} ({exc})"
    offered = _offered(context)
    if offered != at_most:
        return f"{ssl.OPENSSL_VERSION} cannot offer {at_most} ({offered})"
    return context


def _offered(context: ssl.SSLContext) -> str:
    """The newest version a ClientHello from *context* offers, or why none is written."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    hello = context.wrap_bio(incoming, outgoing)
    try:
        hello.do_handshake()
    except ssl.SSLWantReadError:
        pass  # the ClientHello is written and an answer awaited: as expected
    except ssl.SSLError as exc:
        return f"no ClientHello: {exc.reason or exc}"
    record = outgoing.read()
    return _WIRE_VERSIONS.get(record[_HELLO_VERSION], f"it offers {record[_HELLO_VERSION]!r}")


def _not_after(certificate: Mapping[str, object] | None) -> float | None:
    value = (certificate or {}).get("notAfter")
    return ssl.cert_time_to_seconds(value) if isinstance(value, str) else None


def _verification_problem(exc: ssl.SSLCertVerificationError) -> str:
    text = f"TLS verification failed: {exc.verify_message or exc.reason or exc}"
    if exc.verify_code in _UNTRUSTED_ISSUER:
        text += " (for a private CA, pass --staging-ca-bundle or set ca_bundle:)"
    return text


def _os_problem(exc: OSError, budget: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {format_duration(round(max(budget, 0.0), 3))}"
    return exc.strerror or str(exc)
