"""The ``headers`` check: every rule of the default policy, profiles, require, forbid, paths."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from checkdriver import Recorder, answer, drive
from pytest_rehearsal.checks import headers as headers_check
from pytest_rehearsal.checks._base import Verdict
from pytest_rehearsal.checks.headers import PROBE_ORIGIN, HeaderPolicy, HeadersCheck, Requirement
from pytest_rehearsal.config import (
    ChecksConfig,
    Defaults,
    HeadersCheckConfig,
    HeadersPathConfig,
    Meta,
    RehearsalConfig,
)
from pytest_rehearsal.config_loader import parse_config

HTML_CSP = "default-src 'self'; frame-ancestors 'none'"
GOOD_HTML: dict[str, str] = {
    "Content-Type": "text/html; charset=utf-8",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": HTML_CSP,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "Set-Cookie": "session=abc123secret; Path=/; Secure; HttpOnly; SameSite=Lax",
}
GOOD_JSON: dict[str, str] = {
    "Content-Type": "application/json",
    "X-Content-Type-Options": "nosniff",
    "Strict-Transport-Security": "max-age=31536000",
}


def config(**section: object) -> RehearsalConfig:
    return RehearsalConfig(checks=ChecksConfig(headers=HeadersCheckConfig(**section)))  # type: ignore[arg-type]


def check_for(path: str = "/", **section: object) -> HeadersCheck:
    (check,) = headers_check.build(config(paths=(HeadersPathConfig(path),), **section))
    assert isinstance(check, HeadersCheck)
    return check


def checks_for(*entries: HeadersPathConfig, **section: object) -> dict[str, HeadersCheck]:
    """The checks of a section with these path entries, by path."""
    built = headers_check.build(config(paths=entries, **section))
    assert all(isinstance(check, HeadersCheck) for check in built)
    return {check.path: check for check in built if isinstance(check, HeadersCheck)}


def rules(policy_rules: tuple[Requirement, ...]) -> list[str]:
    return [r.name if r.value is None else f"{r.name}: {r.value}" for r in policy_rules]


def judge(
    headers: dict[str, str] | Iterable[tuple[str, str]],
    *,
    status: int = 200,
    base: str = "https://staging.test",
    check: HeadersCheck | None = None,
) -> Verdict:
    pairs = list(headers.items()) if isinstance(headers, dict) else list(headers)
    target = check or check_for()
    return drive(target, lambda p: answer(p, status, pairs, b"<html></html>", base=base))


def without(headers: dict[str, str], *names: str) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k not in names}


def test_good_html_page_passes() -> None:
    verdict = judge(GOOD_HTML)
    assert verdict.passed, verdict.message
    assert verdict.properties["profile"] == "html"
    assert "3.4.4" in verdict.properties["asvs"]


def test_good_json_endpoint_passes_with_the_api_profile() -> None:
    verdict = judge(GOOD_JSON)
    assert verdict.passed, verdict.message
    assert verdict.properties["profile"] == "api"


def test_probe_is_a_get_with_a_foreign_origin_and_default_credentials() -> None:
    recorder = Recorder(lambda p: answer(p, 200, GOOD_HTML.items()))
    drive(check_for("/account"), recorder)
    (probe,) = recorder.probes
    assert probe.method == "GET"
    assert probe.path == "/account"
    assert ("Origin", PROBE_ORIGIN) in probe.headers
    assert probe.credentials == "default"


def test_ids_and_metadata_come_from_the_config() -> None:
    cfg = RehearsalConfig(
        defaults=Defaults(owner="@platform", rollback_note="flip back"),
        checks=ChecksConfig(
            headers=HeadersCheckConfig(
                paths=(HeadersPathConfig("/"), HeadersPathConfig("/api", profile="api")),
                meta=Meta(owner="@security"),
            )
        ),
    )
    checks = headers_check.build(cfg)
    assert [c.id for c in checks] == ["headers[/]", "headers[/api]"]
    assert checks[0].meta == Meta(owner="@security", rollback_note="flip back")
    assert "GET /" in checks[0].expected


def test_switched_off_builds_nothing() -> None:
    assert headers_check.build(RehearsalConfig(checks=ChecksConfig(headers=None))) == []


def test_missing_nosniff_is_reported_with_what_was_expected() -> None:
    verdict = judge(without(GOOD_HTML, "X-Content-Type-Options"))
    assert not verdict.passed
    assert "X-Content-Type-Options: missing (expected nosniff)" in verdict.message
    assert verdict.message.startswith("GET https://staging.test/\n  expected: the html")
    assert "retry:    safe: GET does not change staging" in verdict.message


def test_wrong_nosniff_value_shows_the_value_seen() -> None:
    verdict = judge({**GOOD_HTML, "X-Content-Type-Options": "sniff-away"})
    assert 'X-Content-Type-Options: must be exactly nosniff (seen: "sniff-away")' in verdict.message


@pytest.mark.parametrize(
    ("csp", "xfo", "ok"),
    [
        (HTML_CSP, None, True),  # CSP frame-ancestors is enough
        ("default-src 'self'", "SAMEORIGIN", True),
        ("default-src 'self'", "deny", True),
        ("default-src 'self'", None, False),
        ("default-src 'self'", "ALLOW-FROM https://x.example", False),
    ],
)
def test_framing_protection(csp: str, xfo: str | None, ok: bool) -> None:
    headers = {**without(GOOD_HTML, "X-Frame-Options"), "Content-Security-Policy": csp}
    if xfo is not None:
        headers["X-Frame-Options"] = xfo
    verdict = judge(headers)
    assert verdict.passed is ok, verdict.message
    if not ok:
        assert "no framing protection" in verdict.message


@pytest.mark.parametrize(
    ("csp", "problem"),
    [
        ("default-src 'self' 'unsafe-inline'", "scripts allow 'unsafe-inline'"),
        ("default-src 'self'; script-src 'self' 'unsafe-eval'", "scripts allow 'unsafe-eval'"),
        (
            "script-src 'unsafe-inline' 'unsafe-eval'; frame-ancestors 'none'",
            "'unsafe-inline' and 'unsafe-eval'",
        ),
        ("frame-ancestors 'none'", "scripts are not restricted"),
    ],
)
def test_unsafe_csp_fails_on_html(csp: str, problem: str) -> None:
    verdict = judge({**GOOD_HTML, "Content-Security-Policy": csp})
    assert not verdict.passed
    assert problem in verdict.message
    assert csp in verdict.message  # the value seen


@pytest.mark.parametrize(
    "csp",
    [
        # A nonce or hash makes browsers ignore 'unsafe-inline' (CSP level 2+).
        "default-src 'self'; script-src 'nonce-r4nd0m' 'unsafe-inline'; frame-ancestors 'none'",
        "script-src 'sha256-abc=' 'unsafe-inline'; frame-ancestors 'none'",
        # style-src 'unsafe-inline' is not a script policy (Observatory scores it 0).
        "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
        # script-src wins over default-src.
        "default-src * 'unsafe-inline'; script-src 'self'; frame-ancestors 'none'",
    ],
)
def test_safe_csp_variants_pass(csp: str) -> None:
    verdict = judge({**GOOD_HTML, "Content-Security-Policy": csp})
    assert verdict.passed, verdict.message


def test_two_policies_are_both_enforced_so_one_strict_policy_is_enough() -> None:
    headers = [
        *without(GOOD_HTML, "Content-Security-Policy").items(),
        ("Content-Security-Policy", "default-src * 'unsafe-inline'"),
        ("Content-Security-Policy", "script-src 'self'; frame-ancestors 'none'"),
    ]
    assert judge(headers).passed


def test_missing_csp_fails_on_html_but_not_on_json() -> None:
    html = judge(without(GOOD_HTML, "Content-Security-Policy", "X-Frame-Options"))
    assert "Content-Security-Policy: missing" in html.message
    assert judge(GOOD_JSON).passed


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("no-referrer", True),
        ("same-origin", True),
        ("strict-origin", True),
        ("strict-origin-when-cross-origin", True),
        ("unsafe-url", False),
        ("no-referrer-when-downgrade", False),
        ("origin", False),
        # Browsers apply the last policy they recognise.
        ("unsafe-url, strict-origin-when-cross-origin", True),
        ("no-referrer, unsafe-url", False),
        ("made-up-policy", False),
    ],
)
def test_referrer_policy_safe_list(value: str, ok: bool) -> None:
    verdict = judge({**GOOD_HTML, "Referrer-Policy": value})
    assert verdict.passed is ok, verdict.message
    if not ok:
        assert f'(seen: "{value}")' in verdict.message


def test_missing_referrer_policy_fails_on_html_only() -> None:
    assert "Referrer-Policy: missing" in judge(without(GOOD_HTML, "Referrer-Policy")).message
    assert judge(without(GOOD_JSON, "Referrer-Policy")).passed


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("max-age=31536000; includeSubDomains", True),
        ("max-age=15552000", True),
        ('max-age="31536000"', True),
        ("max-age=86400", False),
        ("includeSubDomains", False),
        ("max-age=abc", False),
    ],
)
def test_hsts_max_age_on_https(value: str, ok: bool) -> None:
    verdict = judge({**GOOD_HTML, "Strict-Transport-Security": value})
    assert verdict.passed is ok, verdict.message
    if not ok:
        assert "Strict-Transport-Security: too short" in verdict.message


def test_hsts_is_required_on_https_for_both_profiles() -> None:
    for good in (GOOD_HTML, GOOD_JSON):
        verdict = judge(without(good, "Strict-Transport-Security"))
        assert "Strict-Transport-Security: missing on https" in verdict.message


def test_hsts_is_not_judged_over_plain_http() -> None:
    verdict = judge(without(GOOD_HTML, "Strict-Transport-Security"), base="http://staging.test")
    assert verdict.passed, verdict.message
    assert "HSTS not judged" in verdict.message


HTTP_ONLY = "HttpOnly (a session cookie)"


@pytest.mark.parametrize(
    ("cookie", "missing"),
    [
        ("session=s3cr3tvalue; Path=/", f"Secure, {HTTP_ONLY}, SameSite"),
        ("session=s3cr3tvalue; Secure; SameSite=Strict", HTTP_ONLY),
        ("session=s3cr3tvalue; HttpOnly; SameSite=Lax", "Secure"),
        ("session=s3cr3tvalue; Secure; HttpOnly", "SameSite"),
        ("session=s3cr3tvalue; Secure; HttpOnly; SameSite=bogus", "SameSite"),
        # A double-submit CSRF cookie must stay readable by scripts: HttpOnly not required.
        ("csrftoken=s3cr3tvalue; Path=/", "Secure, SameSite"),
        # Over https every cookie needs Secure, session-like or not.
        ("csrftoken=s3cr3tvalue; HttpOnly; SameSite=Lax", "Secure"),
        ("theme=dark; SameSite=Lax", "Secure"),
        # RFC 6265bis 4.1.3: browsers refuse prefixed cookies without these.
        (
            "__Secure-id=s3cr3tvalue; HttpOnly; SameSite=Lax",
            "Secure (required by the __Secure- prefix)",
        ),
        (
            "__Host-sid=s3cr3tvalue; Secure; HttpOnly; SameSite=Lax; Path=/app",
            "Path=/ (required by the __Host- prefix)",
        ),
        (
            "__host-sid=s3cr3tvalue; Domain=staging.test; Secure; HttpOnly; SameSite=Lax; Path=/",
            "no Domain (required by the __Host- prefix)",
        ),
    ],
)
def test_cookie_flags_over_https(cookie: str, missing: str) -> None:
    verdict = judge({**GOOD_HTML, "Set-Cookie": cookie})
    assert not verdict.passed
    name = cookie.partition("=")[0]
    assert f"Set-Cookie {name}: missing {missing} (seen:" in verdict.message
    assert "s3cr3tvalue" not in verdict.message  # a cookie value is a credential


@pytest.mark.parametrize(
    "cookie",
    [
        "csrftoken=abc; Secure; SameSite=Strict",
        "session=; Max-Age=0",  # a deletion
        "session=; Expires=Thu, 01 Jan 1970 00:00:00 GMT",  # a deletion
        "theme=dark; Secure; HttpOnly; SameSite=None",
        "theme=dark; Secure; SameSite=Lax",  # not a session cookie: scripts may read it
        "__Host-sid=abc; Secure; HttpOnly; SameSite=Lax; Path=/",
    ],
)
def test_cookies_that_pass(cookie: str) -> None:
    verdict = judge({**GOOD_HTML, "Set-Cookie": cookie})
    assert verdict.passed, verdict.message


# What a hardened Django on an internal http URL sends (issue 13): it must pass over http.
DJANGO_OVER_HTTP = [
    "csrftoken=s3cr3tvalue; expires=Thu, 01 Jan 2099 00:00:00 GMT; Max-Age=31449600; Path=/; "
    "SameSite=Lax",
    "sessionid=s3cr3tvalue; expires=Thu, 01 Jan 2099 00:00:00 GMT; HttpOnly; Max-Age=1209600; "
    "Path=/; SameSite=Lax",
]


def test_secure_and_the_prefix_rules_are_not_judged_over_plain_http() -> None:
    cookies = [*DJANGO_OVER_HTTP, "__Host-x=1; HttpOnly; SameSite=Lax; Path=/app"]
    headers = [*without(GOOD_HTML, "Set-Cookie").items(), *(("Set-Cookie", c) for c in cookies)]
    verdict = judge(headers, base="http://staging.test")
    assert verdict.passed, verdict.message
    assert "nor the cookies' Secure attribute: staging is not served over https" in verdict.message


def test_the_same_cookies_over_https_need_secure() -> None:
    headers = [
        *without(GOOD_HTML, "Set-Cookie").items(),
        *(("Set-Cookie", c) for c in DJANGO_OVER_HTTP),
    ]
    verdict = judge(headers)
    assert "Set-Cookie csrftoken: missing Secure (seen:" in verdict.message
    assert "Set-Cookie sessionid: missing Secure (seen:" in verdict.message


def test_httponly_and_samesite_are_judged_over_http_too() -> None:
    headers = {**GOOD_HTML, "Set-Cookie": "sessionid=s3cr3tvalue; Path=/"}
    verdict = judge(headers, base="http://staging.test")
    assert f"Set-Cookie sessionid: missing {HTTP_ONLY}, SameSite (seen:" in verdict.message
    assert "Secure" not in verdict.message.split("seen:")[0]


@pytest.mark.parametrize(
    "name",
    [
        *("sessionid", "session", "SESSION", "sid", "connect.sid", "PHPSESSID", "JSESSIONID"),
        *("ASP.NET_SessionId", ".AspNetCore.Session", "laravel_session", "_shop_session"),
        *("rack.session", "koa.sess", ".ASPXAUTH", "auth_token", "access_token", "AuthToken"),
        *("refresh_token", "id_token", "jwt", "remember_web_59ba36", "CFID", "CFTOKEN"),
        *("user_login", "Authorization", "next-auth.session-token", "__Host-sid"),
    ],
)
def test_session_like_cookie_names(name: str) -> None:
    assert headers_check.is_session_cookie(name)


@pytest.mark.parametrize(
    "name",
    [
        *("csrftoken", "XSRF-TOKEN", "_csrf", "csrf_access_token", "theme", "lang", "_ga"),
        *("author_pref", "cookie_consent", "side_panel", "consider", "sidebar", "cf_clearance"),
    ],
)
def test_cookie_names_that_are_not_session_like(name: str) -> None:
    assert not headers_check.is_session_cookie(name)


def test_every_cookie_is_judged() -> None:
    headers = [
        *without(GOOD_HTML, "Set-Cookie").items(),
        ("Set-Cookie", "a_session=1; Secure; HttpOnly; SameSite=Lax"),
        ("Set-Cookie", "b_session=2; Secure; SameSite=Lax"),
    ]
    verdict = judge(headers)
    assert f"Set-Cookie b_session: missing {HTTP_ONLY}" in verdict.message
    assert "Set-Cookie a_session" not in verdict.message


def test_cors_reflecting_the_probe_origin_with_credentials_fails() -> None:
    reflected = {
        "Access-Control-Allow-Origin": PROBE_ORIGIN,
        "Access-Control-Allow-Credentials": "true",
    }
    for good in (GOOD_HTML, GOOD_JSON):
        verdict = judge({**good, **reflected})
        assert not verdict.passed
        assert "reflects a foreign Origin with credentials" in verdict.message


@pytest.mark.parametrize(
    "cors",
    [
        {"Access-Control-Allow-Origin": PROBE_ORIGIN},  # no credentials: like *
        {"Access-Control-Allow-Origin": "*"},
        {
            "Access-Control-Allow-Origin": "https://app.example",
            "Access-Control-Allow-Credentials": "true",
        },
    ],
)
def test_cors_without_credentialed_reflection_passes(cors: dict[str, str]) -> None:
    assert judge({**GOOD_HTML, **cors}).passed


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("X-Powered-By", "Express"),
        ("X-AspNet-Version", "4.0.30319"),
        ("x-generator", "Drupal 10"),
        ("X-B3-TraceId", "80f198ee56343ba864fe8b2a57d3eff7"),
        ("X-Nextjs-Cache", "HIT"),
        ("X-Envoy-Upstream-Service-Time", "12"),
        ("SourceMap", "/app.js.map"),
    ],
)
def test_disclosure_headers_are_forbidden(name: str, value: str) -> None:
    verdict = judge({**GOOD_JSON, name: value})
    assert not verdict.passed
    assert "discloses internals" in verdict.message
    assert value in verdict.message


def test_server_fails_only_with_a_version() -> None:
    versioned = judge({**GOOD_JSON, "Server": "nginx/1.25.3"})
    assert 'Server: discloses a software version (seen: "nginx/1.25.3")' in versioned.message
    bare = judge({**GOOD_JSON, "Server": "nginx"})
    assert bare.passed
    assert 'Server: "nginx" names the software' in bare.message


def test_forbid_adds_to_the_deny_list_including_prefixes_and_server() -> None:
    check = check_for(forbid=("Server", "X-Internal-*"))
    verdict = judge({**GOOD_JSON, "Server": "nginx", "X-Internal-Host": "db-3"}, check=check)
    assert "Server: discloses internals" in verdict.message
    assert "X-Internal-Host: discloses internals" in verdict.message


def test_forbid_a_value() -> None:
    check = check_for(forbid=("Cache-Control: public",))
    verdict = judge({**GOOD_JSON, "Cache-Control": "Public"}, check=check)
    assert """Cache-Control: must not be 'public' (seen: "Public")""" in verdict.message
    assert judge({**GOOD_JSON, "Cache-Control": "no-store"}, check=check).passed
    assert judge(GOOD_JSON, check=check).passed


def test_require_a_header_and_an_exact_value() -> None:
    check = check_for(require=("Permissions-Policy", "Cache-Control: no-store"))
    missing = judge(GOOD_JSON, check=check)
    assert "Permissions-Policy: missing (required)" in missing.message
    assert "Cache-Control: missing (required, expected 'no-store')" in missing.message
    wrong = judge(
        {**GOOD_JSON, "Permissions-Policy": "camera=()", "Cache-Control": "public"}, check=check
    )
    assert """Cache-Control: expected 'no-store' (seen: "public")""" in wrong.message
    ok = judge({**GOOD_JSON, "Permissions-Policy": "x", "Cache-Control": "No-Store"}, check=check)
    assert ok.passed, ok.message
    assert "Cache-Control: no-store" in check.expected


def test_a_required_header_is_taken_off_the_deny_list() -> None:
    check = check_for(require=("X-Powered-By",))
    assert judge({**GOOD_JSON, "X-Powered-By": "our-brand"}, check=check).passed


def test_forced_profiles() -> None:
    # An HTML page judged as an API: CSP/framing/referrer are not required.
    api = check_for(profile="api")
    html_as_api = without(
        GOOD_HTML, "Content-Security-Policy", "X-Frame-Options", "Referrer-Policy"
    )
    assert judge(html_as_api, check=api).passed
    # A JSON endpoint judged as HTML: the document rules apply.
    html = check_for(profile="html")
    verdict = judge(GOOD_JSON, check=html)
    assert "Content-Security-Policy: missing" in verdict.message
    assert verdict.properties["profile"] == "html"


def test_all_violations_of_a_path_are_in_one_message() -> None:
    verdict = judge(
        {
            "Content-Type": "text/html",
            "X-Powered-By": "PHP/8.1",
            "Set-Cookie": "sid=v4lue",
            "Access-Control-Allow-Origin": PROBE_ORIGIN,
            "Access-Control-Allow-Credentials": "true",
        }
    )
    bullets = [line for line in verdict.message.splitlines() if line.startswith("    - ")]
    assert len(bullets) == 8
    assert "200 with 8 header problems:" in verdict.message


def test_a_redirect_is_judged_only_on_rules_for_every_response() -> None:
    headers = {"Location": "/login", "Strict-Transport-Security": "max-age=31536000"}
    verdict = judge(headers, status=302)
    assert verdict.passed, verdict.message
    assert "a redirect" in verdict.message
    leaky = judge({**headers, "X-Powered-By": "Express"}, status=302)
    assert "X-Powered-By" in leaky.message


@pytest.mark.parametrize(
    ("status", "error", "text"),
    [
        (404, None, "fix checks.headers.paths"),
        (502, None, "the server failed"),
        (None, "connection refused", "no response (connection refused)"),
    ],
)
def test_unjudgeable_responses_fail(status: int | None, error: str | None, text: str) -> None:
    check = check_for()
    verdict = drive(check, lambda p: answer(p, status, GOOD_HTML.items(), error=error))
    assert not verdict.passed
    assert text in verdict.message


def test_header_policy_deny_list_defaults() -> None:
    deny = HeaderPolicy().deny_list()
    assert "X-Powered-By" in deny
    assert "Server" not in deny  # judged separately: only a version fails


def test_a_required_header_is_exempt_from_prefix_patterns_too() -> None:
    check = check_for(require=("X-B3-TraceId",), forbid=("X-Internal-*",))
    headers = {**GOOD_JSON, "X-B3-TraceId": "80f198ee", "X-Internal-Host": "db-3"}
    verdict = judge({**headers, "X-B3-SpanId": "e457b5a2"}, check=check)
    assert "X-B3-Traceid" not in verdict.message
    assert "X-B3-Spanid: discloses internals" in verdict.message  # the prefix still applies
    assert "X-Internal-Host: discloses internals" in verdict.message


# -- per-path rules ----------------------------------------------------------------------------


def test_path_rules_add_to_the_section_rules_on_that_path_only() -> None:
    checks = checks_for(
        HeadersPathConfig("/"),
        HeadersPathConfig(
            "/api/orders",
            profile="api",
            require=("X-Request-Id",),
            forbid=("Access-Control-Allow-Origin: *",),
        ),
        require=("Cache-Control: no-store",),
        forbid=("X-Debug-Token",),
    )
    assert list(checks) == ["/", "/api/orders"]
    home, orders = checks["/"].policy, checks["/api/orders"].policy
    assert (home.profile, rules(home.require), rules(home.forbid)) == (
        "auto",
        ["Cache-Control: no-store"],
        ["X-Debug-Token"],
    )
    assert (orders.profile, rules(orders.require), rules(orders.forbid)) == (
        "api",
        ["Cache-Control: no-store", "X-Request-Id"],
        ["X-Debug-Token", "Access-Control-Allow-Origin: *"],
    )
    reply = {**GOOD_JSON, "Cache-Control": "no-store", "Access-Control-Allow-Origin": "*"}
    assert judge(reply, check=checks["/"]).passed
    verdict = judge(reply, check=checks["/api/orders"])
    assert "X-Request-Id: missing (required)" in verdict.message
    assert """Access-Control-Allow-Origin: must not be '*' (seen: "*")""" in verdict.message
    both = judge({**reply, "X-Debug-Token": "t0"}, check=checks["/"])
    assert "X-Debug-Token: discloses internals" in both.message  # section rules on every path


def test_a_path_profile_overrides_the_section_profile() -> None:
    checks = checks_for(
        HeadersPathConfig("/"), HeadersPathConfig("/api/status", profile="api"), profile="html"
    )
    # An API without CSP, framing or referrer rules: fails as html, passes as api.
    assert "Content-Security-Policy: missing" in judge(GOOD_JSON, check=checks["/"]).message
    verdict = judge(GOOD_JSON, check=checks["/api/status"])
    assert verdict.passed, verdict.message
    assert verdict.properties["profile"] == "api"
    assert "(api)" in checks["/api/status"].expected


@pytest.mark.parametrize(
    ("section", "path", "require", "forbid"),
    [
        # A path's Name: value requirement replaces the section's requirement of that header.
        (
            HeadersCheckConfig(require=("X-Frame-Options: DENY",)),
            HeadersPathConfig("/api", require=("X-Frame-Options: SAMEORIGIN",)),
            ["X-Frame-Options: SAMEORIGIN"],
            [],
        ),
        # A header the path forbids (by name or prefix) is no longer required by the section.
        (
            HeadersCheckConfig(require=("Server",)),
            HeadersPathConfig("/api", forbid=("Server",)),
            [],
            ["Server"],
        ),
        (
            HeadersCheckConfig(require=("X-Internal-Id",)),
            HeadersPathConfig("/api", forbid=("X-Internal-*",)),
            [],
            ["X-Internal-*"],
        ),
        # ... nor a value the path forbids.
        (
            HeadersCheckConfig(require=("Cache-Control: public",)),
            HeadersPathConfig("/api", forbid=("Cache-Control: PUBLIC",)),
            [],
            ["Cache-Control: PUBLIC"],
        ),
        # A value the path requires is no longer forbidden by the section.
        (
            HeadersCheckConfig(forbid=("Access-Control-Allow-Origin: *",)),
            HeadersPathConfig("/api", require=("Access-Control-Allow-Origin: *",)),
            ["Access-Control-Allow-Origin: *"],
            [],
        ),
        # No contradiction: both levels apply.
        (
            HeadersCheckConfig(require=("Cache-Control: no-store",)),
            HeadersPathConfig(
                "/api", require=("Cache-Control",), forbid=("Cache-Control: public",)
            ),
            ["Cache-Control: no-store", "Cache-Control"],
            ["Cache-Control: public"],
        ),
        (
            HeadersCheckConfig(require=("Cache-Control",), forbid=("Pragma: no-cache",)),
            HeadersPathConfig("/api", forbid=("Cache-Control: private", "Pragma: public")),
            ["Cache-Control"],
            ["Pragma: no-cache", "Cache-Control: private", "Pragma: public"],
        ),
    ],
    ids=[
        "value-replaces",
        "forbidden-name",
        "forbidden-prefix",
        "forbidden-value",
        "required-value",
        "presence-and-value",
        "forbids-add-up",
    ],
)
def test_where_a_path_contradicts_the_section_the_path_wins(
    section: HeadersCheckConfig, path: HeadersPathConfig, require: list[str], forbid: list[str]
) -> None:
    policy = HeaderPolicy.for_path(section, path)
    assert rules(policy.require) == require
    assert rules(policy.forbid) == forbid


def test_a_path_forbidding_what_the_section_requires_fails_when_it_is_sent() -> None:
    checks = checks_for(
        HeadersPathConfig("/"),
        HeadersPathConfig("/internal", forbid=("X-Powered-By",)),
        require=("X-Powered-By",),
    )
    reply = {**GOOD_JSON, "X-Powered-By": "our-brand"}
    assert judge(reply, check=checks["/"]).passed
    assert "X-Powered-By: discloses internals" in judge(reply, check=checks["/internal"]).message
    assert "X-Powered-By: missing (required)" in judge(GOOD_JSON, check=checks["/"]).message


def test_the_expectation_names_the_rules_of_the_path() -> None:
    checks = checks_for(
        HeadersPathConfig("/"),
        HeadersPathConfig("/api", require=("X-Request-Id",), forbid=("Cache-Control: public",)),
        require=("Permissions-Policy",),
    )
    assert checks["/"].expected == (
        "GET / carries the secure-headers policy (html or api by content type); "
        "required: Permissions-Policy"
    )
    assert checks["/api"].expected == (
        "GET /api carries the secure-headers policy (html or api by content type); "
        "required: Permissions-Policy, X-Request-Id; forbidden: Cache-Control: public"
    )


def test_paths_from_a_config_file_build_one_item_each_with_its_policy(tmp_path: Path) -> None:
    config = parse_config(
        """
checks:
  headers:
    require: ['Cache-Control: no-store']
    paths:
      - /
      - {path: /api/orders, profile: api, require: [X-Request-Id], forbid: [Server]}
""",
        tmp_path / "rehearsal.yaml",
    )
    checks = headers_check.build(config)
    assert [c.id for c in checks] == ["headers[/]", "headers[/api/orders]"]
    home, orders = (c for c in checks if isinstance(c, HeadersCheck))
    assert home.policy == HeaderPolicy(require=(Requirement("Cache-Control", "no-store"),))
    assert orders.policy == HeaderPolicy(
        profile="api",
        require=(Requirement("Cache-Control", "no-store"), Requirement("X-Request-Id", None)),
        forbid=(Requirement("Server", None),),
    )
