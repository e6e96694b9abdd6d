"""The Markdown summary (``--rehearsal-summary``, ``$GITHUB_STEP_SUMMARY``): what a reviewer reads.

Pure: text from a (masked) :class:`~.report.RehearsalReport`, in the order a reviewer needs
it. The verdict first; then what blocks the release (check, owner, expected, got, rollback
note); what was not rehearsed; the rollback's scorecard; a Mermaid gantt chart of the
rehearsal's phases, which GitHub and GitLab draw as a picture; and last, collapsed, the
accepted findings and the checks that passed.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .release import DeployRecord, RollbackRecord
from .report import FAILING, CheckRecord, RehearsalReport, failure_reasons
from .text import plural
from .units import format_elapsed

__all__ = ["Phase", "gantt", "render_markdown"]

VERDICT_MARKS = {"ready": "✅", "blocked": "❌", "incomplete": "⚠️"}
_VERDICT_WORDS = {
    "ready": "Ready: the release may be promoted.",
    "blocked": "Blocked: do not promote this release.",
    "incomplete": "Incomplete: part of the rehearsal did not run.",
}


@dataclass(frozen=True)
class Phase:
    """One bar of the timeline: a phase of the rehearsal and when it ran (UNIX seconds)."""

    section: str  # "Deploy", "Checks", "Rollback"
    name: str
    started_at: float
    duration_s: float
    outcome: str  # passed | failed | skipped


def render_markdown(report: RehearsalReport, phases: Sequence[Phase] = ()) -> str:
    """The whole summary."""
    verdict = report.verdict
    lines = [
        f"## {VERDICT_MARKS[verdict]} Staging rehearsal: {verdict}",
        "",
        f"> **{_VERDICT_WORDS[verdict]}** {report.verdict_line().split(' — ', 1)[-1]}",
        "",
        f"Staging `{report.staging_url}` · started {report.started_at} · "
        f"{format_elapsed(report.duration_s)}",
    ]
    if report.error is not None:
        lines += ["", "### Usage error", "", *_fenced(report.error)]
    blocking = [check for check in report.checks if check.outcome in FAILING]
    if blocking:
        lines += ["", "### What blocks the release", "", *_blockers(blocking)]
    if report.not_rehearsed:
        shown = ", ".join(f"`{node_id}`" for node_id in report.not_rehearsed)
        lines += ["", f"**Not rehearsed:** {shown}"]
    if report.notes:
        lines += ["", *[f"- note: {_cell(note)}" for note in report.notes]]
    if report.deploy is not None:
        lines += ["", "### Deploy", "", *_lifecycle(report.deploy)]
    if report.rollback is not None:
        lines += ["", "### Rollback", "", *_lifecycle(report.rollback)]
    if phases:
        lines += ["", "### Timeline", "", "```mermaid", *gantt(phases), "```"]
    accepted = _accepted_rows(report.checks)
    if accepted:
        table = ["| Check | Finding | Reason | Owner | Until |", "|---|---|---|---|---|", *accepted]
        lines += ["", *_details(f"Accepted findings ({len(accepted)})", table)]
    passed = [check for check in report.checks if check.outcome in {"passed", "skipped"}]
    if passed:
        title = f"{plural(len(passed), 'other check')}: passed or skipped"
        lines += ["", *_details(title, _table(passed))]
    return "\n".join(lines).rstrip() + "\n"


def _blockers(checks: Sequence[CheckRecord]) -> list[str]:
    rows = [
        "| Check | Owner | Expected | Got | Rollback note |",
        "|---|---|---|---|---|",
    ]
    for check in checks:
        got = failure_reasons(check.findings, check.message, most_lines=3)
        rows.append(
            f"| `{check.id}` | {_cell(check.owner)} | {_cell(check.expect)} | "
            f"{'<br>'.join(_cell(line) for line in got)} | {_cell(check.rollback_note)} |"
        )
    messages = [line for check in checks for line in (f"{check.id}:", check.message, "")]
    return [*rows, "", *_details("Failure messages", _fenced("\n".join(messages).rstrip()))]


def _lifecycle(record: DeployRecord | RollbackRecord) -> list[str]:
    """A scorecard: the closing line, each step with its outcome and time, the figures."""
    lines = [f"**{_cell(record.summary_line())}**", ""]
    if record.steps:
        lines += ["| Step | Outcome | Took | Details |", "|---|---|---|---|"]
        lines += [
            f"| {step.step} | {step.outcome} | {format_elapsed(step.duration_s)} | "
            f"{_cell(step.message)} |"
            for step in record.steps
        ]
        lines.append("")
    command = " ".join(record.command) or "(none)"
    exit_code = f" (exit {record.exit_code})" if record.exit_code is not None else ""
    lines.append(f"- command: `{command}`{exit_code}, {format_elapsed(record.duration_s)} in all")
    if isinstance(record, RollbackRecord):
        recovery = record.recovery
        if recovery is not None and recovery.watch is not None and recovery.watch.polls:
            watch = recovery.watch
            lines.append(
                f"- health while it ran: {watch.describe()}; longest outage "
                f"{format_elapsed(watch.longest_outage_s)}, slowest answer "
                f"{format_elapsed(watch.slowest_s)}"
            )
        lines += [f"- note: {_cell(note)}" for note in record.notes]
    if record.owner:
        lines.append(f"- owner: {record.owner}")
    note = record.note if isinstance(record, RollbackRecord) else record.rollback_note
    if note:
        lines.append(f"- rollback note: {_cell(note)}")
    if record.outcome == "failed" and record.message:
        lines += ["", *_fenced(record.message)]
    return lines


def gantt(phases: Iterable[Phase]) -> list[str]:
    """A Mermaid gantt chart of *phases*: one section per kind, failed bars marked ``crit``."""
    lines = [
        "gantt",
        "    title Staging rehearsal",
        "    dateFormat x",
        "    axisFormat %M:%S",
    ]
    section = None
    for index, phase in enumerate(phases):
        if phase.section != section:
            section = phase.section
            lines.append(f"    section {_label(section)}")
        tag = {"passed": "done", "failed": "crit"}.get(phase.outcome, "active")
        start = round(phase.started_at * 1000)
        # Mermaid draws nothing for a zero-length bar: one millisecond at least.
        end = start + max(1, round(phase.duration_s * 1000))
        lines.append(f"    {_label(phase.name)} :{tag}, p{index}, {start}, {end}")
    return lines


def _label(text: str) -> str:
    """*text* safe as a Mermaid gantt name (':' and '#' have meanings there)."""
    return " ".join(text.replace(":", " ").replace("#", " ").replace(";", " ").split())


def _accepted_rows(checks: Sequence[CheckRecord]) -> list[str]:
    """A table row for every accepted finding, of passing and of failing checks alike."""
    rows = []
    for check in checks:
        for found in check.findings:
            why = found.get("accepted")
            if why:
                rows.append(
                    f"| `{check.id}` | {_cell(str(found['message']))} | {_cell(why['reason'])} | "
                    f"{_cell(why['owner'])} | {_cell(why['until'])} |"
                )
    return rows


def _table(checks: Sequence[CheckRecord]) -> list[str]:
    rows = ["| Check | Outcome | Owner | Expected | Rollback note |", "|---|---|---|---|---|"]
    rows += [
        f"| `{c.id}` | {c.outcome} | {_cell(c.owner)} | {_cell(c.expect)} | "
        f"{_cell(c.rollback_note)} |"
        for c in checks
    ]
    return rows


def _details(summary: str, body: Sequence[str]) -> list[str]:
    return [f"<details><summary>{html.escape(summary)}</summary>", "", *body, "", "</details>"]


def _fenced(text: str) -> list[str]:
    fence = "````" if "```" in text else "```"
    return [f"{fence}text", text.rstrip(), fence]


def _cell(text: str | None) -> str:
    if not text:
        return ""
    return html.escape(" ".join(text.split()), quote=False).replace("|", "\\|")
