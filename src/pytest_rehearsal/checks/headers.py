"""``headers[/path]``: the response headers of a page against a secure-headers policy.

The default policy follows the OWASP Secure Headers Project, the MDN HTTP Observatory and
OWASP ASVS 5.0 (V3.4, 13.4.6); docs/checks.md cites each rule. A JSON response gets the modest
API profile (ASVS V3 does not apply to machine-to-machine responses): nosniff, HSTS, cookies,
CORS and no version disclosure. Every violation of one page is reported in one message.

Each path is judged against the section's rules with its own ``headers.paths`` rules on top
(:meth:`HeaderPolicy.for_path`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..config import HeadersCheckConfig, HeadersPathConfig, RehearsalConfig
from ..text import excerpt
from ._base import Check, CheckRun, Probe, Reply, ReplyLog, Verdict, fail, finding
from ._headersyntax import (
    Cookie,
    effective_referrer_policy,
    hsts_max_age,
    parse_csp,
    parse_set_cookie,
)
from ._support import is_json, meta_for, origin, tag

__all__ = [
    "DISCLOSURE_HEADERS",
    "HSTS_MIN_MAX_AGE",
    "PROBE_ORIGIN",
    "SAFE_REFERRER_POLICIES",
    "HeaderPolicy",
    "HeadersCheck",
    "Violation",
    "build",
    "is_session_cookie",
    "judge",
]

#: A foreign origin sent with every probe, to see whether CORS reflects it.
PROBE_ORIGIN = "https://rehearsal-probe.invalid"
#: Observatory pass line (180 days); OWASP recommends 31536000 (one year).
HSTS_MIN_MAX_AGE = 15_552_000
#: Observatory's "private" referrer policies (OWASP proposes no-referrer).
SAFE_REFERRER_POLICIES = (
    "no-referrer",
    "same-origin",
    "strict-origin",
    "strict-origin-when-cross-origin",
)
#: OWASP Secure Headers ``headers_remove.json`` plus DrHeader's two; ``*`` ends a prefix.
DISCLOSURE_HEADERS: tuple[str, ...] = (
    "X-Powered-By",
    "X-AspNet-Version",
    "X-AspNetMvc-Version",
    "X-Generator",
    "X-Generated-By",
    "X-CMS",
    "X-Powered-CMS",
    "X-Php-Version",
    "Powered-By",
    "X-Server-Powered-By",
    "X-Turbo-Charged-By",
    "Liferay-Portal",
    "X-Powered-By-Plesk",
    "X-Framework",
    "X-CF-Powered-By",
    "X-Content-Encoded-By",
    "Product",
    "SourceMap",
    "X-SourceMap",
    "X-SourceFiles",
    "X-Redirect-By",
    "Host-Header",
    "Pega-Host",
    "X-Varnish-Backend",
    "X-Varnish-Server",
    "X-Envoy-Upstream-Service-Time",
    "X-Envoy-Attempt-Count",
    "X-Envoy-External-Address",
    "X-Envoy-Internal",
    "X-Envoy-Original-Dst-Host",
    "X-B3-*",
    "X-Nextjs-*",
    "X-Mod-Pagespeed",
    "X-Page-Speed",
    "X-Atmosphere-*",
    "X-OneAgent-JS-Injection",
    "K-Proxy-Request",
    "X-Client-IP",
    "X-Forwarded-For",
)
_ACCEPT = "text/html,application/xhtml+xml,application/json;q=0.9,*/*;q=0.8"
_VERSION = re.compile(r"\d")
_CSRF_COOKIE = re.compile(r"csrf|xsrf", re.IGNORECASE)
#: Cookies that identify a session or carry a credential: HttpOnly is required of these only
#: (OWASP Session Management Cheat Sheet: session ids; a CSRF cookie is read by scripts by
#: design). A name qualifies when it contains ``sess`` or ``login`` (the Observatory's own
#: heuristic: sessionid, PHPSESSID, JSESSIONID, ASP.NET_SessionId, laravel_session, ...),
#: ``auth`` (.ASPXAUTH, auth_token; not "author"), ``token`` or ``jwt`` (access_token,
#: CFTOKEN), ``remember`` (Laravel and Rails remember-me credentials), ``sid`` as a word
#: (connect.sid, sid) or is CFID; never when it names a CSRF token (csrftoken, XSRF-TOKEN).
_SESSION_COOKIE = re.compile(
    r"sess|login|auth(?!or)|authoriz|token|jwt|remember|(?<![a-z0-9])sid(?![a-z0-9])|^cfid$",
    re.IGNORECASE,
)
_SAMESITE_VALUES = {"lax", "strict", "none"}
_SEEN_LIMIT = 120
_ASVS = {
    "html": "5.0.0: 3.4.1 3.4.2 3.4.3 3.4.4 3.4.5 3.4.6 13.4.6",
    "api": "5.0.0: 3.4.1 3.4.2 3.4.4 13.4.6",
}


@dataclass(frozen=True)
class Requirement:
    """``Name`` (must be present) or ``Name: value`` (must equal, case-insensitively)."""

    name: str
    value: str | None

    @classmethod
    def parse(cls, text: str) -> Requirement:
        name, sep, value = text.partition(":")
        return cls(name.strip(), value.strip() if sep else None)

    def same_value(self, other: Requirement) -> bool:
        """Whether both rules name the same header with the same value (case-insensitive)."""
        return (
            self.value is not None
            and other.value is not None
            and self.name.lower() == other.name.lower()
            and self.value.lower() == other.value.lower()
        )


def _rules(texts: tuple[str, ...]) -> tuple[Requirement, ...]:
    return tuple(Requirement.parse(text) for text in texts)


@dataclass(frozen=True)
class HeaderPolicy:
    """What one path is judged against: the profile and the team's additions."""

    profile: str = "auto"  # "auto" (JSON -> api, otherwise html), "html" or "api"
    require: tuple[Requirement, ...] = ()
    # ``Name`` (``X-Debug-*`` ends in a prefix): must be absent; ``Name: value``: must not
    # carry that value.
    forbid: tuple[Requirement, ...] = ()

    @classmethod
    def for_path(cls, section: HeadersCheckConfig, entry: HeadersPathConfig) -> HeaderPolicy:
        """The policy of one path: the section's rules with the path's own on top.

        The path's profile, when it has one, replaces the section's; its ``require`` and
        ``forbid`` add to the section's. Where the two contradict each other, the path (the
        more specific) wins: a ``Name: value`` it requires replaces the section's requirement
        of that header, a header or value it forbids is no longer required by the section,
        and a value it requires is no longer forbidden by the section.
        """
        own_require, own_forbid = _rules(entry.require), _rules(entry.forbid)

        def given_way(rule: Requirement) -> bool:
            replaced = any(
                own.value is not None and own.name.lower() == rule.name.lower()
                for own in own_require
            )
            forbidden = any(
                _matches(own.name, rule.name) if own.value is None else own.same_value(rule)
                for own in own_forbid
            )
            return replaced or forbidden

        require = tuple(rule for rule in _rules(section.require) if not given_way(rule))
        forbid = tuple(
            rule
            for rule in _rules(section.forbid)
            if not any(rule.same_value(own) for own in own_require)
        )
        return cls(
            profile=entry.profile or section.profile,
            require=require + own_require,
            forbid=forbid + own_forbid,
        )

    def deny_list(self) -> tuple[str, ...]:
        """Forbidden header patterns: the built-in list and the team's ``Name`` rules.

        A header the team requires is exempt from every pattern when a reply is judged.
        """
        return DISCLOSURE_HEADERS + tuple(f.name for f in self.forbid if f.value is None)

    def required_names(self) -> frozenset[str]:
        """The lower-cased names of the required headers."""
        return frozenset(req.name.lower() for req in self.require)


@dataclass(frozen=True)
class Violation:
    """One broken rule, with the value seen (``None``: the header is absent)."""

    header: str
    problem: str
    seen: str | None = None

    def describe(self) -> str:
        text = f"{self.header}: {self.problem}"
        return text if self.seen is None else f'{text} (seen: "{excerpt(self.seen, _SEEN_LIMIT)}")'


def _display(name: str) -> str:
    """A header name as documents spell it (HTTP/2 servers send them lower-cased)."""
    return "-".join(part.capitalize() for part in name.split("-"))


def _matches(pattern: str, name: str) -> bool:
    pattern, name = pattern.lower(), name.lower()
    return name.startswith(pattern[:-1]) if pattern.endswith("*") else name == pattern


def _nosniff(reply: Reply) -> list[Violation]:
    value = reply.header("X-Content-Type-Options")
    if value is None:
        return [Violation("X-Content-Type-Options", "missing (expected nosniff)")]
    if value.strip().lower() != "nosniff":
        return [Violation("X-Content-Type-Options", "must be exactly nosniff", value)]
    return []


def _framing(reply: Reply) -> list[Violation]:
    if any("frame-ancestors" in policy for policy in parse_csp(_csp_values(reply))):
        return []
    value = reply.header("X-Frame-Options")
    if value is not None and value.strip().lower() in {"deny", "sameorigin"}:
        return []
    problem = "no framing protection (expected X-Frame-Options DENY or SAMEORIGIN, "
    problem += "or a CSP frame-ancestors directive)"
    return [Violation("X-Frame-Options", problem, value)]


def _csp_values(reply: Reply) -> list[str]:
    return reply.header_values("Content-Security-Policy")


def _unsafe_sources(sources: list[str]) -> list[str]:
    """The unsafe keywords a browser honours in a script source list."""
    unsafe = ["'unsafe-eval'"] if "'unsafe-eval'" in sources else []
    # CSP level 2+: 'unsafe-inline' is ignored when a nonce or hash is present.
    neutralised = any(
        s.startswith(("'nonce-", "'sha256-", "'sha384-", "'sha512-")) for s in sources
    )
    if "'unsafe-inline'" in sources and not neutralised:
        unsafe.insert(0, "'unsafe-inline'")
    return unsafe


def _csp(reply: Reply) -> list[Violation]:
    values = _csp_values(reply)
    if not values:
        problem = "missing (expected a policy restricting scripts, e.g. default-src 'self', "
        problem += "without 'unsafe-inline' or 'unsafe-eval')"
        return [Violation("Content-Security-Policy", problem)]
    unsafe_seen: list[str] = []
    for policy in parse_csp(values):
        sources = policy.get("script-src", policy.get("default-src"))
        if sources is None:
            continue
        unsafe = _unsafe_sources(sources)
        if not unsafe:
            return []  # one restrictive policy is enough: browsers enforce every policy
        unsafe_seen.extend(u for u in unsafe if u not in unsafe_seen)
    seen = "; ".join(values)
    if unsafe_seen:
        problem = f"scripts allow {' and '.join(unsafe_seen)} (cross-site scripting stays possible)"
    else:
        problem = "no script-src or default-src directive: scripts are not restricted"
    return [Violation("Content-Security-Policy", problem, seen)]


def _referrer(reply: Reply) -> list[Violation]:
    value = reply.header("Referrer-Policy")
    expected = f"expected one of {', '.join(SAFE_REFERRER_POLICIES)}"
    if value is None:
        return [Violation("Referrer-Policy", f"missing ({expected})")]
    if effective_referrer_policy(value) not in SAFE_REFERRER_POLICIES:
        return [Violation("Referrer-Policy", f"leaks URLs to other sites ({expected})", value)]
    return []


def _hsts(reply: Reply) -> list[Violation]:
    if origin(reply.url)[0] != "https":
        return []  # browsers ignore HSTS over plain http
    value = reply.header("Strict-Transport-Security")
    wanted = f"max-age of at least {HSTS_MIN_MAX_AGE} (recommended: max-age=31536000; "
    wanted += "includeSubDomains)"
    if value is None:
        return [Violation("Strict-Transport-Security", f"missing on https (expected {wanted})")]
    max_age = hsts_max_age(value)
    if max_age is None or max_age < HSTS_MIN_MAX_AGE:
        return [Violation("Strict-Transport-Security", f"too short (expected {wanted})", value)]
    return []


def is_session_cookie(name: str) -> bool:
    """Whether a cookie *name* looks like a session id or a credential (see above)."""
    return _SESSION_COOKIE.search(name) is not None and _CSRF_COOKIE.search(name) is None


def _prefix_problems(cookie: Cookie) -> list[str]:
    """What a ``__Secure-``/``__Host-`` cookie lacks: browsers refuse it without these
    (RFC 6265bis 4.1.3; the prefixes are matched case-insensitively)."""
    name = cookie.name.lower()
    problems: list[str] = []
    prefix = next((p for p in ("__Secure-", "__Host-") if name.startswith(p.lower())), None)
    if prefix is not None and not cookie.has("Secure"):
        problems.append(f"Secure (required by the {prefix} prefix)")
    if name.startswith("__host-"):
        if cookie.attributes.get("path") != "/":
            problems.append("Path=/ (required by the __Host- prefix)")
        if cookie.has("Domain"):
            problems.append("no Domain (required by the __Host- prefix)")
    return problems


def _cookies(reply: Reply) -> list[Violation]:
    """Cookie attributes. ``Secure`` and the prefix rules only over https: browsers refuse
    a Secure cookie set over http (off localhost), as they ignore HSTS there."""
    https = origin(reply.url)[0] == "https"
    violations: list[Violation] = []
    for value in reply.header_values("Set-Cookie"):
        cookie = parse_set_cookie(value)
        if cookie.is_deletion:
            continue
        missing: list[str] = []
        if https:
            prefixed = _prefix_problems(cookie)
            missing += prefixed if prefixed or cookie.has("Secure") else ["Secure"]
        if is_session_cookie(cookie.name) and not cookie.has("HttpOnly"):
            missing.append("HttpOnly (a session cookie)")
        if cookie.attributes.get("samesite", "").lower() not in _SAMESITE_VALUES:
            missing.append("SameSite")
        if missing:
            # The value is a credential: only the name and the attribute names are shown.
            shown = "; ".join([f"{cookie.name}=…", *sorted(cookie.attributes)])
            violations.append(
                Violation(
                    f"Set-Cookie {excerpt(cookie.name, 60)}", f"missing {', '.join(missing)}", shown
                )
            )
    return violations


def _cors(reply: Reply) -> list[Violation]:
    allowed = (reply.header("Access-Control-Allow-Origin") or "").strip()
    credentials = (reply.header("Access-Control-Allow-Credentials") or "").strip().lower()
    if allowed.lower() == PROBE_ORIGIN and credentials == "true":
        problem = "reflects a foreign Origin with credentials: any site can read this page "
        problem += "as the logged-in user"
        seen = f"Access-Control-Allow-Origin: {allowed}, Access-Control-Allow-Credentials: true"
        return [Violation("Access-Control-Allow-Origin", problem, seen)]
    return []


def _disclosure(reply: Reply, policy: HeaderPolicy) -> tuple[list[Violation], list[str]]:
    """Violations, and notes (a ``Server`` header that names software but no version)."""
    violations: list[Violation] = []
    notes: list[str] = []
    deny = policy.deny_list()
    required = policy.required_names()
    for name, value in reply.headers:
        if name.lower() in required:
            continue  # the team requires it: no pattern forbids it, not even a prefix
        if any(_matches(pattern, name) for pattern in deny):
            violations.append(Violation(_display(name), "discloses internals; remove it", value))
        elif name.lower() == "server":
            if _VERSION.search(value):
                violations.append(Violation("Server", "discloses a software version", value))
            else:
                notes.append(f'Server: "{excerpt(value, _SEEN_LIMIT)}" names the software')
    return violations, notes


def _required(reply: Reply, policy: HeaderPolicy) -> list[Violation]:
    violations: list[Violation] = []
    for req in policy.require:
        values = reply.header_values(req.name)
        if not values:
            wanted = "required" if req.value is None else f"required, expected {req.value!r}"
            violations.append(Violation(req.name, f"missing ({wanted})"))
        elif req.value is not None and all(v.strip().lower() != req.value.lower() for v in values):
            violations.append(Violation(req.name, f"expected {req.value!r}", ", ".join(values)))
    return violations


def _forbidden_values(reply: Reply, policy: HeaderPolicy) -> list[Violation]:
    return [
        Violation(rule.name, f"must not be {rule.value!r}", value)
        for rule in policy.forbid
        if rule.value is not None
        for value in reply.header_values(rule.name)
        if value.strip().lower() == rule.value.lower()
    ]


def profile_of(reply: Reply, policy: HeaderPolicy) -> str:
    """The profile applied to *reply*: the configured one, or by content type for "auto"."""
    if policy.profile != "auto":
        return policy.profile
    return "api" if is_json(reply) else "html"


def judge(reply: Reply, policy: HeaderPolicy) -> tuple[list[Violation], list[str]]:
    """Every violation of *policy* by *reply*, and notes that do not fail the check.

    A redirect is judged only on the rules that apply to every response (HSTS, cookies, CORS,
    disclosure, the team's requirements): it has no document to protect.
    """
    redirect = reply.status is not None and 300 <= reply.status < 400
    violations: list[Violation] = []
    if not redirect:
        violations += _nosniff(reply)
        if profile_of(reply, policy) == "html":
            violations += _csp(reply) + _framing(reply) + _referrer(reply)
    violations += _hsts(reply) + _cookies(reply) + _cors(reply)
    disclosed, notes = _disclosure(reply, policy)
    violations += disclosed + _required(reply, policy) + _forbidden_values(reply, policy)
    if origin(reply.url)[0] != "https":
        notes.append(
            "HSTS not judged, nor the cookies' Secure attribute: staging is not served over "
            "https (browsers ignore HSTS there and refuse Secure cookies)"
        )
    if redirect:
        notes.append("a redirect: document headers not judged; add its target to headers.paths")
    return violations, notes


class HeadersCheck(Check):
    """``headers[/path]``: GET the path and judge its response headers."""

    def __init__(self, path: str, policy: HeaderPolicy, config: RehearsalConfig) -> None:
        section = config.checks.headers or HeadersCheckConfig()
        super().__init__("headers", path, meta_for(config, section.meta))
        self.path = path
        self.policy = policy

    def describe_expectation(self) -> str:
        profile = (
            "html or api by content type" if self.policy.profile == "auto" else self.policy.profile
        )
        text = f"GET {self.path} carries the secure-headers policy ({profile})"
        for label, rules in (("required", self.policy.require), ("forbidden", self.policy.forbid)):
            if rules:
                text += f"; {label}: " + ", ".join(
                    r.name if r.value is None else f"{r.name}: {r.value}" for r in rules
                )
        return text

    def probe(self) -> Probe:
        return Probe("GET", self.path, headers=(("Origin", PROBE_ORIGIN), ("Accept", _ACCEPT)))

    def run(self, seen: ReplyLog) -> CheckRun:
        replies: Sequence[Reply] = yield [self.probe()]
        return self.judge(replies[0])

    def judge(self, reply: Reply) -> Verdict:
        """The verdict on one reply (pure)."""
        if reply.status is None:
            return fail(reply, "a response whose headers can be judged", rule="no-response")
        if reply.status == 404:
            expected = "the page to exist (a 404 means staging does not serve this path: "
            return fail(reply, expected + "fix checks.headers.paths)", rule="not-found")
        if reply.status >= 500:
            expected = "a page whose headers can be judged (the server failed)"
            return fail(reply, expected, rule="server-error")
        profile = profile_of(reply, self.policy)
        violations, notes = judge(reply, self.policy)
        properties = {"asvs": _ASVS[profile], "profile": profile}
        if not violations:
            return tag(Verdict.ok("; ".join(notes)), **properties)
        expected = f"the {profile} secure-headers policy (see docs/checks.md#headers)"
        found = tuple(
            finding(
                reply,
                expected,
                reply.status_line,
                rule=v.header,
                message=v.describe(),
                itemized=True,
                noun="header problem",
            )
            for v in violations
        )
        return tag(Verdict(found), **properties)


def build(config: RehearsalConfig) -> list[Check]:
    """One check per configured path, with that path's policy; none when ``headers`` is off."""
    section = config.checks.headers
    if section is None:
        return []
    return [
        HeadersCheck(entry.path, HeaderPolicy.for_path(section, entry), config)
        for entry in section.paths
    ]
