"""The ``permissions`` checks: anonymous refusals, role refusals, redirects and 404s."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from checkdriver import Recorder, answer, drive
from pytest_rehearsal.checks import permissions
from pytest_rehearsal.checks._base import Probe, Reply, Verdict
from pytest_rehearsal.checks.permissions import AnonymousCheck, RoleCheck
from pytest_rehearsal.config import (
    ChecksConfig,
    PermissionsCheckConfig,
    RehearsalConfig,
    RoleConfig,
)

CONFIG = RehearsalConfig(
    checks=ChecksConfig(
        permissions=PermissionsCheckConfig(
            protected=("/admin", "/admin/settings"),
            roles={"viewer": RoleConfig("VIEWER_TOKEN", denied=("/admin/settings",))},
        )
    )
)


def anonymous(path: str = "/admin") -> AnonymousCheck:
    return AnonymousCheck(path, CONFIG)


def viewer(path: str = "/admin/settings") -> RoleCheck:
    return RoleCheck("viewer", "VIEWER_TOKEN", path, CONFIG)


def always(
    status: int | None, headers: tuple[tuple[str, str], ...] = (), body: str = ""
) -> Callable[[Probe], Reply]:
    return lambda probe: answer(probe, status, headers, body, error=None if status else "reset")


def test_build_ids() -> None:
    ids = [c.id for c in permissions.build(CONFIG)]
    assert ids == [
        "permissions[/admin]",
        "permissions[/admin/settings]",
        "permissions[viewer:/admin/settings]",
    ]
    assert permissions.build(RehearsalConfig()) == []


def test_probes_carry_the_right_credentials() -> None:
    recorder = Recorder(always(401))
    drive(anonymous(), recorder)
    assert recorder.probes == [Probe("GET", "/admin", credentials=None)]
    recorder = Recorder(always(403))
    drive(viewer(), recorder)
    assert recorder.probes == [Probe("GET", "/admin/settings", credentials="viewer")]


@pytest.mark.parametrize("status", [401, 403])
def test_anonymous_refusals_pass(status: int) -> None:
    assert drive(anonymous(), always(status)).passed


@pytest.mark.parametrize(
    "location", ["/login?next=/admin", "https://staging.test/auth/sign-in", "/users/sign_in"]
)
def test_anonymous_redirect_to_a_same_origin_login_passes(location: str) -> None:
    assert drive(anonymous(), always(302, (("Location", location),))).passed


def fails(
    check: AnonymousCheck | RoleCheck, respond: Callable[[Probe], Reply], *texts: str
) -> Verdict:
    verdict = drive(check, respond)
    assert not verdict.passed
    for text in texts:
        assert text in verdict.message, verdict.message
    return verdict


def test_served_to_an_anonymous_caller() -> None:
    verdict = fails(
        anonymous(), always(200, (), '{"area": "admin"}'), "served to an anonymous caller"
    )
    assert verdict.message.startswith("GET https://staging.test/admin\n")
    assert '{"area": "admin"}' in verdict.message
    assert "expected: GET /admin without credentials is refused" in verdict.message
    assert "retry:    safe: GET does not change staging" in verdict.message


def test_cross_origin_redirect_is_not_followed_and_fails() -> None:
    recorder = Recorder(always(302, (("Location", "https://other.example/login"),)))
    fails(
        anonymous(),
        recorder,
        "redirected to https://other.example/login (another origin, not followed)",
    )
    assert len(recorder.probes) == 1


def test_same_origin_redirects_are_followed_to_the_answer() -> None:
    def respond(probe: Probe) -> Reply:
        if probe.path == "/admin":
            return answer(probe, 301, [("Location", "/admin/")])
        return answer(probe, 200, (), "admin home")

    recorder = Recorder(respond)
    fails(
        anonymous(),
        recorder,
        "served to an anonymous caller",
        "(redirected from https://staging.test/admin)",
    )
    assert [p.path for p in recorder.probes] == ["/admin", "/admin/"]
    assert all(p.credentials is None for p in recorder.probes)


def test_a_redirect_chain_is_bounded() -> None:
    counter = iter(range(100))
    recorder = Recorder(lambda p: answer(p, 302, [("Location", f"/hop{next(counter)}")]))
    fails(anonymous(), recorder, "which is not a login page")
    assert len(recorder.probes) == permissions.MAX_HOPS + 1


def test_redirect_under_a_staging_base_path() -> None:
    base = "https://host.test/app"

    def respond(probe: Probe) -> Reply:
        if probe.path == "/admin":
            return answer(probe, 302, [("Location", "/app/admin/")], base=base)
        return answer(probe, 401, base=base)

    recorder = Recorder(respond)
    assert drive(anonymous(), recorder).passed
    assert [p.path for p in recorder.probes] == ["/admin", "/admin/"]


@pytest.mark.parametrize(
    ("status", "text"),
    [
        (404, "the path does not exist on staging: fix checks.permissions"),
        (500, "the server failed instead of refusing"),
        (405, "405 is not a refusal"),
        (None, "no response: whether the path is protected is unknown"),
    ],
)
def test_other_anonymous_outcomes_fail(status: int | None, text: str) -> None:
    fails(anonymous(), always(status), text)


def test_redirect_without_location_fails() -> None:
    fails(anonymous(), always(302), "a redirect without a Location header")


def test_role_refused_with_403_passes() -> None:
    verdict = drive(viewer(), always(403))
    assert verdict.passed
    assert verdict.properties["asvs"]


def test_role_401_means_the_token_was_not_accepted() -> None:
    fails(viewer(), always(401), "the viewer token was not accepted at all", "VIEWER_TOKEN")


def test_role_redirected_to_login_means_the_token_was_not_accepted() -> None:
    fails(
        viewer(),
        always(302, (("Location", "/login"),)),
        "redirected to the login page",
        "not accepted",
    )


def test_role_served_fails() -> None:
    verdict = fails(viewer(), always(200, (), "{}"), "served to role viewer")
    assert (
        "expected: GET /admin/settings with the viewer token is refused with 403" in verdict.message
    )


def test_role_404_is_a_config_problem() -> None:
    fails(viewer(), always(404), "fix checks.permissions")


def test_a_served_page_is_quoted_with_its_secrets_redacted() -> None:
    token = "gh" + "p_" + "".join(chr(65 + (i * 7) % 26) + str(i % 10) for i in range(18))
    verdict = fails(anonymous(), always(200, (), f"<p>deploy token {token}</p>"), "served")
    assert token not in verdict.message
    assert "deploy token ghp_…" in verdict.message
