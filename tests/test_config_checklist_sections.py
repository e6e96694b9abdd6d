"""The loader's ``checks.logging``, ``checks.tls`` and top-level ``accept`` sections."""

from __future__ import annotations

import textwrap
from datetime import date
from pathlib import Path

import pytest

from pytest_rehearsal.config import (
    AcceptEntry,
    ConfigError,
    LoggingCheckConfig,
    Meta,
    RehearsalConfig,
    TlsCheckConfig,
)
from pytest_rehearsal.config_loader import parse_config

PATH = Path("/project/rehearsal.yaml")


def parse(text: str) -> RehearsalConfig:
    return parse_config(textwrap.dedent(text), PATH)


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        parse(text)
    lines = str(raised.value).splitlines()
    assert all(line.startswith(f"{PATH}:") for line in lines), lines
    return lines


# -- checks.logging ------------------------------------------------------------------------------


def test_logging_loads_with_its_defaults_and_metadata() -> None:
    config = parse(
        """\
        checks:
          logging: {command: ./staging-logs.sh --since 1m, owner: '@sre', expect: logged}
        """
    )
    assert config.checks.logging == LoggingCheckConfig(
        command=("./staging-logs.sh", "--since", "1m"),
        paths=("/",),
        within=30.0,
        meta=Meta(owner="@sre", expect="logged"),
    )
    full = parse(
        """\
        checks:
          logging:
            command: [kubectl, logs, deploy/web, '--since=2m']
            paths: [/health, /api]
            within: 2m
            rollback_note: 'purge the lines'
        """
    )
    assert full.checks.logging == LoggingCheckConfig(
        ("kubectl", "logs", "deploy/web", "--since=2m"),
        ("/health", "/api"),
        120.0,
        Meta(rollback_note="purge the lines"),
    )


def test_logging_is_off_unless_configured() -> None:
    assert parse("checks: {health: false}\n").checks.logging is None
    assert parse("checks: {logging: false}\n").checks.logging is None


@pytest.mark.parametrize(
    ("section", "fragments"),
    [
        ("true", ["checks.logging: true is not enough here: this check needs settings"]),
        ("{paths: [/]}", ["checks.logging.command: missing key 'command'"]),
        ("{command: []}", ["checks.logging.command: empty command"]),
        ("{command: ./x, paths: []}", ["checks.logging.paths: empty list"]),
        ("{command: ./x, paths: [health]}", ["path does not start with '/'"]),
        ("{command: ./x, within: 0}", ["checks.logging.within: must be more than zero"]),
        ("{command: ./x, wihtin: 3s}", ["unknown key 'wihtin' (did you mean 'within'?)"]),
        ("{command: ['./x', '--token=abc']}", ["passes a secret on the command line"]),
    ],
)
def test_logging_mistakes_name_line_key_and_expectation(section: str, fragments: list[str]) -> None:
    (line,) = problems(f"checks:\n  logging: {section}\n")
    assert line.startswith(f"{PATH}:2:")
    for fragment in fragments:
        assert fragment in line, line


# -- checks.tls ----------------------------------------------------------------------------------


def test_tls_is_on_by_default_and_takes_its_two_keys() -> None:
    assert RehearsalConfig().checks.tls == TlsCheckConfig(30, "TLSv1.2")
    assert parse("checks: {tls: true}\n").checks.tls == TlsCheckConfig()
    assert parse("checks: {tls: false}\n").checks.tls is None
    config = parse("checks: {tls: {min_days: 14, min_version: TLSv1.3, owner: '@sre'}}\n")
    assert config.checks.tls == TlsCheckConfig(14, "TLSv1.3", Meta(owner="@sre"))


@pytest.mark.parametrize(
    ("section", "fragment"),
    [
        ("{min_days: -1}", "checks.tls.min_days: out of range; found -1, expected an integer"),
        ("{min_days: '30'}", "a quoted string, not an integer"),
        ("{min_version: TLSv1.0}", "unknown TLS version"),
        ("{min_version: tlsv1.2}", "expected one of: TLSv1.1, TLSv1.2, TLSv1.3"),
        ("{min_version: 1.2}", "checks.tls.min_version: wrong type (a number)"),
        ("{max_version: TLSv1.3}", "unknown key 'max_version' (did you mean 'min_version'?)"),
    ],
)
def test_tls_mistakes(section: str, fragment: str) -> None:
    (line,) = problems(f"checks:\n  tls: {section}\n")
    assert fragment in line, line


# -- accept --------------------------------------------------------------------------------------


ENTRY = "- {{check: {check}, finding: CSP, reason: WEB-123, owner: '@web', until: {until}}}\n"


def accept(check: str = "'headers[/]'", until: str = "2027-01-31") -> str:
    return "accept:\n  " + ENTRY.format(check=check, until=until)


def test_accept_entries_load_with_their_date_and_place() -> None:
    config = parse(
        """\
        checks: {headers: {paths: [/]}}
        accept:
          - check: 'headers[/]'
            finding: Content-Security-Policy
            reason: 'CSP rollout, WEB-123'
            owner: '@web'
            until: 2027-01-31
          - {check: 'rehearsal::secrets[*]', finding: x, reason: y, owner: z, until: '2026-12-01'}
        """
    )
    assert config.accept == (
        AcceptEntry(
            "headers[/]",
            "Content-Security-Policy",
            "CSP rollout, WEB-123",
            "@web",
            date(2027, 1, 31),
            f"{PATH}:3",
        ),
        AcceptEntry("secrets[*]", "x", "y", "z", date(2026, 12, 1), f"{PATH}:8"),
    )
    assert parse("accept: []\n").accept == ()


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (accept("rollback"), "accept[0].check: the rollback cannot be accepted"),
        (accept("'rehearsal::rollback'"), "the rollback cannot be accepted"),
        (accept("'roll*'"), "the rollback cannot be accepted"),
        (accept("deploy"), "accept[0].check: the deploy cannot be accepted"),
        (accept("'hedaers[/]'"), "matches no built-in check (did you mean 'headers'?)"),
        (accept(until="2027-02-30"), "accept[0].until: not a valid date"),
        (accept(until="'31.01.2027'"), "accept[0].until: not a date"),
        (accept(until="2027-01-31T10:00:00"), "not a date"),
        (accept(until="20270131"), "accept[0].until: wrong type (an integer)"),
        ("accept:\n  - {check: tls, finding: x}\n", "accept[0].reason: missing key 'reason'"),
        ("accept:\n  - {check: tls, finding: x}\n", "accept[0].until: missing key 'until'"),
        ("accept: {check: tls}\n", "accept: wrong type (a mapping)"),
        (accept().replace("owner:", "ownr:"), "unknown key 'ownr' (did you mean 'owner'?)"),
    ],
)
def test_accept_mistakes_are_usage_errors_naming_the_line(text: str, fragment: str) -> None:
    lines = problems(text)
    assert any(fragment in line for line in lines), lines
    assert all(line.startswith(f"{PATH}:2:") for line in lines if "accept[0]" in line), lines


def test_every_problem_of_the_accept_list_is_reported_together() -> None:
    text = accept("rollback") + "  " + ENTRY.format(check="deploy", until="2027-01-01")
    lines = problems(text)
    assert [line.split(": ", 2)[1] for line in lines] == ["accept[0].check", "accept[1].check"]
