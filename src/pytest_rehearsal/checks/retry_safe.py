"""``retry_safe[METHOD /path]``: an Idempotency-Key makes a retry safe.

Per draft-ietf-httpapi-idempotency-key-header (and Stripe's behaviour), in three rounds:

1. the request with a fresh key: a UUID4, sent as an RFC 8941 sf-string ``"<uuid>"`` as the
   draft says (``key_format: quoted``), or bare as Stripe-style APIs expect (``bare``);
2. the same request with the same key: the same status and body must come back (fields in
   ``ignore_fields`` may differ, at any depth), not a second execution;
3. the same key with a different payload: refused with a ``conflict_status`` (default 409
   or 422; the draft says 422).

The different payload changes one value a server is likely to accept, so that a refusal
is about the key rather than validation: the first number in the payload (depth first) is
increased by 1; without a number, the first string gets the suffix ``-variant``; without
one, the first boolean is flipped; otherwise a field ``_rehearsal_variant: 1`` is added.
"""

from __future__ import annotations

import json as jsonlib
import re
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..answers import parse_json
from ..config import RehearsalConfig, RetrySafeEntry
from ..text import excerpt, plural
from ._base import Check, CheckRun, Probe, Reply, ReplyLog, Verdict, fail
from ._leaks import mask_secrets
from ._support import combine, entry_params, meta_for, not_idempotent, tag

__all__ = ["Difference", "RetrySafeCheck", "build", "first_difference", "variant"]

_ASVS = "5.0.0: 2.3.3 2.3.4"  # all-or-nothing transactions; no double booking
_VARIANT_FIELD = "_rehearsal_variant"
_SHOWN = 60
Path = tuple[Any, ...]
# Words of a field name that say it changes on every response by nature (a time, a request
# or trace id, a nonce): listing such a field in ignore_fields is right. Any other field
# (``id``, ``order_id``, ``total``) is what the replay must return unchanged.
_VOLATILE_WORDS = frozenset(
    {
        *("at", "on", "time", "timestamp", "date", "datetime", "ts", "now", "expires"),
        *("elapsed", "duration", "latency", "took", "uptime", "nonce", "etag"),
        *("served", "server", "host", "hostname", "node", "instance"),
    }
)
_VOLATILE_ID_WORDS = frozenset({"request", "trace", "span", "correlation"})
_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")


@dataclass(frozen=True)
class Difference:
    """Where the replay's body differs from the first one: in words, and the field."""

    text: str
    field: str | None = None  # the name of the differing JSON field, when there is one

    @property
    def looks_volatile(self) -> bool:
        """Whether the field's name says it changes on every response (``created_at``,
        ``request_id``), so that ``ignore_fields`` is the fix rather than the server."""
        if self.field is None:
            return False
        words = {word.lower() for word in _WORDS.findall(self.field[:100])}
        return bool(words & _VOLATILE_WORDS) or ("id" in words and bool(words & _VOLATILE_ID_WORDS))


def _leaves(value: Any, path: Path = ()) -> Iterator[tuple[Path, Any]]:
    """Every scalar of a JSON value with its path, depth first, in document order."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))
    else:
        yield path, value


def _replaced(value: Any, path: Path, new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {k: _replaced(v, rest, new) if k == head else v for k, v in value.items()}
    return [_replaced(v, rest, new) if i == head else v for i, v in enumerate(value)]


def _name(path: Path) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def variant(payload: Any) -> tuple[Any, str]:
    """A different payload (see the module notes) and the change in words."""
    leaves = list(_leaves(payload))
    changes = (
        (
            (p, v, v + 1)
            for p, v in leaves
            if isinstance(v, (int, float)) and not isinstance(v, bool)
        ),
        ((p, v, f"{v}-variant") for p, v in leaves if isinstance(v, str)),
        ((p, v, not v) for p, v in leaves if isinstance(v, bool)),
    )
    for candidates in changes:
        for path, old, new in candidates:
            return _replaced(payload, path, new), f"{_name(path)} {old!r} -> {new!r}"
    if isinstance(payload, dict):
        return {**payload, _VARIANT_FIELD: 1}, f"added {_VARIANT_FIELD}: 1"
    return {_VARIANT_FIELD: 1}, f"sent {{{_VARIANT_FIELD!r}: 1}} instead of {payload!r}"


def _without(value: Any, ignore: frozenset[str]) -> Any:
    if isinstance(value, dict):
        return {k: _without(v, ignore) for k, v in value.items() if k not in ignore}
    if isinstance(value, list):
        return [_without(v, ignore) for v in value]
    return value


def _field(path: Path) -> str | None:
    """The last field name on *path* (list indices skipped)."""
    names = [step for step in path if isinstance(step, str)]
    return names[-1] if names else None


def _first_json_difference(a: Any, b: Any, path: Path = ()) -> Difference | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(a) + [k for k in b if k not in a]:
            if key not in a or key not in b:
                side = "the replay" if key not in a else "the first response"
                return Difference(f"{_name((*path, key))} only in {side}", key)
            found = _first_json_difference(a[key], b[key], (*path, key))
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            found = _first_json_difference(x, y, (*path, index))
            if found:
                return found
        return None
    if a == b and type(a) is type(b):
        return None
    first, second = excerpt(jsonlib.dumps(a), _SHOWN), excerpt(jsonlib.dumps(b), _SHOWN)
    return Difference(f"{_name(path)} was {first}, then {second}", _field(path))


def _shown_body(body: bytes) -> str:
    """A body for a message: a short excerpt of text, the size of anything else."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None or "\x00" in text:
        return f"{plural(len(body), 'byte')} of binary data"
    return f"'{excerpt(text, _SHOWN)}'"


def first_difference(first: bytes, second: bytes, ignore: Sequence[str] = ()) -> Difference | None:
    """Where two bodies differ, or None when they are the same.

    JSON bodies are compared as JSON with the *ignore* fields removed at any depth; any
    other body must be the same bytes.
    """
    a, b = parse_json(first), parse_json(second)
    if not (a.ok and b.ok):
        if first == second:
            return None
        return Difference(f"the body was {_shown_body(first)}, then {_shown_body(second)}")
    keep_out = frozenset(ignore)
    return _first_json_difference(_without(a.value, keep_out), _without(b.value, keep_out))


class RetrySafeCheck(Check):
    """An endpoint that promises safe retries under an idempotency key."""

    def __init__(self, entry: RetrySafeEntry, param: str, config: RehearsalConfig) -> None:
        super().__init__("retry_safe", param, meta_for(config, entry.meta))
        self.entry = entry

    @property
    def refusals(self) -> str:
        return "/".join(str(status) for status in self.entry.conflict_status)

    def describe_expectation(self) -> str:
        return (
            f"{self.entry.method.upper()} {self.entry.path} repeated with the same "
            f"{self.entry.idempotency_header} returns the first response; a different payload "
            f"under that key is refused with {self.refusals}"
        )

    def key_value(self, key: str) -> str:
        """*key* as the header carries it: an RFC 8941 sf-string, or bare."""
        return key if self.entry.key_format == "bare" else f'"{key}"'

    def probe(self, key: str, payload: Any) -> Probe:
        """A keyed request; idempotent by the endpoint's promise (retried with its key)."""
        header = (self.entry.idempotency_header, self.key_value(key))
        method = self.entry.method.upper()
        return Probe(method, self.entry.path, headers=(header,), json=payload, idempotent=True)

    def run(self, seen: ReplyLog) -> CheckRun:
        key = str(uuid.uuid4())
        original = self.probe(key, self.entry.json)
        (first,) = yield [original]
        verdict = self.judge_original(first)
        if not verdict.passed:
            return tag(verdict, asvs=_ASVS)
        (replay,) = yield [original]
        changed, change = variant(self.entry.json)
        (mismatch,) = yield [self.probe(key, changed)]
        return self.judge(first, replay, mismatch, change)

    def judge_original(self, first: Reply) -> Verdict:
        """Whether the original request went through, so that a replay means something."""
        expected = "the original request to succeed (2xx)"
        if first.status is None:
            return fail(first, expected, rule="original-failed")
        if first.status >= 500:
            got = f"{first.describe()} · the original request failed"
            return fail(first, expected, got, rule="original-failed")
        if first.status >= 400:
            why = (
                "the original request was refused, so nothing can be replayed: the entry needs "
                "a payload the endpoint accepts (checks.retry_safe json), and the endpoint must "
                f"accept {self.entry.idempotency_header}: {self.key_value('<uuid4>')}"
            )
            return fail(first, expected, f"{first.describe()} · {why}", rule="original-refused")
        return Verdict.ok()

    def judge(self, first: Reply, replay: Reply, mismatch: Reply, change: str) -> Verdict:
        """The verdict on the three rounds (pure); every problem is reported."""
        verdicts = [self.judge_original(first)]
        if verdicts[0].passed:
            verdicts += [
                self._judge_replay(first, replay),
                self._judge_mismatch(first, mismatch, change),
            ]
        return tag(combine(verdicts), asvs=_ASVS)

    def _judge_replay(self, first: Reply, replay: Reply) -> Verdict:
        expected = f"the first response again ({first.status}, same body) for the same key"
        if replay.status is None:
            return fail(not_idempotent(replay), expected, rule="replay-failed")
        if replay.status != first.status:
            got = f"{replay.describe()} · the status changed from {first.status}"
            message = f"the replay answered {replay.status}, the first request {first.status}"
            return fail(
                not_idempotent(replay), expected, got, rule="replay-differs", message=message
            )
        difference = first_difference(first.body, replay.body, self.entry.ignore_fields)
        if difference is None:
            return Verdict.ok()
        what = mask_secrets(difference.text)
        got = (
            f"{replay.describe()} · {what}: the request was executed again, "
            "so a client retrying after a timeout repeats its effect"
        )
        if difference.looks_volatile:
            got += (
                f" (if {difference.field} changes on every response by design, list it in "
                "checks.retry_safe ignore_fields)"
            )
        message = f"the replay with the same key was executed again: {what}"
        return fail(not_idempotent(replay), expected, got, rule="replay-differs", message=message)

    def _judge_mismatch(self, first: Reply, mismatch: Reply, change: str) -> Verdict:
        expected = (
            f"a different payload ({change}) under the reused key refused with {self.refusals}"
        )
        if mismatch.status in self.entry.conflict_status:
            return Verdict.ok()
        if mismatch.status is None:
            return fail(not_idempotent(mismatch), expected, rule="key-reuse-failed")
        if 200 <= mismatch.status < 300:
            same = first_difference(first.body, mismatch.body, self.entry.ignore_fields) is None
            why = (
                "the first response was replayed for a different payload: the change was ignored"
                if same
                else "the different payload was accepted: a key reused by mistake goes unnoticed"
            )
        else:
            why = f"refused with {mismatch.status}, expected {self.refusals}"
        got = f"{mismatch.describe()} · {why}"
        return fail(not_idempotent(mismatch), expected, got, rule="key-reuse-accepted", message=why)


def build(config: RehearsalConfig) -> list[Check]:
    """One check per ``checks.retry_safe`` entry (``#2`` marks a repeated method and path)."""
    entries = config.checks.retry_safe
    params = entry_params((entry.method, entry.path) for entry in entries)
    return [
        RetrySafeCheck(entry, param, config) for entry, param in zip(entries, params, strict=True)
    ]
