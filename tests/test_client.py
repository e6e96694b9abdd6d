"""The staging client's parts: inflating, Retry-After, deadlines, errors, credentials, options.

Misbehaving servers are in ``tests/hostile/``; this file covers the parts one at a time, and
the ordinary paths against a well-behaved server.
"""

from __future__ import annotations

import gzip
import ssl
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from pytest_rehearsal._bodies import INFLATE_PIECE, inflate
from pytest_rehearsal._credentials import Credentials, redactor_for
from pytest_rehearsal._deadline_transport import DeadlineExceeded
from pytest_rehearsal._transport_errors import describe_transport_error
from pytest_rehearsal.checks._base import Probe, ReplyLog
from pytest_rehearsal.client import (
    TRANSIENT_STATUSES,
    ProbeSender,
    make_probe_client,
    make_ssl_context,
    make_staging_client,
    parse_retry_after,
    with_retries,
)
from pytest_rehearsal.config import (
    AuthConfig,
    ChecksConfig,
    PermissionsCheckConfig,
    RehearsalConfig,
    RoleConfig,
)
from pytest_rehearsal.deadline import Deadline
from pytest_rehearsal.redact import MASK, Secret
from servers import serve_asgi

TOKEN = "tok_CLIENT_SECRET_0a1b2c3d"
CREDENTIALS = Credentials("Authorization", "Bearer", {"default": Secret(TOKEN)})


# -- inflate -----------------------------------------------------------------------------------


def _pieces(data: bytes, size: int) -> Iterator[bytes]:
    return (data[i : i + size] for i in range(0, len(data), size))


@pytest.mark.parametrize("compress", [gzip.compress, zlib.compress], ids=["gzip", "zlib"])
def test_inflate_decodes_gzip_and_zlib_fed_in_small_chunks(compress: object) -> None:
    original = b"".join(b"line %d\n" % i for i in range(20_000))
    packed = compress(original)  # type: ignore[operator]
    assert b"".join(inflate(_pieces(packed, 7))) == original


def test_inflate_never_yields_more_than_a_piece_however_well_it_compresses() -> None:
    bomb = gzip.compress(bytes(8 * 1024 * 1024))
    sizes = [len(piece) for piece in inflate([bomb])]
    assert sum(sizes) == 8 * 1024 * 1024
    assert max(sizes) <= INFLATE_PIECE


def test_inflate_produces_only_what_is_pulled() -> None:
    pulled = []
    for piece in inflate([gzip.compress(bytes(64 * 1024 * 1024))], piece=1024):
        pulled.append(piece)
        if len(pulled) == 3:
            break
    assert [len(p) for p in pulled] == [1024, 1024, 1024]


def test_a_corrupt_compressed_body_is_a_decoding_error() -> None:
    with pytest.raises(httpx.DecodingError, match="corrupt compressed body"):
        list(inflate([b"\x1f\x8b\x08\x00garbage-that-is-not-deflate"]))


# -- Retry-After and deadlines -------------------------------------------------------------------


def test_retry_after_in_seconds_or_as_an_http_date() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 3 ") == 3.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-5") is None
    in_an_hour = format_datetime(datetime.now(timezone.utc) + timedelta(hours=1), usegmt=True)
    assert 3590 <= (parse_retry_after(in_an_hour) or 0) <= 3600
    long_ago = format_datetime(datetime(2020, 1, 1, tzinfo=timezone.utc), usegmt=True)
    assert parse_retry_after(long_ago) == 0.0


def test_a_deadline_names_its_total_and_the_request() -> None:
    assert Deadline.after(2.0, "GET /slow").message() == (
        "exceeded the 2 s total deadline for GET /slow"
    )
    assert Deadline.after(0.25, "GET /x").message() == (
        "exceeded the 250 ms total deadline for GET /x"
    )


@pytest.mark.parametrize("waited", [0.06, 0.2, 0.75])
def test_a_deadline_that_started_late_in_its_round_is_named_by_the_timeout(
    waited: float,
) -> None:
    # A request of a round waited for a thread: less than the team's 2 s was left of the
    # round when it started (on a loaded machine, 200 ms and more).
    round_end = time.monotonic() + 2.0 - waited
    assert Deadline.after(2.0, "GET /drip", not_after=round_end).message() == (
        "exceeded the 2 s total deadline for GET /drip"
    )


def test_an_earlier_not_after_shortens_the_deadline() -> None:
    first = Deadline.after(10.0, "GET /")
    second = Deadline.after(10.0, "GET /", not_after=first.at - 9.0)
    assert second.at < first.at
    assert second.left() <= 1.0


# -- the retry policy both senders share ---------------------------------------------------------


class _Attempts:
    """Plays a script of outcomes (a status, or an exception to raise), one per attempt."""

    def __init__(self, *script: int | Exception, retry_after: float | None = None) -> None:
        self.script = list(script)
        self.retry_after = retry_after
        self.calls = 0
        self.released: list[int] = []

    def __call__(self) -> int:
        outcome = self.script[min(self.calls, len(self.script) - 1)]
        self.calls += 1
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def pushback(self, status: int) -> tuple[int | None, float | None] | None:
        return (status, self.retry_after) if status in TRANSIENT_STATUSES else None


def _noted(status: int, note: str) -> int:
    raise AssertionError(f"noted {status}: {note}")


def test_the_policy_retries_a_transient_status_up_to_the_attempts_and_releases_it() -> None:
    attempts = _Attempts(502, 503, 200)
    deadline = Deadline.after(5.0, "GET /")
    released = attempts.released.append
    assert with_retries(attempts, 3, deadline, attempts.pushback, release=released) == 200
    assert (attempts.calls, attempts.released) == (3, [502, 503])


def test_the_policy_returns_the_last_transient_result_unreleased() -> None:
    attempts = _Attempts(502)
    deadline = Deadline.after(5.0, "GET /")
    released = attempts.released.append
    assert with_retries(attempts, 2, deadline, attempts.pushback, release=released) == 502
    assert (attempts.calls, attempts.released) == (2, [502])


def test_a_final_first_answer_needs_neither_a_retry_nor_tenacity() -> None:
    # Run in a fresh interpreter: tenacity is imported on the first retry only.
    script = (
        "import sys\n"
        "from pytest_rehearsal.client import with_retries\n"
        "from pytest_rehearsal.deadline import Deadline\n"
        "deadline = Deadline.after(5.0, 'GET /')\n"
        "assert with_retries(lambda: 200, 3, deadline, lambda status: None) == 200\n"
        "print('tenacity' in sys.modules)\n"
        "busy = iter([502, 200]).__next__\n"
        "with_retries(busy, 3, deadline, lambda s: (s, 0.0) if s == 502 else None)\n"
        "print('tenacity' in sys.modules)\n"
    )
    ran = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert ran.stdout.split() == ["False", "True"]


def test_the_policy_retries_connection_errors_but_not_tls_or_time() -> None:
    refused = _Attempts(httpx.ConnectError("[Errno 111] Connection refused"), 200)
    assert with_retries(refused, 3, Deadline.after(5.0, "GET /"), refused.pushback) == 200
    assert refused.calls == 2
    tls = httpx.ConnectError("handshake")
    tls.__cause__ = ssl.SSLError(1, "WRONG_VERSION_NUMBER")
    for error in (tls, httpx.ReadTimeout("timed out"), ValueError("a bug")):
        once = _Attempts(error, 200)
        with pytest.raises(type(error)) as raised:
            with_retries(once, 3, Deadline.after(5.0, "GET /"), once.pushback)
        assert (raised.value, once.calls) == (error, 1)


def test_the_policy_reraises_the_last_transient_error() -> None:
    error = httpx.RemoteProtocolError("Server disconnected without sending a response.")
    attempts = _Attempts(error)
    with pytest.raises(httpx.RemoteProtocolError) as raised:
        with_retries(attempts, 2, Deadline.after(5.0, "GET /"), attempts.pushback)
    assert (raised.value, attempts.calls) == (error, 2)


def test_a_single_attempt_returns_or_raises_what_it_got() -> None:
    error = httpx.RemoteProtocolError("Server disconnected without sending a response.")
    failing = _Attempts(error, 200)
    with pytest.raises(httpx.RemoteProtocolError):
        with_retries(failing, 1, Deadline.after(5.0, "GET /"), failing.pushback)
    busy = _Attempts(503, 200)
    assert with_retries(busy, 1, Deadline.after(5.0, "GET /"), busy.pushback) == 503
    assert (failing.calls, busy.calls) == (1, 1)


def test_a_retry_after_that_does_not_fit_ends_retrying_with_a_note() -> None:
    notes: list[str] = []

    def noted(status: int, note: str) -> int:
        notes.append(note)
        return -status

    limited = _Attempts(429, 200, retry_after=3600.0)
    deadline = Deadline.after(2.0, "GET /")
    assert with_retries(limited, 3, deadline, limited.pushback, noted=noted) == -429
    unavailable = _Attempts(503, 200, retry_after=3600.0)
    assert with_retries(unavailable, 3, deadline, unavailable.pushback, noted=noted) == -503
    assert (limited.calls, unavailable.calls) == (1, 1)
    assert notes == [
        "rate limited: Retry-After 3600 s exceeds the 2 s budget",
        "unavailable: Retry-After 3600 s exceeds the 2 s budget",
    ]


def test_after_the_last_attempt_there_is_no_note() -> None:
    limited = _Attempts(429, retry_after=3600.0)
    deadline = Deadline.after(2.0, "GET /")
    assert with_retries(limited, 1, deadline, limited.pushback, noted=_noted) == 429


def test_a_retry_after_that_fits_is_waited_for() -> None:
    busy = _Attempts(503, 200, retry_after=0.2)
    deadline = Deadline.after(5.0, "GET /")
    assert with_retries(busy, 3, deadline, busy.pushback, noted=_noted) == 200
    assert busy.calls == 2
    assert deadline.seconds - deadline.left() >= 0.2


def test_a_backoff_that_does_not_fit_the_time_left_ends_retrying_silently() -> None:
    # The first backoff is at least 100ms: it cannot fit in 50ms.
    flaky = _Attempts(502, 200)
    deadline = Deadline.after(0.05, "GET /")
    assert with_retries(flaky, 3, deadline, flaky.pushback, noted=_noted) == 502
    assert flaky.calls == 1


# -- describing failures ---------------------------------------------------------------------------


def _caused_by(outer: Exception, inner: BaseException) -> Exception:
    outer.__cause__ = inner
    return outer


def test_tls_verification_failures_name_the_certificate_problem() -> None:
    problem = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] failed")
    problem.verify_code = 10
    problem.verify_message = "certificate has expired"
    error = _caused_by(httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] ..."), problem)
    assert describe_transport_error(error) == "TLS verification failed: certificate has expired"


def test_an_untrusted_issuer_points_at_the_ca_bundle_option() -> None:
    problem = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] failed")
    problem.verify_code = 18
    problem.verify_message = "self-signed certificate"
    error = _caused_by(httpx.ConnectError("..."), problem)
    assert describe_transport_error(error) == (
        "TLS verification failed: self-signed certificate "
        "(for a private CA, pass --staging-ca-bundle or set ca_bundle:)"
    )


@pytest.mark.parametrize(
    ("error", "described"),
    [
        (
            httpx.ConnectError("[Errno 111] Connection refused"),
            "connection failed: [Errno 111] Connection refused",
        ),
        (
            httpx.RemoteProtocolError("Server disconnected without sending a response."),
            "the server closed the connection without a response",
        ),
        (
            httpx.RemoteProtocolError("Receive buffer too long"),
            "protocol error: the response head is too large (Receive buffer too long)",
        ),
        (
            _caused_by(httpx.ReadError("[Errno 104] reset"), ConnectionResetError(104, "reset")),
            "the server reset the connection ([Errno 104] reset)",
        ),
        (httpx.ReadTimeout("timed out"), "timed out (read timeout)"),
        (
            _caused_by(httpx.ReadTimeout("x"), DeadlineExceeded("exceeded the 2 s ... GET /")),
            "exceeded the 2 s ... GET /",
        ),
    ],
)
def test_transport_errors_in_words(error: Exception, described: str) -> None:
    assert describe_transport_error(error) == described


# -- credentials ---------------------------------------------------------------------------------


def test_credentials_come_from_the_environment_for_auth_and_every_role() -> None:
    config = RehearsalConfig(
        auth=AuthConfig(token_env="STAGING_TOKEN"),
        checks=ChecksConfig(
            permissions=PermissionsCheckConfig(roles={"viewer": RoleConfig("VIEWER_TOKEN")})
        ),
    )
    credentials = Credentials.from_config(
        config, {"STAGING_TOKEN": TOKEN, "VIEWER_TOKEN": "viewer-secret"}
    )
    assert credentials.headers_for("default") == {"Authorization": f"Bearer {TOKEN}"}
    assert credentials.headers_for("viewer") == {"Authorization": "Bearer viewer-secret"}
    assert credentials.headers_for(None) == {}
    assert credentials.headers_for("nobody") == {}
    assert TOKEN not in repr(credentials)
    redact = redactor_for(credentials)
    assert redact(f"a {TOKEN} b viewer-secret") == f"a {MASK} b {MASK}"


def test_a_missing_token_variable_is_named_and_no_value_shown() -> None:
    config = RehearsalConfig(auth=AuthConfig(token_env="STAGING_TOKEN"))
    with pytest.raises(LookupError, match=r"environment variable STAGING_TOKEN is not set"):
        Credentials.from_config(config, {"OTHER": TOKEN})


ROLES = RehearsalConfig(
    auth=AuthConfig(token_env="STAGING_TOKEN"),
    checks=ChecksConfig(
        permissions=PermissionsCheckConfig(
            roles={
                "viewer": RoleConfig("VIEWER_TOKEN"),
                "ops": RoleConfig("OPS_TOKEN"),
                "auditor": RoleConfig("VIEWER_TOKEN"),  # shares the viewer's variable
            }
        )
    ),
)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", "is not set"),
        ("lock", "is shorter than 8 characters; such a token could not be masked"),
        ("null", "is shorter than 8 characters"),
        ("1234567", "is shorter than 8 characters"),
        (TOKEN + "\n", "has whitespace around its value (a newline from $(cat file)?)"),
        (" " + TOKEN, "has whitespace around its value"),
        (TOKEN[:10] + "\udcff" + TOKEN[10:], "holds bytes that are not UTF-8"),
    ],
    ids=["empty", "lock", "null", "seven", "newline", "leading-space", "not-utf8"],
)
def test_an_unusable_token_is_a_usage_error_naming_the_variable_not_the_value(
    value: str, problem: str
) -> None:
    """Issue 11.13: ``STAGING_TOKEN=lock`` masked "blocked" as "b***ed"; a trailing newline
    from ``$(cat file)`` leaked on the lines of live output."""
    with pytest.raises(LookupError) as info:
        Credentials.from_config(
            ROLES, {"STAGING_TOKEN": value, "VIEWER_TOKEN": "v" * 8, "OPS_TOKEN": "o" * 8}
        )
    message = str(info.value.args[0])
    assert message.startswith(f"environment variable STAGING_TOKEN {problem}")
    assert message.endswith("(named by auth.token_env)")
    if value.strip():
        assert value.strip()[:4] not in message


def test_every_unusable_token_variable_is_named_at_once() -> None:
    """Issue 11.4: every missing or invalid variable in one error, each once."""
    with pytest.raises(LookupError) as info:
        Credentials.from_config(ROLES, {"VIEWER_TOKEN": "short"})
    assert str(info.value.args[0]).splitlines() == [
        "environment variable STAGING_TOKEN is not set; export it before the rehearsal: "
        "secrets only come from the environment (named by auth.token_env)",
        "environment variable VIEWER_TOKEN is shorter than 8 characters; such a token could "
        "not be masked in output without masking ordinary words (named by roles.viewer.token_env)",
        "environment variable OPS_TOKEN is not set; export it before the rehearsal: "
        "secrets only come from the environment (named by roles.ops.token_env)",
    ]


def test_a_token_of_eight_characters_is_enough() -> None:
    environ = {"STAGING_TOKEN": "8chars!!", "VIEWER_TOKEN": "v" * 8, "OPS_TOKEN": "o" * 40}
    credentials = Credentials.from_config(ROLES, environ)
    assert credentials.headers_for("auditor") == {"Authorization": "Bearer vvvvvvvv"}


def test_a_header_without_scheme_carries_the_bare_token() -> None:
    credentials = Credentials("X-Api-Key", None, {"default": Secret(TOKEN)})
    assert credentials.headers_for("default") == {"X-Api-Key": TOKEN}


# -- TLS options ---------------------------------------------------------------------------------


def test_the_ssl_context_always_verifies() -> None:
    for url in ("http://staging.example", "https://staging.example"):
        context = make_ssl_context(url, None)
        assert context.verify_mode == ssl.CERT_REQUIRED
        assert context.check_hostname
    # No TLS is expected for an http URL: no trust store, so any https request fails closed.
    assert make_ssl_context("http://staging.example", None).cert_store_stats()["x509_ca"] == 0


# -- against a well-behaved server ------------------------------------------------------------


class _Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []

    def app(self) -> Starlette:
        async def echo(request: Request) -> Response:
            self.seen.append((request.url.path, request.headers.get("authorization")))
            return JSONResponse({"ok": True, "encoding": request.headers.get("accept-encoding")})

        async def hop(request: Request) -> Response:
            return RedirectResponse("/echo?api_key=abc123", status_code=302)

        async def flaky(request: Request) -> Response:
            self.seen.append((request.url.path, None))
            return Response("bad gateway", status_code=502)

        return Starlette(
            routes=[
                Route("/echo", echo, methods=["GET", "POST"]),
                Route("/hop", hop),
                Route("/flaky", flaky, methods=["GET", "POST"]),
            ]
        )


@pytest.fixture
def recorder() -> Iterator[tuple[_Recorder, str]]:
    recorder = _Recorder()
    with serve_asgi(recorder.app()) as url:
        yield recorder, url


def _sender(url: str, retries: int = 2) -> ProbeSender:
    context = make_ssl_context(url, None)
    return ProbeSender(
        make_probe_client(url, 5.0, context),
        CREDENTIALS,
        timeout=5.0,
        retries=retries,
        log=ReplyLog(),
        ssl_context=context,
    )


def test_probes_carry_credentials_and_ask_for_identity_encoding(
    recorder: tuple[_Recorder, str],
) -> None:
    app, url = recorder
    sender = _sender(url)
    reply = sender.send(Probe("GET", "/echo"))
    anonymous = sender.send(Probe("GET", "/echo", credentials=None))
    assert reply.status == 200
    assert reply.json().value == {"ok": True, "encoding": "identity"}
    assert app.seen == [("/echo", f"Bearer {TOKEN}"), ("/echo", None)]
    assert anonymous.status == 200
    assert list(sender.log) == [reply, anonymous]


def test_a_redirect_is_a_result_and_its_target_is_shown_masked(
    recorder: tuple[_Recorder, str],
) -> None:
    _, url = recorder
    reply = _sender(url).send(Probe("GET", "/hop?token=s3cr3t-value"))
    assert reply.status == 302
    assert reply.url == f"{url}/hop?token={MASK}"
    assert reply.reason == f"Found (redirect to {url}/echo?api_key={MASK}, not followed)"


def test_only_idempotent_probes_are_retried(recorder: tuple[_Recorder, str]) -> None:
    app, url = recorder
    sender = _sender(url, retries=2)
    assert sender.send(Probe("GET", "/flaky")).attempts == 3
    assert sender.send(Probe("POST", "/flaky", json={"a": 1})).attempts == 1
    assert sender.send(Probe("POST", "/flaky", idempotent=True)).attempts == 3
    assert len(app.seen) == 7


def test_the_staging_client_sends_credentials_to_staging_only(
    recorder: tuple[_Recorder, str],
) -> None:
    app, url = recorder
    other = _Recorder()
    with (
        serve_asgi(other.app()) as other_url,
        make_staging_client(
            url, CREDENTIALS, timeout=5.0, retries=0, ssl_context=make_ssl_context(url, None)
        ) as staging,
    ):
        assert staging.get("/echo").json()["ok"] is True
        assert staging.get(f"{other_url}/echo").status_code == 200
        assert TOKEN not in str(staging.headers)
    assert app.seen == [("/echo", f"Bearer {TOKEN}")]
    assert other.seen == [("/echo", None)]


def test_the_staging_client_follows_same_origin_redirects_when_asked(
    recorder: tuple[_Recorder, str],
) -> None:
    _, url = recorder
    context = make_ssl_context(url, None)
    with make_staging_client(url, CREDENTIALS, timeout=5.0, retries=0, ssl_context=context) as c:
        assert c.get("/hop").status_code == 302
        followed = c.get("/hop", follow_redirects=True)
        assert followed.status_code == 200
        assert [r.status_code for r in followed.history] == [302]
        assert followed.url == f"{url}/echo?api_key=abc123"


def test_the_staging_client_retries_idempotent_requests_only(
    recorder: tuple[_Recorder, str],
) -> None:
    app, url = recorder
    context = make_ssl_context(url, None)
    with make_staging_client(url, CREDENTIALS, timeout=5.0, retries=2, ssl_context=context) as c:
        assert c.get("/flaky").status_code == 502
        assert len(app.seen) == 3
        assert c.post("/flaky", content=b"x").status_code == 502
        assert len(app.seen) == 4
