"""``inputs[METHOD /path]``: an invalid request is refused cleanly.

Clean means: the expected 4xx status, a body that names every field the team listed (so a
client can tell what to fix), never a 5xx, and nothing a response must never show (a stack
trace, a debug page or a secret: the rules of :mod:`._leaks`, shared with ``secrets``).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..config import InputEntry, RehearsalConfig
from ._base import Check, CheckRun, Probe, Reply, ReplyLog, Verdict, fail, finding
from ._leaks import scan_response
from ._support import entry_params, meta_for, tag

__all__ = ["InputCheck", "build", "input_probe"]

_ASVS = "5.0.0: 16.5.1 16.5.3"  # generic error messages; fail securely


def input_probe(entry: InputEntry) -> Probe:
    """The request an ``inputs`` entry sends (also known to the body scan, which skips it)."""
    return Probe(entry.method.upper(), entry.path, json=entry.json)


class InputCheck(Check):
    """One invalid request and the refusal it must get."""

    def __init__(self, entry: InputEntry, param: str, config: RehearsalConfig) -> None:
        super().__init__("inputs", param, meta_for(config, entry.meta))
        self.entry = entry

    def refusal(self) -> str:
        """The expected refusal in words: ``refused with 422 naming quantity, ...``."""
        text = f"refused with {self.entry.expect_status}"
        if self.entry.mentions:
            text += " naming " + ", ".join(self.entry.mentions)
        return text + ", without a stack trace"

    def describe_expectation(self) -> str:
        return (
            f"{self.entry.method.upper()} {self.entry.path} with invalid input is {self.refusal()}"
        )

    def run(self, seen: ReplyLog) -> CheckRun:
        replies: Sequence[Reply] = yield [input_probe(self.entry)]
        return self.judge(replies[0])

    def judge(self, reply: Reply) -> Verdict:
        """The verdict on the reply to the invalid request (pure)."""
        expected = self.refusal()
        if reply.status is None:
            return tag(fail(reply, expected, rule="no-response"), asvs=_ASVS)
        problems: list[tuple[str, str]] = []
        if reply.status >= 500:
            failed = f"the server failed ({reply.status}) instead of refusing the input"
            problems.append(("server-error", failed))
        elif reply.status != self.entry.expect_status:
            problems.append(
                ("status", f"status {reply.status}, expected {self.entry.expect_status}")
            )
        text = reply.text.lower()
        missing = [field for field in self.entry.mentions if field.lower() not in text]
        if missing:
            problems.append(("not-named", "the body does not name " + ", ".join(missing)))
        leaks = [f for f in scan_response(reply.headers, reply.body) if not f.rule.warn_only]
        problems += [(leak.rule.name, f"the response shows {leak.describe()}") for leak in leaks]
        if not problems:
            return tag(Verdict.ok(), asvs=_ASVS)
        # A body with a leak is not quoted (the leak is shown redacted instead).
        got = reply.status_line if leaks else reply.describe()
        found = tuple(
            finding(reply, expected, got, rule=rule, message=message, itemized=True)
            for rule, message in problems
        )
        return tag(Verdict(found), asvs=_ASVS)


def build(config: RehearsalConfig) -> list[Check]:
    """One check per ``checks.inputs`` entry (``#2`` marks a repeated method and path)."""
    entries = config.checks.inputs
    params = entry_params((entry.method, entry.path) for entry in entries)
    return [InputCheck(entry, param, config) for entry, param in zip(entries, params, strict=True)]
