"""The ``staging`` fixture's client against a hostile staging service (cases 12-15, 18, 19, 23).

User-written checks get this client; whatever staging does, a request ends within the
budget, reads a bounded amount into memory, and follows no redirect off staging.
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import raw_servers
from certs import make_cert, server_context
from hostile_support import CREDENTIALS, SLACK, TIMEOUT, TOKEN

from conftest import Hostile
from pytest_rehearsal.client import (
    MAX_REDIRECTS,
    BodyTooLarge,
    RedirectRefused,
    StagingClient,
    make_ssl_context,
    make_staging_client,
)

MIB = 1024 * 1024


def client_for(url: str, ca_bundle: Path | None = None) -> StagingClient:
    context = make_ssl_context(url, ca_bundle)
    return make_staging_client(url, CREDENTIALS, timeout=TIMEOUT, retries=2, ssl_context=context)


@pytest.fixture
def staging(hostile: Hostile) -> Iterator[StagingClient]:
    with client_for(hostile.url) as client:
        yield client


def test_a_dripped_body_raises_at_the_total_deadline(
    staging: StagingClient, hostile: Hostile
) -> None:
    started = time.monotonic()
    with pytest.raises(httpx.TimeoutException) as caught:
        staging.get("/drip")
    assert str(caught.value) == f"exceeded the 2 s total deadline for GET {hostile.url}/drip"
    assert time.monotonic() - started < TIMEOUT + SLACK


def test_dripped_headers_raise_at_the_total_deadline() -> None:
    with raw_servers.serve_raw(raw_servers.header_drip) as url, client_for(url) as staging:
        started = time.monotonic()
        with pytest.raises(httpx.TimeoutException, match="exceeded the 2 s total deadline"):
            staging.get("/slow")
        assert time.monotonic() - started < TIMEOUT + SLACK


def test_a_streamed_endless_body_ends_at_the_deadline(staging: StagingClient) -> None:
    started = time.monotonic()
    sizes: list[int] = []
    with (
        staging.stream("GET", "/endless") as response,
        pytest.raises(httpx.TimeoutException, match="exceeded the 2 s total deadline"),
    ):
        sizes.extend(len(chunk) for chunk in response.iter_bytes())
    assert sum(sizes) > MIB  # streaming is not capped: only time is
    assert time.monotonic() - started < TIMEOUT + SLACK


def test_an_endless_body_read_into_memory_stops_at_the_cap(
    staging: StagingClient, hostile: Hostile
) -> None:
    with pytest.raises(BodyTooLarge) as caught:
        staging.get("/endless")
    assert str(caught.value) == (
        f"the body of GET {hostile.url}/endless is larger than 16MiB, the most the staging "
        f"client reads into memory; read it piece by piece with staging.stream(...)"
    )


def test_a_gzip_bomb_never_inflates_past_the_cap(staging: StagingClient) -> None:
    with pytest.raises(BodyTooLarge):
        staging.get("/gzip-bomb")  # the server builds (and caches) the bomb
    tracemalloc.start()
    try:
        with pytest.raises(BodyTooLarge):
            staging.get("/gzip-bomb")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 24 * MIB  # the cap (16 MiB) plus a piece, not the bomb's 50 MiB


def test_a_small_encoded_body_is_inflated_and_no_longer_claims_its_encoding(
    staging: StagingClient,
) -> None:
    response = staging.get("/gzip-small")
    assert response.json() == {"ok": True}
    assert "content-encoding" not in response.headers


def test_a_redirect_loop_stops_after_five_hops(staging: StagingClient, hostile: Hostile) -> None:
    assert staging.get("/loop").status_code == 302  # not followed unless asked
    hostile.app.hits.clear()
    with pytest.raises(httpx.TooManyRedirects) as caught:
        staging.get("/loop", follow_redirects=True)
    assert str(caught.value) == (
        f"stopped after 5 redirects (a loop?); the next was to {hostile.url}/loop"
    )
    assert hostile.app.hits["/loop"] == 1 + MAX_REDIRECTS


def test_a_redirect_to_another_origin_is_refused_and_nothing_reaches_it(
    staging: StagingClient, hostile: Hostile
) -> None:
    with pytest.raises(RedirectRefused) as caught:
        staging.get("/away", follow_redirects=True)
    assert str(caught.value) == (
        f"refused to follow a redirect to {hostile.other_url}/catch: another origin than "
        f"{hostile.url}/; the rehearsal only talks to staging"
    )
    assert hostile.other.received == []


def test_a_redirect_from_https_to_http_is_refused(hostile: Hostile, tmp_path: Path) -> None:
    cert = make_cert(tmp_path, "IP:127.0.0.1")
    downgrade = (
        b"HTTP/1.1 302 Found\r\nLocation: " + hostile.other_url.encode() + b"/catch\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    with (
        raw_servers.serve_raw(raw_servers.canned(downgrade), tls=server_context(cert)) as url,
        client_for(url, ca_bundle=cert.cert) as staging,
        pytest.raises(RedirectRefused) as caught,
    ):
        staging.get("/login", follow_redirects=True)
    assert str(caught.value) == (
        f"refused to follow a redirect from https to {hostile.other_url}/catch: that would drop TLS"
    )
    assert hostile.other.received == []


def test_a_retry_after_beyond_the_budget_returns_the_429_at_once(
    staging: StagingClient, hostile: Hostile
) -> None:
    started = time.monotonic()
    assert staging.get("/rate-limited").status_code == 429
    assert hostile.app.hits["/rate-limited"] == 1
    assert time.monotonic() - started < SLACK


def test_a_retry_after_within_the_budget_is_honoured(staging: StagingClient) -> None:
    assert staging.get("/busy-once").status_code == 200


def test_a_500_echoing_the_credential_is_returned_as_is(
    staging: StagingClient, hostile: Hostile
) -> None:
    # The client sends and returns; masking the echo in output is the engine's redactor's job.
    response = staging.get("/echo-auth")
    assert response.status_code == 500
    assert hostile.app.received[-1][1]["authorization"] == f"Bearer {TOKEN}"


def test_a_larger_timeout_passed_for_one_request_extends_its_budget(
    staging: StagingClient, hostile: Hostile
) -> None:
    with pytest.raises(httpx.TimeoutException) as caught:
        staging.get("/drip", timeout=3.0)
    assert str(caught.value) == f"exceeded the 3 s total deadline for GET {hostile.url}/drip"
