"""Parsers for the response headers the ``headers`` check judges (CSP, cookies, HSTS, ...)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

__all__ = [
    "REFERRER_POLICIES",
    "Cookie",
    "effective_referrer_policy",
    "hsts_max_age",
    "parse_csp",
    "parse_set_cookie",
]

#: Every token of the Referrer-Policy spec; a browser uses the last one it recognises.
REFERRER_POLICIES = frozenset(
    {
        "no-referrer",
        "no-referrer-when-downgrade",
        "same-origin",
        "origin",
        "strict-origin",
        "origin-when-cross-origin",
        "strict-origin-when-cross-origin",
        "unsafe-url",
    }
)

Policy = dict[str, list[str]]


def parse_csp(values: list[str]) -> list[Policy]:
    """Every policy in the given ``Content-Security-Policy`` header values.

    Policies joined with commas are separate policies (all are enforced); within one, the
    first occurrence of a directive wins and later duplicates are ignored, as browsers do.
    """
    policies: list[Policy] = []
    for value in values:
        for text in value.split(","):
            policy: Policy = {}
            for directive in text.split(";"):
                tokens = directive.split()
                if tokens and tokens[0].lower() not in policy:
                    policy[tokens[0].lower()] = [token.lower() for token in tokens[1:]]
            if policy:
                policies.append(policy)
    return policies


@dataclass(frozen=True)
class Cookie:
    """A ``Set-Cookie`` without its value (values are credentials and are never shown)."""

    name: str
    attributes: dict[str, str]

    def has(self, attribute: str) -> bool:
        return attribute.lower() in self.attributes

    @property
    def is_deletion(self) -> bool:
        """A cookie that removes itself (``Max-Age=0`` or an ``Expires`` in the past)."""
        max_age = self.attributes.get("max-age", "").strip()
        if max_age.lstrip("-").isdigit():
            return int(max_age) <= 0
        expires = self.attributes.get("expires")
        if expires is None:
            return False
        try:
            return parsedate_to_datetime(expires).timestamp() < time.time()
        except (TypeError, ValueError):
            return False


def parse_set_cookie(value: str) -> Cookie:
    """The name and attributes (keys lower-cased) of one ``Set-Cookie`` header value."""
    pair, _, rest = value.partition(";")
    name = pair.partition("=")[0].strip()
    attributes: dict[str, str] = {}
    for part in rest.split(";"):
        key, _, attr_value = part.partition("=")
        if key.strip():
            attributes[key.strip().lower()] = attr_value.strip()
    return Cookie(name, attributes)


def hsts_max_age(value: str) -> int | None:
    """The ``max-age`` of a ``Strict-Transport-Security`` value, or None when unparsable."""
    for directive in value.split(";"):
        key, _, raw = directive.partition("=")
        if key.strip().lower() == "max-age":
            raw = raw.strip().strip('"')
            return int(raw) if raw.isdigit() else None
    return None


def effective_referrer_policy(value: str) -> str | None:
    """The policy a browser applies: the last recognised token of the header value."""
    tokens = [token.strip().lower() for token in value.split(",")]
    known = [token for token in tokens if token in REFERRER_POLICIES]
    return known[-1] if known else None
