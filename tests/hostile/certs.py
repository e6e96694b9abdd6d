"""Throwaway certificates for TLS tests, made with the ``openssl`` command line tool.

``make_cert(directory, "IP:127.0.0.1")`` makes a self-signed certificate (a CA of its own,
so passing it as the CA bundle makes it trusted), valid for ``days`` (default 400, long
enough for the tls check); ``expired=True`` makes one that expired in 2020. Tests skip when
``openssl`` is not installed.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["Cert", "make_cert", "server_context"]

OPENSSL_TIMEOUT = 30
_CA_CONFIG = """\
[ca]
default_ca = throwaway
[throwaway]
database = {dir}/index.txt
serial = {dir}/serial
new_certs_dir = {dir}
default_md = sha256
policy = anything
copy_extensions = copy
unique_subject = no
[anything]
commonName = supplied
"""


@dataclass(frozen=True)
class Cert:
    cert: Path
    key: Path


def _openssl(*args: str) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is needed to make test certificates")
    result = subprocess.run(
        [openssl, *args], capture_output=True, text=True, timeout=OPENSSL_TIMEOUT, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {result.stderr}")


def make_cert(directory: Path, san: str, *, expired: bool = False, days: int = 400) -> Cert:
    """A self-signed EC certificate for *san* (``IP:127.0.0.1``, ``DNS:localhost``), valid
    from now for *days*."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key, request = directory / "cert.pem", directory / "key.pem", directory / "req.csr"
    subject = ["-subj", "/CN=rehearsal-test", "-addext", f"subjectAltName={san}"]
    ca = ["-addext", "basicConstraints=critical,CA:TRUE"]
    new_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    if not expired:
        _openssl(
            "req",
            "-x509",
            *new_key,
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            str(days),
            *subject,
            *ca,
        )
        return Cert(cert, key)
    # `req -x509` cannot back-date; `ca -selfsign` takes explicit start and end dates.
    (directory / "index.txt").write_text("")
    (directory / "serial").write_text("01\n")
    config = directory / "ca.cnf"
    config.write_text(_CA_CONFIG.format(dir=directory))
    _openssl("req", "-new", *new_key, "-keyout", str(key), "-out", str(request), *subject, *ca)
    _openssl(
        "ca",
        "-batch",
        "-config",
        str(config),
        "-selfsign",
        "-keyfile",
        str(key),
        "-in",
        str(request),
        "-out",
        str(cert),
        "-notext",
        "-startdate",
        "20200101000000Z",
        "-enddate",
        "20200102000000Z",
    )
    return Cert(cert, key)


def server_context(cert: Cert) -> ssl.SSLContext:
    """A TLS server context presenting *cert*."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert.cert, cert.key)
    return context
