"""Whatever the file says, the loader answers with a config or a ConfigError naming the file.

Hypothesis feeds it random YAML-ish text and mutations of a valid document (keys dropped or
renamed, values swapped for other types, raw scalars, aliases and tags injected, lines doubled).
Any other exception, or a message that does not start with the file's path, is a bug.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_rehearsal.config import ConfigError, RehearsalConfig
from pytest_rehearsal.config_commands import split_command
from pytest_rehearsal.config_loader import parse_config
from pytest_rehearsal.config_urls import check_production, validate_staging_url

FUZZ = settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)
_T = TypeVar("_T")
PATH = Path("conf") / "rehearsal.yaml"
# YAML's line breaks, which its marks count (NEL and the Unicode separators included).
_YAML_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")
_LOCATION = re.compile(rf"^{re.escape(str(PATH))}:(?:(\d+):(\d+):)? ")

VALID: dict[str, Any] = {
    "staging_url": "https://staging.example.com",
    "production": [r"^https://api\.example\.com"],
    "ca_bundle": "certs/ca.pem",
    "auth": {"header": "Authorization", "scheme": "Bearer", "token_env": "STAGING_TOKEN"},
    "defaults": {"owner": "@platform", "timeout": "10s", "retries": 2, "rollback_note": "n"},
    "checks": {
        "health": {"path": "/health", "expect_status": 200, "expect_json": {"ok": True}},
        "headers": {
            "paths": [
                "/",
                {
                    "path": "/api/orders",
                    "profile": "api",
                    "require": ["Cache-Control: no-store"],
                    "forbid": ["Server"],
                },
            ],
            "require": ["X-Frame-Options"],
            "forbid": ["Access-Control-Allow-Origin: *"],
            "profile": "auto",
        },
        "secrets": {"paths": ["/.env"], "scan_bodies": True},
        "permissions": {
            "protected": ["/admin"],
            "roles": {"viewer": {"token_env": "VIEWER_TOKEN", "denied": ["/admin/settings"]}},
        },
        "uploads": {"path": "/upload", "field": "file", "max_bytes": "10MiB", "method": "POST"},
        "retry_safe": [
            {
                "method": "POST",
                "path": "/orders",
                "json": {"sku": "A1"},
                "key_format": "bare",
                "conflict_status": [409, 422],
                "ignore_fields": ["id"],
                "owner": "@orders",
            }
        ],
        "inputs": [
            {
                "method": "POST",
                "path": "/orders",
                "json": {"quantity": "x"},
                "expect_status": 422,
                "mentions": ["quantity"],
            }
        ],
        "logging": {"command": ["./logs.sh", "--since"], "paths": ["/health"], "within": "30s"},
        "tls": {"min_days": 30, "min_version": "TLSv1.2"},
    },
    "accept": [
        {
            "check": "headers[/]",
            "finding": "Content-Security-Policy",
            "reason": "WEB-123",
            "owner": "@web",
            "until": "2027-01-31",
        }
    ],
    "rollback": {
        "command": ["./deploy.sh", "rollback"],
        "cwd": ".",
        "env": {"DEPLOY_ENV": "staging"},
        "timeout": "2m",
        "verify": {"path": "/health", "expect_status": 200, "within": "60s"},
        "restore": "./deploy.sh deploy 1.5.0",
        "owner": "@payments-oncall",
        "note": "flips back",
    },
}

# Values of every type, including the ones YAML 1.1 reads in surprising ways once quoted away.
SCALARS = st.sampled_from(
    [
        None,
        True,
        False,
        0,
        -1,
        10**30,
        1.5,
        float("inf"),
        "",
        " ",
        "010",
        "3",
        "1e3",
        "yes",
        "/x",
        "x",
        "//evil",
        "@team",
        "https://user:pw@host",
        "ftp://x",
        "2024-01-01",
        "a\x00b",
        [],
        {},
        [1, "a"],
        {"a": 1},
        {"path": "/p"},
        ["./x", ""],
    ]
)
# Text pasted over a value as written, so that YAML itself reads it.
RAW = st.sampled_from(
    [
        "010",
        "1e3",
        "0x1F",
        "1_000",
        "1:30",
        ".inf",
        "~",
        "yes",
        "2024-01-01",
        "*a",
        "&a x",
        "!!python/name:os.system",
        "!x y",
        "!!binary aGk=",
        "'unterminated",
        '"bad \\q escape"',
        "{",
        "[",
        "]",
        "@x",
        "`x",
        "\t",
        "- a",
        "a: b: c",
        "? complex",
        "<<: {a: 1}",
        "|\n  block",
        "[" * 40 + "]" * 40,
    ]
)
TOKENS = [
    *VALID,
    *VALID["checks"],
    *VALID["rollback"],
    "path",
    "method",
    "json",
    ":",
    ": ",
    "\n",
    "\n  ",
    "\n    ",
    "- ",
    "{",
    "}",
    "[",
    "]",
    ",",
    "'",
    '"',
    "#",
    "&a ",
    "*a",
    "!!str ",
    "!!python/object:os.system ",
    "---\n",
    "...\n",
    "%YAML 1.1\n",
    "010",
    "1e3",
    "true",
    "no",
    "null",
    "~",
    "/health",
    "https://x.example",
    "10MiB",
    "250ms",
    "\t",
    "\\",
    "@",
    "?",
    "|",
    ">",
]
YAMLISH = st.lists(st.one_of(st.sampled_from(TOKENS), st.text(max_size=4)), max_size=60).map(
    "".join
)


def attempt(call: Callable[[], _T]) -> tuple[_T | None, str | None]:
    """``(result, None)``, or ``(None, message)`` when *call* raised a ConfigError."""
    try:
        return call(), None
    except ConfigError as exc:
        return None, str(exc)


def assert_config_or_located_error(text: str) -> None:
    config, error = attempt(lambda: parse_config(text, PATH))
    if error is None:
        assert isinstance(config, RehearsalConfig)
        return
    lines = error.splitlines()
    assert lines, "empty message"
    last_line = len(_YAML_LINE_BREAK.findall(text)) + 1
    for message in lines:
        match = _LOCATION.match(message)
        assert match is not None, message
        if match.group(1) is not None:
            assert 1 <= int(match.group(1)) <= last_line, message
            assert int(match.group(2)) >= 1, message


def _slots(node: Any) -> list[tuple[Any, Any]]:
    """Every (container, key-or-index) in the document, depth first."""
    slots: list[tuple[Any, Any]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            slots.append((node, key))
            slots.extend(_slots(value))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            slots.append((node, index))
            slots.extend(_slots(value))
    return slots


def _renamed(key: str, how: int) -> str:
    if how == 0 or len(key) < 2:
        return key + "s"
    if how == 1:
        return key[:-1]
    if how == 2:
        return key.upper()
    return key[1] + key[0] + key[2:]


@st.composite
def mutated_documents(draw: st.DrawFn) -> str:
    document = copy.deepcopy(VALID)
    for _ in range(draw(st.integers(1, 4))):
        slots = _slots(document)
        if not slots:
            break
        container, key = draw(st.sampled_from(slots))
        operation = draw(st.sampled_from(["drop", "rename", "replace"]))
        if operation == "drop":
            del container[key]
        elif operation == "rename" and isinstance(container, dict):
            container[_renamed(key, draw(st.integers(0, 3)))] = container.pop(key)
        else:
            container[key] = copy.deepcopy(draw(SCALARS))  # samples are shared objects
    text = yaml.safe_dump(document, sort_keys=False, width=1000)
    lines = text.splitlines()
    edit = draw(st.sampled_from(["none", "raw", "double", "delete", "insert"]))
    index = draw(st.integers(0, len(lines) - 1)) if lines else 0
    if lines and edit == "raw" and ": " in lines[index]:
        head, _, _ = lines[index].partition(": ")
        lines[index] = f"{head}: {draw(RAW)}"
    elif lines and edit == "double":
        lines.insert(index, lines[index])
    elif lines and edit == "delete":
        del lines[index]
    elif edit == "insert":
        lines.insert(index, draw(st.text(max_size=12)))
    return "\n".join(lines) + "\n"


def test_the_unmutated_document_loads() -> None:
    config = parse_config(yaml.safe_dump(VALID, sort_keys=False), PATH)
    assert config.checks.uploads is not None
    assert config.checks.headers is not None
    assert [entry.path for entry in config.checks.headers.paths] == ["/", "/api/orders"]
    assert config.checks.retry_safe[0].key_format == "bare"
    assert config.rollback.command == ("./deploy.sh", "rollback")


@FUZZ
@given(YAMLISH)
def test_random_yamlish_text(text: str) -> None:
    assert_config_or_located_error(text)


@FUZZ
@given(mutated_documents())
def test_mutations_of_a_valid_document(text: str) -> None:
    assert_config_or_located_error(text)


@FUZZ
@given(
    st.one_of(
        st.text(max_size=40),
        st.builds(
            "{}://{}{}{}".format,
            st.sampled_from(["http", "https", "HTTPS", "ftp", ""]),
            st.sampled_from(["", "u:p@", "@"]),
            st.text(alphabet="ab.-_:[]1%", max_size=12),
            st.sampled_from(["", "/", "/p/", "?q=1", "?token=x", "#f", "/ x"]),
        ),
    )
)
def test_validate_staging_url_returns_or_refuses(url: str) -> None:
    normalised, error = attempt(lambda: validate_staging_url(url, "--staging-url"))
    if normalised is None:
        assert error is not None
        assert error.startswith("--staging-url: ")
    else:
        assert normalised.startswith(("http://", "https://"))
        assert validate_staging_url(normalised, "again") == normalised


@FUZZ
@given(
    st.one_of(st.text(max_size=30), st.lists(st.text(max_size=8), max_size=4)),
    st.lists(st.text(max_size=6), max_size=3),
)
def test_split_command_and_check_production_return_or_refuse(
    command: str | list[str], patterns: list[str]
) -> None:
    argv, error = attempt(lambda: split_command(command, "--rollback-command"))
    if argv is None:
        assert error is not None
        assert error.startswith("--rollback-command: ")
    else:
        assert argv
        assert all(isinstance(argument, str) and argument for argument in argv)
    _, error = attempt(
        lambda: check_production("https://staging.example.com/x", tuple(patterns), "r.yaml")
    )
    assert error is None or "r.yaml" in error
