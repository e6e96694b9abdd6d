"""``--rehearsal-plan``: what a rehearsal would do, printed before it touches staging.

Pure module. Each check is driven as in a run in which every request succeeds (a ``200``
with an empty body), so the plan lists the requests of a clean run, dependent ones included
(a replay under the same idempotency key, for instance); a step that is not a request (a TLS
handshake, a log read) is listed by its description, and the check's plan ends with its
batch, as what follows depends on what it finds. Then
the release lifecycle: the commands with their working directory, environment names and
timeouts, and what is verified. Nothing is sent, nothing is run.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator, Sequence
from pathlib import Path

from .answers import describe_answer
from .checks._base import Action, Check, Probe, Reply, ReplyLog
from .config import RollbackConfig
from .redact import Redactor
from .settings import Settings
from .text import plural
from .units import format_duration, format_size

__all__ = ["PLAN_ROUNDS", "planned_requests", "render_plan"]

#: No built-in check has more dependent steps than this; the plan stops there.
PLAN_ROUNDS = 10


def planned_requests(check: Check) -> Iterator[str]:
    """The requests *check* sends when every answer is a success, as lines.

    The check's own secrets (the logging check's canary credentials) are masked.
    """
    redact = Redactor(check.secrets)
    run = check.run(ReplyLog())
    answer: list[object] | None = None
    for _ in range(PLAN_ROUNDS):
        try:
            batch = next(run) if answer is None else run.send(answer)
        except StopIteration:
            return
        answer = []
        for request in batch:
            if isinstance(request, Action):
                yield redact(request.describe())
            else:
                yield redact(_describe_probe(request))
                answer.append(Reply(request, request.path, 200, "OK"))
        if len(answer) < len(batch):
            # An action's result cannot be made up: what follows depends on it.
            yield "then judged on what came back"
            run.close()
            return
    run.close()


def _describe_probe(probe: Probe) -> str:
    line = f"{probe.method.upper()} {probe.path}"
    if probe.upload is not None:
        line += f" (multipart upload of {format_size(probe.upload.size)} in {probe.upload.field!r})"
    elif probe.json is not None:
        line += f" {json.dumps(probe.json, sort_keys=True)}"
    headers = [name for name, _ in probe.headers]
    if headers:
        line += f" [{', '.join(headers)}]"
    if probe.credentials is None:
        if "authorization" not in {name.lower() for name in headers}:
            line += " (anonymous)"  # else the probe carries credentials of its own
    elif probe.credentials != "default":
        line += f" (as {probe.credentials})"
    return line


def render_plan(settings: Settings, checks: Sequence[Check], token_envs: Sequence[str]) -> str:
    """The whole plan as text."""
    lines = [
        "rehearsal plan: nothing is sent and nothing is run",
        f"staging: {settings.staging_url} (request timeout "
        f"{format_duration(settings.staging_timeout)}, "
        f"{plural(settings.retries, 'retry', 'retries')} of idempotent requests)",
    ]
    if token_envs:
        lines.append(f"credentials from: {', '.join(token_envs)}")
    if settings.staging_wait:
        lines.append(
            f"first: wait up to {format_duration(settings.staging_wait)} for the health check"
        )
    lines += ["", f"checks ({len(checks)}, sent concurrently):"]
    for check in checks:
        lines.append(f"  rehearsal::{check.id} ({check.meta.owner or 'no owner'})")
        lines += [f"    {request}" for request in planned_requests(check)]
        lines.append(f"    expected: {check.expected}")
    lines += ["", *_lifecycle_plan(settings)]
    return "\n".join(lines) + "\n"


def _lifecycle_plan(settings: Settings) -> list[str]:
    rollback = settings.config.rollback
    deploy = settings.config.deploy
    health = settings.config.checks.health
    lines: list[str] = []
    if deploy is not None:
        if settings.no_rollback:
            lines += ["deploy: not rehearsed (--no-rollback)", ""]
        else:
            lines += [
                "deploy, before the checks:",
                _command_line("command", deploy.command, rollback, deploy.timeout),
                f"  then: GET {health.path if health else '/health'} passes the health check "
                f"within {format_duration(deploy.within)}",
                "",
            ]
    if settings.no_rollback:
        return [*lines, "rollback: not rehearsed (--no-rollback)"]
    command = settings.rollback_command
    if command is None:
        return [*lines, "rollback: NONE CONFIGURED: the rehearsal would be blocked"]
    verify = rollback.verify
    path = verify.path if verify else (health.path if health else "/health")
    lines += [
        "rollback, after every check:",
        f"  baseline: GET {path} (what staging serves before the rollback)",
        _command_line("command", command, rollback, rollback.timeout),
    ]
    if verify is not None:
        what = describe_answer(verify.expect_status, verify.expect_json)
        if verify.track:
            what += f", {', '.join(verify.track)} changed from the baseline"
        lines.append(f"  verify: GET {path} until {what}, within {format_duration(verify.within)}")
    if rollback.restore:
        when = "" if rollback.restore_after == "always" else " (only once verified)"
        lines.append(_command_line(f"restore{when}", rollback.restore, rollback, rollback.timeout))
        lines.append(f"  restore verify: GET {path} until it answers like the baseline again")
    if rollback.watch is not None and health is not None:
        lines.append(
            f"  watch: GET {health.path} every {format_duration(rollback.watch.interval)} "
            "while the commands and verifies run"
        )
    budgets = [
        f"{name} {format_duration(value)}"
        for name, value in (
            ("max_recovery", rollback.max_recovery),
            ("max_outage", rollback.max_outage),
        )
        if value is not None
    ]
    if budgets:
        lines.append(f"  budgets: {', '.join(budgets)}")
    return lines


def _command_line(step: str, argv: Sequence[str], rollback: RollbackConfig, timeout: float) -> str:
    cwd = rollback.cwd or Path.cwd()
    line = f"  {step}: {shlex.join(argv)} (in {cwd}, timeout {format_duration(timeout)}"
    if rollback.env:
        line += f", env {', '.join(sorted(rollback.env))}"
    return line + ")"
