"""The ``tls`` check: certificate life and protocol floor, judged purely and against uvicorn.

The servers are real uvicorn apps over TLS on 127.0.0.1, with certificates made in the test
by the ``openssl`` tool (``hostile/certs.py``): a self-signed certificate is its own private
CA, trusted through ``--staging-ca-bundle`` like any team's private CA.
"""

from __future__ import annotations

import ssl
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from hostile.certs import Cert, make_cert, server_context
from plugin_helpers import QUIET_CHECKS, TinyStaging, load_report, write_config
from pytest_rehearsal.checks import build_checks, tls
from pytest_rehearsal.checks._base import ActionContext, Check, ReplyLog, Request, Verdict
from pytest_rehearsal.checks.tls import Handshake, TlsCheck, version_below
from pytest_rehearsal.config import ChecksConfig, RehearsalConfig, TlsCheckConfig
from pytest_rehearsal.executor import execute
from pytest_rehearsal.redact import Redactor
from pytest_rehearsal.tls_probe import HandshakeResult, capped_context
from servers import serve_asgi

DAY = 86400.0
NOW = 1_800_000_000.0
URL = "https://staging.example.com:8443"


def make_check(min_days: int = 30, min_version: str = "TLSv1.2", url: str = URL) -> TlsCheck:
    config = RehearsalConfig(
        staging_url=url, checks=ChecksConfig(tls=TlsCheckConfig(min_days, min_version))
    )
    (built,) = tls.build(config)
    assert isinstance(built, TlsCheck)
    return built


def main(days: float = 400, version: str = "TLSv1.3") -> HandshakeResult:
    return HandshakeResult(
        version=version, cipher="TLS_AES_256_GCM_SHA384", not_after=NOW + days * DAY, checked_at=NOW
    )


REFUSED = HandshakeResult(error="TLS handshake failed: TLSV1_ALERT_PROTOCOL_VERSION", refused=True)


# -- which runs have the check -------------------------------------------------------------------


def test_only_an_https_staging_gets_the_check_and_tls_false_turns_it_off() -> None:
    on = ChecksConfig(health=None, headers=None, secrets=None)
    assert [c.id for c in build_checks(RehearsalConfig(checks=on), "https://s.example")] == ["tls"]
    assert build_checks(RehearsalConfig(checks=on), "http://s.example") == []
    assert build_checks(RehearsalConfig(checks=on)) == []  # no URL at all
    from_file = RehearsalConfig(staging_url="https://s.example", checks=on)
    assert [c.id for c in build_checks(from_file)] == ["tls"]
    off = ChecksConfig(health=None, headers=None, secrets=None, tls=None)
    assert build_checks(RehearsalConfig(checks=off), "https://s.example") == []


def test_the_capped_handshake_offers_the_version_just_below_the_floor() -> None:
    assert [version_below(v) for v in ("TLSv1.1", "TLSv1.2", "TLSv1.3")] == [
        "TLSv1",
        "TLSv1.1",
        "TLSv1.2",
    ]
    check = make_check(min_version="TLSv1.3")
    plan = check.run(ReplyLog())
    assert next(plan) == [Handshake(), Handshake("TLSv1.2")]
    assert check.endpoint == "staging.example.com:8443"
    assert make_check(url="https://s.example").endpoint == "s.example:443"


# -- the judgement -------------------------------------------------------------------------------


def test_a_long_lived_certificate_and_a_refused_old_handshake_pass() -> None:
    verdict = make_check().judge(main(days=400.5), REFUSED)
    assert verdict.passed
    assert verdict.properties == {
        "asvs": "5.0.0: 12.1.1 12.2.1; 4.0.3: 9.1.1 9.1.3",
        "tls_version": "TLSv1.3",
        "tls_cipher": "TLS_AES_256_GCM_SHA384",
        "certificate_expires": "2028-02-19",
        "certificate_days_left": "400",
    }
    assert verdict.notes == (
        "TLSv1.3, TLS_AES_256_GCM_SHA384; certificate valid until 2028-02-19 (400 days); "
        "a handshake offering at most TLSv1.1 was refused",
    )


def test_a_certificate_expiring_within_min_days_fails() -> None:
    verdict = make_check(min_days=30).judge(main(days=10), REFUSED)
    (found,) = verdict.findings
    assert found.rule == "certificate-expires-soon"
    assert found.message == (
        "the certificate expires on 2027-01-25, in 10 days: sooner than min_days (30)"
    )
    assert verdict.message.splitlines()[:2] == [
        "TLS handshake with staging.example.com:8443",
        "  expected: a certificate valid for at least 30 more days",
    ]
    assert "retry:    safe: a TLS handshake changes nothing" in verdict.message
    assert verdict.properties["certificate_days_left"] == "10"  # reported even when failing


def test_min_days_zero_only_asks_for_a_valid_certificate() -> None:
    assert make_check(min_days=0).judge(main(days=0.5), REFUSED).passed


def test_a_failed_verification_is_a_finding_and_the_floor_is_still_judged() -> None:
    failed = HandshakeResult(error="TLS verification failed: self-signed certificate")
    accepted = HandshakeResult(version="TLSv1.1", cipher="ECDHE-ECDSA-AES256-SHA", checked_at=NOW)
    verdict = make_check().judge(failed, accepted)
    assert [f.rule for f in verdict.findings] == ["handshake-failed", "old-protocol-accepted"]
    assert [f.message for f in verdict.findings] == [
        "TLS verification failed: self-signed certificate",
        "staging accepts TLSv1.1, older than min_version TLSv1.2",
    ]
    assert "TLS handshake with staging.example.com:8443, offering at most TLSv1.1" in (
        verdict.message
    )
    assert "(cipher ECDHE-ECDSA-AES256-SHA); disable it on every TLS endpoint" in verdict.message
    assert "tls_version" not in verdict.properties


def test_a_capped_handshake_that_cannot_be_told_apart_fails_closed() -> None:
    unclear = HandshakeResult(
        error="no connection to staging.example.com:8443: no answer within 5 s"
    )
    (found,) = make_check().judge(main(), unclear).findings
    assert found.rule == "floor-not-tested"
    assert found.message == "could not tell whether versions below TLSv1.2 are refused"


def test_when_the_local_openssl_cannot_offer_the_old_version_a_note_says_so() -> None:
    unavailable = HandshakeResult(unavailable="OpenSSL 3.0 cannot offer TLSv1.1 (no ClientHello)")
    verdict = make_check().judge(main(), unavailable)
    assert verdict.passed
    assert verdict.notes[1] == (
        "not checked that staging refuses versions below TLSv1.2: "
        "OpenSSL 3.0 cannot offer TLSv1.1 (no ClientHello)"
    )
    # The normal handshake still shows an old protocol when it negotiates one.
    old = make_check(min_version="TLSv1.3").judge(main(version="TLSv1.2"), unavailable)
    (found,) = old.findings
    assert found.message == "staging negotiated TLSv1.2, older than min_version TLSv1.3"


# -- against uvicorn over TLS --------------------------------------------------------------------


@contextmanager
def serve_tls(cert: Cert, at_most: ssl.TLSVersion | None = None) -> Iterator[str]:
    """uvicorn over TLS presenting *cert*; *at_most* caps the versions it speaks."""
    context = server_context(cert)
    if at_most is not None:
        context.set_ciphers("DEFAULT:@SECLEVEL=0")  # OpenSSL 3 serves TLS < 1.2 only at 0
        with warnings.catch_warnings():  # the deprecated versions are the point of the test
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
            context.maximum_version = at_most
    with serve_asgi(TinyStaging().app(), tls=context) as url:
        yield url


def check_for_real(check: Check, url: str, ca: Path) -> Verdict:
    """Run *check* with the real executor, its handshakes performed against *url*."""
    trust = ssl.create_default_context(cafile=str(ca))
    context = ActionContext(url, 5.0, trust, Redactor())

    def perform(request: Request, not_after: float) -> object:
        assert isinstance(request, Handshake)
        return request.perform(context, not_after)

    outcome = execute([check], perform, ReplyLog(), timeout=5.0)[check.id]
    assert outcome.verdict is not None, outcome.error
    return outcome.verdict


@pytest.fixture(scope="module")
def long_lived(tmp_path_factory: pytest.TempPathFactory) -> Cert:
    return make_cert(tmp_path_factory.mktemp("cert-400"), "IP:127.0.0.1", days=400)


def test_uvicorn_with_a_400_day_certificate_passes_and_reports_version_and_cipher(
    long_lived: Cert,
) -> None:
    with serve_tls(long_lived) as url:
        verdict = check_for_real(make_check(url=url), url, long_lived.cert)
    assert verdict.passed, verdict.message
    assert verdict.properties["tls_version"] == "TLSv1.3"
    assert verdict.properties["tls_cipher"].startswith("TLS_")
    assert verdict.properties["certificate_days_left"] in {"399", "400"}
    assert "a handshake offering at most TLSv1.1 was refused" in verdict.notes[0]


def test_uvicorn_serving_tls_1_2_fails_a_tls_1_3_floor(long_lived: Cert) -> None:
    with serve_tls(long_lived, ssl.TLSVersion.TLSv1_2) as url:
        verdict = check_for_real(make_check(min_version="TLSv1.3", url=url), url, long_lived.cert)
    (found,) = verdict.findings
    assert found.message == "staging accepts TLSv1.2, older than min_version TLSv1.3"


def test_uvicorn_capped_at_tls_1_1_fails_the_default_floor(long_lived: Cert) -> None:
    offer = capped_context("TLSv1.1")
    if isinstance(offer, str):
        # Some OpenSSL builds cannot speak TLS 1.1 at all, at any security level: the check
        # then notes that it could not test the floor (see the unavailable test above).
        pytest.skip(f"the local OpenSSL cannot offer TLS 1.1: {offer}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        at_most = ssl.TLSVersion.TLSv1_1
    with serve_tls(long_lived, at_most) as url:
        verdict = check_for_real(make_check(url=url), url, long_lived.cert)
    # The normal handshake needs TLS 1.2 (as every request of the rehearsal does).
    assert [f.rule for f in verdict.findings] == ["handshake-failed", "old-protocol-accepted"]
    assert verdict.findings[1].message == "staging accepts TLSv1.1, older than min_version TLSv1.2"


def test_a_handshake_against_a_closed_port_ends_by_its_deadline() -> None:
    context = ActionContext("https://127.0.0.1:9", 1.0, ssl.create_default_context(), Redactor())
    started = time.monotonic()
    result = Handshake().perform(context, time.monotonic() + 1.0)
    assert time.monotonic() - started < 3
    assert result.error is not None
    assert result.error.startswith("no connection to 127.0.0.1:9: ")


# -- whole rehearsals ----------------------------------------------------------------------------


def rehearse_tls(pytester: pytest.Pytester, cert: Cert) -> dict[str, object]:
    with serve_tls(cert) as url:
        # The URL comes from the file, as `staging_url:` would in a team's config.
        write_config(pytester, f"staging_url: {url}\n" + QUIET_CHECKS)
        result = pytester.runpytest(
            f"--staging-ca-bundle={cert.cert}", "--no-rollback", "--rehearsal-report=report.json"
        )
    report = load_report(pytester.path / "report.json")
    checks = {c["id"]: c for c in report["checks"]}
    return {"ret": result.ret, "output": result.stdout.str(), **checks["rehearsal::tls"]}


def test_an_https_rehearsal_includes_tls_and_passes_with_a_400_day_certificate(
    pytester: pytest.Pytester, long_lived: Cert
) -> None:
    record = rehearse_tls(pytester, long_lived)
    assert record["ret"] == 0, record["output"]
    assert record["outcome"] == "passed"
    properties = record["properties"]
    assert isinstance(properties, dict)
    assert properties["tls_version"] == "TLSv1.3"


def test_an_https_rehearsal_with_a_10_day_certificate_is_blocked(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    record = rehearse_tls(pytester, make_cert(tmp_path / "cert-10", "IP:127.0.0.1", days=10))
    assert record["ret"] == 1, record["output"]
    assert record["outcome"] == "failed"
    message = record["message"]
    assert isinstance(message, str)
    assert "days: sooner than min_days (30)" in message
    assert "FAILED rehearsal::tls" in str(record["output"])
