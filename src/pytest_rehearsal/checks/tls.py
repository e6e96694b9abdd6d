"""``rehearsal::tls`` (https staging only): the certificate lives long enough, old TLS is refused.

Two handshakes go out together, and no request is sent over either (see
:mod:`pytest_rehearsal.tls_probe`):

- a normal one, with the trust of every request (the system store, or ``ca_bundle`` /
  ``--staging-ca-bundle``): the chain must verify and the certificate must stay valid at
  least ``min_days`` more days (default 30, the renewal window of ACME clients such as
  certbot); the negotiated version and cipher become report properties;
- one that offers at most the version just below ``min_version`` (default ``TLSv1.2``, so
  at most TLS 1.1): the server must refuse it (OWASP ASVS 5.0 12.1.1, 4.0.3 V9.1.3). When
  the local OpenSSL cannot offer that version at all, nothing can be learnt: the check
  says so in a note instead of passing silently or failing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ..config import TLS_VERSIONS, Meta, TlsCheckConfig
from ..findings import Exchange, Finding
from ..text import plural
from ..tls_probe import HandshakeResult, handshake
from ._base import Action, ActionContext, Check, CheckRun, ReplyLog, Verdict
from ._support import meta_for, tag

if TYPE_CHECKING:
    from ..config import RehearsalConfig

__all__ = ["Handshake", "TlsCheck", "build", "version_below"]

_ASVS = "5.0.0: 12.1.1 12.2.1; 4.0.3: 9.1.1 9.1.3"
_RETRY = "safe: a TLS handshake changes nothing (no request is sent over it)"
_DAY_S = 86400.0
#: Every version a capped handshake may offer, oldest first (``TLSv1`` is TLS 1.0).
_ORDER = ("TLSv1", *TLS_VERSIONS)


def version_below(floor: str) -> str:
    """The newest protocol version older than *floor* (``TLSv1.2`` -> ``TLSv1.1``)."""
    return _ORDER[_ORDER.index(floor) - 1]


@dataclass(frozen=True)
class Handshake(Action):
    """A TLS handshake with staging; ``at_most`` caps the versions offered (trust is not
    checked then: only the version the server agrees to matters)."""

    at_most: str | None = None

    def perform(self, context: ActionContext, not_after: float) -> HandshakeResult:
        return handshake(context, not_after, self.at_most)

    def describe(self) -> str:
        if self.at_most is None:
            return "TLS handshake (the certificate verified, its expiry read)"
        return f"TLS handshake offering at most {self.at_most} (to be refused)"


class TlsCheck(Check):
    """The certificate's remaining life and the protocol floor, judged (pure)."""

    def __init__(self, spec: TlsCheckConfig, meta: Meta, staging_url: str) -> None:
        super().__init__("tls", None, meta)
        self.spec = spec
        parts = urlsplit(staging_url)
        self.endpoint = f"{parts.hostname}:{parts.port or 443}"
        self.capped = version_below(spec.min_version)

    def describe_expectation(self) -> str:
        return (
            f"a verified certificate valid for at least {plural(self.spec.min_days, 'more day')}"
            f", and a handshake offering at most {self.capped} refused"
        )

    def run(self, seen: ReplyLog) -> CheckRun:
        main, capped = yield [Handshake(), Handshake(self.capped)]
        return self.judge(main, capped)

    def judge(self, main: HandshakeResult, capped: HandshakeResult) -> Verdict:
        """The verdict on both handshakes; every problem is its own finding."""
        findings: list[Finding] = []
        notes: list[str] = []
        properties: dict[str, str] = {}
        if main.error is not None:
            findings.append(self._main_failed(main.error))
        else:
            properties = self._properties(main)
            expiring = self._expiring(main)
            if expiring is not None:
                findings.append(expiring)
        floor = self._floor(main, capped, notes)
        if floor is not None:
            findings.append(floor)
        if not findings:
            notes.insert(0, self._summary(main, capped))
        return tag(Verdict(tuple(findings), tuple(notes)), asvs=_ASVS, **properties)

    def _exchange(self, expected: str, capped: bool = False) -> Exchange:
        request = f"TLS handshake with {self.endpoint}"
        if capped:
            request += f", offering at most {self.capped}"
        return Exchange(request, expected, _RETRY)

    def _days_left(self, result: HandshakeResult) -> int | None:
        if result.not_after is None:
            return None
        return math.floor((result.not_after - result.checked_at) / _DAY_S)

    def _properties(self, main: HandshakeResult) -> dict[str, str]:
        properties = {"tls_version": main.version or "?", "tls_cipher": main.cipher or "?"}
        days = self._days_left(main)
        if main.not_after is not None and days is not None:
            properties["certificate_expires"] = _date(main.not_after)
            properties["certificate_days_left"] = str(days)
        return properties

    def _main_failed(self, error: str) -> Finding:
        return Finding(
            rule="handshake-failed",
            message=error,
            got=error,
            exchange=self._exchange("a handshake with a certificate chain that verifies"),
        )

    def _expiring(self, main: HandshakeResult) -> Finding | None:
        days = self._days_left(main)
        expected = f"a certificate valid for at least {plural(self.spec.min_days, 'more day')}"
        if main.not_after is None or days is None:
            return Finding(
                rule="no-certificate-dates",
                message="the certificate's expiry date could not be read",
                got="a verified handshake, but no notAfter date in the certificate",
                exchange=self._exchange(expected),
            )
        if days >= self.spec.min_days:
            return None
        when = _date(main.not_after)
        message = (
            f"the certificate expires on {when}, in {plural(days, 'day')}: sooner than "
            f"min_days ({self.spec.min_days})"
            if days >= 0
            else f"the certificate expired on {when}"
        )
        return Finding(
            rule="certificate-expires-soon",
            message=message,
            got=f"{message}; renew it before the release",
            exchange=self._exchange(expected),
        )

    def _floor(
        self, main: HandshakeResult, capped: HandshakeResult, notes: list[str]
    ) -> Finding | None:
        floor = self.spec.min_version
        expected = f"the handshake refused (staging's floor is {floor} or newer)"
        if capped.unavailable is not None:
            notes.append(
                f"not checked that staging refuses versions below {floor}: {capped.unavailable}"
            )
            if main.version in _ORDER and _ORDER.index(main.version) < _ORDER.index(floor):
                message = f"staging negotiated {main.version}, older than min_version {floor}"
                return Finding(
                    rule="old-protocol-accepted",
                    message=message,
                    got=message,
                    exchange=self._exchange(f"{floor} or newer negotiated"),
                )
            return None
        if capped.refused:
            return None
        if capped.error is not None:
            message = f"could not tell whether versions below {floor} are refused"
            return Finding(
                rule="floor-not-tested",
                message=message,
                got=f"{message}: {capped.error}",
                exchange=self._exchange(expected, capped=True),
            )
        message = f"staging accepts {capped.version}, older than min_version {floor}"
        return Finding(
            rule="old-protocol-accepted",
            message=message,
            got=f"{message} (cipher {capped.cipher}); disable it on every TLS endpoint",
            exchange=self._exchange(expected, capped=True),
        )

    def _summary(self, main: HandshakeResult, capped: HandshakeResult) -> str:
        text = f"{main.version}, {main.cipher}"
        days = self._days_left(main)
        if main.not_after is not None and days is not None:
            text += f"; certificate valid until {_date(main.not_after)} ({plural(days, 'day')})"
        if capped.refused:
            text += f"; a handshake offering at most {self.capped} was refused"
        return text


def _date(moment: float) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).date().isoformat()


def build(config: RehearsalConfig) -> list[Check]:
    """The TLS check, unless ``checks.tls: false``; the registry
    (:func:`~pytest_rehearsal.checks.build_checks`) asks for it for an https staging only."""
    spec = config.checks.tls
    if spec is None:
        return []
    return [TlsCheck(spec, meta_for(config, spec.meta), config.staging_url or "")]
