"""The built-in checks' sender against a hostile staging service (reference cases 12-25).

Each test asserts the exact reply, that it came within the budget (plus slack: a hang guard,
not a benchmark), and how many attempts were made.
"""

from __future__ import annotations

import socket
import threading
import time
import tracemalloc
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import pytest
import raw_servers
from hostile_support import MIB, SLACK, TIMEOUT, probe_sender

from conftest import Hostile
from pytest_rehearsal.checks._base import Probe, Reply
from pytest_rehearsal.client import ProbeSender
from pytest_rehearsal.sockets import open_connection


def timed_send(sender: ProbeSender, probe: Probe) -> tuple[Reply, float]:
    started = time.monotonic()
    reply = sender.send(probe)
    return reply, time.monotonic() - started


@pytest.fixture
def sender(hostile: Hostile) -> Iterator[ProbeSender]:
    sender = probe_sender(hostile.url)
    yield sender
    sender.client.close()


# -- case 15: drip-feed ---------------------------------------------------------------------------


def test_a_body_dripped_byte_by_byte_ends_at_the_total_deadline(sender: ProbeSender) -> None:
    reply, elapsed = timed_send(sender, Probe("GET", "/drip"))
    assert reply.status is None
    assert reply.error == "exceeded the 2 s total deadline for GET /drip"
    assert reply.attempts == 1  # running out of time is not worth another try
    assert elapsed < TIMEOUT + SLACK


def test_response_headers_dripped_byte_by_byte_end_at_the_total_deadline() -> None:
    with raw_servers.serve_raw(raw_servers.header_drip) as url:
        reply, elapsed = timed_send(probe_sender(url), Probe("GET", "/slow"))
    assert reply.status is None
    assert reply.error == "exceeded the 2 s total deadline for GET /slow"
    assert elapsed < TIMEOUT + SLACK


def test_a_request_that_started_late_in_its_round_ends_with_the_round(
    sender: ProbeSender,
) -> None:
    # Its round began 1.5 s ago (it waited for a thread): it ends with the round, and its
    # deadline is still the team's timeout, counted from the round's start.
    started = time.monotonic()
    reply = sender.send(Probe("GET", "/drip"), not_after=started + TIMEOUT - 1.5)
    assert reply.error == f"exceeded the {TIMEOUT:g} s total deadline for GET /drip"
    assert time.monotonic() - started < 0.5 + SLACK


def test_a_round_of_parallel_probes_all_end_by_the_deadline(sender: ProbeSender) -> None:
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=32) as pool:
        replies = list(pool.map(sender.send, [Probe("GET", "/drip")] * 32))
    assert {r.error for r in replies} == {"exceeded the 2 s total deadline for GET /drip"}
    assert time.monotonic() - started < TIMEOUT + SLACK


# -- cases 18, 19: endless body, gzip bomb --------------------------------------------------------


def test_an_endless_body_stops_at_the_read_limit(sender: ProbeSender) -> None:
    reply, elapsed = timed_send(sender, Probe("GET", "/endless"))
    assert reply.status == 200
    assert reply.truncated
    assert len(reply.body) == MIB
    assert reply.reason == "OK (body longer than 1MiB; only the first 1MiB was read)"
    assert elapsed < TIMEOUT + SLACK


def test_a_gzip_bomb_is_inflated_only_up_to_the_read_limit(sender: ProbeSender) -> None:
    sender.send(Probe("GET", "/gzip-bomb"))  # the server builds (and caches) the bomb
    tracemalloc.start()
    try:
        reply = sender.send(Probe("GET", "/gzip-bomb"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert reply.status == 200
    assert reply.truncated
    assert reply.body == bytes(MIB)
    assert reply.reason == (
        "OK (gzip body although identity was asked for, over 1MiB once inflated; "
        "only the first 1MiB was read)"
    )
    assert peak < 8 * MIB  # inflated unbounded, it would be 50 MiB


# -- cases 12, 14: redirects ----------------------------------------------------------------------


def test_a_redirect_to_another_origin_is_reported_not_followed(
    sender: ProbeSender, hostile: Hostile
) -> None:
    reply = sender.send(Probe("GET", "/away"))
    assert reply.status == 302
    assert reply.reason == f"Found (redirect to {hostile.other_url}/catch, not followed)"
    assert hostile.other.received == []


def test_a_redirect_loop_is_one_reply(sender: ProbeSender, hostile: Hostile) -> None:
    reply = sender.send(Probe("GET", "/loop"))
    assert reply.status == 302
    assert reply.reason == f"Found (redirect to {hostile.url}/loop, not followed)"
    assert hostile.app.hits["/loop"] == 1


# -- cases 23, 25: Retry-After and transient statuses ----------------------------------------------


def test_a_retry_after_beyond_the_budget_is_not_waited_for(
    sender: ProbeSender, hostile: Hostile
) -> None:
    reply, elapsed = timed_send(sender, Probe("GET", "/rate-limited"))
    assert reply.status == 429
    assert reply.reason == (
        "Too Many Requests (rate limited: Retry-After 3600 s exceeds the 2 s budget)"
    )
    assert reply.attempts == 1
    assert hostile.app.hits["/rate-limited"] == 1
    assert elapsed < SLACK


def test_a_retry_after_within_the_budget_is_honoured(sender: ProbeSender) -> None:
    reply, elapsed = timed_send(sender, Probe("GET", "/busy-once"))
    assert reply.status == 200
    assert reply.attempts == 2
    assert elapsed < TIMEOUT + SLACK


def test_a_flaky_502_is_retried_for_get_only(sender: ProbeSender, hostile: Hostile) -> None:
    reply = sender.send(Probe("GET", "/flaky"))
    assert (reply.status, reply.attempts) == (200, 2)
    hostile.app.hits.clear()
    post = sender.send(Probe("POST", "/flaky", json={"sku": "A1"}))
    assert (post.status, post.attempts) == (502, 1)


# -- case 16: connection refused ------------------------------------------------------------------


def test_a_refused_connection_is_retried_briefly_and_named() -> None:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
    reply, elapsed = timed_send(probe_sender(f"http://127.0.0.1:{port}"), Probe("GET", "/health"))
    assert reply.error == "connection failed: [Errno 111] Connection refused"
    assert reply.attempts == 3
    assert elapsed < TIMEOUT + SLACK


# -- a name lookup that hangs ----------------------------------------------------------------------

SLOW_HOST = "staging.slow-dns.test"


@pytest.fixture
def hanging_resolver(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Looking up SLOW_HOST hangs (a broken resolver cannot be real on loopback only)."""
    released = threading.Event()
    real = socket.getaddrinfo

    def getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        if host == SLOW_HOST and not kwargs.get("flags", 0) & socket.AI_NUMERICHOST:
            released.wait(30)
            host = "127.0.0.1"
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield
    released.set()


def test_a_hanging_name_lookup_ends_at_the_total_deadline(
    hostile: Hostile, hanging_resolver: None
) -> None:
    url = f"http://{SLOW_HOST}:{urlsplit(hostile.url).port}"
    reply, elapsed = timed_send(probe_sender(url), Probe("GET", "/health"))
    assert reply.status is None
    assert reply.error == "exceeded the 2 s total deadline for GET /health"
    assert reply.attempts == 1
    assert elapsed < TIMEOUT + SLACK


def test_a_name_lookup_is_abandoned_after_the_timeout(hanging_resolver: None) -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"^resolving staging\.slow-dns\.test took longer"):
        open_connection(SLOW_HOST, 80, 0.2)
    assert time.monotonic() - started < 0.2 + SLACK


# -- case 20: truncated body, header bombs ---------------------------------------------------------

TRUNCATED = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello"


def test_a_truncated_body_is_a_protocol_error_retried_for_get_only() -> None:
    with raw_servers.serve_raw(raw_servers.canned(TRUNCATED)) as url:
        sender = probe_sender(url)
        reply, elapsed = timed_send(sender, Probe("GET", "/short"))
        post = sender.send(Probe("POST", "/short", content=b"x"))
    assert reply.error == (
        "protocol error: peer closed connection without sending complete message body "
        "(received 5 bytes, expected 100)"
    )
    assert reply.attempts == 3
    assert post.attempts == 1
    assert elapsed < TIMEOUT + SLACK


@pytest.mark.parametrize(
    "handler", [raw_servers.header_bomb, raw_servers.many_headers], ids=["1MiB", "100k"]
)
def test_a_header_bomb_is_refused(handler: raw_servers.Handler) -> None:
    with raw_servers.serve_raw(handler) as url:
        reply, elapsed = timed_send(probe_sender(url), Probe("GET", "/"))
    assert reply.error == "protocol error: the response head is too large (Receive buffer too long)"
    assert elapsed < TIMEOUT + SLACK


# -- cases 21, 22: early answers and aborts while sending a body -----------------------------------

EARLY_413 = (
    b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 8\r\nConnection: close\r\n\r\ntoo big!"
)


def test_an_early_413_while_the_body_is_sent_is_the_result() -> None:
    with raw_servers.serve_raw(raw_servers.canned(EARLY_413)) as url:
        sender = probe_sender(url)
        reply = sender.send(Probe("POST", "/upload", content=bytes(8 * MIB)))
        again = sender.send(Probe("GET", "/upload"))
    assert (reply.status, reply.body, reply.attempts) == (413, b"too big!", 1)
    assert again.status == 413  # the pool still works after the half-sent upload


def test_a_reset_without_response_fails_a_post_without_retrying() -> None:
    with raw_servers.serve_raw(raw_servers.abort) as url:
        reply, elapsed = timed_send(probe_sender(url), Probe("POST", "/orders", json={"a": 1}))
    assert reply.status is None
    # The reset reaches whichever socket call comes first: the body's send (then the read
    # finds the connection closed) or the read itself.
    assert reply.error in {
        "the server reset the connection ([Errno 104] Connection reset by peer)",
        "the server closed the connection without a response",
    }
    assert reply.attempts == 1
    assert elapsed < TIMEOUT + SLACK
