"""``uploads[/path]``: the upload limit holds, and it is the limit the team configured.

Two uploads go out together: a small body (1 KiB) that must be accepted, and a body one byte
over ``max_bytes`` that must be refused with 413 (ASVS 5.0 5.2.1). The big body is streamed
with its Content-Length by :mod:`pytest_rehearsal.upload_probe`, which notices a 413 sent
before the body is read and stops sending, so a 1 GiB limit costs seconds, not a gigabyte.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..config import RehearsalConfig, UploadsCheckConfig
from ..text import excerpt
from ..units import format_size
from ._base import Check, CheckRun, Probe, Reply, ReplyLog, Upload, Verdict, fail
from ._support import combine, meta_for, tag

__all__ = ["SMALL_BODY", "UploadCheck", "build"]

#: The body that must be accepted (never more than ``max_bytes``).
SMALL_BODY = 1024
_ASVS = "5.0.0: 5.2.1"
_RESET = "connection closed without a response"


def _hop(reply: Reply) -> str:
    """Which hop answered, as far as the response says (``Server``, ``Via``)."""
    named = [
        f"{name}: {excerpt(value, 80)}"
        for name in ("Server", "Via")
        if (value := reply.header(name)) is not None
    ]
    return f" (answered by {', '.join(named)})" if named else ""


class UploadCheck(Check):
    """A small upload accepted, an upload over the limit refused with 413."""

    def __init__(self, section: UploadsCheckConfig, config: RehearsalConfig) -> None:
        super().__init__("uploads", section.path, meta_for(config, section.meta))
        self.section = section
        self.small_size = min(SMALL_BODY, section.max_bytes)
        self.big_size = section.max_bytes + 1

    def describe_expectation(self) -> str:
        section = self.section
        return (
            f"{section.method.upper()} {section.path} accepts a {format_size(self.small_size)} "
            f"upload and refuses one of max_bytes + 1 ({self.big_size} bytes) with 413"
        )

    def probe(self, size: int) -> Probe:
        """A multipart upload of *size* bytes in all; never retried (it may store a file)."""
        upload = Upload(self.section.field, size)
        return Probe(
            self.section.method.upper(), self.section.path, upload=upload, idempotent=False
        )

    def run(self, seen: ReplyLog) -> CheckRun:
        replies: Sequence[Reply] = yield [self.probe(self.small_size), self.probe(self.big_size)]
        return self.judge(replies[0], replies[1])

    def judge(self, small: Reply, big: Reply) -> Verdict:
        """The verdict on both uploads (pure); both problems are reported when both fail."""
        return tag(combine([self._judge_small(small), self._judge_big(big)]), asvs=_ASVS)

    def _judge_small(self, reply: Reply) -> Verdict:
        expected = f"the {format_size(self.small_size)} upload accepted (2xx)"
        status = reply.status
        if status is not None and 200 <= status < 300:
            return Verdict.ok()
        if status is None:
            return fail(reply, expected, rule="small-upload-failed")
        if status == 413:
            why = (
                f"the small body was refused as too large{_hop(reply)}: a hop enforces a limit "
                f"below max_bytes ({format_size(self.section.max_bytes)}); find the hop and "
                "raise its limit, or lower max_bytes to the real limit"
            )
        elif status >= 500:
            why = "the server failed on a small upload"
        else:
            why = (
                f"the small body was refused ({status}): check that the endpoint takes a "
                f"multipart file in the field {self.section.field!r} (checks.uploads.field)"
            )
        got = f"{reply.describe()} · {why}"
        return fail(reply, expected, got, rule="small-upload-refused", message=why)

    def _judge_big(self, reply: Reply) -> Verdict:
        expected = f"413 for an upload of max_bytes + 1 ({self.big_size} bytes)"
        status = reply.status
        if status == 413:
            return Verdict.ok(f"413 for {self.big_size} bytes{_hop(reply)}")
        if status is None and reply.error and reply.error.startswith(_RESET):
            why = (
                f"rejected without a status ({reply.error}). The limit is probably enforced, "
                "but clients get no 413 to explain it: nginx often closes the connection after "
                "an early 413, and a proxy hop may have eaten the 413. Warning-level: check the "
                "hops in front of the service"
            )
            return fail(reply, expected, why, rule="closed-without-413", message=why)
        if status is None:
            return fail(reply, expected, rule="big-upload-failed")
        if 200 <= status < 300:
            why = "accepted a body over the limit: the limit is not enforced at any hop"
        elif status >= 500:
            why = "the server failed instead of refusing the body with 413"
        else:
            why = f"refused with {status} instead of 413: clients cannot tell the body was too big"
        got = f"{reply.describe()} · {why}"
        return fail(reply, expected, got, rule="limit-not-enforced", message=why)


def build(config: RehearsalConfig) -> list[Check]:
    """The upload check when ``checks.uploads`` is configured."""
    section = config.checks.uploads
    return [] if section is None else [UploadCheck(section, config)]
