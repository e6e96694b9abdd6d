"""How a usage error is worded: one format for every problem, and text that is not text.

Pure and cheap: a dormant run may need it to refuse an option value before any config
module is imported.
"""

from __future__ import annotations

import re

__all__ = ["SURROGATE_EXPECTED", "SURROGATE_PROBLEM", "format_problem", "lone_surrogate"]

_SURROGATE = re.compile("[\ud800-\udfff]")
SURROGATE_PROBLEM = "a lone surrogate is not text"
SURROGATE_EXPECTED = (
    "UTF-8 text (an escape from \\ud800 to \\udfff is half of a UTF-16 pair, not a "
    "character: write the character itself, or \\U0001f600 for one beyond U+FFFF)"
)


def format_problem(where: str, keypath: str, problem: str, found: str, expected: str) -> str:
    """One problem, in the format every config error uses."""
    subject = f"{keypath}: " if keypath else ""
    return f"{where}: {subject}{problem}; found {found}, expected {expected}"


def lone_surrogate(text: str, *, decoded: bool = False) -> str | None:
    """Where *text* holds a lone surrogate, in words; ``None`` when it is all characters.

    Only the surrogate and its position are shown: the value may be a secret. *decoded*:
    the text was decoded from bytes (argv, the environment), so name the byte it stands for.
    """
    match = _SURROGATE.search(text)
    if match is None:
        return None
    code = ord(match.group())
    shown = f"\\u{code:04x} at character {match.start() + 1}"
    if decoded and 0xDC80 <= code <= 0xDCFF:
        shown += f" (the byte 0x{code - 0xDC00:02x}, which is not UTF-8)"
    return shown
