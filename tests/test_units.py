from __future__ import annotations

import pytest

from pytest_rehearsal.units import (
    MAX_DURATION_S,
    DurationTooLong,
    format_duration,
    format_elapsed,
    format_size,
    parse_duration,
    parse_size,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("30s", 30.0),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("1.5", 1.5),
        (5, 5.0),
        (" 10s ", 10.0),
        ("0", 0.0),
    ],
)
def test_parse_duration(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "ten", "5 minutes", "-1s", "1e3", True, "nan", float("inf")])
def test_parse_duration_refuses(text: object) -> None:
    with pytest.raises(ValueError, match="expected a duration such as 250ms"):
        parse_duration(text)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value", ["999999999999h", "25h", "1441m", 86401, 10**400, "9" * 400, 1e300, "86400.5"]
)
def test_parse_duration_refuses_more_than_24_hours(value: str | int | float) -> None:
    """Issue 11.10: never an OverflowError later, in a clock or a timeout."""
    with pytest.raises(DurationTooLong, match=r"^expected a duration of at most 24 h, got "):
        parse_duration(value)


def test_parse_duration_takes_up_to_24_hours() -> None:
    assert (
        parse_duration("24h") == parse_duration(86400) == parse_duration("1440m") == MAX_DURATION_S
    )


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("512KiB", 512 * 1024),
        ("10MiB", 10 * 1024**2),
        ("1MB", 10**6),
        ("1GiB", 1024**3),
        (2048, 2048),
        ("100", 100),
        ("1.5KiB", 1536),
    ],
)
def test_parse_size(text: str | int, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "10 mb", "ten", 1.5, False, -3, "1TB"])
def test_parse_size_refuses(text: object) -> None:
    with pytest.raises(ValueError, match="expected a size such as 512KiB"):
        parse_size(text)  # type: ignore[arg-type]


def test_format_round_trips() -> None:
    assert format_duration(0.25) == "250 ms"
    assert format_duration(30) == "30 s"
    assert format_duration(120) == "2 min"
    assert format_duration(7200) == "2 h"
    assert format_size(10 * 1024**2) == "10MiB"
    assert format_size(1000) == "1000B"
    for seconds in (0.25, 30.0, 120.0, 90.0, 7200.0, 0.0):
        assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0.0004, "0 ms"),
        (0.25, "250 ms"),
        (3.00955, "3.0 s"),
        (29.5309, "29.5 s"),
        (125, "2 min 5 s"),
        (120.2, "2 min"),
    ],
)
def test_format_elapsed_is_one_format_for_people(seconds: float, shown: str) -> None:
    assert format_elapsed(seconds) == shown
