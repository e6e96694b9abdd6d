"""``Reply``: how a response is shown in messages (text, binary bodies, retries, escapes)."""

from __future__ import annotations

import dataclasses

import pytest

from checkdriver import answer
from pytest_rehearsal.checks._base import Probe, Reply

GET = Probe("GET", "/health")


def reply(
    body: bytes | str = b"", content_type: str | None = "text/plain", **fields: object
) -> Reply:
    headers = [("Content-Type", content_type)] if content_type else []
    made = answer(GET, 200, headers, body, reason="OK")
    return dataclasses.replace(made, **fields)  # type: ignore[arg-type]


def test_a_text_body_is_an_excerpt() -> None:
    assert reply('{"ok": true}', "application/json").describe() == '200 OK · {"ok": true}'
    assert reply().describe() == "200 OK · empty body"


@pytest.mark.parametrize(
    ("body", "content_type", "shown"),
    [
        (
            bytes(range(256))[:64],
            "application/octet-stream",
            "64 bytes of application/octet-stream",
        ),
        (b"\x00" * 300, "text/plain", "300 bytes of text/plain"),
        (b"\xff\xfe\xfa" * 700, "image/png", "2.1 KiB of image/png"),
        (b"\x89PNG\r\n\x1a\n", None, "8 bytes without a Content-Type"),
    ],
)
def test_a_body_that_is_not_text_is_described_never_printed(
    body: bytes, content_type: str | None, shown: str
) -> None:
    described = reply(body, content_type).describe()
    assert described == f"200 OK · {shown} (not text)"
    assert "\ufffd" not in described  # no mojibake
    assert "\\x00" not in described


def test_a_body_cut_mid_character_at_the_read_limit_is_still_text() -> None:
    body = ("é" * 10).encode()[:-1]
    assert reply(body, "text/plain", truncated=True).describe().startswith("200 OK · éééé")


def test_the_declared_charset_is_used() -> None:
    described = reply("café".encode("latin-1"), "text/plain; charset=ISO-8859-1").describe()
    assert described == "200 OK · café"
    assert reply("café".encode("latin-1"), "text/plain").describe().endswith("(not text)")


def test_an_html_page_is_shown_by_its_title() -> None:
    page = "<!DOCTYPE html><html><head><title>Page not found at /health</title></head>" + (
        "<body>" + "x" * 3000 + "</body></html>"
    )
    assert reply(page, "text/html; charset=utf-8").describe() == (
        '200 OK · HTML page "Page not found at /health" (3.0 KiB)'
    )


def test_control_characters_from_the_server_are_escaped() -> None:
    described = reply("\x1b[2Jgone\x07", reason="OK\x1b]8;;http://x\x07").describe()
    assert "\x1b" not in described
    assert "\x07" not in described
    assert "\\x1b[2Jgone\\x07" in described
    assert described.startswith("200 OK\\x1b]8;;http://x\\x07 · ")
    title = reply("<html><title>\x1b[31mred</title></html>", "text/html").describe()
    assert '"\\x1b[31mred"' in title


def test_retries_are_visible() -> None:
    unavailable = dataclasses.replace(reply(), status=503, reason="Service Unavailable", attempts=2)
    assert unavailable.describe() == "503 Service Unavailable after 2 attempts · empty body"
    refused = Reply(GET, "http://x/health", None, attempts=3, error="connection refused")
    assert refused.describe() == "no response (connection refused) after 3 attempts"
    assert reply().status_line == "200 OK"


def test_json_never_raises() -> None:
    assert reply('{"a": 1}').json().value == {"a": 1}
    assert reply(b"\xff").json().problem == "not JSON"
    deep = reply("[" * 100_000 + "]" * 100_000).json()
    assert not deep.ok
    assert "deeper than 64" in deep.problem


def test_a_secret_in_an_excerpt_is_redacted() -> None:
    token = "gh" + "p_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5"
    assert token not in reply(f"oops {token}").describe()
