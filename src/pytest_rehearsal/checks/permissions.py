"""``permissions[/path]`` and ``permissions[role:/path]``: protected paths are refused.

An anonymous caller must get 401 or 403, or a redirect to a login page on the same origin.
A role must get 403 on each of its ``denied`` paths; a 401 there means the role's token was
not accepted at all, which proves nothing about the permission and fails too. A 404 fails:
a typo in the config would otherwise pass silently. Redirects on the same origin that do not
lead to a login page (``/admin`` -> ``/admin/``) are followed, at most three hops.
"""

from __future__ import annotations

import dataclasses
import re
from abc import abstractmethod
from collections.abc import Generator, Sequence

from ..config import PermissionsCheckConfig, RehearsalConfig
from ..text import excerpt
from ._base import Check, CheckRun, Probe, Reply, ReplyLog, Verdict, fail
from ._support import meta_for, origin, resolve_location, staging_path, tag

__all__ = ["LOGIN_PATH", "MAX_HOPS", "AnonymousCheck", "RoleCheck", "build"]

#: A Location path that looks like a login page.
LOGIN_PATH = re.compile(r"log-?in|sign-?in|sign_in|auth|sso|session", re.IGNORECASE)
MAX_HOPS = 3
_ASVS = "5.0.0: 8.2.1"  # function-level access restricted to consumers with explicit permissions

Chase = Generator[Sequence[Probe], Sequence[Reply], tuple[Reply, list[str]]]


def _is_redirect(reply: Reply) -> bool:
    return reply.status is not None and 300 <= reply.status < 400


def _is_login(url: str) -> bool:
    path = url.split("://", 1)[-1].partition("/")[2]
    return LOGIN_PATH.search(path.split("?", 1)[0]) is not None


def chase(probe: Probe) -> Chase:
    """Send *probe*, following same-origin redirects that do not lead to a login page.

    Returns the last reply and the URLs that redirected to it.
    """
    replies = yield [probe]
    reply, hops = replies[0], list[str]()
    while _is_redirect(reply) and len(hops) < MAX_HOPS:
        target = resolve_location(reply)
        path = staging_path(reply, target) if target else None
        if target is None or path is None or _is_login(target):
            break
        hops.append(reply.url)
        replies = yield [dataclasses.replace(probe, path=path)]
        reply = replies[0]
    return reply, hops


class _PermissionCheck(Check):
    """A protected path probed with one set of credentials (shared judgement)."""

    who: str  # "an anonymous caller" or "role viewer"

    def __init__(self, param: str, path: str, config: RehearsalConfig) -> None:
        section = config.checks.permissions or PermissionsCheckConfig()
        super().__init__("permissions", param, meta_for(config, section.meta))
        self.path = path

    @abstractmethod
    def probe(self) -> Probe:
        """The request that must be refused."""

    def run(self, seen: ReplyLog) -> CheckRun:
        reply, hops = yield from chase(self.probe())
        return tag(self.judge(reply, hops), asvs=_ASVS)

    @abstractmethod
    def refused(self, reply: Reply) -> str | None:
        """Why *reply* is not the refusal this check expects, or None when it is."""

    def judge(self, reply: Reply, hops: Sequence[str] = ()) -> Verdict:
        """The verdict on the last reply of the chase (pure)."""
        expected = self.describe_expectation()
        problem = self.refused(reply)
        if problem is None:
            return Verdict.ok()
        via = f" (redirected from {', '.join(hops)})" if hops else ""
        got = f"{reply.describe()} · {problem}{via}"
        return fail(reply, expected, got, rule="not-refused", message=f"{problem}{via}")

    def common_problem(self, reply: Reply) -> str:
        """The explanation of a reply that refuses nothing, for any caller."""
        status = reply.status
        if status is None:
            return "no response: whether the path is protected is unknown"
        if 200 <= status < 300:
            return f"served to {self.who}"
        if _is_redirect(reply):
            target = resolve_location(reply)
            if target is None:
                return "a redirect without a Location header"
            shown = excerpt(target, 200)  # the server's text: control characters escaped
            if origin(target) != origin(reply.url):
                return f"redirected to {shown} (another origin, not followed)"
            return f"redirected to {shown}, which is not a login page"
        if status == 404:
            return "the path does not exist on staging: fix checks.permissions in the config"
        if status >= 500:
            return "the server failed instead of refusing"
        return f"{status} is not a refusal: whether {self.who} is refused is unknown"


class AnonymousCheck(_PermissionCheck):
    """``permissions[/path]``: refused to a caller without credentials."""

    who = "an anonymous caller"

    def __init__(self, path: str, config: RehearsalConfig) -> None:
        super().__init__(path, path, config)

    def describe_expectation(self) -> str:
        return (
            f"GET {self.path} without credentials is refused "
            "(401/403, or a redirect to a login page on the same origin)"
        )

    def probe(self) -> Probe:
        return Probe("GET", self.path, credentials=None)

    def refused(self, reply: Reply) -> str | None:
        if reply.status in {401, 403}:
            return None
        if _is_redirect(reply):
            target = resolve_location(reply)
            if target and origin(target) == origin(reply.url) and _is_login(target):
                return None
        return self.common_problem(reply)


class RoleCheck(_PermissionCheck):
    """``permissions[role:/path]``: refused with 403 to a role that must not reach it."""

    def __init__(self, role: str, token_env: str, path: str, config: RehearsalConfig) -> None:
        super().__init__(f"{role}:{path}", path, config)
        self.role = role
        self.token_env = token_env
        self.who = f"role {role}"

    def describe_expectation(self) -> str:
        return f"GET {self.path} with the {self.role} token is refused with 403"

    def probe(self) -> Probe:
        return Probe("GET", self.path, credentials=self.role)

    def refused(self, reply: Reply) -> str | None:
        not_accepted = (
            f"the {self.role} token was not accepted at all, so the permission was not tested "
            f"(check that {self.token_env} holds a valid {self.role} token for staging)"
        )
        if reply.status == 403:
            return None
        if reply.status == 401:
            return not_accepted
        target = resolve_location(reply) if _is_redirect(reply) else None
        if target and origin(target) == origin(reply.url) and _is_login(target):
            return f"redirected to the login page: {not_accepted}"
        return self.common_problem(reply)


def build(config: RehearsalConfig) -> list[Check]:
    """Anonymous checks for ``protected`` paths, then one per role and denied path."""
    section = config.checks.permissions
    if section is None:
        return []
    checks: list[Check] = [AnonymousCheck(path, config) for path in section.protected]
    for role, role_config in section.roles.items():
        checks += [
            RoleCheck(role, role_config.token_env, path, config) for path in role_config.denied
        ]
    return checks
