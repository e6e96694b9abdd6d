"""pytest-rehearsal: rehearse a release against staging, rollback included.

Importing this package must stay cheap: pytest imports the plugin on every run of
every project that installs it, so nothing here pulls in httpx, yaml or tenacity.
:func:`expect` (custom checks in the built-in checks' language) is loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .expectations import ExpectationFailed, expect

__version__ = "0.1.0"

__all__ = ["ExpectationFailed", "__version__", "expect"]


def __getattr__(name: str) -> Any:
    if name in {"expect", "ExpectationFailed"}:
        from . import expectations as module

        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
