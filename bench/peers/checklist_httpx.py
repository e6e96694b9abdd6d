"""The floor: the benchmark's 13-request checklist as a bare httpx script, no test runner.

    BENCH_URL=http://127.0.0.1:PORT STAGING_TOKEN=... VIEWER_TOKEN=... python checklist_httpx.py

The same requests as ``test_checklist_httpx.py``, ``test_checklist.tavern.yaml`` and
``bench/configs/checklist.yaml`` (bench/README.md lists them), sent one after another over
one client. Prints the seconds the requests alone took; ``bench/run.py`` times the process.
"""

from __future__ import annotations

import os
import sys
import time
import uuid

import httpx

ORIGIN = "https://rehearsal-probe.invalid"
ACCEPT = "text/html,application/xhtml+xml,application/json;q=0.9,*/*;q=0.8"


def checklist(client: httpx.Client, admin: dict[str, str], viewer: dict[str, str]) -> None:
    """Send the 13 requests and assert on each reply (AssertionError names the first miss)."""
    health = client.get("/health")
    assert health.status_code == 200, health.text
    assert health.json()["ok"] is True, health.text

    home = client.get("/", headers={"Origin": ORIGIN, "Accept": ACCEPT})
    assert home.headers.get("x-content-type-options") == "nosniff"
    assert "frame-ancestors" in home.headers.get("content-security-policy", "")
    assert home.headers.get("referrer-policy") == "no-referrer"
    assert "x-powered-by" not in home.headers
    assert "server" not in home.headers
    assert home.headers.get("access-control-allow-origin") != ORIGIN

    baseline = client.get(f"/__rehearsal_{uuid.uuid4().hex}")
    for path in ("/.env", "/.git/config", "/.git/HEAD"):
        exposed = client.get(path)
        assert exposed.status_code == 404, path
        assert exposed.content == baseline.content, path

    for path in ("/admin", "/admin/settings"):
        assert client.get(path).status_code in {401, 403}, path
    assert client.get("/admin/settings", headers=viewer).status_code == 403

    key = {"Idempotency-Key": f'"{uuid.uuid4()}"', **admin}
    order = {"sku": "A1", "quantity": 2}
    first = client.post("/orders", json=order, headers=key)
    replay = client.post("/orders", json=order, headers=key)
    assert first.status_code == replay.status_code == 201
    assert first.json() == replay.json()
    assert client.post("/orders", json={**order, "quantity": 3}, headers=key).status_code == 422

    invalid = client.post("/orders", json={"sku": "A1", "quantity": "x"}, headers=admin)
    assert invalid.status_code == 422
    assert "quantity" in invalid.text


def main() -> int:
    """Run the checklist against ``$BENCH_URL``; print the seconds the requests took."""
    admin = {"Authorization": f"Bearer {os.environ['STAGING_TOKEN']}"}
    viewer = {"Authorization": f"Bearer {os.environ['VIEWER_TOKEN']}"}
    with httpx.Client(base_url=os.environ["BENCH_URL"], timeout=10) as client:
        started = time.perf_counter()
        checklist(client, admin, viewer)
        print(f"{time.perf_counter() - started:.6f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
