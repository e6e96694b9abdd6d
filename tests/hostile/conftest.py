"""Fixtures for the hostile-staging suite: the hostile app (and a second origin), the token.

=================== ========= ==============================================================
fixture             scope     value
=================== ========= ==============================================================
``hostile``         function  ``Hostile``: the hostile app on 127.0.0.1, and a second app on
                              another port (another origin) that records what reaches it;
                              the servers are the module's (``hostile_servers``), what they
                              received is reset for each test
``token_env``       function  ``STAGING_TOKEN`` set to :data:`TOKEN` (pytester runs inherit it)
=================== ========= ==============================================================
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from app import HostileApp
from hostile_support import TOKEN

from servers import serve_asgi


@dataclass(frozen=True)
class Hostile:
    url: str
    app: HostileApp
    other_url: str
    other: HostileApp


@pytest.fixture(scope="module")
def hostile_servers() -> Iterator[Hostile]:
    """(module) The two apps on their servers: started once per module, as uvicorn takes a
    third of a second to stop."""
    other = HostileApp()
    with serve_asgi(other) as other_url:
        app = HostileApp(other_origin=other_url)
        with serve_asgi(app) as url:
            yield Hostile(url, app, other_url, other)


@pytest.fixture
def hostile(hostile_servers: Hostile) -> Hostile:
    """(function) The hostile app, with ``/away`` pointing at a second, recording origin;
    what both received is forgotten before each test (``/flaky`` counts its hits)."""
    for app in (hostile_servers.app, hostile_servers.other):
        app.received.clear()
        app.hits.clear()
    return hostile_servers


@pytest.fixture
def token_env(monkeypatch: pytest.MonkeyPatch) -> str:
    """(function) ``STAGING_TOKEN`` set to the hostile suite's token; returns the token."""
    monkeypatch.setenv("STAGING_TOKEN", TOKEN)
    for name in ("STAGING_URL", "GITHUB_STEP_SUMMARY"):
        monkeypatch.delenv(name, raising=False)
    return TOKEN
