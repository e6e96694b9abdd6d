"""The ``rehearsal`` marker: its help text and the one rule of its use (cheap to import)."""

from __future__ import annotations

import pytest

__all__ = ["MARKER_HELP", "MARKER_KWARGS", "marker_problem"]

MARKER_KWARGS = frozenset({"owner", "expect", "rollback_note"})
MARKER_HELP = (
    "rehearsal(owner=None, expect=None, rollback_note=None): the test is part of the staging "
    "rehearsal; its owner, expected result and rollback note reach every report"
)


def marker_problem(item: pytest.Item) -> str | None:
    """Why *item*'s ``rehearsal`` marker is misused (positional or unknown arguments)."""
    marker = item.get_closest_marker("rehearsal")
    if marker is None:
        return None
    unknown = set(marker.kwargs) - MARKER_KWARGS
    if not marker.args and not unknown:
        return None
    given = ", ".join([*map(repr, marker.args), *sorted(unknown)])
    return (
        f"{item.nodeid}: @pytest.mark.rehearsal takes only owner=, expect= and rollback_note=; "
        f"got {given}"
    )
