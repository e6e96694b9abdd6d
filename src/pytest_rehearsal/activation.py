"""Whether a rehearsal is asked for at all, decided before anything heavy is imported.

pytest calls the plugin on every run of every project that installs it; this module lets
a run without a staging URL stay dormant at the cost of a few path checks.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from .errors import ConfigError

__all__ = ["DEFAULT_CONFIG_NAME", "MAX_CONFIG_BYTES", "find_config_file", "rehearsal_requested"]

DEFAULT_CONFIG_NAME = "rehearsal.yaml"
#: The largest config file read (:mod:`.config_yaml` refuses larger ones). Defined here, with
#: the file's name, so that a dormant run knows it without importing the config modules.
MAX_CONFIG_BYTES = 64 * 1024
# A top-level `staging_url:` line; lets a dormant run decide without importing yaml.
_TOP_LEVEL_URL = re.compile(r"^staging_url\s*:", re.MULTILINE)


def find_config_file(
    cli_path: str | None, ini_path: str | None, rootpath: Path, invocation_dir: Path
) -> Path | None:
    """The config file to read: ``--rehearsal-config``, the ini key, or ``rehearsal.yaml``.

    An explicitly named file must exist; the default one is optional. A name that is not
    text (bytes that are not UTF-8) is refused: it would reach every message and report.
    """
    for where, value in (
        ("--rehearsal-config", cli_path),
        ("ini option rehearsal_config", ini_path),
    ):
        if value:
            _refuse_undecodable(value, where)
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


def _refuse_undecodable(value: str, where: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        # Rare, so the message's helpers are imported only now.
        from .problems import SURROGATE_EXPECTED, SURROGATE_PROBLEM, format_problem, lone_surrogate

        found = lone_surrogate(value, decoded=True) or repr(value)
        raise ConfigError(
            format_problem(where, "", SURROGATE_PROBLEM, found, SURROGATE_EXPECTED)
        ) from None


def rehearsal_requested(
    cli_url: str | None, environ: Mapping[str, str], config_file: Path | None
) -> bool:
    """Whether a staging URL is given on the command line, in the environment or the file.

    Only the first :data:`MAX_CONFIG_BYTES` of the file are read: a longer file is not a
    valid config anyway, and a dormant run must stay cheap whatever the file holds.
    """
    if cli_url or environ.get("STAGING_URL"):
        return True
    if config_file is None:
        return False
    try:
        with config_file.open("rb") as stream:
            head = stream.read(MAX_CONFIG_BYTES)
    except OSError:
        return True  # let the config loader report the problem properly
    return bool(_TOP_LEVEL_URL.search(head.decode("utf-8", errors="replace")))
