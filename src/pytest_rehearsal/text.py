"""Text for people: short one-line excerpts, with control characters shown, never obeyed.

Pure functions. Whatever a server or a command sends may hold terminal escape sequences
(``ESC[2J`` clears the screen; OSC 8 hides a link behind other text) or bytes that are not
text at all; what the rehearsal prints of it goes through :func:`printable`.
"""

from __future__ import annotations

import re

__all__ = ["excerpt", "plural", "printable"]

# C0 and C1 controls, DEL, and the lone surrogates that undecodable bytes become.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: str) -> str:
    """*text* with control characters (tab and newline excepted) shown as ``\\x1b`` escapes."""
    return _CONTROL.sub(_escaped, text)


def excerpt(body: bytes | str, limit: int = 200) -> str:
    """A short single-line excerpt of a body for messages, control characters escaped."""
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    text = printable(" ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``1 poll``, ``3 polls``; *nouns* for an irregular plural."""
    return f"{count} {noun if count == 1 else (nouns or noun + 's')}"
