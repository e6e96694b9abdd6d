"""Durations and sizes as users write them: ``250ms``, ``30s``, ``2m``, ``10MiB``, ``1MB``.

Pure functions; they raise :class:`ValueError` with a message that says what was expected,
and callers add *where* the value came from (an option, a file and line).
"""

from __future__ import annotations

import math
import re

__all__ = [
    "MAX_DURATION_S",
    "DurationTooLong",
    "format_duration",
    "format_elapsed",
    "format_size",
    "parse_duration",
    "parse_size",
]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|min|m|h)?\s*$")
_DURATION_FACTORS = {"ms": 0.001, "s": 1.0, "min": 60.0, "m": 60.0, "h": 3600.0, None: 1.0}
DURATION_EXPECTED = "a duration such as 250ms, 30s, 2m or a number of seconds"
#: The longest duration any setting takes. Longer is a typo (``999999999999h``), and a time
#: that far ahead overflows the clocks, timeouts and sleeps it is handed to.
MAX_DURATION_S = 24 * 3600.0
_SHOWN_CHARS = 60

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KiB|MiB|GiB)?\s*$")
_SIZE_FACTORS = {
    None: 1,
    "B": 1,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
    "KiB": 1024,
    "MiB": 1024**2,
    "GiB": 1024**3,
}
SIZE_EXPECTED = "a size such as 512KiB, 10MiB, 1MB or a number of bytes"


class DurationTooLong(ValueError):
    """A well-formed duration longer than :data:`MAX_DURATION_S`."""


def parse_duration(value: str | int | float) -> float:
    """Return *value* in seconds; a bare number means seconds.

    Raises :class:`ValueError` for anything else, and :class:`DurationTooLong` (a
    :class:`ValueError`) beyond :data:`MAX_DURATION_S`.
    """
    shown = repr(value)
    if len(shown) > _SHOWN_CHARS:
        shown = shown[: _SHOWN_CHARS - 3] + "..."
    if isinstance(value, bool):
        raise ValueError(f"expected {DURATION_EXPECTED}, got {shown}")
    if isinstance(value, float):
        seconds = value
    elif isinstance(value, int):
        seconds = float(value) if value <= MAX_DURATION_S else math.inf
    else:
        match = _DURATION.match(value)
        if match is None:
            raise ValueError(f"expected {DURATION_EXPECTED}, got {shown}")
        # More digits than a float holds read as inf: too long, like any other huge number.
        seconds = float(match.group(1)) * _DURATION_FACTORS[match.group(2)]
    if math.isnan(seconds) or seconds < 0 or (isinstance(value, float) and math.isinf(value)):
        raise ValueError(f"expected {DURATION_EXPECTED}, got {shown}")
    if seconds > MAX_DURATION_S:
        limit = format_duration(MAX_DURATION_S)
        raise DurationTooLong(f"expected a duration of at most {limit}, got {shown}")
    return seconds


def parse_size(value: str | int | float) -> int:
    """Return *value* in bytes; a bare integer means bytes (a float is refused)."""
    if isinstance(value, (bool, float)):
        raise ValueError(f"expected {SIZE_EXPECTED}, got {value!r}")
    if isinstance(value, int):
        size = value
    else:
        match = _SIZE.match(value)
        if match is None:
            raise ValueError(f"expected {SIZE_EXPECTED}, got {value!r}")
        size = int(float(match.group(1)) * _SIZE_FACTORS[match.group(2)])
    if size < 0:
        raise ValueError(f"expected {SIZE_EXPECTED}, got {value!r}")
    return size


def format_duration(seconds: float) -> str:
    """A configured duration as people write it, with a space: ``250 ms``, ``30 s``, ``2 min``."""
    if 0 < seconds < 1:
        return f"{seconds * 1000:g} ms"
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    if seconds >= 120 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


def format_elapsed(seconds: float) -> str:
    """A measured or remaining time: ``250 ms`` below a second, ``3.0 s``, ``2 min 5 s``."""
    if seconds < 1:
        return f"{max(seconds, 0.0) * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if rest else f"{minutes} min"


def format_size(size: int) -> str:
    """Render bytes with the largest binary unit that divides them evenly."""
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{size}B"
