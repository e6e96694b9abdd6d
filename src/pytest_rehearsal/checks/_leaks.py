"""What a response must never show: secrets (gitleaks-derived rules) and stack traces.

The secret rules are ported from gitleaks ``config/gitleaks.toml`` (@b58d3f10) and tested under
Python ``re``. Like gitleaks, a rule can require a minimum Shannon entropy of the secret, so
that ``AKIAAAAAAAAAAAAAAAAA`` in a test fixture is not a leak, and a rule has keywords: its
regular expression runs only on text that contains one of them (lower-cased), and is compiled
only then. Most responses contain none, so most rules cost a substring search. Findings are
only ever shown redacted: the first four characters and an ellipsis.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..text import excerpt

__all__ = [
    "RULES",
    "SCAN_LIMIT",
    "Leak",
    "LeakRule",
    "mask_secrets",
    "redact",
    "scan_response",
    "scan_text",
    "shannon_entropy",
]

#: Bytes of each body that are scanned; the executor already caps what it reads.
SCAN_LIMIT = 256 * 1024
_SHOWN = 4
_TAG = re.compile(r"</?[a-zA-Z][^<>]{0,100}>")

# gitleaks ends several rules with this terminator; HTML and JSON delimiters are added so a
# token inside ``<td>…</td>`` or ``{"k": …}`` still matches.
_END = r"""(?:[\x60'"\s;<>,}&)]|\\[nr]|$)"""


@dataclass(frozen=True)
class LeakRule:
    """One thing a response must not contain.

    ``kind`` is ``"secret"`` (shown redacted) or ``"trace"`` (a stack trace or debug page,
    shown by its first line). ``warn_only`` rules are reported without failing. Every match
    of ``regex`` contains one of ``keywords`` once lower-cased (tests hold each rule to it).
    """

    name: str
    label: str
    regex: str
    keywords: tuple[str, ...]
    flags: int = 0
    kind: str = "secret"
    entropy: float = 0.0
    allow: str | None = None
    warn_only: bool = False

    @functools.cached_property
    def pattern(self) -> re.Pattern[str]:
        """``regex``, compiled on first use."""
        return re.compile(self.regex, self.flags)

    def may_match(self, lowered: str) -> bool:
        """Whether *lowered* (a text, lower-cased) holds a keyword, so the regex may match."""
        return any(keyword in lowered for keyword in self.keywords)


def _secret(
    name: str,
    label: str,
    regex: str,
    keywords: tuple[str, ...],
    entropy: float = 0.0,
    *,
    flags: int = 0,
    allow: str | None = None,
    warn_only: bool = False,
) -> LeakRule:
    return LeakRule(
        name, label, regex, keywords, flags, entropy=entropy, allow=allow, warn_only=warn_only
    )


def _trace(name: str, label: str, regex: str, keywords: tuple[str, ...]) -> LeakRule:
    return LeakRule(name, label, regex, keywords, kind="trace")


SECRET_RULES: tuple[LeakRule, ...] = (
    _secret(
        "aws-access-token",
        "an AWS access key id",
        r"\b((?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16})\b",
        ("a3t", "akia", "asia", "abia", "acca"),
        3.0,
        allow=r".+EXAMPLE$",
    ),
    _secret(
        "private-key",
        "a private key",
        r"-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----[\s\S-]{64,}?KEY(?: BLOCK)?-----",
        ("-----begin",),
        flags=re.IGNORECASE | re.ASCII,  # ASCII: the keyword is then in every match
    ),
    _secret(
        "putty-private-key",
        "a PuTTY private key",
        r"PuTTY-User-Key-File-[23]: \S+",
        ("putty-user-key-file-",),
    ),
    _secret("github-pat", "a GitHub personal access token", r"ghp_[0-9a-zA-Z]{36}", ("ghp_",), 3.0),
    _secret(
        "github-fine-grained-pat",
        "a GitHub fine-grained token",
        r"github_pat_\w{82}",
        ("github_pat_",),
        3.0,
    ),
    _secret("github-oauth", "a GitHub OAuth token", r"gho_[0-9a-zA-Z]{36}", ("gho_",), 3.0),
    _secret("gitlab-pat", "a GitLab personal access token", r"glpat-[\w-]{20}", ("glpat-",), 3.0),
    _secret(
        "slack-bot-token",
        "a Slack bot token",
        r"xoxb-[0-9]{10,13}-[0-9]{10,13}[a-zA-Z0-9-]*",
        ("xoxb-",),
        3.0,
    ),
    _secret(
        "slack-webhook-url",
        "a Slack webhook URL",
        r"(?:https?://)?hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9+/]{43,56}",
        ("hooks.slack.com/",),
    ),
    _secret(
        "stripe-access-token",
        "a Stripe secret key",
        r"\b((?:sk|rk)_(?:test|live|prod)_[a-zA-Z0-9]{10,99})" + _END,
        ("sk_test_", "sk_live_", "sk_prod_", "rk_test_", "rk_live_", "rk_prod_"),
        2.0,
    ),
    _secret("gcp-api-key", "a Google Cloud API key", r"\b(AIza[\w-]{35})" + _END, ("aiza",), 4.0),
    _secret(
        "npm-access-token",
        "an npm access token",
        r"\b(npm_[a-z0-9]{36})" + _END,
        ("npm_",),
        2.0,
        flags=re.IGNORECASE | re.ASCII,  # ASCII: the keyword is then in every match
    ),
    # A JWT in a body is often legitimate (a login response): reported, never failing.
    _secret(
        "jwt",
        "a JSON Web Token",
        r"\b(ey[a-zA-Z0-9]{17,}\.ey[a-zA-Z0-9/\\_-]{17,}\.(?:[a-zA-Z0-9/\\_-]{10,}={0,2})?)" + _END,
        ("ey",),
        3.0,
        warn_only=True,
    ),
)

#: Most specific first: one page shows at most one trace finding (the Werkzeug debugger
#: page also contains a plain Python traceback). Their labels name a page, for "answers 500
#: with ...". Every quantifier that could span the body is bounded, or stops at a character
#: that also ends the next possible start: each rule costs time linear in the body.
TRACE_RULES: tuple[LeakRule, ...] = (
    _trace(
        "werkzeug-debugger",
        "the Werkzeug interactive debugger, which lets anyone run code on the server",
        r"Werkzeug powered traceback interpreter|Werkzeug Debugger|__debugger__=yes",
        ("werkzeug", "__debugger__=yes"),
    ),
    _trace(
        "django-debug-404",
        "Django's DEBUG 404 page, which lists the URL patterns (DEBUG = True)",
        r"Django tried these URL patterns",
        ("django tried these url patterns",),
    ),
    _trace(
        "django-debug-page",
        "Django's DEBUG page, which shows the traceback and the settings",
        # Django wraps the sentence at different words on its 404 and 500 pages.
        r"DEBUG = True(?:</code>)?\s{1,20}in\s{1,20}your\s{1,20}Django\s{1,20}settings\s{1,20}file",
        ("django",),
    ),
    _trace(
        "python-traceback",
        "a Python traceback",
        r"Traceback \(most recent call last\)",
        ("traceback (most recent call last)",),
    ),
    _trace(
        "java-stack-trace",
        "a Java stack trace",
        r"Exception in thread \"[^\"\n]{0,200}\""
        r"|\bat (?:[\w$]{1,200}\.){1,30}[\w$<>]{1,200}\([\w$]{1,200}\."
        r"(?:java|kt|scala|groovy):\d{1,9}\)",
        ('exception in thread "', ".java:", ".kt:", ".scala:", ".groovy:"),
    ),
    _trace(
        "node-stack-trace",
        "a Node.js stack trace",
        # The function name is a few space-separated words (``Layer.handle [as handle]``),
        # none with a space of its own: an unbounded ``[... ]+`` rescanned ``at at at ...``
        # to its end from every ``at`` (250 KiB took 69 s).
        r"\bat (?:[\w$.<>\[\]]{1,200}(?: [\w$.<>\[\]]{1,200}){0,4} \()?(?:/|file://)"
        r"[^\s()]{1,1000}\.(?:js|mjs|cjs|ts):\d{1,9}:\d{1,9}\)?",
        (".js:", ".mjs:", ".cjs:", ".ts:"),
    ),
    _trace(
        "dotnet-error-page",
        "an ASP.NET error page or .NET stack trace",
        r"Server Error in '[^'\n]{0,200}' Application"
        r"|\bat [\w.`<>]{1,300}\([^)\n]{0,300}\) in [^\n]{1,260}?:line \d{1,9}",
        ("server error in '", ":line "),
    ),
    _trace(
        "php-error",
        "a PHP error with file and line",
        # Tempered: the scan from one "Fatal error" stops at the next, so that a body full
        # of them is read once, not 2000 characters again from each.
        r"(?:PHP )?(?:Fatal|Parse) error(?:</b>)?:"
        r"(?:(?!(?:Fatal|Parse) error)[\s\S]){0,2000}? on line (?:<b>)?\d{1,9}",
        ("fatal error", "parse error"),
    ),
)

RULES: tuple[LeakRule, ...] = SECRET_RULES + TRACE_RULES


@dataclass(frozen=True)
class Leak:
    """One rule matched somewhere in a reply; ``shown`` is already safe to print."""

    rule: LeakRule
    where: str
    shown: str
    #: Tells two leaks apart that are shown alike: a digest of the whole secret (two keys
    #: that start "sk_l" are two leaks), the shown marker for a trace.
    fingerprint: str = field(default="", repr=False)

    @property
    def identity(self) -> tuple[str, str]:
        """The same leak wherever it is seen: its rule and its fingerprint."""
        return self.rule.name, self.fingerprint or self.shown

    def describe(self) -> str:
        """``a Stripe secret key "sk_l…" in the body``; ``a Python traceback ("Traceback ...")``."""
        if self.rule.kind == "trace":
            return f'{self.rule.label} ("{self.shown}")'
        return f'{self.rule.label} "{self.shown}" in the {self.where}'


def redact(value: str) -> str:
    """The first four characters of a secret and an ellipsis."""
    return value[:_SHOWN] + "…"


def shannon_entropy(value: str) -> float:
    """Bits per character of *value* (gitleaks gates noisy rules on this)."""
    if not value:
        return 0.0
    counts = Counter(value)
    total = len(value)
    return -sum(n / total * math.log2(n / total) for n in counts.values())


def _secret_of(match: re.Match[str]) -> str:
    return match.group(1) if match.re.groups else match.group(0)


def _shown(rule: LeakRule, match: re.Match[str]) -> str:
    if rule.kind == "trace":
        # A marker, not a layout: markup dropped, white space collapsed.
        return excerpt(_TAG.sub("", match.group(0)), 60)
    return redact(_secret_of(match))


def _is_secret(rule: LeakRule, secret: str) -> bool:
    if rule.allow is not None and re.search(rule.allow, secret):
        return False
    return shannon_entropy(secret) >= rule.entropy


def mask_secrets(text: str) -> str:
    """*text* with every secret the rules find replaced by its redacted form.

    For body excerpts in failure messages: a page that fails for another reason may still
    carry a token, and a message must never print one.
    """
    lowered = text.lower()
    for rule in SECRET_RULES:
        if not rule.may_match(lowered):
            continue

        def masked(match: re.Match[str], rule: LeakRule = rule) -> str:
            secret = _secret_of(match)
            if not _is_secret(rule, secret):
                return match.group(0)
            return match.group(0).replace(secret, redact(secret))

        text = rule.pattern.sub(masked, text)
    return text


def scan_text(text: str, where: str) -> list[Leak]:
    """Every secret in *text*, and the most specific stack trace / debug page marker."""
    findings: list[Leak] = []
    seen: set[tuple[str, str]] = set()
    lowered = text.lower()
    for rule in SECRET_RULES:
        if not rule.may_match(lowered):
            continue
        for match in rule.pattern.finditer(text):
            secret = _secret_of(match)
            if not _is_secret(rule, secret):
                continue
            digest = hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()
            finding = Leak(rule, where, _shown(rule, match), digest)
            if finding.identity not in seen:
                seen.add(finding.identity)
                findings.append(finding)
    for rule in TRACE_RULES:
        trace = rule.pattern.search(text) if rule.may_match(lowered) else None
        if trace is not None:
            findings.append(Leak(rule, where, _shown(rule, trace)))
            break
    return findings


def scan_response(
    headers: Iterable[tuple[str, str]], body: bytes, limit: int = SCAN_LIMIT
) -> list[Leak]:
    """Leaks in the *headers* and the first *limit* bytes of the *body* of a response."""
    leaks: list[Leak] = []
    for name, value in headers:
        found = scan_text(value, f"{name} header")
        leaks.extend(leak for leak in found if leak.rule.kind == "secret")
    leaks.extend(scan_text(body[:limit].decode("utf-8", errors="replace"), "body"))
    return leaks
