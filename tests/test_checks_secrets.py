"""The ``secrets`` checks: exposure markers, the soft-404 guard, and the response body scan.

Every fake token is assembled at runtime from a seeded generator, so this file does not
itself look like a leaked secret to a scanner.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checkdriver import Recorder, answer, drive
from pytest_rehearsal.checks import secrets as secrets_check
from pytest_rehearsal.checks._base import Probe, Reply, ReplyLog, Verdict
from pytest_rehearsal.checks._leaks import (
    RULES,
    SCAN_LIMIT,
    LeakRule,
    mask_secrets,
    redact,
    scan_text,
    shannon_entropy,
)
from pytest_rehearsal.checks.secrets import ExposureCheck, ResponsesScan, artefact_for
from pytest_rehearsal.config import (
    ChecksConfig,
    InputEntry,
    RehearsalConfig,
    SecretsCheckConfig,
)

UPPER32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def rand(alphabet: str, length: int, seed: int = 7) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice(alphabet) for _ in range(length))


def private_key(kind: str = "RSA ") -> str:
    body = "\n".join(rand(ALNUM + "+/", 64, seed) for seed in range(4))
    label = kind + "PRIVATE" + " KEY"
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----"


def jwt() -> str:
    return "ey" + rand(ALNUM, 30, 1) + ".ey" + rand(ALNUM, 40, 2) + "." + rand(ALNUM, 43, 3)


FAKE_SECRETS: dict[str, str] = {
    "aws-access-token": "AK" + "IA" + rand(UPPER32, 16),
    "private-key": private_key(),
    "putty-private-key": "PuTTY-User-Key-File-" + "2: ssh-rsa",
    "github-pat": "gh" + "p_" + rand(ALNUM, 36),
    "github-fine-grained-pat": "github" + "_pat_" + rand(ALNUM + "_", 82),
    "github-oauth": "gh" + "o_" + rand(ALNUM, 36),
    "gitlab-pat": "gl" + "pat-" + rand(ALNUM, 20),
    "slack-bot-token": "xo" + "xb-" + rand("0123456789", 12) + "-" + rand("0123456789", 12, 2),
    "slack-webhook-url": "https://hooks.slack.com/" + "services/" + rand(ALNUM, 44),
    "stripe-access-token": "sk" + "_live_" + rand(ALNUM, 24),
    "gcp-api-key": "AI" + "za" + rand(ALNUM + "-_", 35),
    "npm-access-token": "np" + "m_" + rand("abcdefghijklmnopqrstuvwxyz0123456789", 36),
}


def cfg(
    paths: tuple[str, ...] = ("/.env",), *, scan: bool = True, **checks: object
) -> RehearsalConfig:
    return RehearsalConfig(
        checks=ChecksConfig(
            secrets=SecretsCheckConfig(paths=paths, scan_bodies=scan),
            **checks,  # type: ignore[arg-type]
        )
    )


def exposure(path: str) -> ExposureCheck:
    return ExposureCheck(path, cfg((path,)))


def served(
    path: str,
    body: bytes | str,
    content_type: str = "text/plain",
    *,
    status: int = 200,
    baseline: tuple[int, bytes | str, str] = (404, '{"detail":"Not Found"}', "application/json"),
) -> Reply | None:
    """Drive ``secrets[path]`` with *body* at the path and *baseline* for any other path."""
    check = exposure(path)

    def respond(probe: Probe) -> Reply:
        if probe.path == path:
            return answer(probe, status, [("Content-Type", content_type)], body)
        code, data, ctype = baseline
        return answer(probe, code, [("Content-Type", ctype)], data)

    verdict = drive(check, respond)
    return None if verdict.passed else verdict  # type: ignore[return-value]


# -- the leak rules -----------------------------------------------------------------------------


@pytest.mark.parametrize("rule", sorted(FAKE_SECRETS))
def test_each_secret_rule_matches_and_is_redacted(rule: str) -> None:
    secret = FAKE_SECRETS[rule]
    findings = scan_text(f'{{"config": "{secret}"}}', "body")
    assert [f.rule.name for f in findings] == [rule]
    shown = findings[0].shown
    assert shown.endswith("…")
    assert len(shown) == 5
    assert secret not in findings[0].describe()


def test_secret_rules_work_inside_html_too() -> None:
    for rule, secret in FAKE_SECRETS.items():
        findings = scan_text(f"<td>{secret}</td>", "body")
        assert rule in [f.rule.name for f in findings], rule


def test_aws_example_keys_and_low_entropy_are_allowed() -> None:
    assert scan_text("AK" + "IA" + "IOSFODNN7" + "EXAMPLE", "body") == []
    assert scan_text("AK" + "IA" + "A" * 16, "body") == []


def test_jwt_is_found_but_only_warns() -> None:
    (finding,) = scan_text(f'{{"token": "{jwt()}"}}', "body")
    assert finding.rule.name == "jwt"
    assert finding.rule.warn_only


def test_mask_secrets_redacts_every_secret_and_keeps_the_rest() -> None:
    text = " | ".join(f"{rule}={secret}" for rule, secret in FAKE_SECRETS.items())
    masked = mask_secrets(text + " | jwt=" + jwt())
    for secret in [*FAKE_SECRETS.values(), jwt()]:
        assert secret not in masked
    assert "aws-access-token=AKIA…" in masked
    assert mask_secrets("plain AKIAIOSFODNN7EXAMPLE text") == "plain AKIAIOSFODNN7EXAMPLE text"


def test_redact_and_entropy_helpers() -> None:
    assert redact("sk_live_abcdef") == "sk_l…"
    assert shannon_entropy("aaaa") == 0.0
    assert shannon_entropy("abcd") == pytest.approx(2.0)


TRACES = {
    "werkzeug-debugger": "<title>Werkzeug Debugger</title> Traceback (most recent call last)",
    "django-debug-page": (
        "You're seeing this error because you have <code>DEBUG = True</code> "
        "in your Django settings file"
    ),
    "django-debug-404": (
        "Django tried these URL patterns, in this order: ... You're seeing this error because "
        "you have <code>DEBUG = True</code> in your Django settings file"
    ),
    "python-traceback": (
        'Traceback (most recent call last):\n  File "app.py", line 3\nKeyError: token=abc'
    ),
    "java-stack-trace": "java.lang.NullPointerException\n\tat com.shop.Orders.add(Orders.java:42)",
    "node-stack-trace": "TypeError: x\n    at Object.<anonymous> (/srv/app/index.js:10:5)",
    "dotnet-error-page": "<h1>Server Error in '/' Application.</h1>",
    "php-error": (
        "<b>Fatal error</b>:  Uncaught Error: Call to undefined function f() "
        "in <b>/var/www/i.php</b> on line <b>3</b>"
    ),
}


@pytest.mark.parametrize("rule", sorted(TRACES))
def test_each_trace_marker_and_only_the_most_specific(rule: str) -> None:
    findings = scan_text(TRACES[rule], "body")
    assert [f.rule.name for f in findings] == [rule]
    assert "token=abc" not in findings[0].shown  # only the marker line is shown


def test_django_404_debug_page_and_java_thread_marker() -> None:
    assert scan_text("Django tried these URL patterns, in this order", "b")[0].rule.name == (
        "django-debug-404"
    )
    assert scan_text('Exception in thread "main" java.lang.Error', "b")[0].rule.name == (
        "java-stack-trace"
    )


@pytest.mark.parametrize(
    "text",
    [
        "Meet us at home (see page 3)",
        "<p>An error occurred. Please try again.</p>",
        '{"detail": [{"loc": ["body", "quantity"], "msg": "Input should be a valid integer"}]}',
        "Internal Server Error",
    ],
)
def test_ordinary_text_has_no_findings(text: str) -> None:
    assert scan_text(text, "body") == []


# -- exposure: markers and the soft-404 guard ---------------------------------------------------

ENV_FILE = "APP_NAME=shop\nAPP_KEY=base64:Zm9v\nDB_PASSWORD=hunter2hunter2\n"

EXPOSED: list[tuple[str, bytes | str, str, str]] = [
    ("/.git/config", "[core]\n\trepositoryformatversion = 0\n", "text/plain", "'[core]'"),
    ("/.git/HEAD", "ref: refs/heads/main\n", "text/plain", "ref: refs/"),
    ("/.git/logs/HEAD", "0" * 40 + " " + "a" * 40 + " dev <d@x> 1 +0000\n", "text/plain", "git"),
    ("/.env", ENV_FILE, "text/plain", "APP_NAME, APP_KEY, DB_PASSWORD"),
    (
        "/.env.production",
        "export DB_HOST=x\nexport DB_USER=y\n",
        "application/octet-stream",
        "DB_HOST",
    ),
    ("/.svn/entries", "12\n", "text/plain", "svn"),
    ("/.hg/requires", "dotencode\nfncache\nrevlogv1\nstore\n", "text/plain", "hg"),
    ("/.DS_Store", b"\x00\x00\x00\x01Bud1\x00\x00", "application/octet-stream", "DS_Store"),
    ("/backup.zip", b"PK\x03\x04\x14\x00", "application/zip", "zip file signature 50 4B 03 04"),
    ("/backup.tar.gz", b"\x1f\x8b\x08\x00", "application/gzip", "gzip"),
    ("/site.7z", b"7z\xbc\xaf\x27\x1c\x00", "application/x-7z-compressed", "7z"),
    ("/www.rar", b"Rar!\x1a\x07\x00", "application/vnd.rar", "rar"),
    ("/data.sqlite", b"SQLite format 3\x00...", "application/octet-stream", "SQLite"),
    ("/backup.tar", b"\x00" * 257 + b"ustar\x0000", "application/x-tar", "tar"),
    ("/dump.sql", "-- MySQL dump 10.13\nCREATE TABLE users (id int);\n", "application/sql", "SQL"),
    ("/docker-compose.yml", "services:\n  db:\n    image: postgres\n", "text/yaml", "compose"),
    ("/.npmrc", "//registry.npmjs.org/:_authToken=abc\n", "text/plain", "npm"),
    ("/.aws/credentials", "[default]\naws_access_key_id = x\n", "text/plain", "aws keys"),
    ("/actuator/heapdump", b"JAVA PROFILE 1.0.2\x00", "application/octet-stream", "HPROF"),
    (
        "/actuator/env",
        '{"activeProfiles":[],"propertySources":[{"name":"server.ports"}]}',
        "application/vnd.spring-boot.actuator.v3+json",
        "activeProfiles, propertySources",
    ),
    (
        "/actuator/health",
        '{"status":"UP","components":{"db":{}}}',
        "application/json",
        "components",
    ),
    ("/env", ENV_FILE, "text/plain", "KEY=value lines"),
    ("/env", '{"PATH": "/bin", "HOME": "/root", "SECRET_KEY": "x"}', "application/json", "PATH"),
    (
        "/phpinfo.php",
        "<html><title>PHP Version 8.2</title>PHP Extension</html>",
        "text/html",
        "phpinfo",
    ),
    (
        "/old-admin.html",
        "<html><body>old admin</body></html>",
        "text/html",
        "is served: 35 bytes of text/html, while unknown paths get 404",
    ),
    (
        "/old-admin.html",
        "<html><title>Old &amp; admin</title></html>",
        "text/html",
        'is served: an HTML page "Old & admin" (43 bytes), while unknown paths get 404',
    ),
    (
        "/export.bin",
        bytes(range(64)),
        "application/octet-stream",
        "is served: 64 bytes of application/octet-stream, while unknown paths get 404",
    ),
]


@pytest.mark.parametrize(("path", "body", "ctype", "evidence"), EXPOSED)
def test_each_exposure_marker(path: str, body: bytes | str, ctype: str, evidence: str) -> None:
    status = 206 if path.endswith(".sql") else 200
    verdict = served(path, body, ctype, status=status)
    assert verdict is not None, f"{path} not reported"
    assert evidence in verdict.message
    assert verdict.message.startswith(f"GET https://staging.test{path}\n")
    assert "retry:    safe: GET does not change staging" in verdict.message


def test_the_exposed_body_is_never_quoted() -> None:
    verdict = served("/.env", ENV_FILE)
    assert verdict is not None
    assert "hunter2" not in verdict.message
    assert "Zm9v" not in verdict.message


def test_an_exposed_file_with_a_token_names_the_token_redacted() -> None:
    token = FAKE_SECRETS["stripe-access-token"]
    verdict = served("/.env", ENV_FILE + f"STRIPE_KEY={token}\n")
    assert verdict is not None
    assert 'contains a Stripe secret key "sk_l…"' in verdict.message
    assert token not in verdict.message


def test_a_served_page_with_a_secret_fails_even_without_the_marker() -> None:
    token = FAKE_SECRETS["github-pat"]
    verdict = served("/.env", f"<html><body>{token}</body></html>", "text/html")
    assert verdict is not None
    assert "GitHub personal access token" in verdict.message


@pytest.mark.parametrize(
    ("path", "body", "ctype"),
    [
        ("/.env", "<html><body>Welcome</body></html>", "text/html"),  # HTML is not an env file
        ("/.env", "APP_NAME=shop\n", "text/plain"),  # one line is not enough
        ("/.git/config", "<!doctype html><html>[core]</html>", "text/html"),
        ("/backup.zip", "not a zip", "application/zip"),
        ("/phpinfo.php", "PHP Version 8 only", "text/html"),
        ("/actuator/health", '{"status":"UP"}', "application/json"),
        ("/actuator/env", "activeProfiles", "text/plain"),  # not JSON
    ],
)
def test_no_marker_no_exposure(path: str, body: str, ctype: str) -> None:
    assert served(path, body, ctype) is None


@pytest.mark.parametrize("status", [404, 403, 401, 302, 500])
def test_not_served_statuses_pass(status: int) -> None:
    assert served("/.env", ENV_FILE, status=status) is None


def test_soft_404_identical_to_the_baseline_is_not_exposure() -> None:
    catch_all = "APP_NAME=x\nAPP_ENV=y\n"  # even a marker-looking body, if every path gets it
    assert served("/.env", catch_all, baseline=(200, catch_all, "text/plain")) is None


def test_soft_404_that_echoes_the_path_is_not_exposure() -> None:
    check = exposure("/.env")

    def respond(probe: Probe) -> Reply:
        return answer(
            probe, 200, [("Content-Type", "text/plain")], f"A=1\nB=2\npath={probe.path}\n"
        )

    assert drive(check, respond).passed


def test_soft_404_single_page_app_hides_a_generic_path() -> None:
    spa = "<!doctype html><html><body><div id=app></div></body></html>"
    assert (
        served("/old-admin.html", spa + "x", "text/html", baseline=(200, spa, "text/html")) is None
    )


def test_baseline_is_in_the_same_batch_as_the_probe() -> None:
    recorder = Recorder(lambda p: answer(p, 404))
    assert drive(exposure("/dump.sql"), recorder).passed
    (batch,) = recorder.rounds
    baseline, probe = batch
    assert re.fullmatch(r"/__rehearsal_[0-9a-f]{32}", baseline.path)
    assert probe.path == "/dump.sql"
    assert ("Range", "bytes=0-3000") in probe.headers  # never download a whole dump
    assert probe.read_limit <= 64 * 1024


def test_no_response_fails_because_exposure_is_unknown() -> None:
    check = exposure("/.env")
    verdict = drive(check, lambda p: answer(p, None, error="connection refused"))
    assert not verdict.passed
    assert "no response (connection refused): exposure unknown" in verdict.message


def test_artefact_kinds_by_path() -> None:
    assert artefact_for("/.git/packed-refs").kind == "git metadata"
    assert artefact_for("/api/.env").kind == "an environment file"
    assert artefact_for("/config.env").kind == "an environment file"
    assert artefact_for("/database.sql.gz").kind == "a backup archive"
    assert artefact_for("/?phpinfo=1").kind == "anything"
    assert artefact_for("/_profiler/phpinfo").kind == "a phpinfo() page"


def test_build_ids_and_switches() -> None:
    ids = [c.id for c in secrets_check.build(cfg(("/.env", "/.git/config")))]
    assert ids == ["secrets[/.env]", "secrets[/.git/config]", "secrets[responses]"]
    assert [c.id for c in secrets_check.build(cfg(scan=False))] == ["secrets[/.env]"]
    assert secrets_check.build(RehearsalConfig(checks=ChecksConfig(secrets=None))) == []
    default = secrets_check.build(RehearsalConfig())
    assert len(default) == len(SecretsCheckConfig().paths) + 1


# -- the response body scan ---------------------------------------------------------------------


def scan(config: RehearsalConfig | None = None) -> ResponsesScan:
    checks = secrets_check.build(config or cfg())
    scan_check = checks[-1]
    assert isinstance(scan_check, ResponsesScan)
    return scan_check


def log_of(*replies: Reply) -> ReplyLog:
    log = ReplyLog()
    for reply in replies:
        log.add(reply)
    return log


def test_scan_runs_last_sends_nothing_and_passes_on_clean_replies() -> None:
    check = scan()
    assert check.runs_last
    recorder = Recorder(lambda p: answer(p))
    clean = answer(Probe("GET", "/"), 200, [("Content-Type", "text/html")], "<p>hello</p>")
    verdict = drive(check, recorder, log_of(clean))
    assert verdict.passed, verdict.message
    assert recorder.rounds == []
    assert verdict.properties["scanned"] == "1"


def test_scan_reports_each_leaking_response_once_with_other_urls() -> None:
    key = FAKE_SECRETS["aws-access-token"]
    pages = [answer(Probe("GET", f"/p{i}"), 200, (), f"<!-- {key} -->") for i in range(5)]
    trace = answer(Probe("POST", "/orders"), 500, (), TRACES["python-traceback"])
    verdict = drive(scan(), lambda p: answer(p), log_of(*pages, trace))
    assert not verdict.passed
    assert key not in verdict.message
    assert 'an AWS access key id "AKIA…" in the body (also in 4 more:' in verdict.message
    assert verdict.message.startswith("GET https://staging.test/p0\n")
    assert "POST https://staging.test/orders\n" in verdict.message
    assert "a Python traceback" in verdict.message
    assert "token=abc" not in verdict.message
    assert verdict.message.count("  expected: ") == 2


def test_scan_reads_headers_too() -> None:
    token = FAKE_SECRETS["slack-bot-token"]
    reply = answer(Probe("GET", "/"), 200, [("X-Debug-Token", token)], "ok")
    verdict = drive(scan(), lambda p: answer(p), log_of(reply))
    assert "a Slack bot token" in verdict.message
    assert "in the X-Debug-Token header" in verdict.message


def test_scan_finds_a_django_debug_404_on_the_soft_404_baseline() -> None:
    check = scan()
    assert check.baseline_path is not None
    page = "Django tried these URL patterns, in this order"
    baseline = answer(Probe("GET", check.baseline_path), 404, (), page)
    verdict = drive(check, lambda p: answer(p), log_of(baseline))
    (found,) = verdict.findings
    assert found.rule == "django-debug-404"
    assert found.message == (
        "every unknown path answers 404 with Django's DEBUG 404 page, which lists the URL "
        'patterns (DEBUG = True) ("Django tried these URL patterns")'
    )
    assert "404 · the page of a random path that cannot exist · every unknown" in verdict.message


def test_scan_jwt_is_a_note_not_a_failure() -> None:
    reply = answer(Probe("POST", "/login"), 200, (), f'{{"token": "{jwt()}"}}')
    verdict = drive(scan(), lambda p: answer(p), log_of(reply))
    assert verdict.passed
    assert "note (not failing): POST /login shows a JSON Web Token" in verdict.message


def test_scan_skips_replies_other_checks_already_judge() -> None:
    config = cfg(("/.env",), inputs=(InputEntry("POST", "/orders", json={"q": "x"}),))
    check = scan(config)
    trace = TRACES["python-traceback"]
    judged_by_inputs = answer(Probe("POST", "/orders", json={"q": "x"}), 500, (), trace)
    judged_by_exposure = answer(exposure("/.env").probe, 200, (), trace)
    other = answer(Probe("POST", "/orders", json={"q": 1}), 500, (), trace)
    verdict = drive(check, lambda p: answer(p), log_of(judged_by_inputs, judged_by_exposure))
    assert verdict.passed, verdict.message
    verdict = drive(check, lambda p: answer(p), log_of(judged_by_inputs, other))
    assert not verdict.passed
    assert "(also in" not in verdict.message


@pytest.mark.parametrize("rule", RULES, ids=[rule.name for rule in RULES])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_match_of_a_rule_holds_one_of_its_keywords(
    rule: LeakRule, data: st.DataObject
) -> None:
    # The keyword filter may skip a rule's regex only where it could not match.
    text = data.draw(st.from_regex(re.compile(rule.regex, rule.flags)))
    assert rule.pattern.search(text) is not None
    assert rule.may_match(text.lower())


# -- debug pages and traces on the secrets paths, whatever the status ---------------------------

WERKZEUG_500 = (
    "<!doctype html><html><head><title>KeyError // Werkzeug Debugger</title></head>"
    "<body>Traceback (most recent call last): ... SECRET = 'dbg-secret'</body></html>"
)
DJANGO_404 = (
    "<!DOCTYPE html><html><head><title>Page not found at {path}</title></head><body>"
    "Request URL: http://staging.test{path} Using the URLconf defined in shop.urls, "
    "Django tried these URL patterns, in this order: admin/ health The current path, "
    "<code>{bare}</code>, didn't match any of these. You're seeing this error because you "
    "have <code>DEBUG = True</code> in your Django settings file.</body></html>"
)


def django_404(path: str) -> str:
    return DJANGO_404.format(path=path, bare=path.lstrip("/"))


def run_secrets(config: RehearsalConfig, respond: Callable[[Probe], Reply]) -> dict[str, Verdict]:
    """Every check of the ``secrets`` section on one log, the body scan last."""
    log = ReplyLog()
    checks = secrets_check.build(config)
    return {check.id: drive(check, respond, log) for check in checks}


def test_a_secrets_path_answering_500_with_a_debug_page_fails_as_such() -> None:
    verdict = served("/.env", WERKZEUG_500, "text/html", status=500)
    assert verdict is not None
    (found,) = verdict.findings
    assert found.rule == "werkzeug-debugger"
    assert found.message == (
        "answers 500 with the Werkzeug interactive debugger, which lets anyone run code on the "
        'server ("Werkzeug Debugger")'
    )
    assert "serves" not in found.message
    assert "dbg-secret" not in verdict.message


def test_a_secrets_path_answering_404_with_its_own_debug_page_fails() -> None:
    # The baseline gets a plain 404: the debug page is this path's, not every path's.
    verdict = served("/.git/config", django_404("/.git/config"), "text/html", status=404)
    assert verdict is not None
    assert [f.rule for f in verdict.findings] == ["django-debug-404"]
    assert verdict.findings[0].message.startswith("answers 404 with Django's DEBUG 404 page")


def test_the_debug_404_every_path_gets_is_reported_once_as_the_unknown_path_page() -> None:
    paths = ("/.env", "/.git/config", "/backup.zip", "/old-admin.html")
    pages: list[str] = []

    def respond(probe: Probe) -> Reply:
        pages.append(probe.path)
        return answer(probe, 404, [("Content-Type", "text/html")], django_404(probe.path))

    verdicts = run_secrets(cfg(paths), respond)
    for path in paths:
        assert verdicts[f"secrets[{path}]"].passed, verdicts[f"secrets[{path}]"].message
    scan_verdict = verdicts["secrets[responses]"]
    (found,) = scan_verdict.findings
    assert found.message.startswith("every unknown path answers 404 with Django's DEBUG 404 page")
    assert "/__rehearsal_" in scan_verdict.message  # the request line says which path it was
    assert "the page of a random path that cannot exist" in scan_verdict.message


def test_without_the_body_scan_the_first_secrets_path_reports_the_unknown_path_page() -> None:
    def respond(probe: Probe) -> Reply:
        return answer(probe, 404, [("Content-Type", "text/html")], django_404(probe.path))

    verdicts = run_secrets(cfg(("/.env", "/.git/config"), scan=False), respond)
    assert list(verdicts) == ["secrets[/.env]", "secrets[/.git/config]"]
    first, second = verdicts.values()
    assert [f.message.split(" with ")[0] for f in first.findings] == [
        "every unknown path answers 404"
    ]
    assert second.passed


def test_a_secret_on_the_unknown_path_page_is_that_pages() -> None:
    key = FAKE_SECRETS["aws-access-token"]
    check = scan()
    assert check.baseline_path is not None
    baseline = answer(Probe("GET", check.baseline_path), 404, (), f"not found <!-- {key} -->")
    home = answer(Probe("GET", "/"), 200, (), f"<!-- {key} -->")
    verdict = drive(check, lambda p: answer(p), log_of(baseline, home))
    (found,) = verdict.findings
    assert found.message.startswith(
        'the page every unknown path gets contains an AWS access key id "AKIA…" in the body '
        "(also in 1 more: GET https://staging.test/)"
    )
    assert key not in verdict.message


def test_a_path_s_own_key_is_not_taken_for_the_unknown_path_page_s_lookalike() -> None:
    # Both keys are shown as "AKIA…": the path's own is still its own leak.
    page_key = FAKE_SECRETS["aws-access-token"]
    own_key = "AK" + "IA" + rand(UPPER32, 16, seed=11)
    assert own_key != page_key
    baseline = (404, f"not found <!-- {page_key} -->", "text/html")
    verdict = served("/.env", f"not found <!-- {own_key} -->", status=404, baseline=baseline)
    assert verdict is not None
    assert any('an AWS access key id "AKIA…"' in f.message for f in verdict.findings)
    assert served("/.env", baseline[1], status=404, baseline=baseline) is None


def test_scan_messages_name_the_request_and_fit_the_status() -> None:
    trace = answer(Probe("POST", "/orders"), 500, (), TRACES["python-traceback"])
    verdict = drive(scan(), lambda p: answer(p), log_of(trace))
    (found,) = verdict.findings
    assert found.message == (
        'POST /orders answers 500 with a Python traceback ("Traceback (most recent call last)")'
    )


@pytest.mark.parametrize("password", ["hunter2hunter2", "hunter2@hunter2", "hun@ter2@hunter2"])
def test_a_git_config_with_a_password_in_a_remote_url_names_it_masked(password: str) -> None:
    config = (
        "[core]\n\trepositoryformatversion = 0\n"
        f'[remote "origin"]\n\turl = https://deploy:{password}@git.example.com/shop.git\n'
    )
    verdict = served("/.git/config", config)
    assert verdict is not None
    assert [f.rule for f in verdict.findings] == ["exposed", "credential"]
    assert verdict.findings[1].message == (
        'contains a password in a remote URL ("https://deploy:***@git.example.com/shop.git")'
    )
    assert "hunter2" not in verdict.message
    assert "ter2" not in verdict.message
    plain = served("/.git/config", config.replace(f"deploy:{password}@", ""))
    assert plain is not None
    assert [f.rule for f in plain.findings] == ["exposed"]


def test_no_message_is_a_tautology_or_quotes_nuls() -> None:
    verdict = served("/old-admin.html", b"\x00" * 300, "application/octet-stream")
    assert verdict is not None
    assert "\\x00" not in verdict.message
    assert "\x00" not in verdict.message
    assert "should not be served" not in verdict.message
    assert "300 bytes of application/octet-stream" in verdict.message


# -- every body-scan rule is linear in the body (issue 11, item 8) ------------------------------

#: For each rule, bodies that made a quadratic version of it crawl: repeated starts of a
#: match that fail late (``at at at ... app.js:`` took 69 s at 250 KiB for node-stack-trace).
WORST_BODIES: dict[str, tuple[str, ...]] = {
    "aws-access-token": ("AKIA", "AKIA" + "A" * 15 + " "),
    "private-key": ("-----BEGIN ", "-----BEGIN PRIVATE KEY-----", "-----BEGIN PRIVATE KEY-----a"),
    "putty-private-key": ("PuTTY-User-Key-File-2: ", "PuTTY-User-Key-File-2:"),
    "github-pat": ("ghp_", "ghp_" + "a" * 35 + " "),
    "github-fine-grained-pat": ("github_pat_", "github_pat_" + "a" * 81 + " "),
    "github-oauth": ("gho_", "gho_a "),
    "gitlab-pat": ("glpat-", "glpat-" + "a" * 19 + " "),
    "slack-bot-token": ("xoxb-", "xoxb-1234567890-", "xoxb-1234567890-1234567890"),
    "slack-webhook-url": ("hooks.slack.com/services/", "https://hooks.slack.com/services/a"),
    "stripe-access-token": ("sk_live_", "sk_live_" + "a" * 99 + "!"),
    "gcp-api-key": ("AIza", "AIza" + "a" * 35 + "!"),
    "npm-access-token": ("npm_", "npm_" + "a" * 36 + "!"),
    "jwt": ("ey", "eyAAAAAAAAAAAAAAAAAAAA.ey", "eyAAAAAAAAAAAAAAAAAA.eyAAAAAAAAAAAAAAAAAAAAA/"),
    "werkzeug-debugger": ("werkzeug ", "__debugger__=ye"),
    "django-debug-404": ("Django tried these URL", "django "),
    "django-debug-page": ("DEBUG = True in your Django", "django "),
    "python-traceback": ("Traceback (most recent call", "traceback (most recent call last)"),
    "java-stack-trace": ('Exception in thread "', "at a.", "at a.b(", "at a.b(c.java:"),
    "node-stack-trace": ("at ", "at at app.js:", "at a (/", "at /x.js:", "at a b c d e (/"),
    "dotnet-error-page": ("at a() in ", "at a() in :line ", "Server Error in '"),
    "php-error": ("Fatal error:", "Fatal error: on line ", "Parse error</b>:"),
}
#: Generous: a linear scan of 256 KiB takes milliseconds here; the quadratic one took minutes.
SCAN_SECONDS = 3.0


def _fill(unit: str, size: int = SCAN_LIMIT) -> str:
    return (unit * (size // len(unit) + 1))[:size]


def test_every_rule_has_worst_case_bodies() -> None:
    assert set(WORST_BODIES) == {rule.name for rule in RULES}


@pytest.mark.parametrize("rule", sorted(WORST_BODIES))
def test_each_scan_rule_takes_linear_time_on_its_worst_bodies(rule: str) -> None:
    (leak_rule,) = [r for r in RULES if r.name == rule]
    for unit in WORST_BODIES[rule]:
        # The keywords at the end make the rule's regex run on the whole body.
        body = _fill(unit) + " " + " ".join(leak_rule.keywords)
        started = time.perf_counter()
        scan_text(body, "body")
        mask_secrets(body)
        took = time.perf_counter() - started
        assert took < SCAN_SECONDS, f"{rule} took {took:.1f} s on {unit!r} * {len(body)}"


@pytest.mark.parametrize(
    "path",
    [
        "/.git/config",
        "/.env",
        "/.npmrc",
        "/.aws/credentials",
        "/.hg/requires",
        "/docker-compose.yml",
        "/env",
        "/dump.sql",
        "/.svn/entries",
        "/actuator/env",
        "/phpinfo.php",
    ],
)
def test_each_artefact_marker_takes_linear_time(path: str) -> None:
    artefact = artefact_for(path)
    # Blank lines made ``^\s*`` rescan the rest of the body from every line (quadratic).
    units = ("\n", " \n", "\t", "a:", '"A', '[remote "', "export ", "url = https://a:")
    for unit in (*units, "url=https://a:@", "url=https://a:" + "@" * 600 + "\n"):
        body = _fill(unit, artefact.read_limit)
        reply = answer(Probe("GET", path), 200, [("Content-Type", "text/plain")], body)
        started = time.perf_counter()
        artefact.marker(reply)
        if artefact.credential is not None:
            artefact.credential(reply)
        took = time.perf_counter() - started
        assert took < SCAN_SECONDS, f"{path} took {took:.1f} s on {unit!r}"
