from __future__ import annotations

import html
import io
import json
import logging
import time
import urllib.parse

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_rehearsal.redact import (
    MASK,
    Redactor,
    Secret,
    install_log_redaction,
    mask_url,
    secret_in_arguments,
)


def test_secret_is_masked_everywhere_but_reveal() -> None:
    token = Secret("tok_live_123456")
    assert repr(token) == "Secret('***')"
    assert str(token) == MASK
    assert f"{token}" == MASK
    assert token.reveal() == "tok_live_123456"
    assert token == "tok_live_123456"
    assert token == Secret("tok_live_123456")
    assert token != "other"


def test_redactor_masks_every_known_value_longest_first() -> None:
    redact = Redactor(["abcd1234", "abcd1234XYZ"])
    assert redact("x abcd1234XYZ y abcd1234 z") == f"x {MASK} y {MASK} z"
    assert redact.bytes(b"abcd1234!") == f"{MASK}!".encode()


def test_redactor_ignores_values_too_short_to_mask_safely() -> None:
    redact = Redactor(["1", ""])
    assert not redact
    assert redact("1 2 3") == "1 2 3"


def test_mask_url_hides_userinfo_and_token_query_values() -> None:
    assert mask_url("https://user:pw@host/x") == f"https://{MASK}@host/x"
    assert mask_url("https://h/p?api_key=s3cret&page=2") == f"https://h/p?api_key={MASK}&page=2"
    assert mask_url("https://h/p?access_token=abc#frag") == f"https://h/p?access_token={MASK}#frag"
    assert mask_url("https://h/p?page=2") == "https://h/p?page=2"


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        # httpx and urllib.parse take the userinfo up to the authority's last "@".
        ("https://deploy:p@ss@staging.example/x", f"https://{MASK}@staging.example/x"),
        ("https://u:a@b@c@h:8443", f"https://{MASK}@h:8443"),
        # An "@" after the authority (a path, a query, a fragment) is no userinfo.
        ("https://h/users/@me?x=1", "https://h/users/@me?x=1"),
        ("https://h?email=a@b.example", "https://h?email=a@b.example"),
        ("https://h#to@me", "https://h#to@me"),
        # The credential words of a query, as the config loader refuses them.
        (
            "https://h/?passwort=geheim&X-Amz-Signature=ab",
            f"https://h/?passwort={MASK}&X-Amz-Signature={MASK}",
        ),
        # Not parseable as a URL: the userinfo is masked all the same.
        ("http://user:pw@[::1", f"http://{MASK}@[::1"),
    ],
)
def test_mask_url_takes_the_userinfo_as_http_clients_split_it(url: str, masked: str) -> None:
    assert mask_url(url) == masked


@pytest.mark.parametrize("unit", ["a", "a-", "a:", "x://", "?a", "&", "https://a"])
def test_mask_url_takes_linear_time_on_a_hostile_location(unit: str) -> None:
    # A redirect's Location comes from staging; each letter of a long run used to start a
    # scheme that rescanned the run (80 000 letters: 4 s). Linear, 256 KiB take milliseconds.
    url = "https://h/" + unit * (256 * 1024 // len(unit))
    started = time.perf_counter()
    mask_url(url)
    assert time.perf_counter() - started < 3.0


def test_redactor_masks_the_escaped_spellings_of_a_secret() -> None:
    secret = 'tok"quote&amp<less>\\back/slash é'
    redact = Redactor([secret])
    for spelling in (
        repr(secret)[1:-1],
        json.dumps(secret)[1:-1],
        html.escape(secret),
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote_plus(secret),
    ):
        assert redact(f"<{spelling}>") == f"<{MASK}>", spelling


QUOTED = "tok'SECRET\\7f_x"  # tok'SECRET\7f_x: a single quote and a backslash


@pytest.mark.parametrize(
    "shown",
    [
        repr(f'got "{QUOTED}"'),  # repr escapes ' as \' once the string also holds "
        repr(f'Authorization-ish "{QUOTED}" and more'),
        repr(repr(QUOTED)),  # a repr of a repr
        repr(json.dumps({"token": QUOTED})),  # JSON inside a repr
        json.dumps(repr(QUOTED)),  # a repr inside JSON
        repr([f'"{QUOTED}"']),
        repr(f'"{QUOTED}"'.encode()),
        repr({"token": QUOTED}),  # alone, repr picks double quotes and leaves ' as is
        f"AssertionError: assert {QUOTED + chr(34)!r} == 'x'",
    ],
)
def test_a_token_with_quotes_is_masked_in_every_quoting_of_repr_and_json(shown: str) -> None:
    """Issue 11.14: a token holding ' in a repr that also holds " is written with \\'."""
    redacted = Redactor([QUOTED])(shown)
    assert "SECRET" not in redacted, redacted
    assert MASK in redacted


_PIECES = st.text(alphabet="'\"\\ é\t<&%+/=", max_size=4)
_CONTEXTS = st.lists(st.text(alphabet="'\"\\ab\n", max_size=3), max_size=3)
_QUOTINGS = [
    repr,
    json.dumps,
    lambda value: json.dumps(value, ensure_ascii=False),
    lambda value: repr(json.dumps(value)),
    lambda value: json.dumps(repr(value)),
    lambda value: repr(repr(value)),
    lambda value: repr([value]),
    lambda value: repr(value.encode()),
    html.escape,
    lambda value: urllib.parse.quote(value, safe=""),
]


@settings(max_examples=400, deadline=None)
@given(
    head=_PIECES,
    tail=_PIECES,
    around=_CONTEXTS,
    quoting=st.sampled_from(range(len(_QUOTINGS))),
)
def test_any_token_is_masked_in_any_one_or_two_quotings(
    head: str, tail: str, around: list[str], quoting: int
) -> None:
    token = f"{head}SECRETMARK{tail}"
    text = "".join(around[:1]) + token + "".join(around[1:])
    shown = _QUOTINGS[quoting](text)
    assert "SECRETMARK" not in Redactor([token])(shown)


def test_redactor_masks_a_fragment_cut_off_by_an_ellipsis() -> None:
    redact = Redactor(["tok_ABCDEFGHIJKL"])
    assert redact("token=tok_ABCDEF…") == f"token={MASK}…"
    assert redact("head...tok_ABC...") == f"head...{MASK}..."
    assert redact("…GHIJKL and more") == f"…{MASK} and more"
    # Not followed by an ellipsis: an innocent prefix stays.
    assert redact("tok_ABCD is a prefix") == "tok_ABCD is a prefix"


def test_redactor_masks_authorization_shaped_credentials_it_was_not_told() -> None:
    redact = Redactor(["known-secret"])
    assert redact("Authorization: Bearer other-credential") == f"Authorization: Bearer {MASK}"
    assert (
        redact('{"authorization": "Basic dXNlcjpwYXNz"}') == f'{{"authorization": "Basic {MASK}"}}'
    )
    assert redact("'Proxy-Authorization': 'abc'") == f"'Proxy-Authorization': '{MASK}'"
    assert redact("sent Bearer eyJhbGciOiJIUzI1NiJ9.payload") == f"sent Bearer {MASK}"
    assert (
        redact("Bearer short and Basic authentication") == "Bearer short and Basic authentication"
    )
    assert redact("the Authorization header is missing") == "the Authorization header is missing"
    assert redact(f"Authorization: Bearer {MASK}") == f"Authorization: Bearer {MASK}"


def test_masking_a_quoted_credential_inside_json_keeps_the_json_valid() -> None:
    # A log line quoted in a JSON report: its quotes arrive escaped as \".
    line = 'GET /health authorization="Bearer some-credential-value-1234" request_id=7'
    for text in (json.dumps({"message": line}), json.dumps({"m": 'authorization="abc"'})):
        masked = Redactor(["known-secret"])(text)
        assert MASK in masked
        assert "some-credential" not in masked
        json.loads(masked)
    assert Redactor(["known-secret"])(json.dumps({"message": line})) == json.dumps(
        {"message": f'GET /health authorization="Bearer {MASK}" request_id=7'}
    )


def test_redactor_finds_reports_whether_anything_would_be_masked() -> None:
    redact = Redactor(["known-secret"])
    assert redact.finds("x known-secret y")
    assert not redact.finds("nothing here")


def test_a_secret_on_the_command_line_is_refused_with_the_value_masked() -> None:
    redact = Redactor(["tok_ARGV_SECRET_123"])
    message = secret_in_arguments(
        ["--staging-url=https://s.example", "--rollback-command=./rb.sh tok_ARGV_SECRET_123"],
        redact,
    )
    assert message is not None
    assert "tok_ARGV_SECRET_123" not in message
    assert f"'--rollback-command=./rb.sh {MASK}'" in message
    assert "pass secrets through the environment" in message
    assert secret_in_arguments(["--staging-url=https://s.example", "-rA"], redact) is None


def test_log_records_are_redacted_when_made_from_any_logger(
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "tok_LOG_SECRET_4242"
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)  # added after installation: still covered
    redaction = install_log_redaction(Redactor([secret]))
    logger = logging.getLogger("app.child.deeper")
    logging.getLogger().addHandler(handler)
    try:
        with caplog.at_level(logging.INFO):
            logger.warning("calling with %s", secret)
            logger.info("headers: %r", {"authorization": f"Bearer {secret}"})
            try:
                raise RuntimeError(f"refused {secret}")
            except RuntimeError:
                logger.exception("failed")
    finally:
        logging.getLogger().removeHandler(handler)
        redaction.uninstall()
    logger.warning("after: %s", secret)
    captured = stream.getvalue() + caplog.text
    assert secret not in captured.replace(f"after: {secret}", "")
    assert f"calling with {MASK}" in captured
    assert f"refused {MASK}" in captured
    assert f"after: {secret}" in caplog.text


def test_uninstalling_restores_the_previous_record_factory() -> None:
    before = logging.getLogRecordFactory()
    redaction = install_log_redaction(Redactor(["tok_FACTORY_1234"]))
    assert logging.getLogRecordFactory() != before
    redaction.uninstall()
    assert logging.getLogRecordFactory() == before


def test_a_secret_is_masked_in_assertion_diffs_and_locals(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hostile case 36/37: the wrapper alone (no rehearsal redactor) keeps -l output clean."""
    monkeypatch.setenv("WRAPPED_TOKEN", "tok_WRAPPED_SECRET_77")
    pytester.makepyfile(
        """
        import os

        from pytest_rehearsal.redact import Secret

        def helper(token):
            assert token == "expected-value"

        def test_compare():
            token = Secret(os.environ["WRAPPED_TOKEN"])
            helper(token)
        """
    )
    result = pytester.runpytest("-l", "--tb=long", "-p", "no:rehearsal")
    result.assert_outcomes(failed=1)
    output = result.stdout.str()
    assert "tok_WRAPPED_SECRET_77" not in output
    assert "Secret('***')" in output
