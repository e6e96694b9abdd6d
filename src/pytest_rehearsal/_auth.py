"""The one way a token reaches a request: an httpx auth flow, on staging's own origin only."""

from __future__ import annotations

from collections.abc import Generator

import httpx

from ._credentials import Credentials

__all__ = ["CredentialAuth", "origin_of"]


def origin_of(url: httpx.URL) -> tuple[str, str, int | None]:
    """Scheme, host and port (the scheme's default when none is given)."""
    default = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host, url.port or default


class CredentialAuth(httpx.Auth):
    """Adds one credential set's header, only to requests for staging's own origin.

    The token is revealed inside this flow only, so no frame of the rehearsal's own code
    holds it as a plain string (tracebacks with ``-l`` show locals).
    """

    def __init__(self, credentials: Credentials, name: str | None, origin: httpx.URL) -> None:
        self._credentials = credentials
        self._name = name
        self._origin = origin_of(origin)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if origin_of(request.url) == self._origin:
            for header, value in self._credentials.headers_for(self._name).items():
                request.headers.setdefault(header, value)
        yield request

    def __repr__(self) -> str:
        return "<credentials from the environment>"
