"""Whether a rehearsal is asked for at all, decided before anything heavy is imported.

pytest calls the plugin on every run of every project that installs it; this module lets
a run without a staging URL stay dormant at the cost of a few path checks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from .errors import ConfigError

__all__ = ["DEFAULT_CONFIG_NAME", "find_config_file", "rehearsal_requested"]

DEFAULT_CONFIG_NAME = "rehearsal.yaml"
# A top-level `staging_url:` line; lets a dormant run decide without importing yaml.
_TOP_LEVEL_URL = re.compile(r"^staging_url\s*:", re.MULTILINE)


def find_config_file(
    cli_path: str | None, ini_path: str | None, rootpath: Path, invocation_dir: Path
) -> Path | None:
    """The config file to read: ``--rehearsal-config``, the ini key, or ``rehearsal.yaml``.

    An explicitly named file must exist; the default one is optional.
    """
    if cli_path:
        path = invocation_dir / cli_path
        where = "--rehearsal-config"
    elif ini_path:
        path = rootpath / ini_path
        where = "ini option rehearsal_config"
    else:
        default = rootpath / DEFAULT_CONFIG_NAME
        return default if default.is_file() else None
    if not path.is_file():
        raise ConfigError(f"{where}: config file {str(path)!r} not found; expected a YAML file")
    return path


def rehearsal_requested(
    cli_url: str | None, environ: Mapping[str, str], config_file: Path | None
) -> bool:
    """Whether a staging URL is given on the command line, in the environment or the file."""
    if cli_url or environ.get("STAGING_URL"):
        return True
    if config_file is None:
        return False
    try:
        return bool(
            _TOP_LEVEL_URL.search(config_file.read_text(encoding="utf-8", errors="replace"))
        )
    except OSError:
        return True  # let the config loader report the problem properly
