"""Checks the team writes itself: ordinary pytest tests that join the rehearsal.

The ``rehearsal`` marker puts a test in the rehearsal and carries its owner, expected result
and rollback note into every report; the ``staging`` fixture is an httpx client on the
staging URL with auth, timeouts and retries of idempotent requests already set up.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import httpx


@pytest.mark.rehearsal(
    owner="@web",
    expect="GET / answers 200 with the HTML home page naming the release",
    rollback_note="The page ships with the release; a rollback serves the previous page.",
)
def test_home_page_loads(staging: httpx.Client) -> None:
    response = staging.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "Example staging service" in response.text


@pytest.mark.rehearsal(
    owner="@platform",
    expect="/health reports the release under test, $RELEASE",
    rollback_note="After a rollback /health reports the previous release; the rehearsal "
    "verifies that itself.",
)
def test_health_reports_new_release(staging: httpx.Client) -> None:
    # RELEASE names the release under test, as it does for the restore in rehearsal.yaml.
    assert staging.get("/health").json() == {"ok": True, "version": os.environ["RELEASE"]}
