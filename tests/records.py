"""Rollback records for the tests of the pure report renderers."""

from __future__ import annotations

from typing import Any

from pytest_rehearsal.release import RollbackRecord

__all__ = ["rollback_record"]


def rollback_record(
    outcome: str = "passed", message: str = "rolled back", **changes: Any
) -> RollbackRecord:
    """A rollback record as the lifecycle would make it (``./deploy.sh rollback``, exit 0)."""
    values: dict[str, Any] = {
        "outcome": outcome,
        "phase": "done" if outcome != "skipped" else "preflight",
        "command": ("./deploy.sh", "rollback"),
        "exit_code": 0 if outcome != "skipped" else None,
        "duration_s": 2.0,
        "message": message,
        "output_tail": "",
        "owner": None,
        "note": None,
        "expect": "`./deploy.sh rollback` exits 0 within 2 min",
    }
    values.update(changes)
    return RollbackRecord(**values)
