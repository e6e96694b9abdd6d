"""Accepted findings: ``accept:`` entries matched against a check's findings, and their dates."""

from __future__ import annotations

from datetime import date

import pytest

from pytest_rehearsal.accept import judge, matches_check, refusal, unused
from pytest_rehearsal.checks import BUILTIN
from pytest_rehearsal.checks._base import Verdict
from pytest_rehearsal.config import AcceptEntry
from pytest_rehearsal.findings import Acceptance, Finding

TODAY = date(2026, 11, 30)
CSP = Finding("missing-header", "Content-Security-Policy: missing (expected a policy)")
NOSNIFF = Finding("missing-header", "X-Content-Type-Options: missing (expected nosniff)")


def entry(
    check: str = "headers[/]",
    finding: str = "Content-Security-Policy",
    until: date = date(2027, 1, 31),
    reason: str = "CSP rollout, WEB-123",
) -> AcceptEntry:
    return AcceptEntry(check, finding, reason, "@web", until, "rehearsal.yaml:12")


# -- which check an entry names -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "check_id", "matches"),
    [
        ("headers[/]", "headers[/]", True),
        ("headers[/]", "headers/", False),  # brackets are literal, not a character class
        ("headers[/]", "headers[/admin]", False),
        ("headers[*]", "headers[/admin]", True),
        ("headers*", "headers", True),
        ("*[/admin]", "permissions[/admin]", True),
        ("*", "tls", True),
        ("secrets[/.env]", "secrets[/.env.local]", False),
        ("secrets[/.env*]", "secrets[/.env.local]", True),
        ("logging", "logging", True),
        ("log?ing", "logging", False),  # only * is special
    ],
)
def test_check_patterns_are_globs_with_only_star_special(
    pattern: str, check_id: str, matches: bool
) -> None:
    assert matches_check(pattern, check_id) is matches


@pytest.mark.parametrize("pattern", ["headers[/]", "*", "headers*", "r*", "*[/admin]", "tls"])
def test_patterns_that_can_match_a_check_are_allowed(pattern: str) -> None:
    assert refusal(pattern, BUILTIN) is None


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("rollback", "the rollback cannot be accepted: a release without a working rollback"),
        ("roll*", "the rollback cannot be accepted"),
        ("*back", "the rollback cannot be accepted"),
        ("deploy", "the deploy cannot be accepted: a release that does not deploy is not ready"),
        ("dep*y", "the deploy cannot be accepted"),
        ("hedaers[/]", "matches no built-in check (did you mean 'headers'?)"),
        ("nothing-like-it", "matches no built-in check"),
    ],
)
def test_the_rollback_the_deploy_and_unknown_checks_are_refused(pattern: str, problem: str) -> None:
    refused = refusal(pattern, BUILTIN)
    assert refused is not None
    assert refused.startswith(problem)


# -- judging one check's findings ---------------------------------------------------------------


def accepted(check_id: str, findings: list[Finding], entries: list[AcceptEntry]) -> bool:
    """Whether the check's verdict after *entries* is ``accepted``."""
    return Verdict(judge(check_id, findings, entries, TODAY).findings).accepted


def test_a_check_whose_every_finding_is_accepted_is_accepted() -> None:
    judged = judge("headers[/]", [CSP], [entry()], TODAY)
    verdict = Verdict(judged.findings)
    assert verdict.accepted
    assert verdict.blocking == ()
    assert judged.findings[0].accepted == Acceptance("CSP rollout, WEB-123", "@web", "2027-01-31")
    assert verdict.accepted_reason == "accepted: CSP rollout, WEB-123"
    assert judged.notes == ()
    assert judged.used == frozenset({0})


def test_text_matches_case_insensitively_and_the_last_day_still_counts() -> None:
    judged = judge("headers[/]", [CSP], [entry(finding="content-security", until=TODAY)], TODAY)
    verdict = Verdict(judged.findings)
    assert verdict.accepted


def test_partial_acceptance_leaves_the_check_failed_and_names_what_was_accepted() -> None:
    judged = judge("headers[/]", [CSP, NOSNIFF], [entry()], TODAY)
    verdict = Verdict(judged.findings)
    assert not verdict.accepted
    assert verdict.blocking == (NOSNIFF,)
    assert judged.notes == (
        "accepted until 2027-01-31 (CSP rollout, WEB-123; owner: @web): "
        "Content-Security-Policy: missing (expected a policy)",
    )


def test_two_entries_can_accept_every_finding_between_them() -> None:
    second = entry(finding="nosniff", reason="legacy proxy, OPS-9")
    judged = judge("headers[/]", [CSP, NOSNIFF], [entry(), second], TODAY)
    verdict = Verdict(judged.findings)
    assert verdict.accepted
    assert verdict.accepted_reason == "accepted: CSP rollout, WEB-123; legacy proxy, OPS-9"
    assert judged.used == frozenset({0, 1})


def test_an_expired_entry_no_longer_applies_and_says_so() -> None:
    judged = judge("headers[/]", [CSP], [entry(until=date(2026, 11, 29))], TODAY)
    verdict = Verdict(judged.findings)
    assert not verdict.accepted
    assert verdict.blocking == (CSP,)
    assert judged.notes == (
        "rehearsal.yaml:12: accepted until 2026-11-29: expired; the finding blocks again "
        "(Content-Security-Policy: missing (expected a policy); reason: CSP rollout, WEB-123; "
        "owner: @web)",
    )
    assert judged.used == frozenset({0})  # it matched: not reported as unused as well


def test_a_valid_entry_wins_over_an_expired_one_for_the_same_finding() -> None:
    judged = judge("headers[/]", [CSP], [entry(until=date(2020, 1, 1)), entry()], TODAY)
    verdict = Verdict(judged.findings)
    assert verdict.accepted
    assert judged.notes == ()


def test_entries_for_other_checks_or_other_text_do_not_apply() -> None:
    entries = [entry(check="headers[/admin]"), entry(finding="Referrer-Policy")]
    judged = judge("headers[/]", [CSP], entries, TODAY)
    verdict = Verdict(judged.findings)
    assert not verdict.accepted
    assert judged.used == frozenset()
    assert not accepted("headers[/]", [], [entry()])  # nothing to accept


def test_a_glob_entry_accepts_the_same_finding_on_every_matching_item() -> None:
    wide = entry(check="headers[*]")
    assert accepted("headers[/]", [CSP], [wide])
    assert accepted("headers[/health]", [CSP], [wide])


# -- entries that matched nothing ---------------------------------------------------------------


def test_entries_that_matched_nothing_are_named_with_the_likely_reason() -> None:
    entries = [entry(), entry(check="uploads[/upload]", finding="413"), entry(check="tls")]
    notes = unused(entries, {0}, ran=["headers[/]", "uploads[/upload]"])
    assert notes == (
        "rehearsal.yaml:12: accept entry for 'uploads[/upload]' and '413' matched no finding: "
        "if the problem is fixed, remove the entry",
        "rehearsal.yaml:12: accept entry for 'tls' and 'Content-Security-Policy' matched no "
        "check of this run",
    )
    assert unused(entries, {0, 1, 2}, ran=[]) == ()
