"""The built-in checklist: one module per check, imported only when a rehearsal is active.

Each module exposes ``build(config) -> list[Check]``, returning no checks when it is switched
off or not configured. The registry holds module names, so importing this package is free.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import RehearsalConfig
    from ._base import Check

__all__ = ["BUILTIN", "build_checks"]

#: Check name -> module; the order is the order of the items in the rehearsal.
BUILTIN: dict[str, str] = {
    "health": "pytest_rehearsal.checks.health",
    "headers": "pytest_rehearsal.checks.headers",
    "secrets": "pytest_rehearsal.checks.secrets",
    "permissions": "pytest_rehearsal.checks.permissions",
    "uploads": "pytest_rehearsal.checks.uploads",
    "retry_safe": "pytest_rehearsal.checks.retry_safe",
    "inputs": "pytest_rehearsal.checks.inputs",
}


def build_checks(config: RehearsalConfig) -> list[Check]:
    """Every built-in check that *config* switches on, in checklist order."""
    checks: list[Check] = []
    for module_name in BUILTIN.values():
        checks.extend(importlib.import_module(module_name).build(config))
    return checks
