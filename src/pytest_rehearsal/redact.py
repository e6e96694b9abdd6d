"""Keeping secrets out of every output: a masked wrapper and one redactor for all text.

A token lives in a :class:`Secret` (not a ``str`` subclass: pytest's assertion diffs use a
string's *content*, so only a non-``str`` wrapper stays masked in diffs and ``-l`` locals).
Everything the plugin prints or writes passes through a :class:`Redactor` that replaces each
known secret value with ``***``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["MASK", "Redactor", "Secret", "mask_url"]

MASK = "***"
# Shorter values would mask innocent text everywhere (a token "1" would eat every digit).
_MIN_SECRET_LENGTH = 4
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")
_TOKEN_QUERY = re.compile(
    r"(?P<key>[?&](?:[\w.-]*(?:token|key|secret|password|passwd|auth|signature|sig)[\w.-]*)=)"
    r"(?P<value>[^&#\s]*)",
    re.IGNORECASE,
)


class Secret:
    """A credential whose ``repr`` and ``str`` are masked; :meth:`reveal` only to send it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The real value: call this only where the header is built."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    def __str__(self) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Secret):
            return self._value == other._value
        if isinstance(other, str):
            return self._value == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # equal to a str, so it must not hash like one


def mask_url(url: str) -> str:
    """*url* with its userinfo and token-like query values replaced by ``***``."""
    url = _USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", url)
    return _TOKEN_QUERY.sub(lambda m: f"{m['key']}{MASK}", url)


class Redactor:
    """Replaces every known secret value in text with ``***``; cheap when none is known."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        for value in values:
            self.add(value)

    def add(self, value: str | Secret) -> None:
        """Learn one more secret value (too short ones are ignored, see module notes)."""
        raw = value.reveal() if isinstance(value, Secret) else value
        if len(raw) >= _MIN_SECRET_LENGTH and raw not in self._values:
            self._values.add(raw)
            # Longest first, so a secret containing another is masked whole.
            ordered = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(v) for v in ordered))

    def __bool__(self) -> bool:
        return bool(self._values)

    def __call__(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(MASK, text)

    def bytes(self, data: bytes) -> bytes:
        """Redact raw output (for example a rollback's captured stdout)."""
        if self._pattern is None:
            return data
        return self(data.decode("utf-8", errors="replace")).encode()
