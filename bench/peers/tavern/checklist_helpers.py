"""Response checks that Tavern's YAML cannot state: headers that must be absent."""

from __future__ import annotations

from typing import Any

ORIGIN = "https://rehearsal-probe.invalid"


def no_disclosure(response: Any) -> None:
    """No version-disclosing headers, and CORS does not reflect a foreign origin."""
    headers = response.headers
    assert "x-powered-by" not in headers
    assert "server" not in headers
    assert headers.get("access-control-allow-origin") != ORIGIN
