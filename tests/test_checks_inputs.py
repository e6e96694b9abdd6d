"""The ``inputs`` check: the expected 4xx, the named fields, no 5xx, no stack trace."""

from __future__ import annotations

import pytest

from checkdriver import Recorder, answer, drive
from pytest_rehearsal.checks import inputs
from pytest_rehearsal.checks._base import Probe, Verdict
from pytest_rehearsal.checks.inputs import InputCheck, input_probe
from pytest_rehearsal.config import ChecksConfig, Defaults, InputEntry, Meta, RehearsalConfig

ENTRY = InputEntry(
    "POST", "/orders", json={"quantity": "x"}, expect_status=422, mentions=("quantity",)
)
PYDANTIC = (
    '{"detail":[{"type":"int_type","loc":["body","quantity"],'
    '"msg":"Input should be a valid integer"}]}'
)


def check(entry: InputEntry = ENTRY) -> InputCheck:
    (built,) = inputs.build(RehearsalConfig(checks=ChecksConfig(inputs=(entry,))))
    assert isinstance(built, InputCheck)
    return built


def judge(status: int | None, body: str = PYDANTIC, entry: InputEntry = ENTRY) -> Verdict:
    return drive(
        check(entry), lambda p: answer(p, status, (), body, error=None if status else "reset")
    )


def test_a_clean_refusal_passes() -> None:
    recorder = Recorder(lambda p: answer(p, 422, (), PYDANTIC))
    verdict = drive(check(), recorder)
    assert verdict.passed, verdict.message
    assert recorder.probes == [Probe("POST", "/orders", json={"quantity": "x"})]
    assert recorder.probes == [input_probe(ENTRY)]


def test_wrong_status_fails_with_a_body_excerpt() -> None:
    verdict = judge(400)
    assert not verdict.passed
    assert "status 400, expected 422" in verdict.message
    assert "Input should be a valid integer" in verdict.message
    assert "expected: refused with 422 naming quantity, without a stack trace" in verdict.message
    assert "retry:    not safe" in verdict.message


def test_accepting_the_invalid_input_fails() -> None:
    assert "status 201, expected 422" in judge(201, '{"id": 1}').message


def test_missing_mentions_are_named() -> None:
    entry = InputEntry("POST", "/orders", json={}, mentions=("quantity", "SKU"))
    verdict = judge(422, '{"detail": "bad sku"}', entry)
    assert "the body does not name quantity" in verdict.message
    assert judge(422, '{"detail": "Quantity and sku"}', entry).passed  # case-insensitive


def test_5xx_never_passes_even_when_it_is_the_expected_status() -> None:
    entry = InputEntry("POST", "/orders", expect_status=500)
    verdict = judge(500, "Internal Server Error", entry)
    assert "the server failed (500) instead of refusing the input" in verdict.message


def test_stack_trace_fails_and_the_body_is_not_quoted() -> None:
    trace = 'Traceback (most recent call last):\n  File "x.py"\nValueError: token=abc quantity'
    verdict = judge(500, trace)
    assert "the server failed (500)" in verdict.message
    assert 'the response shows a Python traceback ("Traceback (most recent call last)")' in (
        verdict.message
    )
    assert "token=abc" not in verdict.message


def test_a_trace_under_the_expected_status_still_fails() -> None:
    verdict = judge(422, "quantity: at com.shop.Api.parse(Api.java:12)")
    assert "a Java stack trace" in verdict.message


def test_no_response_fails() -> None:
    verdict = judge(None)
    assert "no response (reset)" in verdict.message


def test_ids_and_metadata() -> None:
    config = RehearsalConfig(
        defaults=Defaults(owner="@platform"),
        checks=ChecksConfig(inputs=(ENTRY, InputEntry("POST", "/orders", meta=Meta(owner="@pay")))),
    )
    built = inputs.build(config)
    assert [c.id for c in built] == ["inputs[POST /orders]", "inputs[POST /orders#2]"]
    assert [c.meta.owner for c in built] == ["@platform", "@pay"]
    assert inputs.build(RehearsalConfig()) == []


@pytest.mark.parametrize("status", [422])
def test_expectation_text(status: int) -> None:
    assert check().expected == (
        f"POST /orders with invalid input is refused with {status} naming quantity, "
        "without a stack trace"
    )
