"""The strict loader of ``rehearsal.yaml``: every key loads, every mistake points at its line."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from pytest_rehearsal.activation import MAX_CONFIG_BYTES
from pytest_rehearsal.checks import uploads
from pytest_rehearsal.config import (
    DEFAULT_SECRET_PATHS,
    AuthConfig,
    ChecksConfig,
    ConfigError,
    Defaults,
    DeployConfig,
    HeadersCheckConfig,
    HeadersPathConfig,
    HealthCheckConfig,
    InputEntry,
    Meta,
    PermissionsCheckConfig,
    RehearsalConfig,
    RetrySafeEntry,
    RoleConfig,
    RollbackConfig,
    SecretsCheckConfig,
    UploadsCheckConfig,
    VerifyConfig,
    WatchConfig,
)
from pytest_rehearsal.config_commands import split_command
from pytest_rehearsal.config_loader import load_config, parse_config
from pytest_rehearsal.config_urls import (
    MAX_PRODUCTION_TEXT,
    check_production,
    production_match,
    validate_staging_url,
)
from pytest_rehearsal.upload_probe import multipart_framing

FULL = r"""
staging_url: https://staging.example.com/
production: ['^https://api\.example\.com']
ca_bundle: certs/ca.pem
auth: {header: X-Api-Key, scheme: Token, token_env: STAGING_TOKEN}
defaults: {owner: '@platform', timeout: 10s, retries: 3, rollback_note: 'flip the symlink'}
checks:
  health:
    path: /healthz
    expect_status: 204
    expect_json: {ok: true, build: {n: 7, tags: [a, null, 1.5]}}
    max_latency: 250ms
    owner: '@sre'
    expect: 'healthy in 250ms'
    rollback_note: 'nothing to undo'
  headers:
    paths:
      - /
      - path: /api/orders
        profile: api
        require: [X-Request-Id]
        forbid: ['Cache-Control: public']
      - {path: /app}
    require: ['X-Frame-Options: DENY']
    forbid: [Server]
    profile: html
    owner: '@web'

  secrets: {paths: [/.env, /.git/config], scan_bodies: false, expect: 'nothing exposed'}
  permissions:
    protected: [/admin]
    roles: {viewer: {token_env: VIEWER_TOKEN, denied: [/admin/settings]}, ops: {token_env: OPS}}
    rollback_note: 'revoke the role'
  uploads: {path: /upload, field: document, max_bytes: 10MiB, method: put, owner: '@files'}
  retry_safe:
    - {method: post, path: /orders, json: {sku: 'A1', qty: 2}, idempotency_header: Idem-Key,
       key_format: bare, conflict_status: [409], ignore_fields: [id, created_at], owner: '@orders'}
    - {method: PUT, path: /carts/1}
  inputs:
    - {method: POST, path: /orders, json: {quantity: 'x'}, expect_status: 400, mentions: [quantity],
       expect: 'rejected'}
rollback:
  command: ['./deploy.sh', 'rollback']
  cwd: scripts
  env: {DEPLOY_ENV: staging, EMPTY: ''}
  timeout: 2m
  verify: {path: /version, expect_status: 200, expect_json: {version: '1.4.2'}, within: 90s}
  restore: ./deploy.sh deploy 1.5.0
  owner: '@payments-oncall'
  expect: 'version 1.4.2 serves'
  note: 'Release symlink flips back; migrations are additive only.'
"""


def write(tmp_path: Path, text: str, name: str = "rehearsal.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load(tmp_path: Path, text: str) -> RehearsalConfig:
    return load_config(write(tmp_path, text))


def failure(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    for line in message.splitlines():
        assert line.startswith(f"{path}:"), line
    return message


def error_line(message: str, line: int) -> str:
    """The one message line about *line* of the file."""
    matches = [m for m in message.splitlines() if f"rehearsal.yaml:{line}:" in m]
    assert len(matches) == 1, message
    return matches[0]


def assert_names(message: str, line: int, *parts: str) -> None:
    text = error_line(message, line)
    for part in parts:
        assert part in text, f"{part!r} not in {text!r}"


# ---------------------------------------------------------------------------------------------
# Everything loads


def test_every_key_of_the_schema_loads_to_its_dataclass(tmp_path: Path) -> None:
    path = write(tmp_path, FULL)
    config = load_config(path)
    assert config == RehearsalConfig(
        path=path,
        staging_url="https://staging.example.com",
        production=(r"^https://api\.example\.com",),
        auth=AuthConfig(header="X-Api-Key", scheme="Token", token_env="STAGING_TOKEN"),
        ca_bundle=tmp_path / "certs" / "ca.pem",
        defaults=Defaults(
            owner="@platform", rollback_note="flip the symlink", timeout=10.0, retries=3
        ),
        checks=ChecksConfig(
            health=HealthCheckConfig(
                path="/healthz",
                expect_status=204,
                expect_json={"ok": True, "build": {"n": 7, "tags": ["a", None, 1.5]}},
                max_latency=0.25,
                meta=Meta(owner="@sre", expect="healthy in 250ms", rollback_note="nothing to undo"),
            ),
            headers=HeadersCheckConfig(
                paths=(
                    HeadersPathConfig("/"),
                    HeadersPathConfig(
                        "/api/orders",
                        profile="api",
                        require=("X-Request-Id",),
                        forbid=("Cache-Control: public",),
                    ),
                    HeadersPathConfig("/app"),
                ),
                require=("X-Frame-Options: DENY",),
                forbid=("Server",),
                profile="html",
                meta=Meta(owner="@web"),
            ),
            secrets=SecretsCheckConfig(
                paths=("/.env", "/.git/config"),
                scan_bodies=False,
                meta=Meta(expect="nothing exposed"),
            ),
            permissions=PermissionsCheckConfig(
                protected=("/admin",),
                roles={
                    "viewer": RoleConfig(token_env="VIEWER_TOKEN", denied=("/admin/settings",)),
                    "ops": RoleConfig(token_env="OPS"),
                },
                meta=Meta(rollback_note="revoke the role"),
            ),
            uploads=UploadsCheckConfig(
                path="/upload",
                max_bytes=10 * 1024 * 1024,
                field="document",
                method="PUT",
                meta=Meta(owner="@files"),
            ),
            retry_safe=(
                RetrySafeEntry(
                    method="POST",
                    path="/orders",
                    json={"sku": "A1", "qty": 2},
                    idempotency_header="Idem-Key",
                    key_format="bare",
                    conflict_status=(409,),
                    ignore_fields=("id", "created_at"),
                    meta=Meta(owner="@orders"),
                ),
                RetrySafeEntry(method="PUT", path="/carts/1"),
            ),
            inputs=(
                InputEntry(
                    method="POST",
                    path="/orders",
                    json={"quantity": "x"},
                    expect_status=400,
                    mentions=("quantity",),
                    meta=Meta(expect="rejected"),
                ),
            ),
        ),
        rollback=RollbackConfig(
            command=("./deploy.sh", "rollback"),
            cwd=tmp_path / "scripts",
            env={"DEPLOY_ENV": "staging", "EMPTY": ""},
            timeout=120.0,
            verify=VerifyConfig(
                path="/version", expect_status=200, expect_json={"version": "1.4.2"}, within=90.0
            ),
            restore=("./deploy.sh", "deploy", "1.5.0"),
            owner="@payments-oncall",
            expect="version 1.4.2 serves",
            note="Release symlink flips back; migrations are additive only.",
        ),
    )


def test_the_contract_example_loads(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        r"""
        staging_url: https://staging.example.com
        production: ['^https://api\.example\.com']
        auth:
          header: Authorization
          scheme: Bearer
          token_env: STAGING_TOKEN
        defaults: {owner: '@platform', timeout: 10s, retries: 2}
        checks:
          health:      {path: /health, expect_status: 200, expect_json: {ok: true}, max_latency: 1s}
          uploads:     {path: /upload, field: file, max_bytes: 10MiB}
          retry_safe:  [{method: POST, path: /orders, json: {sku: 'A1'}}]
        rollback:
          command: ['./deploy.sh', 'rollback']
          cwd: .
          timeout: 2m
        """,
    )
    assert config.checks.uploads == UploadsCheckConfig(path="/upload", max_bytes=10485760)
    assert config.rollback.cwd == tmp_path
    assert config.auth == AuthConfig(token_env="STAGING_TOKEN")


def test_omitted_sections_are_the_dataclass_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "staging_url: http://127.0.0.1:8000\n")
    assert load_config(path) == RehearsalConfig(path=path, staging_url="http://127.0.0.1:8000")
    checks = load(tmp_path, "checks: {}\n").checks
    assert checks == ChecksConfig()
    assert checks.secrets == SecretsCheckConfig(paths=DEFAULT_SECRET_PATHS)


def test_checks_can_be_switched_off_or_on_with_defaults(tmp_path: Path) -> None:
    checks = load(
        tmp_path,
        """
        checks:
          health: false
          headers: true
          secrets: off
          permissions: false
          uploads: false
          retry_safe: false
          inputs: []
        """,
    ).checks
    assert checks == ChecksConfig(health=None, headers=HeadersCheckConfig(), secrets=None)
    assert load(tmp_path, "rollback: {verify: true}").rollback.verify == VerifyConfig()
    assert load(tmp_path, "rollback: {verify: false}").rollback.verify is None


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("250ms", 0.25), ("30s", 30.0), ("2m", 120.0), ("1h", 3600.0), ("45", 45.0), ("1.5", 1.5)],
)
def test_durations(tmp_path: Path, text: str, seconds: float) -> None:
    assert load(tmp_path, f"defaults: {{timeout: {text}}}").defaults.timeout == seconds


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("512KiB", 512 * 1024),
        ("10MiB", 10 * 1024**2),
        ("1MB", 10**6),
        ("4096", 4096),
        ("1KiB", 1024),
        ("1024", 1024),
    ],
)
def test_sizes(tmp_path: Path, text: str, size: int) -> None:
    config = load(tmp_path, f"checks: {{uploads: {{path: /u, max_bytes: {text}}}}}")
    assert config.checks.uploads is not None
    assert config.checks.uploads.max_bytes == size


def test_upload_sizes_below_1kib_are_refused(tmp_path: Path) -> None:
    for text, shown in [("512", "512"), ("0", "0"), ("1KB", "'1KB'"), ("'1023'", "'1023'")]:
        message = failure(tmp_path, f"checks:\n  uploads: {{path: /u, max_bytes: {text}}}\n")
        assert message.endswith(
            "checks.uploads.max_bytes: too small to hold a multipart upload; "
            f"found {shown}, expected at least 1KiB"
        ), message


def test_the_upload_floor_holds_the_framing_of_the_longest_field(tmp_path: Path) -> None:
    # The loader's promise: whatever it accepts, the upload probe can frame (no ValueError).
    for character in ("x", '"', "\U0001f600"):  # plain, percent-encoded, 4 bytes in UTF-8
        field = character * 128
        config = load(
            tmp_path, f"checks: {{uploads: {{path: /u, max_bytes: 1KiB, field: '{field}'}}}}"
        )
        (check,) = uploads.build(config)
        assert isinstance(check, uploads.UploadCheck)
        for size in (check.small_size, check.big_size):
            upload = check.probe(size).upload
            assert upload is not None
            preamble, zeros, epilogue = multipart_framing(upload, f"rehearsal-{uuid.uuid4().hex}")
            assert len(preamble) + zeros + len(epilogue) == size
    message = failure(
        tmp_path, f"checks: {{uploads: {{path: /u, max_bytes: 1KiB, field: {'x' * 129}}}}}"
    )
    assert "checks.uploads.field: field name too long for the upload probe" in message
    assert "expected a form field name of at most 128 characters" in message


def test_headers_paths_are_strings_or_mappings(tmp_path: Path) -> None:
    headers = load(
        tmp_path,
        """
        checks:
          headers:
            paths: [/, {path: /api/status, profile: api}, {path: /app, require: [], forbid: []}]
        """,
    ).checks.headers
    assert headers == HeadersCheckConfig(
        paths=(
            HeadersPathConfig("/"),
            HeadersPathConfig("/api/status", profile="api"),
            HeadersPathConfig("/app"),
        )
    )
    assert HeadersCheckConfig().paths == (HeadersPathConfig("/"),)
    assert load(tmp_path, "checks: {headers: true}").checks.headers == HeadersCheckConfig()


def test_every_problem_of_the_headers_paths_is_reported(tmp_path: Path) -> None:
    message = failure(
        tmp_path,
        """\
        checks:
          headers:
            paths:
              - /api
              - {path: api, profil: api}
              - {path: /api, require: [X-Request-Id]}
              - /api
        """,
    )
    duplicate = "duplicate path '/api' (first at line 4); found '/api'"
    expected = [
        ":5:16: checks.headers.paths[1].path: path does not start with '/'; found 'api'",
        ":5:21: checks.headers.paths[1].profil: unknown key 'profil' (did you mean 'profile'?)",
        f":6:16: checks.headers.paths[2].path: {duplicate}",
        f":7:9: checks.headers.paths[3]: {duplicate}",
    ]
    lines = message.splitlines()
    assert len(lines) == len(expected), message
    for line, start in zip(lines, expected, strict=True):
        assert line.startswith(f"{tmp_path / 'rehearsal.yaml'}{start}"), line


def test_key_format_is_quoted_unless_bare(tmp_path: Path) -> None:
    def key_format(extra: str) -> str:
        text = f"checks: {{retry_safe: [{{method: POST, path: /o{extra}}}]}}"
        (entry,) = load(tmp_path, text).checks.retry_safe
        return entry.key_format

    assert key_format("") == "quoted"
    assert key_format(", key_format: quoted") == "quoted"
    assert key_format(", key_format: bare") == "bare"


def test_small_conveniences(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        r"""
        production: '^https://prod\.'
        auth: {token_env: T, scheme: null}
        checks:
          inputs: [{method: delete, path: /x, json: [1, 'two', null]}]
          secrets: {scan_bodies: yes}
        rollback:
          command: "./rollback.sh --reason 'bad release'"
          rollback_note: 'same as note'
          env: {ON: '1', path_x: /bin}
        """,
    )
    assert config.production == (r"^https://prod\.",)
    assert config.auth == AuthConfig(scheme=None, token_env="T")
    assert config.checks.inputs == (InputEntry(method="DELETE", path="/x", json=[1, "two", None]),)
    assert config.checks.secrets == SecretsCheckConfig(scan_bodies=True)
    assert config.rollback.command == ("./rollback.sh", "--reason", "bad release")
    assert config.rollback.note == "same as note"
    assert config.rollback.env == {"ON": "1", "path_x": "/bin"}
    assert load(tmp_path, "auth: {token_env: T, scheme: ''}").auth == AuthConfig(
        scheme=None, token_env="T"
    )


def test_relative_paths_are_relative_to_the_file_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "elsewhere").mkdir()
    write(tmp_path / "conf", "ca_bundle: ../ca.pem\nrollback: {cwd: deploy, command: ./x}\n")
    monkeypatch.chdir(tmp_path / "elsewhere")
    config = load_config(Path("../conf/rehearsal.yaml"))
    assert config.path == tmp_path / "conf" / "rehearsal.yaml"
    assert config.ca_bundle == tmp_path / "ca.pem"
    assert config.rollback.cwd == tmp_path / "conf" / "deploy"
    assert load(tmp_path, "rollback: {cwd: /opt/app}").rollback.cwd == Path("/opt/app")


def test_parse_config_takes_text_and_names_the_given_path(tmp_path: Path) -> None:
    config = parse_config("rollback: {cwd: ., command: [a]}\n", tmp_path / "x" / "r.yaml")
    assert config.rollback.cwd == tmp_path / "x"
    assert config.path == tmp_path / "x" / "r.yaml"
    with pytest.raises(ConfigError, match=r"^ci/r\.yaml:1:1: rollbak: unknown key"):
        parse_config("rollbak: {}\n", Path("ci/r.yaml"))


def test_importing_the_loader_does_not_import_yaml() -> None:
    code = (
        "import sys, pytest_rehearsal.config_loader as m; "
        "assert 'yaml' not in sys.modules, 'yaml imported'; "
        "from pathlib import Path; m.parse_config('{}', Path('r.yaml')); "
        "assert 'yaml' in sys.modules"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr


# ---------------------------------------------------------------------------------------------
# Each kind of mistake names file, line, key, value and expectation

# (document, line, fragments that must all be on that line's message)
MISTAKES = [
    pytest.param(
        "staging_url: https://staging.example.com\nrollbak: {command: ./x}\n",
        2,
        ["rollbak", "unknown key 'rollbak' (did you mean 'rollback'?)", "expected one of:"],
        id="unknown-top-level",
    ),
    pytest.param(
        "checks:\n  health: {path: /h, expect_stauts: 200}\n",
        2,
        ["checks.health.expect_stauts", "(did you mean 'expect_status'?)", "expect_json"],
        id="unknown-nested",
    ),
    pytest.param(
        "checks:\n  helth: false\n",
        2,
        ["checks.helth", "unknown key 'helth' (did you mean 'health'?)"],
        id="unknown-check",
    ),
    pytest.param(
        "checks:\n  health:\n    path: /health\n    path: /other\n",
        4,
        ["checks.health.path", "duplicate key 'path' (first at line 3)", "'/other'"],
        id="duplicate-key",
    ),
    pytest.param(
        "defaults:\n\tretries: 2\n",
        2,
        ["found character '\\t'", "expected spaces for indentation"],
        id="tab-indent",
    ),
    pytest.param(
        "checks:\n  health: {path: /h\n",
        3,
        ["YAML syntax error", "expected valid YAML"],
        id="syntax-error",
    ),
    pytest.param(
        "defaults:\n  owner: @platform\n",
        2,
        [":2:10:", "defaults.owner", "found character '@'", "quoted value"],
        id="unquoted-at",
    ),
    pytest.param(
        "checks:\n  secrets: {scan_bodies: 'yes'}\n",
        2,
        ["checks.secrets.scan_bodies", "wrong type (a string)", "'yes'", "true or false"],
        id="bool-as-string",
    ),
    pytest.param(
        "defaults:\n  owner: no\n",
        2,
        ["defaults.owner", "a boolean", "found no", "quote it: 'no'"],
        id="norway",
    ),
    pytest.param(
        "defaults:\n  retries: 010\n",
        2,
        [":2:12:", "defaults.retries", "leading zero", "found 010", "without leading zeros"],
        id="octal-int",
    ),
    pytest.param(
        "defaults:\n  retries: '3'\n",
        2,
        ["defaults.retries", "found '3'", "expected an integer from 0 to 100 (unquoted)"],
        id="quoted-int",
    ),
    pytest.param(
        "defaults:\n  retries: 2.5\n",
        2,
        ["defaults.retries", "wrong type (a number)", "found 2.5", "an integer"],
        id="float-for-int",
    ),
    pytest.param(
        "defaults:\n  timeout: 1e3\n",
        2,
        ["defaults.timeout", "not a duration", "found '1e3'", "250ms, 30s, 2m"],
        id="duration-1e3",
    ),
    pytest.param(
        "checks:\n  health: {max_latency: soon}\n",
        2,
        ["checks.health.max_latency", "found 'soon'", "a duration such as"],
        id="bad-duration",
    ),
    pytest.param(
        "checks:\n  uploads: {path: /u, max_bytes: 10 megs}\n",
        2,
        ["checks.uploads.max_bytes", "not a size", "found '10 megs'", "512KiB, 10MiB"],
        id="bad-size",
    ),
    pytest.param(
        "checks:\n  health: {expect_status: 600}\n",
        2,
        ["checks.health.expect_status", "out of range", "found 600", "from 100 to 599"],
        id="bad-status",
    ),
    pytest.param(
        "checks:\n  retry_safe: [{method: POST, path: /o, conflict_status: [409, 42]}]\n",
        2,
        ["checks.retry_safe[0].conflict_status[1]", "found 42", "from 100 to 599"],
        id="bad-status-in-list",
    ),
    pytest.param(
        "checks:\n  health: {path: health}\n",
        2,
        ["checks.health.path", "does not start with '/'", "found 'health'", "such as /health"],
        id="path-without-slash",
    ),
    pytest.param(
        "checks:\n  secrets: {paths: [/.env, //evil.example/x]}\n",
        2,
        ["checks.secrets.paths[1]", "'//'", "found '//evil.example/x'"],
        id="path-other-host",
    ),
    pytest.param(
        "production:\n  - '^https://api\\.example\\.com'\n  - 'prod(['\n",
        3,
        ["production[1]", "not a valid regular expression", "found 'prod(['"],
        id="bad-regex",
    ),
    pytest.param(
        "production:\n  - '^https://[[a-z]]+\\.prod'\n",
        2,
        ["production[0]", "an ambiguous regular expression", "Possible nested set", "escaped"],
        id="ambiguous-regex",
    ),
    pytest.param(
        "auth:\n  token_env: STAGING_TOKEN\n  token: sk_live_abcdef123456\n",
        3,
        ["auth.token", "secrets only come from the environment: use token_env", "not shown"],
        id="literal-token",
    ),
    pytest.param(
        "auth:\n  token_env: 'my token'\n",
        2,
        ["auth.token_env", "not an environment variable name", "[A-Za-z_][A-Za-z0-9_]*"],
        id="bad-token-env",
    ),
    pytest.param(
        "rollback:\n  env: {DEPLOY-ENV: staging}\n",
        2,
        ["rollback.env.DEPLOY-ENV", "not an environment variable name", "found 'DEPLOY-ENV'"],
        id="bad-env-name",
    ),
    pytest.param(
        "rollback:\n  env: {RELEASE: 1.5}\n",
        2,
        ["rollback.env.RELEASE", "wrong type (a number)", "found 1.5", "quote it: '1.5'"],
        id="env-value-not-string",
    ),
    pytest.param(
        "rollback:\n  note: a\n  rollback_note: b\n",
        3,
        ["rollback.rollback_note", "both note and rollback_note", "found 'b'", "only one"],
        id="note-twice",
    ),
    pytest.param(
        'rollback:\n  command: "./rollback.sh \'now"\n',
        2,
        ["rollback.command", "No closing quotation", 'found "./rollback.sh \'now"', "quotes"],
        id="unterminated-quote",
    ),
    pytest.param(
        "rollback:\n  command: ['./deploy.sh', 3]\n",
        2,
        ["rollback.command[1]", "wrong type (an integer)", "found 3", "a string"],
        id="command-item-not-string",
    ),
    pytest.param(
        "rollback:\n  restore: []\n",
        2,
        ["rollback.restore", "empty command", "found []"],
        id="empty-command",
    ),
    pytest.param(
        "staging_url: ftp://files.example.com\n",
        1,
        [":1:14:", "staging_url", "unsupported scheme 'ftp'", "'ftp://files.example.com'"],
        id="ftp-url",
    ),
    pytest.param(
        "staging_url: staging.example.com\n",
        1,
        ["staging_url", "no scheme", "expected an http:// or https:// URL with a host"],
        id="no-scheme",
    ),
    pytest.param(
        "staging_url: 'https://'\n",
        1,
        ["staging_url", "no host", "found 'https://'"],
        id="no-host",
    ),
    pytest.param(
        "staging_url: https://deploy:hunter22@staging.example.com\n",
        1,
        ["staging_url", "credentials in the URL", "'https://***@staging.example.com'"],
        id="userinfo",
    ),
    pytest.param(
        "staging_url: https://staging.example.com/?api_key=abc123xyz\n",
        1,
        ["staging_url", "'api_key' looks like a credential", "?api_key=***"],
        id="api-key-query",
    ),
    pytest.param(
        "checks:\n  health: {expect_json: [ok]}\n",
        2,
        ["checks.health.expect_json", "wrong type (a list)", "found ['ok']", "a mapping"],
        id="expect-json-not-mapping",
    ),
    pytest.param(
        "checks:\n  uploads: {path: /upload}\n",
        2,
        ["checks.uploads.max_bytes", "missing key 'max_bytes'", "found {path: ...}"],
        id="missing-required",
    ),
    pytest.param(
        "checks:\n  uploads: true\n",
        2,
        ["checks.uploads", "needs settings", "found true", "path and max_bytes"],
        id="true-without-defaults",
    ),
    pytest.param(
        "checks:\n  retry_safe: [{method: FETCH, path: /o}]\n",
        2,
        ["checks.retry_safe[0].method", "found 'FETCH'", "GET, HEAD, POST"],
        id="bad-method",
    ),
    pytest.param(
        "checks:\n  headers: {profile: xml}\n",
        2,
        ["checks.headers.profile", "found 'xml'", "auto, html, api"],
        id="bad-profile",
    ),
    pytest.param(
        "checks:\n  headers:\n    paths: [/, {path: /api, profil: api}]\n",
        3,
        [
            "checks.headers.paths[1].profil",
            "unknown key 'profil' (did you mean 'profile'?)",
            "one of: path, profile, require, forbid",
        ],
        id="headers-path-unknown-key",
    ),
    pytest.param(
        "checks:\n  headers: {paths: [{path: api/orders}]}\n",
        2,
        ["checks.headers.paths[0].path", "does not start with '/'", "found 'api/orders'"],
        id="headers-path-without-slash",
    ),
    pytest.param(
        "checks:\n  headers: {paths: [{profile: api}]}\n",
        2,
        ["checks.headers.paths[0].path", "missing key 'path'", "found {profile: ...}"],
        id="headers-path-missing",
    ),
    pytest.param(
        "checks:\n  headers: {paths: [[/a]]}\n",
        2,
        ["checks.headers.paths[0]", "wrong type (a list)", "found ['/a']", "or a mapping {path:"],
        id="headers-path-entry-type",
    ),
    pytest.param(
        "checks:\n  headers: {paths: []}\n",
        2,
        ["checks.headers.paths", "empty list", "at least one"],
        id="headers-paths-empty",
    ),
    pytest.param(
        "checks:\n  headers:\n    paths:\n      - /api\n      - {path: /api, profile: api}\n",
        5,
        [
            ":5:16:",
            "checks.headers.paths[1].path",
            "duplicate path '/api' (first at line 4)",
            "found '/api'",
            "each path at most once",
        ],
        id="headers-path-duplicate",
    ),
    pytest.param(
        "checks:\n  headers: {paths: [/, /]}\n",
        2,
        ["checks.headers.paths[1]", "duplicate path '/' (first at line 2)"],
        id="headers-path-duplicate-string",
    ),
    pytest.param(
        "checks:\n  headers: {paths: [{path: /a, require: X-Request-Id}]}\n",
        2,
        ["checks.headers.paths[0].require", "wrong type (a string)", "a list of header names"],
        id="headers-path-require-not-list",
    ),
    pytest.param(
        "checks:\n  headers: {paths: [{path: /a, forbid: ['Bad Header: x']}]}\n",
        2,
        ["checks.headers.paths[0].forbid[0]", "not a valid header name", "'Bad Header: x'"],
        id="headers-path-bad-rule",
    ),
    pytest.param(
        "checks:\n  headers: {paths: [{path: /a, profile: json}]}\n",
        2,
        ["checks.headers.paths[0].profile", "unknown profile", "found 'json'", "auto, html, api"],
        id="headers-path-bad-profile",
    ),
    pytest.param(
        "checks:\n  retry_safe: [{method: POST, path: /o, key_format: Quote}]\n",
        2,
        [
            "checks.retry_safe[0].key_format",
            "unknown key format (did you mean 'quoted'?)",
            "found 'Quote'",
            "expected one of: quoted, bare",
        ],
        id="key-format-near-miss",
    ),
    pytest.param(
        "checks:\n  retry_safe: [{method: POST, path: /o, key_format: true}]\n",
        2,
        ["checks.retry_safe[0].key_format", "wrong type (a boolean)", "one of: quoted, bare"],
        id="key-format-type",
    ),
    pytest.param(
        "checks:\n  uploads: {path: /u, max_bytes: 512}\n",
        2,
        [
            ":2:34:",
            "checks.uploads.max_bytes",
            "too small to hold a multipart upload",
            "found 512, expected at least 1KiB",
        ],
        id="upload-below-floor",
    ),
    pytest.param(
        "checks:\n  health: {expect_json: {when: 2024-01-01}}\n",
        2,
        ["checks.health.expect_json.when", "a date", "quote it: '2024-01-01'"],
        id="json-date",
    ),
    pytest.param(
        "checks:\n  permissions: {protected: []}\n",
        2,
        ["checks.permissions", "nothing to check", "protected paths or roles"],
        id="empty-permissions",
    ),
    pytest.param(
        "rollback:\n  command: ./deploy.sh --api-key=k3y rollback\n",
        2,
        ["rollback.command", "secret on the command line", "'--api-key=***'", "environment"],
        id="secret-in-argv",
    ),
    pytest.param(
        "defaults: [owner]\n",
        1,
        ["defaults", "wrong type (a list)", "a mapping (keys: owner, timeout"],
        id="section-not-mapping",
    ),
    pytest.param(
        "a: 1\n---\nb: 2\n",
        2,
        ["expected a single document in the stream", "but found another document"],
        id="two-documents",
    ),
]


@pytest.mark.parametrize(("document", "line", "fragments"), MISTAKES)
def test_each_mistake_names_file_line_key_value_and_expectation(
    tmp_path: Path, document: str, line: int, fragments: list[str]
) -> None:
    message = failure(tmp_path, document)
    assert_names(message, line, f"{tmp_path / 'rehearsal.yaml'}:{line}:", *fragments)
    assert "; found " in error_line(message, line) or "YAML syntax error" in message
    assert ", expected " in error_line(message, line)


def test_all_problems_are_reported_in_file_order(tmp_path: Path) -> None:
    message = failure(
        tmp_path,
        """
        rollbak: {}
        defaults:
          retries: '3'
          timeout: 1e3
        checks:
          health: {path: health}
        """,
    )
    lines = message.splitlines()
    assert len(lines) == 4
    assert [line.split(":")[1] for line in lines] == ["2", "4", "5", "7"]
    assert "rollbak" in lines[0]
    assert "defaults.retries" in lines[1]
    assert "defaults.timeout" in lines[2]
    assert "checks.health.path" in lines[3]


def test_many_problems_are_capped_with_a_count(tmp_path: Path) -> None:
    document = "checks:\n  inputs:\n" + "".join(
        f"    - {{method: NOPE, path: /p{n}}}\n" for n in range(30)
    )
    lines = failure(tmp_path, document).splitlines()
    assert len(lines) == 21
    assert lines[-1].endswith("... and 10 more problems")


# ---------------------------------------------------------------------------------------------
# Hostile cases 1-10 of the reference, as far as they concern the loader


def test_hostile_1_a_repeated_key_pointing_at_production_is_refused(tmp_path: Path) -> None:
    message = failure(
        tmp_path,
        """\
        staging_url: https://staging.example.com
        rollback:
          command: ./rollback.sh

        staging_url: https://PROD.example.com
        """,
    )
    assert_names(message, 5, ":5:1:", "duplicate key 'staging_url' (first at line 1)")


def test_hostile_2_a_typo_key_is_not_silently_ignored(tmp_path: Path) -> None:
    message = failure(tmp_path, "rollbak:\n  command: ./rollback.sh\n")
    assert "unknown key 'rollbak' (did you mean 'rollback'?)" in message


def test_hostile_3_python_tags_are_refused_and_never_run(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    message = failure(
        tmp_path,
        f"""\
        checks:
          health: !!python/object/apply:os.system ["touch {marker}"]
        """,
    )
    assert_names(message, 2, ":2:11:", "checks.health", "!!python/object/apply:os.system")
    assert "is not allowed" in message
    assert not marker.exists()
    assert "not allowed" in failure(tmp_path, "staging_url: !custom https://x\n")


@pytest.mark.parametrize("document", ["", "\n\n", "# only a comment\n", "---\n", "- a\n- b\n"])
def test_hostile_4_empty_comment_only_and_list_documents(tmp_path: Path, document: str) -> None:
    assert "expected a mapping at top level" in failure(tmp_path, document)


def test_hostile_5_no_coercion_of_numbers(tmp_path: Path) -> None:
    message = failure(tmp_path, "defaults:\n  timeout: 1e3\n  retries: 010\n")
    assert_names(message, 2, "defaults.timeout", "'1e3'")
    assert_names(message, 3, "defaults.retries", "010", "leading zero")
    message = failure(tmp_path, 'defaults: {retries: "3"}\n')
    assert_names(message, 1, "defaults.retries", "'3'", "an integer")


def test_hostile_6_billion_laughs_and_huge_files(tmp_path: Path) -> None:
    laughs = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
        f"{chr(98 + n)}: &{chr(98 + n)} [*{chr(97 + n)},*{chr(97 + n)},*{chr(97 + n)}]\n"
        for n in range(8)
    )
    assert "aliases are not allowed" in failure(tmp_path, laughs)
    huge = tmp_path / "rehearsal.yaml"
    with huge.open("w", encoding="utf-8") as stream:
        stream.write("# " + "x" * 100 + "\n")
        stream.truncate(50 * 1024 * 1024)  # sparse: 50 MB on paper, nothing to write
    with pytest.raises(ConfigError, match="config larger than 64 KiB"):
        load_config(huge)
    with pytest.raises(ConfigError, match="config larger than 64 KiB"):
        parse_config("#" * (MAX_CONFIG_BYTES + 1), huge)
    deep = failure(tmp_path, "a: " + "[" * 200 + "]" * 200 + "\n")
    assert "nested more than 32 levels deep" in deep


def test_hostile_7_unterminated_quote_points_at_rollback_command(tmp_path: Path) -> None:
    message = failure(tmp_path, 'rollback:\n  command: ./deploy.sh "rollback\n')
    assert_names(message, 2, ":2:12:", "rollback.command", "No closing quotation")


def test_hostile_8_a_literal_token_is_refused_and_never_echoed(tmp_path: Path) -> None:
    secret = "ghp_0123456789abcdefSECRET"
    for document in (
        f"auth:\n  token: {secret}\n  token_env: T\n",
        f"auth:\n  token_env: T\n  password: {secret}\n",
        f"checks:\n  permissions: {{roles: {{viewer: {{token: {secret}}}}}}}\n",
        f"auth:\n  token_env: {secret}-x\n",
        f"auth:\n  token_env: T\n  token: a\n  token: {secret}\n",
    ):
        message = failure(tmp_path, document)
        assert secret not in message
        assert "secrets only come from the environment" in message or "not shown" in message
    numeric = "1234567890123456"
    message = failure(tmp_path, f"rollback:\n  env: {{DB_PASSWORD: {numeric}}}\n")
    assert_names(message, 2, "rollback.env.DB_PASSWORD", "not shown", "quote it")
    assert numeric not in message


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("staging.example", "no scheme"),
        ("ftp://files.example.com", "unsupported scheme 'ftp'"),
        ("https:///path", "no host"),
    ],
)
def test_hostile_9_urls_without_http_scheme_or_host(tmp_path: Path, url: str, problem: str) -> None:
    message = failure(tmp_path, f"staging_url: '{url}'\n")
    assert_names(message, 1, "staging_url", problem, repr(url))


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:pw123456@host.example/", "'https://***@host.example/'"),
        ("https://host.example/?api_key=abc123", "'https://host.example/?api_key=***'"),
        ("https://host.example/?page=2&access_token=abc123", "?page=2&access_token=***'"),
        ("https://host.example/?client_secret=abc123", "?client_secret=***'"),
        ("https://host.example/?password=abc123", "?password=***'"),
    ],
)
def test_hostile_10_credentials_in_urls_are_refused_and_masked(
    tmp_path: Path, url: str, shown: str
) -> None:
    message = failure(tmp_path, f"staging_url: '{url}'\n")
    assert_names(message, 1, "staging_url", shown)
    assert "abc123" not in message
    assert "pw123456" not in message


# ---------------------------------------------------------------------------------------------
# Reading the file


def test_unreadable_files_name_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=rf"^{missing}: no such file"):
        load_config(missing)
    with pytest.raises(ConfigError, match=rf"^{tmp_path}: is a directory"):
        load_config(tmp_path)
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes(b"defaults:\n  owner: caf\xe9\n")
    with pytest.raises(ConfigError, match=rf"^{latin1}:2:13: not valid UTF-8; found byte 0xe9"):
        load_config(latin1)
    control = write(tmp_path, "defaults: {owner: \x07}\n")
    with pytest.raises(ConfigError, match=r":1:19: special characters are not allowed"):
        load_config(control)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_a_file_without_read_permission_names_the_path(tmp_path: Path) -> None:
    path = write(tmp_path, "checks: {}\n")
    path.chmod(0)
    try:
        if _can_read(path):
            pytest.skip("running as a user who reads everything (root)")
        with pytest.raises(ConfigError, match=rf"^{path}: cannot read the file"):
            load_config(path)
    finally:
        path.chmod(0o644)


def _can_read(path: Path) -> bool:
    try:
        path.read_bytes()
    except PermissionError:
        return False
    return True


def test_a_byte_order_mark_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "rehearsal.yaml"
    path.write_bytes(b"\xef\xbb\xbfdefaults: {retries: 1}\n")
    assert load_config(path).defaults.retries == 1


# ---------------------------------------------------------------------------------------------
# The public helpers, directly


@pytest.mark.parametrize(
    ("url", "normalised"),
    [
        ("https://staging.example.com/", "https://staging.example.com"),
        ("https://Staging.Example.COM", "https://staging.example.com"),
        ("  http://127.0.0.1:8080/api/  \n", "http://127.0.0.1:8080/api"),
        ("HTTP://[::1]:9000", "http://[::1]:9000"),
        ("https://staging.example.com/?tenant=eu", "https://staging.example.com?tenant=eu"),
        ("http://my_service:8000", "http://my_service:8000"),
    ],
)
def test_validate_staging_url_normalises(url: str, normalised: str) -> None:
    assert validate_staging_url(url, "--staging-url") == normalised
    assert validate_staging_url(normalised, "STAGING_URL") == normalised


@pytest.mark.parametrize(
    ("url", "fragments"),
    [
        ("", ["empty URL"]),
        ("ftp://x.example", ["unsupported scheme 'ftp'", "'ftp://x.example'"]),
        ("file:///etc/passwd", ["unsupported scheme 'file'"]),
        ("staging.example.com", ["no scheme"]),
        ("localhost:8000", ["no scheme"]),
        ("https://", ["no host"]),
        ("https://:443/", ["no host"]),
        ("https://host:99999/", ["not a valid URL", "Port out of range"]),
        ("https://ho st.example/", ["whitespace"]),
        ("https://[::1/", ["not a valid URL"]),
        ("https://-bad.example/", ["invalid host"]),
        ("https://u:p4ss@x.example", ["credentials in the URL", "'https://***@x.example'"]),
        ("https://u:p4ss@w@x.example", ["credentials in the URL", "'https://***@x.example'"]),
        ("https://u:p4ss@[::1/", ["not a valid URL", "'https://***@[::1/'"]),
        ("https://x.example/?token=t0k3n", ["'token'", "?token=***"]),
        ("https://x.example/?passwort=p4ss", ["'passwort'", "?passwort=***"]),
        ("https://x.example/#frag", ["fragment"]),
    ],
)
def test_validate_staging_url_refuses(url: str, fragments: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        validate_staging_url(url, "--staging-url")
    message = str(info.value)
    assert message.startswith("--staging-url: ")
    assert "expected an http:// or https:// URL with a host" in message
    for fragment in fragments:
        assert fragment in message
    assert "p4ss" not in message
    assert "t0k3n" not in message


def test_split_command() -> None:
    assert split_command("./rollback.sh; rm -rf x", "--rollback-command") == (
        "./rollback.sh;",
        "rm",
        "-rf",
        "x",
    )
    assert split_command("./deploy.sh 'a b' \"$HOME\"", "w") == ("./deploy.sh", "a b", "$HOME")
    assert split_command(["./deploy.sh", "a b"], "w") == ("./deploy.sh", "a b")
    assert split_command("./x --token-file=/run/t --token", "w") == (
        "./x",
        "--token-file=/run/t",
        "--token",
    )


@pytest.mark.parametrize(
    ("value", "fragments"),
    [
        ("./x 'open", ["No closing quotation", "balanced quotes"]),
        ("./x \\", ["No escaped character"]),
        ("", ["empty command"]),
        ("   ", ["empty command"]),
        ([], ["empty command", "found []"]),
        (["./x", ""], ["argument 2 is empty"]),
        (["./x", 3], ["argument 2 is not a string", "found 3"]),
        (["./x", "a\x00b"], ["NUL character"]),
        ("./x --password=hunter2", ["passes a secret", "'--password=***'"]),
        (["./x", "--TOKEN=hunter2"], ["passes a secret"]),
    ],
)
def test_split_command_refuses(value: str | list[str], fragments: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        split_command(value, "--rollback-command")
    message = str(info.value)
    assert message.startswith("--rollback-command: ")
    assert ", expected " in message
    for fragment in fragments:
        assert fragment in message
    assert "hunter2" not in message


def test_check_production() -> None:
    patterns = (r"^https://api\.example\.com", r"\.prod\.")
    check_production("https://staging.example.com", patterns, "rehearsal.yaml")
    check_production("https://api.example.com.evil", (), "rehearsal.yaml")
    with pytest.raises(ConfigError) as info:
        check_production("https://api.example.com", patterns, "rehearsal.yaml")
    assert str(info.value) == (
        "staging URL 'https://api.example.com' matches production pattern "
        "'^https://api\\.example\\.com' from rehearsal.yaml; "
        "refusing to rehearse against production (no override)"
    )
    with pytest.raises(ConfigError, match=r"pattern '\\\.prod\\\.'"):
        check_production("https://eu.prod.example.com/v1", patterns, "r.yaml")


def test_check_production_is_not_fooled_by_case_or_the_trailing_slash() -> None:
    with pytest.raises(ConfigError, match="refusing to rehearse against production"):
        check_production("HTTPS://API.Example.com", (r"^https://api\.example\.com",), "r.yaml")
    with pytest.raises(ConfigError, match="refusing to rehearse against production"):
        check_production("https://api.example.com", (r"^https://api\.example\.com/$",), "r.yaml")


def test_check_production_masks_credentials_and_reports_bad_patterns() -> None:
    with pytest.raises(ConfigError) as info:
        check_production("https://u:secretpw@api.example.com", ("api",), "r.yaml")
    assert "secretpw" not in str(info.value)
    with pytest.raises(ConfigError, match=r"^r\.yaml: production: not a valid regular expression"):
        check_production("https://x", ("(",), "r.yaml")
    for _ in range(2):  # the second time re.compile answers from its cache, without a warning
        with pytest.raises(ConfigError, match="ambiguous regular expression"):
            check_production("https://x", ("[[",), "r.yaml")


def test_url_from_the_file_is_validated_like_the_option(tmp_path: Path) -> None:
    config = load(tmp_path, "staging_url: HTTPS://Staging.Example.com/base/\n")
    assert config.staging_url == "https://staging.example.com/base"
    assert validate_staging_url(config.staging_url, "x") == config.staging_url


@pytest.mark.parametrize(
    ("section", "keypath"),
    [
        ("secrets: {paths: [/.env, /x, /.env]}", "checks.secrets.paths[2]"),
        ("permissions: {protected: [/admin, /admin, /x]}", "checks.permissions.protected[1]"),
        (
            "permissions: {roles: {viewer: {token_env: V, denied: [/a, /a]}}}",
            "checks.permissions.roles.viewer.denied[1]",
        ),
    ],
)
def test_a_path_listed_twice_would_repeat_an_item_id(section: str, keypath: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(f"checks:\n  {section}\n", Path("r.yaml"))
    message = str(info.value)
    assert message.startswith("r.yaml:2:")
    assert f"{keypath}: duplicate '/" in message
    assert "(first at line 2)" in message
    assert "expected each value at most once" in message


# ---------------------------------------------------------------------------------------------
# The release lifecycle: deploy, verify.track, restore_after, watch, budgets


def test_the_lifecycle_keys_load(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """\
        deploy:
          command: ['./deploy.sh', 'deploy', '1.5.0']
          timeout: 5m
          within: 2m
          owner: '@release'
          expect: 'staging serves 1.5.0'
          rollback_note: 'roll back with deploy.sh rollback'
        rollback:
          command: ./deploy.sh rollback
          verify: {track: [version, build.sha], within: 30s}
          restore_after: verified
          watch: {interval: 250ms}
          max_recovery: 2m
          max_outage: 0s
        """,
    )
    assert config.deploy == DeployConfig(
        command=("./deploy.sh", "deploy", "1.5.0"),
        timeout=300.0,
        within=120.0,
        owner="@release",
        expect="staging serves 1.5.0",
        rollback_note="roll back with deploy.sh rollback",
    )
    rollback = config.rollback
    assert rollback.verify == VerifyConfig(track=("version", "build.sha"), within=30.0)
    assert (rollback.restore_after, rollback.watch) == ("verified", WatchConfig(0.25))
    assert (rollback.max_recovery, rollback.max_outage) == (120.0, 0.0)


def test_the_lifecycle_defaults(tmp_path: Path) -> None:
    config = load(tmp_path, "rollback: {command: ./deploy.sh rollback, watch: true}\n")
    assert config.deploy is None
    assert config.rollback.restore_after == "always"
    assert config.rollback.watch == WatchConfig(0.5)
    assert (config.rollback.max_recovery, config.rollback.max_outage) == (None, None)
    assert load(tmp_path, "rollback: {watch: false}\n").rollback.watch is None
    assert DeployConfig(command=("x",)).timeout == 300.0


@pytest.mark.parametrize(
    ("text", "line", "fragments"),
    [
        ("deploy: {timeout: 5m}\n", 1, ["deploy.command: missing key 'command'"]),
        ("deploy: {command: []}\n", 1, ["deploy.command: empty command"]),
        ("deploy: {command: x, within: 0s}\n", 1, ["deploy.within: must be more than zero"]),
        ("deploy: {command: x, note: y}\n", 1, ["unknown key 'note'"]),
        ("rollback:\n  verify: {track: [build.]}\n", 2, ["not a dotted path (an empty part)"]),
        ("rollback:\n  verify: {track: [a, a]}\n", 2, ["duplicate 'a'"]),
        ("rollback:\n  verify: {track: version}\n", 2, ["wrong type (a string)"]),
        ("rollback:\n  restore_after: verfied\n", 2, ["unknown restore_after (did you mean"]),
        ("rollback:\n  watch: {interval: 10ms}\n", 2, ["interval too short", "at least 100 ms"]),
        ("rollback:\n  watch: {every: 1s}\n", 2, ["unknown key 'every'"]),
        ("rollback:\n  max_recovery: 0s\n", 2, ["must be more than zero"]),
        (
            "rollback:\n  watch: false\n  max_outage: 5s\n",
            3,
            ["max_outage needs the watch, and watch is false", "found '5s'"],
        ),
    ],
)
def test_lifecycle_mistakes_point_at_their_line(
    tmp_path: Path, text: str, line: int, fragments: list[str]
) -> None:
    assert_names(failure(tmp_path, text), line, *fragments)


# ---------------------------------------------------------------------------------------------
# Values from the environment


INTERPOLATED = """\
staging_url: 'https://${STAGING_HOST}'
deploy: {command: ['./deploy.sh', 'deploy', '${RELEASE}']}
rollback:
  command: ['./deploy.sh', 'rollback', '--to', '${PREVIOUS:-1.4.2}', '${EMPTY:-fallback}']
  env: {PRICE: '$$5', HOME_AS_WRITTEN: '$HOME', MIXED: 'a-${RELEASE}-$$RELEASE-$RELEASE'}
  verify: {expect_json: {version: '${PREVIOUS:-1.4.2}', n: 3}, within: '${WITHIN:-5s}'}
  owner: '${OWNER:-@oncall}'
"""


def test_variables_set_defaulted_and_escaped(tmp_path: Path) -> None:
    environ = {"STAGING_HOST": "staging.example.com", "RELEASE": "1.5.0", "EMPTY": ""}
    config = parse_config(INTERPOLATED, tmp_path / "rehearsal.yaml", environ)
    assert config.staging_url == "https://staging.example.com"
    assert config.deploy is not None
    assert config.deploy.command == ("./deploy.sh", "deploy", "1.5.0")
    rollback = config.rollback
    # A default applies when the variable is unset or empty.
    assert rollback.command == ("./deploy.sh", "rollback", "--to", "1.4.2", "fallback")
    assert rollback.env == {
        "PRICE": "$5",
        "HOME_AS_WRITTEN": "$HOME",  # a bare $NAME is left as written
        "MIXED": "a-1.5.0-$RELEASE-$RELEASE",
    }
    assert rollback.verify is not None
    assert rollback.verify.expect_json == {"version": "1.4.2", "n": 3}
    assert rollback.verify.within == 5.0
    assert rollback.owner == "@oncall"
    set_too = parse_config(INTERPOLATED, tmp_path / "r.yaml", {**environ, "PREVIOUS": "1.4.1"})
    assert set_too.rollback.command[3] == "1.4.1"


def test_every_unset_variable_is_named_at_once_with_file_line_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, INTERPOLATED)
    with pytest.raises(ConfigError) as info:
        load_config(path, {})
    lines = str(info.value).splitlines()
    assert lines == [
        f"{path}:1:14: staging_url: environment variable STAGING_HOST is not set; found "
        "'https://${STAGING_HOST}', expected STAGING_HOST set in the environment, or a default: "
        "${STAGING_HOST:-value}",
        f"{path}:2:45: deploy.command[2]: environment variable RELEASE is not set; found "
        "'${RELEASE}', expected RELEASE set in the environment, or a default: ${RELEASE:-value}",
        f"{path}:5:56: rollback.env.MIXED: environment variable RELEASE is not set; found "
        "'a-${RELEASE}-$$RELEASE-$RELEASE', expected RELEASE set in the environment, or a "
        "default: ${RELEASE:-value}",
    ]  # and nothing else: a value with an unset variable is not judged further


def test_unset_variables_and_other_problems_are_reported_together(tmp_path: Path) -> None:
    message = failure(
        tmp_path,
        """\
        rollback:
          command: ['./deploy.sh', '${A}', '${B}']
          timeout: soon
          owner: '${C}'
        """,
    )
    assert "rollback.command[1]: environment variable A is not set" in message
    assert "rollback.command[2]: environment variable B is not set" in message
    assert_names(message, 3, "rollback.timeout: not a duration")
    assert_names(message, 4, "rollback.owner: environment variable C is not set")


def test_the_environment_defaults_to_os_environ(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REHEARSAL_TEST_OWNER", "@from-env")
    config = load(tmp_path, "rollback: {owner: '${REHEARSAL_TEST_OWNER}'}\n")
    assert config.rollback.owner == "@from-env"


def test_keys_are_never_interpolated(tmp_path: Path) -> None:
    message = failure(tmp_path, "rollback:\n  env: {'${X}': a}\n")
    assert_names(message, 2, "not an environment variable name")


@pytest.mark.parametrize("value", ["${", "${1X}", "a ${X", "${X:}", "${X-y}"])
def test_a_malformed_reference_is_refused(tmp_path: Path, value: str) -> None:
    message = failure(tmp_path, f"rollback: {{owner: '{value}'}}\n")
    assert_names(message, 1, "rollback.owner: malformed ${...} reference", "$$ for a $")


def test_settings_pass_their_environment_to_the_loader(tmp_path: Path) -> None:
    from pytest_rehearsal.settings import Options, resolve

    path = write(tmp_path, "rollback: {command: ['./deploy.sh', 'deploy', '${RELEASE}']}\n")
    environ = {"STAGING_URL": "https://staging.example.com", "RELEASE": "2.0.0"}
    settings = resolve(Options(), environ, path, tmp_path)
    assert settings is not None
    assert settings.rollback_command == ("./deploy.sh", "deploy", "2.0.0")


# ---------------------------------------------------------------------------------------------
# Commands are never run by a shell


SHELL_SYNTAX = [";", "&&", "||", "|", "&", "<", ">", ">>"]


@pytest.mark.parametrize("operator", SHELL_SYNTAX)
def test_a_shell_operator_in_a_string_command_is_refused(tmp_path: Path, operator: str) -> None:
    command = f"./deploy.sh rollback {operator} ./notify.sh"
    for key in ("command", "restore"):
        message = failure(tmp_path, f"rollback:\n  {key}: '{command}'\n")
        assert_names(
            message,
            2,
            f"rollback.{key}: shell syntax {operator!r} in a string command",
            "never run by a shell",
            "a script that does it, or the list form",
        )
    message = failure(tmp_path, f"deploy: {{command: '{command}'}}\n")
    assert_names(message, 1, f"deploy.command: shell syntax {operator!r}")
    expected = f"--rollback-command: shell syntax {operator!r}"
    with pytest.raises(ConfigError, match=f"^{re.escape(expected)}"):
        split_command(command, "--rollback-command")


@pytest.mark.parametrize(
    ("command", "shown"),
    [("./deploy.sh $(cat release)", "$("), ("./deploy.sh `cat release`", "`")],
)
def test_command_substitution_is_refused_anywhere(command: str, shown: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"shell syntax {shown!r}")):
        split_command(command, "--rollback-command")
    with pytest.raises(ConfigError, match=re.escape(f"shell syntax {shown!r}")):
        split_command(f"./x '{command}'", "--rollback-command")  # quoted: still a shell's job


def test_operators_that_are_arguments_stay_allowed() -> None:
    assert split_command("./tool '&&' \"|\" a\\;b", "w") == ("./tool", "&&", "|", "a;b")
    assert split_command("./tool --url=http://x/?a=1&b=2 2>x", "w") == (
        "./tool",
        "--url=http://x/?a=1&b=2",
        "2>x",
    )
    assert split_command(["./tool", "&&", ">", "$(x)"], "w") == ("./tool", "&&", ">", "$(x)")


# Issue 11: values no report could hold, patterns that never end, durations that overflow


@pytest.mark.parametrize(
    ("document", "line", "keypath", "found"),
    [
        (
            'checks:\n  health: {path: "/\\ud800"}\n',
            2,
            "checks.health.path",
            "\\ud800 at character 2",
        ),
        (
            'rollback:\n  env: {DEPLOY_ENV: "st\\udcffging"}\n',
            2,
            "rollback.env.DEPLOY_ENV",
            "\\udcff",
        ),
        ('rollback:\n  command: [./x, "\\udfff"]\n', 2, "rollback.command[1]", "\\udfff"),
        ('defaults:\n  "own\\ud83der": x\n', 2, "defaults", "\\ud83d at character 4"),
        ("production: ['\\ud800']\n", 1, "production[0]", "\\ud800"),
    ],
    ids=["path", "env-value", "argument", "key", "single-quoted-is-literal"],
)
def test_a_lone_surrogate_in_any_string_is_refused_at_its_line(
    tmp_path: Path, document: str, line: int, keypath: str, found: str
) -> None:
    if "'\\ud800'" in document:
        # Single quotes do not escape: that is six plain characters, and a valid pattern.
        assert load(tmp_path, document).production == ("\\ud800",)
        return
    message = failure(tmp_path, document)
    assert_names(
        message,
        line,
        f"{keypath}: a lone surrogate is not text; found {found}",
        "expected UTF-8 text (an escape from \\ud800 to \\udfff is half of a UTF-16 pair",
    )
    message.encode("utf-8")  # the message itself is printable anywhere


def test_a_character_beyond_u_ffff_is_written_with_a_long_escape(tmp_path: Path) -> None:
    # YAML (PyYAML) does not join "\ud83d\ude00" as JSON would: both halves are refused, and
    # the message shows the escape that works.
    message = failure(tmp_path, 'defaults: {owner: "\\ud83d\\ude00 team"}\n')
    assert "or \\U0001f600 for one beyond U+FFFF" in message
    config = load(tmp_path, 'defaults: {owner: "\\U0001F600 team"}\n')
    assert config.defaults.owner == "\U0001f600 team"


CATASTROPHIC = [
    r"^https?://([a-z0-9]+-?)+\.prod\.example\.com",
    r"(a+)+",
    r"(a*)*b",
    r"^(\w+\.?\w+)+$",
    r"(.*,)+x",
    r"(ab|[a-z]b)+$",
    r"(a|a)+$",
    r"(?i)(A+a)+",
]
SAFE = [
    r"^https://api\.example\.com",
    r"^https?://([a-z0-9-]+\.)+prod\.example\.com",
    r"^https?://[a-z0-9-]+\.prod\.example\.com",
    r"(\d{1,3}\.){3}\d{1,3}",
    r"^https?://(www\.)?example\.com(:\d+)?(/.*)?$",
    r"(\.[a-z]+)+/prod$",
    r"^https://(api|www|admin)\.example\.com",
    r"\bprod\b",
]


@pytest.mark.parametrize("pattern", CATASTROPHIC)
def test_a_production_pattern_that_can_backtrack_catastrophically_is_refused(
    tmp_path: Path, pattern: str
) -> None:
    message = failure(tmp_path, f"production:\n  - '{pattern}'\n")
    assert_names(
        message,
        2,
        ":2:5: production[0]: pattern can backtrack catastrophically: ",
        "so the text splits in many ways",
        "expected a pattern whose repeated groups cannot split the same text in several ways",
        r"(^https?://[a-z0-9-]+\.prod\.example\.com)",
    )
    with pytest.raises(ConfigError, match=r"^r\.yaml: production: pattern can backtrack"):
        check_production("https://staging.example.com", (pattern,), "r.yaml")


@pytest.mark.parametrize("pattern", SAFE)
def test_production_patterns_without_ambiguous_repetition_load(
    tmp_path: Path, pattern: str
) -> None:
    assert load(tmp_path, f"production: ['{pattern}']\n").production == (pattern,)
    check_production("https://staging.example.com", (pattern,), "r.yaml")


def test_production_patterns_are_searched_in_the_head_of_a_url_only() -> None:
    padding = "/" + "a" * MAX_PRODUCTION_TEXT
    assert production_match("https://api.example.com" + padding, (r"api\.example",)) is not None
    assert production_match("https://x.example.com" + padding + "prod", ("prod",)) is None


def test_no_deprecation_warning_from_the_regex_parser() -> None:
    # The suite runs with warnings as errors; so may a user's. sre_parse warns on 3.11+.
    code = (
        "import warnings; warnings.simplefilter('error');"
        "from pytest_rehearsal.regex_safety import backtracking_problem;"
        "assert backtracking_problem('(a+)+') is not None"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("document", "keypath"),
    [
        ("defaults: {timeout: 999999999999h}\n", "defaults.timeout"),
        ("defaults: {timeout: 25h}\n", "defaults.timeout"),
        ("rollback: {timeout: 86401}\n", "rollback.timeout"),
        ("rollback: {verify: {within: 1" + "0" * 400 + "}}\n", "rollback.verify.within"),
        ("checks: {health: {max_latency: '" + "9" * 400 + "s'}}\n", "checks.health.max_latency"),
    ],
)
def test_durations_beyond_24_hours_are_refused(tmp_path: Path, document: str, keypath: str) -> None:
    message = failure(tmp_path, document)
    assert_names(
        message,
        1,
        f"{keypath}: duration longer than the 24 h maximum",
        "expected a duration such as 250ms, 30s, 2m or a number of seconds",
        "at most 24 h",
    )
    assert len(message) < 1000  # a 400-digit value is shown cut


def test_a_duration_of_exactly_24_hours_loads(tmp_path: Path) -> None:
    assert load(tmp_path, "rollback: {timeout: 24h}\n").rollback.timeout == 86400.0
