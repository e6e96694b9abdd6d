from __future__ import annotations

from pytest_rehearsal.redact import MASK, Redactor, Secret, mask_url


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
