"""The example staging service, its deploy script, serve.py and the demo driver.

Every test talks to a real uvicorn server on 127.0.0.1 (the fixtures in ``conftest.py``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from examples.staging_app import DEFECTS, create_app, create_app_from_env
from examples.staging_app.app import (
    HTML_CSP,
    JSON_CSP,
    MalformedMultipart,
    MultipartCounter,
)

from servers import (
    EXAMPLES_DIR,
    ExampleServer,
    StagingAppFactory,
    run_deploy,
    serve_asgi,
)

LIMIT = 1024 * 1024
ORIGIN = "https://evil.example"
# The gitleaks rules the reference names (mission anchors section d3), as Python regexes.
AWS_KEY = re.compile(r"\b((?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16})\b")
PRIVATE_KEY = re.compile(
    r"(?i)-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----[\s\S-]{64,}?KEY(?: BLOCK)?-----"
)


@pytest.fixture
def good(example_server: ExampleServer) -> Iterator[httpx.Client]:
    """A client on the shared good app."""
    with httpx.Client(base_url=example_server.url, timeout=10) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def multipart(size: int, field: str = "file", boundary: str = "b0undary") -> tuple[bytes, str]:
    """A multipart/form-data body with one part *field* holding *size* bytes."""
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="{field}"; filename="blob.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    body = head + b"x" * size + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def multipart_overhead() -> int:
    body, _ = multipart(0)
    return len(body)


def raw_request(url: str, request: bytes) -> bytes:
    """Send *request* on a raw socket and return everything up to the end of the headers."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while b"\r\n\r\n" not in received and len(received) < 65536:
            chunk = sock.recv(4096)
            if not chunk:
                break
            received += chunk
    return received


# -- health and releases ------------------------------------------------------------------------


def test_health_reports_the_current_release(good: httpx.Client) -> None:
    response = good.get("/health")
    assert response.status_code == 200
    assert response.json() == {"ok": True, "version": "1.5.0"}


def test_health_follows_rollback_and_deploy(example_url: str, release_root: Path) -> None:
    with httpx.Client(base_url=example_url, timeout=10) as client:
        rollback = run_deploy(release_root, "rollback")
        assert "rollback: current 1.5.0 -> 1.4.2" in rollback.stdout
        assert client.get("/health").json() == {"ok": True, "version": "1.4.2"}
        run_deploy(release_root, "deploy", "1.5.0")
        assert client.get("/health").json() == {"ok": True, "version": "1.5.0"}


def test_health_without_a_release_is_503(
    staging_app_factory: StagingAppFactory, tmp_path: Path
) -> None:
    url = staging_app_factory(release_root=tmp_path)
    response = httpx.get(url + "/health", timeout=10)
    assert response.status_code == 503
    assert response.json()["ok"] is False


# -- pages, headers, unknown paths --------------------------------------------------------------


def test_home_page_is_html_with_a_hardened_session_cookie(good: httpx.Client) -> None:
    response = good.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "Release 1.5.0" in response.text
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("session=")
    attributes = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"secure", "httponly", "samesite=lax"} <= attributes
    assert not AWS_KEY.search(response.text)
    assert not PRIVATE_KEY.search(response.text)


@pytest.mark.parametrize(
    ("method", "path", "status", "csp"),
    [
        ("GET", "/", 200, HTML_CSP),
        ("GET", "/health", 200, JSON_CSP),
        ("GET", "/no-such-page", 404, JSON_CSP),
        ("GET", "/admin", 401, JSON_CSP),
        ("POST", "/orders", 401, JSON_CSP),
        ("POST", "/upload", 415, JSON_CSP),
        ("DELETE", "/health", 405, JSON_CSP),
    ],
)
def test_every_response_carries_the_header_policy(
    good: httpx.Client, method: str, path: str, status: int, csp: str
) -> None:
    response = good.request(method, path, headers={"Origin": ORIGIN})
    assert response.status_code == status
    headers = response.headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["content-security-policy"] == csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe" not in csp
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["cache-control"] == "no-store"
    for name in ("server", "x-powered-by", "access-control-allow-origin"):
        assert name not in headers
    assert "strict-transport-security" not in headers  # plain http on loopback


@pytest.mark.parametrize("path", ["/.env", "/.git/config", "/no-such-page", "/admin/x"])
def test_unknown_paths_are_json_404(good: httpx.Client, path: str) -> None:
    response = good.get(path)
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}


# -- permissions --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "who", "status"),
    [
        ("/admin", None, 401),
        ("/admin", "viewer", 200),
        ("/admin", "admin", 200),
        ("/admin", "stranger", 401),
        ("/admin/settings", None, 401),
        ("/admin/settings", "viewer", 403),
        ("/admin/settings", "admin", 200),
        ("/admin/settings", "stranger", 401),
    ],
)
def test_admin_area_access(
    good: httpx.Client,
    admin_token: str,
    viewer_token: str,
    path: str,
    who: str | None,
    status: int,
) -> None:
    tokens = {"admin": admin_token, "viewer": viewer_token, "stranger": "not-a-token"}
    headers = bearer(tokens[who]) if who else {}
    response = good.get(path, headers=headers)
    assert response.status_code == status
    if status == 401:
        assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("authorization", ["Basic {token}", "{token}", "Bearer", "bearer  {token}"])
def test_only_the_bearer_scheme_authenticates(
    good: httpx.Client, admin_token: str, authorization: str
) -> None:
    response = good.get(
        "/admin", headers={"Authorization": authorization.format(token=admin_token)}
    )
    # The scheme is case-insensitive and extra spaces are tolerated; anything else is refused.
    expected = 200 if authorization.lower().startswith("bearer ") else 401
    assert response.status_code == expected


# -- uploads ------------------------------------------------------------------------------------


def test_upload_within_the_limit_is_stored(good: httpx.Client) -> None:
    body, content_type = multipart(LIMIT - multipart_overhead())
    assert len(body) == LIMIT
    response = good.post("/upload", content=body, headers={"Content-Type": content_type})
    assert response.status_code == 201
    assert response.json() == {"size": LIMIT - multipart_overhead()}


def test_upload_over_the_limit_is_413(good: httpx.Client) -> None:
    body, content_type = multipart(LIMIT - multipart_overhead() + 1)
    response = good.post("/upload", content=body, headers={"Content-Type": content_type})
    assert response.status_code == 413
    assert response.json() == {"detail": f"Request body exceeds {LIMIT} bytes"}


def test_upload_over_the_limit_is_refused_before_the_body_is_read(
    example_server: ExampleServer,
) -> None:
    # Only the headers are sent: the answer must come from Content-Length alone.
    request = (
        "POST /upload HTTP/1.1\r\nHost: staging\r\n"
        f"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: {10 * LIMIT}\r\n\r\n"
    ).encode()
    assert raw_request(example_server.url, request).startswith(b"HTTP/1.1 413 ")


@pytest.mark.parametrize(("size", "status"), [(1000, 201), (LIMIT + 1000, 413)])
def test_upload_limit_holds_for_chunked_bodies(good: httpx.Client, size: int, status: int) -> None:
    body, content_type = multipart(size)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    # An iterator body goes out with Transfer-Encoding: chunked, without Content-Length.
    response = good.post("/upload", content=chunks(), headers={"Content-Type": content_type})
    assert response.status_code == status


def test_upload_through_httpx_files(good: httpx.Client) -> None:
    response = good.post("/upload", files={"file": ("a.txt", b"hello world", "text/plain")})
    assert response.status_code == 201
    assert response.json() == {"size": 11}


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (multipart(10, field="other")[0], multipart(10)[1], 422),
        (b"hello", "text/plain", 415),
        (b"--b0undary\r\nno end of headers", multipart(0)[1], 400),
        (multipart(10)[0][:-8], multipart(10)[1], 400),
    ],
    ids=["missing-field", "not-multipart", "truncated-headers", "no-closing-boundary"],
)
def test_bad_uploads_are_4xx(
    good: httpx.Client, body: bytes, content_type: str, status: int
) -> None:
    response = good.post("/upload", content=body, headers={"Content-Type": content_type})
    assert response.status_code == status
    if status == 422:
        assert response.json()["detail"][0]["loc"] == ["body", "file"]


def test_multipart_counter_handles_any_chunking() -> None:
    boundary = "--Zq9"
    body = (
        "preamble\r\n"
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="note"\r\n\r\n'
        "hi\r\n--not-the-boundary\r\n"
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="name=x.bin"\r\n\r\n'
        f"{'y' * 300}\r\n"
        f"--{boundary}--\r\nepilogue"
    ).encode()
    for size in (1, 2, 3, 7, 64, len(body)):
        counter = MultipartCounter(boundary.encode())
        for start in range(0, len(body), size):
            counter.feed(body[start : start + size])
        assert counter.finish() == {"note": len("hi\r\n--not-the-boundary"), "file": 300}


def test_multipart_counter_rejects_a_bad_delimiter() -> None:
    counter = MultipartCounter(b"b")
    with pytest.raises(MalformedMultipart):
        counter.feed(b"--bXX")


# -- orders and idempotency ---------------------------------------------------------------------


@pytest.fixture
def admin(example_server: ExampleServer, admin_token: str) -> Iterator[httpx.Client]:
    """A client on the shared good app, signed in as admin."""
    with httpx.Client(
        base_url=example_server.url, headers=bearer(admin_token), timeout=10
    ) as client:
        yield client


def test_orders_require_the_admin_token(good: httpx.Client, viewer_token: str) -> None:
    assert good.post("/orders", json={"sku": "A1"}).status_code == 401
    assert good.post("/orders", json={"sku": "A1"}, headers=bearer(viewer_token)).status_code == 403


def test_orders_without_a_key_are_created_each_time(admin: httpx.Client) -> None:
    first = admin.post("/orders", json={"sku": "A1", "quantity": 2})
    second = admin.post("/orders", json={"sku": "A1", "quantity": 2})
    assert first.status_code == second.status_code == 201
    assert set(first.json()) == {"id", "sku", "quantity", "created_at"}
    assert first.json()["quantity"] == 2
    assert first.json()["id"] != second.json()["id"]


def test_order_quantity_defaults_to_one(admin: httpx.Client) -> None:
    assert admin.post("/orders", json={"sku": "A1"}).json()["quantity"] == 1


@pytest.mark.parametrize("quote", [True, False], ids=["sf-string", "bare-token"])
def test_idempotent_replay_returns_the_stored_response(admin: httpx.Client, quote: bool) -> None:
    key = str(uuid.uuid4())
    headers = {"Idempotency-Key": f'"{key}"' if quote else key}
    first = admin.post("/orders", json={"sku": "A1", "quantity": 2}, headers=headers)
    replay = admin.post("/orders", json={"quantity": 2, "sku": "A1"}, headers=headers)
    assert first.status_code == replay.status_code == 201
    assert replay.content == first.content
    assert replay.headers["idempotent-replayed"] == "true"


def test_idempotency_key_with_a_different_payload_is_422(admin: httpx.Client) -> None:
    headers = {"Idempotency-Key": f'"{uuid.uuid4()}"'}
    assert admin.post("/orders", json={"sku": "A1"}, headers=headers).status_code == 201
    mismatch = admin.post("/orders", json={"sku": "A1", "quantity": 3}, headers=headers)
    assert mismatch.status_code == 422
    assert mismatch.json() == {"detail": "Idempotency-Key reused with a different payload"}


def test_quoted_and_bare_forms_name_the_same_key(admin: httpx.Client) -> None:
    key = str(uuid.uuid4())
    first = admin.post("/orders", json={"sku": "A1"}, headers={"Idempotency-Key": f'"{key}"'})
    bare = admin.post("/orders", json={"sku": "A1"}, headers={"Idempotency-Key": key})
    assert bare.json() == first.json()


def test_concurrent_first_uses_of_a_key_create_one_order(
    example_server: ExampleServer, admin_token: str
) -> None:
    headers = {**bearer(admin_token), "Idempotency-Key": f'"{uuid.uuid4()}"'}
    bodies: list[bytes] = []

    def post() -> None:
        response = httpx.post(
            example_server.url + "/orders", json={"sku": "C"}, headers=headers, timeout=10
        )
        bodies.append(response.content)

    threads = [threading.Thread(target=post) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(bodies) == 8
    assert len(set(bodies)) == 1


def test_the_oldest_idempotency_keys_are_forgotten_first(
    staging_app_factory: StagingAppFactory, admin_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("examples.staging_app.app._MAX_STORED_KEYS", 2)
    url = staging_app_factory()
    with httpx.Client(base_url=url, headers=bearer(admin_token), timeout=10) as client:

        def order(key: str) -> str:
            response = client.post("/orders", json={"sku": "A1"}, headers={"Idempotency-Key": key})
            return str(response.json()["id"])

        first = {key: order(key) for key in ("k1", "k2", "k3")}
        assert order("k3") == first["k3"]
        assert order("k2") == first["k2"]
        assert order("k1") != first["k1"]  # evicted when k3 arrived


@pytest.mark.parametrize("key", ['""', "x" * 256, '"a"b"'])
def test_malformed_idempotency_keys_are_400(admin: httpx.Client, key: str) -> None:
    response = admin.post("/orders", json={"sku": "A1"}, headers={"Idempotency-Key": key})
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"sku": "A1", "quantity": "x"}, "quantity"),
        ({"sku": "A1", "quantity": 0}, "quantity"),
        ({"sku": "A1", "quantity": "2"}, "quantity"),
        ({"sku": "A1", "quantity": True}, "quantity"),
        ({"quantity": 1}, "sku"),
    ],
)
def test_invalid_orders_are_422_naming_the_field(
    admin: httpx.Client, payload: dict[str, Any], field: str
) -> None:
    response = admin.post("/orders", json=payload)
    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["detail"]] == [["body", field]]
    assert "Traceback" not in response.text


def test_latency_is_added_to_every_response(staging_app_factory: StagingAppFactory) -> None:
    url = staging_app_factory(latency=0.2)
    with httpx.Client(base_url=url, timeout=10) as client:
        for path in ("/health", "/no-such-page"):
            started = time.monotonic()
            client.get(path)
            # A lower bound only: the sleep guarantees it, scheduling can only add to it.
            assert time.monotonic() - started >= 0.15


# -- defect switches ----------------------------------------------------------------------------


def logged_line(log: Path, request_id: str) -> str:
    """The access-log line of the request with *request_id* (apps of one root share a log)."""
    lines = [line for line in log.read_text().splitlines() if f"request_id={request_id}" in line]
    assert len(lines) == 1, lines
    return lines[0]


def observe_log(client: httpx.Client, log: Path) -> tuple[str, ...]:
    """What the access log keeps of a request carrying credentials (fields after the time).

    ``/`` answers 200 whatever the defect, so only what is logged can differ."""
    request_id = str(uuid.uuid4())
    headers = {"X-Request-ID": request_id, **bearer("observed-token-1")}
    client.get("/", params={"access_token": "observed-token-2"}, headers=headers)
    return tuple(logged_line(log, request_id).replace(request_id, "ID").split(" ")[1:])


def observe(url: str, admin_token: str, viewer_token: str, log: Path) -> dict[str, Any]:
    """One summary per behaviour a defect may break, to compare an app against the good one."""
    with httpx.Client(base_url=url, timeout=10) as client:
        home = client.get("/", headers={"Origin": ORIGIN})
        health = client.get("/health")
        dotfiles = [client.get(path) for path in ("/.env", "/.git/config")]
        unknown = client.get(f"/no-such-page-{uuid.uuid4().hex}")
        admin = bearer(admin_token)
        key = {"Idempotency-Key": f'"{uuid.uuid4()}"'}
        first = client.post("/orders", json={"sku": "A1"}, headers={**admin, **key})
        replay = client.post("/orders", json={"sku": "A1"}, headers={**admin, **key})
        changed = client.post("/orders", json={"sku": "B2"}, headers={**admin, **key})
        invalid = client.post("/orders", json={"sku": "A1", "quantity": "x"}, headers=admin)
        over, content_type = multipart(LIMIT + 1)
        upload = client.post("/upload", content=over, headers={"Content-Type": content_type})
        cookie = home.headers.get("set-cookie", "").lower()
        return {
            "health": health.status_code,
            "security_headers": sorted(
                name
                for name in ("x-content-type-options", "content-security-policy", "x-frame-options")
                if name in health.headers and name in home.headers
            ),
            "referrer_policy": home.headers.get("referrer-policy"),
            "version_headers": (home.headers.get("server"), home.headers.get("x-powered-by")),
            "dotfiles_exposed": [
                r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
                for r in dotfiles
            ],
            "unknown_path": unknown.status_code,
            "anonymous_admin": [client.get(p).status_code for p in ("/admin", "/admin/settings")],
            "viewer_settings": client.get(
                "/admin/settings", headers=bearer(viewer_token)
            ).status_code,
            "anonymous_orders": client.post("/orders", json={"sku": "A1"}).status_code,
            "upload_over_limit": upload.status_code,
            "replay_same": replay.content == first.content,
            "changed_payload": changed.status_code,
            "invalid_input": (invalid.status_code, "Traceback" in invalid.text),
            "home_secrets": (bool(AWS_KEY.search(home.text)), bool(PRIVATE_KEY.search(home.text))),
            "cookie_flags": ("secure" in cookie, "httponly" in cookie),
            "cors": home.headers.get("access-control-allow-origin"),
            "access_log": observe_log(client, log),
        }


#: What each defect switch is allowed to change in :func:`observe` (and nothing else).
EFFECTS: dict[str, set[str]] = {
    "unhealthy": {"health"},
    "missing-header": {"security_headers"},
    "version-header": {"version_headers"},
    "exposed-env": {"dotfiles_exposed"},
    "soft-404": {"unknown_path"},
    "open-admin": {"anonymous_admin", "viewer_settings"},
    "viewer-admin": {"viewer_settings"},
    "unlimited-upload": {"upload_over_limit"},
    "broken-idempotency": {"replay_same", "changed_payload"},
    "traceback": {"invalid_input"},
    "leak-secret": {"home_secrets"},
    "weak-cookie": {"cookie_flags"},
    "cors-reflect": {"cors"},
    "log-authorization": {"access_log"},
    "log-full-url": {"access_log"},
}


def test_every_defect_has_its_expected_effect_listed() -> None:
    assert set(EFFECTS) == DEFECTS


@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_each_defect_changes_only_its_own_behaviour(
    shared_app_factory: StagingAppFactory,
    shared_release_root: Path,
    admin_token: str,
    viewer_token: str,
    defect: str,
) -> None:
    log = shared_release_root / "access.log"
    good = observe(shared_app_factory(), admin_token, viewer_token, log)
    broken = observe(shared_app_factory(defect), admin_token, viewer_token, log)
    changed = {name for name in good if good[name] != broken[name]}
    assert changed == EFFECTS[defect], {name: (good[name], broken[name]) for name in changed}


@pytest.fixture
def shared(shared_app_factory: StagingAppFactory) -> Any:
    """``shared(defect)``: a client on the shared app with that defect switched on."""
    clients: list[httpx.Client] = []

    def open_client(defect: str) -> httpx.Client:
        clients.append(httpx.Client(base_url=shared_app_factory(defect), timeout=10))
        return clients[-1]

    yield open_client
    for client in clients:
        client.close()


def test_unhealthy(shared: Any) -> None:
    response = shared("unhealthy").get("/health")
    assert response.status_code == 503
    assert response.json()["ok"] is False


def test_missing_header(shared: Any) -> None:
    headers = shared("missing-header").get("/").headers
    for name in ("x-content-type-options", "content-security-policy", "x-frame-options"):
        assert name not in headers
    assert headers["referrer-policy"] == "no-referrer"


def test_version_header(shared: Any) -> None:
    headers = shared("version-header").get("/health").headers
    assert headers["server"] == "uvicorn/0.29.0"
    assert headers["x-powered-by"] == "FastAPI/0.110"


def test_exposed_env(shared: Any) -> None:
    client = shared("exposed-env")
    env = client.get("/.env")
    assert env.status_code == 200
    assert env.headers["content-type"].startswith("text/plain")
    assert re.search(r"(?m)^APP_KEY=base64:\S+$", env.text)
    assert re.search(r"(?m)^DB_PASSWORD=\S+$", env.text)
    git = client.get("/.git/config")
    assert git.status_code == 200
    assert "[core]" in git.text
    assert "<html" not in git.text


def test_soft_404_answers_the_same_page_everywhere(shared: Any) -> None:
    client = shared("soft-404")
    pages = [client.get(path) for path in ("/no-such-page", "/.env", "/.git/config", "/a/b")]
    assert {page.status_code for page in pages} == {200}
    assert {page.headers["content-type"] for page in pages} == {"text/html; charset=utf-8"}
    assert len({page.content for page in pages}) == 1
    assert pages[0].text == client.get("/").text


def test_open_admin(shared: Any) -> None:
    client = shared("open-admin")
    assert client.get("/admin").status_code == 200
    assert client.get("/admin/settings").status_code == 200
    assert client.post("/orders", json={"sku": "A1"}).status_code == 401


def test_viewer_admin(shared: Any, viewer_token: str) -> None:
    client = shared("viewer-admin")
    assert client.get("/admin/settings", headers=bearer(viewer_token)).status_code == 200
    assert client.get("/admin/settings").status_code == 401


def test_unlimited_upload(shared: Any) -> None:
    body, content_type = multipart(4 * LIMIT)
    response = shared("unlimited-upload").post(
        "/upload", content=body, headers={"Content-Type": content_type}
    )
    assert response.status_code == 201
    assert response.json() == {"size": 4 * LIMIT}


def test_broken_idempotency(shared: Any, admin_token: str) -> None:
    client = shared("broken-idempotency")
    headers = {**bearer(admin_token), "Idempotency-Key": f'"{uuid.uuid4()}"'}
    first = client.post("/orders", json={"sku": "A1"}, headers=headers)
    replay = client.post("/orders", json={"sku": "A1"}, headers=headers)
    changed = client.post("/orders", json={"sku": "B2"}, headers=headers)
    assert first.status_code == replay.status_code == changed.status_code == 201
    assert first.json()["id"] != replay.json()["id"]


def test_traceback(shared: Any, admin_token: str) -> None:
    response = shared("traceback").post(
        "/orders", json={"sku": "A1", "quantity": "x"}, headers=bearer(admin_token)
    )
    assert response.status_code == 500
    assert response.text.startswith("Traceback (most recent call last)")
    assert "quantity" in response.text


def test_leak_secret(shared: Any) -> None:
    page = shared("leak-secret").get("/").text
    assert re.search(r"AKIA[A-Z0-9]{16}", page)
    assert "-----BEGIN RSA PRIVATE KEY-----" in page
    assert AWS_KEY.search(page)
    assert PRIVATE_KEY.search(page)


def test_weak_cookie(shared: Any) -> None:
    cookie = shared("weak-cookie").get("/").headers["set-cookie"].lower()
    assert cookie.startswith("session=")
    assert "secure" not in cookie
    assert "httponly" not in cookie


def test_cors_reflect(shared: Any) -> None:
    headers = shared("cors-reflect").get("/health", headers={"Origin": ORIGIN}).headers
    assert headers["access-control-allow-origin"] == ORIGIN
    assert headers["access-control-allow-credentials"] == "true"


@pytest.fixture
def logged(shared_app_factory: StagingAppFactory, shared_release_root: Path) -> Any:
    """``logged(defect)``: the access-log line of a request with credentials to that app."""

    def request(defect: str) -> str:
        request_id = str(uuid.uuid4())
        headers = {"X-Request-ID": request_id, **bearer("logged-token-1234")}
        with httpx.Client(base_url=shared_app_factory(defect), timeout=10) as client:
            client.get("/health", params={"access_token": "abc", "x": "1"}, headers=headers)
        return logged_line(shared_release_root / "access.log", request_id)

    return request


def test_the_access_log_has_one_line_per_request_without_credentials(logged: Any) -> None:
    line = logged("")
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ GET /health 200 request_id=[0-9a-f-]{36}", line
    ), line


def test_log_authorization(logged: Any) -> None:
    line = logged("log-authorization")
    assert line.endswith(' authorization="Bearer logged-token-1234"')
    assert "access_token" not in line


def test_log_full_url(logged: Any) -> None:
    line = logged("log-full-url")
    assert " GET /health?access_token=abc&x=1 200 " in line
    assert "logged-token" not in line


def test_the_access_log_escapes_what_could_forge_a_line(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    app = create_app(tmp_path, admin_token=None, viewer_token=None, access_log=log)
    with serve_asgi(app) as url:
        httpx.get(url + "/health", headers={"X-Request-ID": 'a"b\x7fc'}, timeout=10)
    assert log.read_text().splitlines()[0].endswith(" 503 request_id=a\\x22b\\x7fc")


def test_unknown_defects_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown defect"):
        create_app(tmp_path, defects=frozenset({"nope"}), admin_token=None, viewer_token=None)


def test_without_configured_tokens_nobody_is_admin(tmp_path: Path) -> None:
    app = create_app(tmp_path, admin_token=None, viewer_token=None)
    with serve_asgi(app) as url:
        for token in ("anything", "None"):
            response = httpx.get(url + "/admin", headers=bearer(token), timeout=10)
            assert response.status_code == 401


# -- configuration from the environment ---------------------------------------------------------


def test_app_from_env(release_root: Path, admin_token: str) -> None:
    app = create_app_from_env(
        {
            "STAGING_RELEASE_ROOT": str(release_root),
            "STAGING_DEFECTS": " version-header , ",
            "STAGING_UPLOAD_LIMIT": "100",
            "STAGING_ADMIN_TOKEN": admin_token,
        }
    )
    with serve_asgi(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        assert client.get("/health").headers["server"] == "uvicorn/0.29.0"
        assert client.get("/admin", headers=bearer(admin_token)).status_code == 200
        body, content_type = multipart(200)
        upload = client.post("/upload", content=body, headers={"Content-Type": content_type})
        assert upload.status_code == 413


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({}, "STAGING_RELEASE_ROOT is not set"),
        ({"STAGING_RELEASE_ROOT": "/x", "STAGING_LATENCY": "fast"}, "STAGING_LATENCY='fast'"),
        ({"STAGING_RELEASE_ROOT": "/x", "STAGING_UPLOAD_LIMIT": "1MiB"}, "STAGING_UPLOAD_LIMIT"),
        ({"STAGING_RELEASE_ROOT": "/x", "STAGING_DEFECTS": "slow"}, "unknown defect"),
    ],
)
def test_app_from_env_names_bad_values(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        create_app_from_env(environ)


def test_module_app_is_built_from_the_environment(
    release_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STAGING_RELEASE_ROOT", str(release_root))
    from examples.staging_app import app as module

    with serve_asgi(module.app) as url:
        assert httpx.get(url + "/health", timeout=10).json()["version"] == "1.5.0"


# -- deploy.sh ----------------------------------------------------------------------------------


def test_deploy_records_the_previous_release(release_root: Path) -> None:
    assert os.readlink(release_root / "current") == "releases/1.5.0"
    assert (release_root / "previous").read_text() == "1.4.2\n"
    assert (release_root / "releases" / "1.4.2" / "VERSION").read_text() == "1.4.2\n"
    status = run_deploy(release_root, "status").stdout
    assert status == "current: 1.5.0\nprevious: 1.4.2\n"


def test_deploy_prints_each_step(tmp_path: Path) -> None:
    first = run_deploy(tmp_path, "deploy", "1.0.0").stdout
    assert first == "deploy: creating release 1.0.0\ndeploy: current (none) -> 1.0.0\n"
    second = run_deploy(tmp_path, "deploy", "1.1.0").stdout.splitlines()
    assert second[-1] == "deploy: current 1.0.0 -> 1.1.0"
    again = run_deploy(tmp_path, "deploy", "1.1.0").stdout
    assert again == "deploy: 1.1.0 is already current; nothing to do\n"
    assert (tmp_path / "previous").read_text() == "1.0.0\n"


def test_rollback_twice_undoes_the_rollback(release_root: Path) -> None:
    run_deploy(release_root, "rollback")
    assert (release_root / "current" / "VERSION").read_text() == "1.4.2\n"
    second = run_deploy(release_root, "rollback")
    assert second.stdout.splitlines()[0] == "rollback: current 1.4.2 -> 1.5.0"
    assert (release_root / "current" / "VERSION").read_text() == "1.5.0\n"


def test_rollback_without_a_previous_release_fails(tmp_path: Path) -> None:
    run_deploy(tmp_path, "deploy", "1.0.0")
    result = run_deploy(tmp_path, "rollback", check=False)
    assert result.returncode == 1
    assert "rollback: no previous release recorded" in result.stderr
    assert (tmp_path / "current" / "VERSION").read_text() == "1.0.0\n"


def test_rollback_of_an_empty_root_fails(tmp_path: Path) -> None:
    result = run_deploy(tmp_path / "missing", "rollback", check=False)
    assert result.returncode == 1
    assert "does not exist" in result.stderr


def test_rollback_to_a_missing_release_fails(release_root: Path) -> None:
    shutil.rmtree(release_root / "releases" / "1.4.2")
    result = run_deploy(release_root, "rollback", check=False)
    assert result.returncode == 1
    assert "previous release 1.4.2 is missing" in result.stderr


def test_deploy_refuses_a_path_as_version(tmp_path: Path) -> None:
    result = run_deploy(tmp_path, "deploy", "../etc", check=False)
    assert result.returncode == 1
    assert "not a version" in result.stderr
    assert not (tmp_path / "releases").exists()


def test_deploy_requires_the_release_root(deploy_script: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "STAGING_RELEASE_ROOT"}
    result = subprocess.run(
        [str(deploy_script), "rollback"], env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 1
    assert "STAGING_RELEASE_ROOT is not set" in result.stderr


@pytest.mark.parametrize("args", [[], ["deploy"], ["rollback", "now"], ["upgrade"]])
def test_deploy_usage(tmp_path: Path, args: list[str]) -> None:
    result = run_deploy(tmp_path, *args, check=False)
    assert result.returncode == 2
    assert result.stderr.startswith("usage: deploy.sh")


# -- serve.py and the demo driver ---------------------------------------------------------------


def start_serve_py(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[str], str]:
    port_file = tmp_path / "url"
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLES_DIR / "serve.py"), *args, "--port-file", str(port_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 15
    while not port_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            _, stderr = process.communicate(timeout=10)
            pytest.fail(f"serve.py did not start: {stderr}")
        time.sleep(0.05)
    return process, port_file.read_text().strip()


def test_serve_py_serves_until_sigterm(
    tmp_path: Path, release_root: Path, admin_token: str
) -> None:
    env = {**os.environ, "STAGING_ADMIN_TOKEN": admin_token}
    process, url = start_serve_py(
        tmp_path, "--release-root", str(release_root), "--defects", "cors-reflect", env=env
    )
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
        response = httpx.get(url + "/health", headers={"Origin": ORIGIN}, timeout=10)
        assert response.json() == {"ok": True, "version": "1.5.0"}
        assert "server" not in response.headers
        assert response.headers["access-control-allow-origin"] == ORIGIN
        assert httpx.get(url + "/admin", headers=bearer(admin_token), timeout=10).status_code == 200
        # Logged by default in the release root, where staging-logs.sh reads it.
        assert " GET /health 200 request_id=-" in (release_root / "access.log").read_text()
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, _ = process.communicate(timeout=15)
    # uvicorn shuts down gracefully, then re-raises the signal, as a shell expects.
    assert process.returncode == -signal.SIGTERM
    assert stdout.strip() == url
    # (Not probing the freed port: under xdist another test's server may already own it.)


def test_serve_py_refuses_unknown_defects(tmp_path: Path) -> None:
    serve = [sys.executable, str(EXAMPLES_DIR / "serve.py")]
    result = subprocess.run(
        [*serve, "--release-root", str(tmp_path), "--defects", "slow"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "unknown defect(s) ['slow']" in result.stderr


def test_demo_driver_starts_and_stops_the_server(release_root: Path, tmp_path: Path) -> None:
    from examples import demo

    process, url = demo.start_server(dict(os.environ), release_root, tmp_path / "url")
    try:
        assert httpx.get(url + "/health", timeout=10).json()["version"] == "1.5.0"
    finally:
        demo.stop_server(process)
    assert process.returncode == -signal.SIGTERM
    command = demo.rehearsal_command(url)
    assert command[1:4] == ["-m", "pytest", "-p"]
    assert f"--staging-url={url}" in command


def child_env() -> dict[str, str]:
    """This environment minus what would make a child pytest think it is an xdist worker."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}


def test_demo_end_to_end(tmp_path: Path) -> None:
    """``make demo`` in a copy of examples/, so its .demo/ lands in a temporary directory."""
    copy = tmp_path / "repo"
    shutil.copytree(EXAMPLES_DIR, copy / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    # Its own session, so that on a timeout the server it started dies with it.
    demo = subprocess.Popen(
        [sys.executable, str(copy / "examples" / "demo.py")],
        cwd=copy,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = demo.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(demo.pid, signal.SIGKILL)
        output, _ = demo.communicate(timeout=10)
        pytest.fail(f"make demo did not finish within 300s:\n{output}")
    assert demo.returncode == 0, output
    report = json.loads((copy / ".demo" / "report.json").read_text())
    assert report["verdict"] == "ready", output
    assert report["rollback"]["outcome"] == "passed"
    assert "rollback: current 1.5.0 -> 1.4.2" in report["rollback"]["output_tail"]
    assert os.readlink(copy / ".demo" / "current") == "releases/1.5.0"
    assert "rollback passed: previous release (version 1.4.2) after " in output
    assert ", restored 1.5.0 after " in output
    assert report["deploy"]["previous"]["tracked"] == {"version": "1.4.2"}
    assert "deploy passed in " in output
    assert "PASSED   37 checks (-v lists them)" in output  # failures first, passes counted
    assert "the Markdown summary a reviewer reads is .demo/summary.md" in output
    assert (copy / ".demo" / "summary.md").read_text().startswith("## ✅ Staging rehearsal: ready")
    assert len(output.splitlines()) < 60  # what a reviewer reads fits one screen or two


#: The built-in check of examples/rehearsal.yaml that each defect must trip (None: none may).
TRIPS: dict[str, str | None] = {
    "unhealthy": "health",
    "missing-header": "headers",
    "version-header": "headers",
    "exposed-env": "secrets",
    "soft-404": None,  # a catch-all page is not an exposed file
    "open-admin": "permissions",
    "viewer-admin": "permissions",
    "unlimited-upload": "uploads",
    "broken-idempotency": "retry_safe",
    "traceback": "inputs",
    "leak-secret": "secrets",
    "weak-cookie": "headers",
    "cors-reflect": "headers",
    "log-authorization": "logging",
    "log-full-url": "logging",
}


@pytest.mark.parametrize("defect", ["", *sorted(TRIPS)], ids=["good", *sorted(TRIPS)])
@pytest.mark.usefixtures("staging_tokens_env")
def test_the_example_rehearsal_catches_each_defect(
    shared_app_factory: StagingAppFactory,
    shared_release_root: Path,
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    defect: str,
) -> None:
    """The checklist of examples/rehearsal.yaml, run by the plugin: the good app passes it,
    each defect trips the check made for it."""
    # staging-logs.sh reads this log rather than the demo's (rollback.env does not set it).
    monkeypatch.setenv("STAGING_ACCESS_LOG", str(shared_release_root / "access.log"))
    monkeypatch.setenv("RELEASE", "1.5.0")  # the deploy's and the restore's ${RELEASE}
    # The deploy of 1.5.0 acts on the release root this app serves (already on 1.5.0).
    monkeypatch.setenv("STAGING_RELEASE_ROOT", str(shared_release_root))
    report = pytester.path / "report.json"
    result = pytester.runpytest_inprocess(
        "-p",
        "no:cacheprovider",
        "--no-rollback",
        f"--staging-url={shared_app_factory(defect)}",
        f"--rehearsal-config={EXAMPLES_DIR / 'rehearsal.yaml'}",
        f"--rehearsal-report={report}",
        str(EXAMPLES_DIR / "demo_checks"),
    )
    checks = json.loads(report.read_text())["checks"]
    failed = {
        check["name"]
        for check in checks
        if check["id"].startswith("rehearsal::") and check["outcome"] != "passed"
    }
    expected = TRIPS.get(defect)
    output = result.stdout.str()
    if expected is None:
        assert (result.ret, failed) == (0, set()), output
    else:
        assert result.ret == 1, output
        assert expected in failed, output


def test_every_defect_is_in_the_rehearsal_matrix() -> None:
    assert set(TRIPS) == DEFECTS
