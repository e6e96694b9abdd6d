"""The plugin's own exception: cheap to import, so a dormant run can name it too."""

from __future__ import annotations

__all__ = ["ConfigError"]


class ConfigError(Exception):
    """A usage error in the configuration: the message names file, line, key and value."""
