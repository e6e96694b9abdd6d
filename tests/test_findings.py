"""Findings and the failure message built from them (pure)."""

from __future__ import annotations

from pytest_rehearsal.findings import Acceptance, Exchange, Finding, render

PAGE = Exchange("GET https://staging.test/", "the html policy", "safe: GET", "header problem")


def test_itemized_findings_of_one_reply_are_bullets_under_one_got_line() -> None:
    findings = [
        Finding("X-Frame-Options", "X-Frame-Options: missing", "200 OK", PAGE, itemized=True),
        Finding("Referrer-Policy", "Referrer-Policy: missing", "200 OK", PAGE, itemized=True),
    ]
    assert render(findings) == (
        "GET https://staging.test/\n"
        "  expected: the html policy\n"
        "  got:      200 OK with 2 header problems:\n"
        "    - X-Frame-Options: missing\n"
        "    - Referrer-Policy: missing\n"
        "  retry:    safe: GET"
    )


def test_one_itemized_finding_stands_on_the_got_line() -> None:
    one = Finding("X-Frame-Options", "X-Frame-Options: missing", "200 OK", PAGE, itemized=True)
    assert "  got:      200 OK · X-Frame-Options: missing\n" in render([one])


def test_findings_of_different_requests_make_separate_blocks() -> None:
    other = Exchange("POST https://staging.test/orders", "a 2xx", "not safe: POST")
    findings = [
        Finding("a", "first", "503", PAGE),
        Finding("b", "second", "500 · failed", other),
    ]
    blocks = render(findings).split("\n")
    assert blocks[0] == "GET https://staging.test/"
    assert "POST https://staging.test/orders" in blocks
    assert "  got:      500 · failed" in blocks


def test_a_finding_without_a_request_is_its_message() -> None:
    assert render([Finding("expiry", "the certificate expires in 9 days")]) == (
        "the certificate expires in 9 days"
    )


def test_the_json_form_names_rule_message_and_acceptance() -> None:
    accepted = Acceptance("CSP rollout, WEB-123", "@web", "2027-01-31")
    finding = Finding("CSP", "CSP: missing", "200 OK", PAGE, accepted=accepted)
    assert finding.to_json() == {
        "rule": "CSP",
        "message": "CSP: missing",
        "accepted": {"reason": "CSP rollout, WEB-123", "owner": "@web", "until": "2027-01-31"},
        "request": "GET https://staging.test/",
        "expected": "the html policy",
        "got": "200 OK",
    }
