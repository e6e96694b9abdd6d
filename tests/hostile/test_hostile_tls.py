"""TLS on a hostile staging service (case 17): verification always on, failures named, the
private-CA fix (``--staging-ca-bundle`` and ``ca_bundle:``) working end to end.

Certificates are made at test time with the ``openssl`` tool (see ``certs.py``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import raw_servers
from certs import Cert, make_cert, server_context
from hostile_support import SLACK, TIMEOUT, probe_sender, rehearse

from pytest_rehearsal.checks._base import Probe

HEALTHY = (
    b'HTTP/1.1 200 OK\r\nContent-Length: 12\r\nContent-Type: application/json\r\n\r\n{"ok": true}'
)


@pytest.fixture
def self_signed(tmp_path: Path) -> Cert:
    return make_cert(tmp_path / "self-signed", "IP:127.0.0.1")


@pytest.fixture
def healthy_tls(self_signed: Cert) -> Iterator[str]:
    with raw_servers.serve_raw(raw_servers.canned(HEALTHY), tls=server_context(self_signed)) as url:
        yield url


def test_a_self_signed_certificate_fails_at_once_and_says_so(healthy_tls: str) -> None:
    started = time.monotonic()
    reply = probe_sender(healthy_tls).send(Probe("GET", "/health"))
    assert reply.status is None
    assert reply.error == (
        "TLS verification failed: self-signed certificate "
        "(for a private CA, pass --staging-ca-bundle or set ca_bundle:)"
    )
    assert reply.attempts == 1  # a TLS failure is never retried
    assert time.monotonic() - started < TIMEOUT + SLACK


def test_the_ca_bundle_makes_a_private_certificate_trusted(
    healthy_tls: str, self_signed: Cert
) -> None:
    reply = probe_sender(healthy_tls, ca_bundle=self_signed.cert).send(Probe("GET", "/health"))
    assert (reply.status, reply.body) == (200, b'{"ok": true}')


@pytest.mark.parametrize(
    ("san", "expired", "problem"),
    [
        ("DNS:localhost", False, "IP address mismatch, certificate is not valid for '127.0.0.1'."),
        ("IP:127.0.0.1", True, "certificate has expired"),
    ],
    ids=["wrong-host", "expired"],
)
def test_a_trusted_but_wrong_certificate_names_the_problem(
    tmp_path: Path, san: str, expired: bool, problem: str
) -> None:
    cert = make_cert(tmp_path, san, expired=expired)
    with raw_servers.serve_raw(raw_servers.canned(HEALTHY), tls=server_context(cert)) as url:
        reply = probe_sender(url, ca_bundle=cert.cert).send(Probe("GET", "/health"))
    assert reply.error == f"TLS verification failed: {problem}"
    assert reply.attempts == 1


def test_a_rehearsal_against_a_private_ca_is_blocked_then_ready_with_the_bundle(
    pytester: pytest.Pytester, healthy_tls: str, self_signed: Cert, token_env: str
) -> None:
    blocked = rehearse(pytester, healthy_tls, "/health")
    assert blocked.ret == 1
    assert blocked.report["verdict"] == "blocked"
    assert (
        "got:      no response (TLS verification failed: self-signed certificate"
        in (blocked.check()["message"])
    )
    blocked.assert_no_secret()

    ready = rehearse(pytester, healthy_tls, "/health", f"--staging-ca-bundle={self_signed.cert}")
    assert ready.ret == 0, ready.stdout
    assert ready.report["verdict"] == "ready"
    ready.assert_no_secret()

    from_config = rehearse(
        pytester, healthy_tls, "/health", config=f"ca_bundle: '{self_signed.cert}'\n"
    )
    assert from_config.ret == 0, from_config.stdout + from_config.stderr
