"""The built-in checklist: one module per check, imported only when a rehearsal is active.

Each module exposes ``build(config) -> list[Check]``, returning no checks when it is switched
off or not configured. The registry holds module names, so importing this package is free, and
a check's module is imported only when its section of the config is on.

A builder sees the config with ``staging_url`` set to the URL the run rehearses (from
``--staging-url``, ``STAGING_URL`` or the file): ``tls`` exists only for an https staging.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import RehearsalConfig
    from ._base import Check

__all__ = ["BUILTIN", "build_checks"]

#: Check name (its section in ``ChecksConfig``) -> module, in the order of the rehearsal's items.
BUILTIN: dict[str, str] = {
    "health": "pytest_rehearsal.checks.health",
    "headers": "pytest_rehearsal.checks.headers",
    "secrets": "pytest_rehearsal.checks.secrets",
    "permissions": "pytest_rehearsal.checks.permissions",
    "uploads": "pytest_rehearsal.checks.uploads",
    "retry_safe": "pytest_rehearsal.checks.retry_safe",
    "inputs": "pytest_rehearsal.checks.inputs",
    "logging": "pytest_rehearsal.checks.logging",
    "tls": "pytest_rehearsal.checks.tls",
}


#: Checks that exist only for an https staging URL.
_HTTPS_ONLY = frozenset({"tls"})


def build_checks(config: RehearsalConfig, staging_url: str | None = None) -> list[Check]:
    """Every built-in check that *config* switches on, in checklist order.

    *staging_url* is the URL the run rehearses (``Settings.staging_url``); without it, the
    file's ``staging_url`` is taken.
    """
    if staging_url is not None:
        config = dataclasses.replace(config, staging_url=staging_url)
    https = (config.staging_url or "").startswith("https://")
    checks: list[Check] = []
    for name, module_name in BUILTIN.items():
        # A section that is off (None) or empty has no checks: its module is not even imported;
        # nor is tls's on an http staging, where it has nothing to check.
        if getattr(config.checks, name) and (https or name not in _HTTPS_ONLY):
            checks.extend(importlib.import_module(module_name).build(config))
    return checks
