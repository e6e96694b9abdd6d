"""The example staging service of pytest-rehearsal: a small FastAPI app with defect switches.

The good app passes every built-in check; each defect switch (see :data:`DEFECTS`) breaks
exactly one behaviour, so that each check can be shown to catch what it claims to catch.
"""

from __future__ import annotations

from .app import DEFAULT_UPLOAD_LIMIT, DEFECTS, create_app, create_app_from_env, current_version

__all__ = [
    "DEFAULT_UPLOAD_LIMIT",
    "DEFECTS",
    "create_app",
    "create_app_from_env",
    "current_version",
]
