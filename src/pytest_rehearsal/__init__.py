"""pytest-rehearsal: rehearse a release against staging, rollback included.

Importing this package must stay cheap: pytest imports the plugin on every run of
every project that installs it, so nothing here pulls in httpx, yaml or tenacity.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
