"""The benchmark's 13-request checklist as a hand-written pytest + httpx suite.

    BENCH_URL=http://127.0.0.1:PORT STAGING_TOKEN=... VIEWER_TOKEN=... \
        pytest test_checklist_httpx.py

What a team writes without the plugin: one session client, one test per concern. The same
requests as ``checklist_httpx.py`` (bench/README.md lists them).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import httpx
import pytest

ORIGIN = "https://rehearsal-probe.invalid"
ACCEPT = "text/html,application/xhtml+xml,application/json;q=0.9,*/*;q=0.8"


@pytest.fixture(scope="session")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(base_url=os.environ["BENCH_URL"], timeout=10) as client:
        yield client


@pytest.fixture(scope="session")
def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {os.environ['STAGING_TOKEN']}"}


@pytest.fixture(scope="session")
def viewer() -> dict[str, str]:
    return {"Authorization": f"Bearer {os.environ['VIEWER_TOKEN']}"}


def test_health(client: httpx.Client) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json()["ok"] is True


def test_security_headers(client: httpx.Client) -> None:
    headers = client.get("/", headers={"Origin": ORIGIN, "Accept": ACCEPT}).headers
    assert headers.get("x-content-type-options") == "nosniff"
    assert "frame-ancestors" in headers.get("content-security-policy", "")
    assert headers.get("referrer-policy") == "no-referrer"
    assert "x-powered-by" not in headers
    assert "server" not in headers
    assert headers.get("access-control-allow-origin") != ORIGIN


def test_no_exposed_files(client: httpx.Client) -> None:
    baseline = client.get(f"/__rehearsal_{uuid.uuid4().hex}")
    for path in ("/.env", "/.git/config", "/.git/HEAD"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.content == baseline.content, path


@pytest.mark.parametrize("path", ["/admin", "/admin/settings"])
def test_anonymous_is_refused(client: httpx.Client, path: str) -> None:
    assert client.get(path).status_code in {401, 403}


def test_viewer_is_refused(client: httpx.Client, viewer: dict[str, str]) -> None:
    assert client.get("/admin/settings", headers=viewer).status_code == 403


def test_order_retry_is_safe(client: httpx.Client, admin: dict[str, str]) -> None:
    headers = {"Idempotency-Key": f'"{uuid.uuid4()}"', **admin}
    order = {"sku": "A1", "quantity": 2}
    first = client.post("/orders", json=order, headers=headers)
    replay = client.post("/orders", json=order, headers=headers)
    assert first.status_code == replay.status_code == 201
    assert first.json() == replay.json()
    changed = client.post("/orders", json={**order, "quantity": 3}, headers=headers)
    assert changed.status_code == 422


def test_invalid_quantity_is_refused(client: httpx.Client, admin: dict[str, str]) -> None:
    response = client.post("/orders", json={"sku": "A1", "quantity": "x"}, headers=admin)
    assert response.status_code == 422
    assert "quantity" in response.text
