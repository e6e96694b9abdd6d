"""The ``retry_safe`` check: replay with the same key, a changed payload under it, keys."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from checkdriver import Recorder, answer, drive
from pytest_rehearsal.checks import retry_safe
from pytest_rehearsal.checks._base import Probe, Reply
from pytest_rehearsal.checks.retry_safe import RetrySafeCheck, first_difference, variant
from pytest_rehearsal.config import ChecksConfig, RehearsalConfig, RetrySafeEntry

ORDER = {"sku": "A1", "quantity": 2}


def check(**entry: Any) -> RetrySafeCheck:
    fields = {"method": "POST", "path": "/orders", "json": ORDER, **entry}
    config = RehearsalConfig(checks=ChecksConfig(retry_safe=(RetrySafeEntry(**fields),)))
    (built,) = retry_safe.build(config)
    assert isinstance(built, RetrySafeCheck)
    return built


class Server:
    """An idempotency-key store with switchable mistakes."""

    def __init__(self, *, replays: bool = True, compares: bool = True, mismatch: int = 422) -> None:
        self.replays = replays
        self.compares = compares
        self.mismatch = mismatch
        self.stored: dict[str, tuple[Any, bytes]] = {}
        self.created = 0

    def __call__(self, probe: Probe) -> Reply:
        key = dict(probe.headers)["Idempotency-Key"]
        if self.replays and key in self.stored:
            payload, body = self.stored[key]
            if payload == probe.json or not self.compares:
                return answer(probe, 201, [("Content-Type", "application/json")], body)
            return answer(probe, self.mismatch, (), '{"detail": "key reused"}')
        self.created += 1
        body = json.dumps({"id": f"ord_{self.created}", **probe.json, "at": self.created}).encode()
        self.stored[key] = (probe.json, body)
        return answer(probe, 201, [("Content-Type", "application/json")], body)


def test_a_correct_endpoint_passes_in_three_rounds_with_one_fresh_quoted_key() -> None:
    server = Server()
    recorder = Recorder(server)
    verdict = drive(check(), recorder)
    assert verdict.passed, verdict.message
    assert [len(batch) for batch in recorder.rounds] == [1, 1, 1]
    first, replay, mismatch = recorder.probes
    assert first == replay
    key = dict(first.headers)["Idempotency-Key"]
    assert re.fullmatch(r'"[0-9a-f-]{36}"', key)  # an RFC 8941 sf-string holding a UUID4
    assert dict(mismatch.headers)["Idempotency-Key"] == key
    assert mismatch.json == {"sku": "A1", "quantity": 3}
    assert all(p.is_idempotent for p in recorder.probes)
    assert server.created == 1


def test_the_bare_key_format_sends_the_raw_uuid_in_every_round() -> None:
    server = Server()
    recorder = Recorder(server)
    verdict = drive(check(key_format="bare"), recorder)
    assert verdict.passed, verdict.message
    keys = [dict(probe.headers)["Idempotency-Key"] for probe in recorder.probes]
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", keys[0])
    assert keys == [keys[0]] * 3
    assert server.created == 1


@pytest.mark.parametrize(
    ("key_format", "shown"),
    [("quoted", 'Idempotency-Key: "<uuid4>"'), ("bare", "Idempotency-Key: <uuid4>")],
)
def test_a_refused_original_names_the_key_form_that_was_sent(key_format: str, shown: str) -> None:
    verdict = drive(check(key_format=key_format), lambda p: answer(p, 400, (), "bad key"))
    assert f"the endpoint must accept {shown}" in verdict.message


def test_every_run_uses_a_fresh_key() -> None:
    keys = set()
    for _ in range(2):
        recorder = Recorder(Server())
        drive(check(), recorder)
        keys.add(dict(recorder.probes[0].headers)["Idempotency-Key"])
    assert len(keys) == 2


def test_custom_header_name() -> None:
    recorder = Recorder(lambda p: answer(p, 500))
    drive(check(idempotency_header="X-Request-Key"), recorder)
    assert recorder.probes[0].headers[0][0] == "X-Request-Key"


def test_no_replay_fails_with_the_first_difference_and_says_retry_is_unsafe() -> None:
    verdict = drive(check(), Server(replays=False))
    assert not verdict.passed
    assert '$.id was "ord_1", then "ord_2"' in verdict.message
    assert "the request was executed again" in verdict.message
    assert "expected: the first response again (201, same body) for the same key" in verdict.message
    assert "retry:    not safe" in verdict.message
    assert "the different payload was accepted" in verdict.message  # both rounds reported
    # The resource id is what the replay must return: no hint to ignore it (issue 13).
    assert "ignore_fields" not in verdict.message


def test_volatile_fields_can_be_ignored_at_any_depth() -> None:
    calls = iter(range(10))

    def respond(probe: Probe) -> Reply:
        n = next(calls)
        if probe.json != ORDER:
            return answer(probe, 409)
        body = {"id": "ord_1", "meta": {"request_id": f"r{n}", "items": [{"at": n}]}}
        return answer(probe, 201, (), json.dumps(body))

    failing = drive(check(), respond)
    assert "$.meta.request_id" in failing.message
    assert "(if request_id changes on every response by design, list it in " in failing.message
    calls = iter(range(10))
    assert drive(check(ignore_fields=("request_id", "at")), respond).passed


def test_replay_with_a_different_status_fails() -> None:
    statuses = iter([201, 200, 422])
    verdict = drive(check(), lambda p: answer(p, next(statuses), (), "{}"))
    assert "the status changed from 201" in verdict.message


def test_replaying_the_first_response_for_a_changed_payload_fails() -> None:
    verdict = drive(check(), Server(compares=False))
    assert "the first response was replayed for a different payload" in verdict.message
    assert "($.quantity 2 -> 3)" in verdict.message


@pytest.mark.parametrize(("status", "ok"), [(422, True), (409, True), (400, False)])
def test_mismatch_statuses_default_to_409_and_422(status: int, ok: bool) -> None:
    verdict = drive(check(), Server(mismatch=status))
    assert verdict.passed is ok
    if not ok:
        assert "refused with 400, expected 409/422" in verdict.message


def test_mismatch_statuses_are_configurable() -> None:
    assert drive(check(conflict_status=(400,)), Server(mismatch=400)).passed


@pytest.mark.parametrize(
    ("status", "text"),
    [
        (500, "the original request failed"),
        (503, "the original request failed"),
        (400, "the original request was refused, so nothing can be replayed"),
        (None, "no response"),
    ],
)
def test_a_failed_original_stops_after_one_request(status: int | None, text: str) -> None:
    recorder = Recorder(lambda p: answer(p, status, (), "oops", error=None if status else "reset"))
    verdict = drive(check(), recorder)
    assert not verdict.passed
    assert text in verdict.message
    assert len(recorder.probes) == 1


def text_of(first: bytes, second: bytes) -> str | None:
    difference = first_difference(first, second)
    return None if difference is None else difference.text


def test_non_json_bodies_must_be_identical() -> None:
    assert first_difference(b"ok", b"ok") is None
    assert text_of(b"ok 1", b"ok 2") == "the body was 'ok 1', then 'ok 2'"
    assert text_of(b'{"a": 1}', b'{"a": 1, "b": 2}') == "$.b only in the replay"
    assert text_of(b'{"a": [1, 2]}', b'{"a": [1, 3]}') == "$.a[1] was 2, then 3"
    assert text_of(b'{"a": 1}', b'{"a": 1.0}') == "$.a was 1, then 1.0"


def test_binary_bodies_are_described_by_size_never_quoted() -> None:
    assert text_of(b"\x00\xff\x01", b"\x00\xfe") == (
        "the body was 3 bytes of binary data, then 2 bytes of binary data"
    )
    assert text_of(b"\x1b[2Jok", b"ok") == "the body was '\\x1b[2Jok', then 'ok'"


def test_json_nested_absurdly_deep_is_compared_as_bytes_without_crashing() -> None:
    deep = b"[" * 200_000 + b"]" * 200_000
    assert first_difference(deep, deep) is None
    assert text_of(deep, b"[]") is not None


@pytest.mark.parametrize(
    ("field", "volatile"),
    [
        *[(name, True) for name in ("created_at", "updatedAt", "timestamp", "served_by")],
        *[(name, True) for name in ("request_id", "requestId", "X-Request-ID", "trace_id")],
        *[(name, True) for name in ("date", "expires", "etag", "nonce", "took_ms")],
        *[(name, False) for name in ("id", "order_id", "orderId", "total", "status", "sku")],
        *[(name, False) for name in ("quantity", "transaction_id", "data", "attempts")],
    ],
)
def test_which_differing_fields_look_volatile(field: str, volatile: bool) -> None:
    first = json.dumps({"x": [{field: 1}]}).encode()
    second = json.dumps({"x": [{field: 2}]}).encode()
    difference = first_difference(first, second)
    assert difference is not None
    assert difference.field == field
    assert difference.looks_volatile is volatile


@pytest.mark.parametrize(
    ("payload", "changed", "words"),
    [
        ({"sku": "A1", "quantity": 2}, {"sku": "A1", "quantity": 3}, "$.quantity 2 -> 3"),
        (
            {"sku": "A1", "lines": [{"n": 1.5}]},
            {"sku": "A1", "lines": [{"n": 2.5}]},
            "$.lines[0].n",
        ),
        ({"sku": "A1"}, {"sku": "A1-variant"}, "$.sku 'A1' -> 'A1-variant'"),
        ({"gift": True}, {"gift": False}, "$.gift True -> False"),
        ({"note": None}, {"note": None, "_rehearsal_variant": 1}, "added _rehearsal_variant: 1"),
        (None, {"_rehearsal_variant": 1}, "instead of None"),
        (7, 8, "$ 7 -> 8"),
    ],
)
def test_variant_payloads(payload: Any, changed: Any, words: str) -> None:
    new, description = variant(payload)
    assert new == changed
    assert new != payload
    assert words in description


def test_duplicate_entries_get_numbered_ids() -> None:
    entry = RetrySafeEntry(method="post", path="/orders", json=ORDER)
    config = RehearsalConfig(checks=ChecksConfig(retry_safe=(entry, entry)))
    assert [c.id for c in retry_safe.build(config)] == [
        "retry_safe[POST /orders]",
        "retry_safe[POST /orders#2]",
    ]


def test_expectation_text() -> None:
    text = check().expected
    assert "same Idempotency-Key returns the first response" in text
    assert "refused with 409/422" in text
