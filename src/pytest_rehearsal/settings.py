"""Where each setting comes from, decided once: command line, environment, ini, file, default.

Pure logic: :func:`resolve` takes the raw option values and returns :class:`Settings`, or
``None`` when the rehearsal stays dormant. Errors are :class:`ConfigError` naming their source.

=====================  ======================  =============  ===============  ===========
setting                command line            environment    ini / file       default
=====================  ======================  =============  ===============  ===========
staging URL            ``--staging-url``       STAGING_URL    ``staging_url:``  (dormant)
config file            ``--rehearsal-config``                 ini              rehearsal.yaml
rollback command       ``--rollback-command``                 ``rollback.command``
request timeout        ``--staging-timeout``                  ``defaults.timeout``  10s
CA bundle              ``--staging-ca-bundle``                ``ca_bundle:``   system store
=====================  ======================  =============  ===============  ===========
"""

from __future__ import annotations

import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .config import RehearsalConfig
from .errors import ConfigError
from .problems import SURROGATE_EXPECTED, SURROGATE_PROBLEM, format_problem, lone_surrogate
from .units import parse_duration

__all__ = ["DEFAULT_TIMEOUT", "Options", "Settings", "resolve"]

DEFAULT_TIMEOUT = 10.0


# Where each Options field comes from, as messages name it.
_OPTION_NAMES = {
    "staging_url": "--staging-url",
    "rollback_command": "--rollback-command",
    "staging_wait": "--staging-wait",
    "staging_timeout": "--staging-timeout",
    "report_path": "--rehearsal-report",
    "summary_path": "--rehearsal-summary",
    "ca_bundle": "--staging-ca-bundle",
}
# What lstat() finds at a report path, other than a regular file.
_FILE_KINDS = (
    (stat.S_ISLNK, "a symbolic link"),
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
)
_REPORT_PATH_EXPECTED = (
    "a regular file, or a path where nothing exists yet (the report is written to a new file "
    "that then replaces what is there)"
)


@dataclass(frozen=True)
class Options:
    """Raw values from pytest's command line and ini file (strings, as the user wrote them)."""

    staging_url: str | None = None
    rollback_command: str | None = None
    no_rollback: bool = False
    staging_wait: str | None = None
    staging_timeout: str | None = None
    report_path: str | None = None
    summary_path: str | None = None
    ca_bundle: str | None = None


@dataclass(frozen=True)
class Settings:
    """Everything an active rehearsal needs to know, validated."""

    staging_url: str
    config: RehearsalConfig
    rollback_command: tuple[str, ...] | None
    no_rollback: bool
    staging_wait: float
    staging_timeout: float
    report_path: Path | None
    summary_path: Path | None
    ca_bundle: Path | None

    @property
    def retries(self) -> int:
        return self.config.defaults.retries


def resolve(
    options: Options, environ: Mapping[str, str], config_file: Path | None, invocation_dir: Path
) -> Settings | None:
    """The rehearsal's settings, or ``None`` when no staging URL is given anywhere (dormant).

    *config_file* is the one :func:`pytest_rehearsal.activation.find_config_file` found.
    """
    env_url = environ.get("STAGING_URL") or None
    _refuse_surrogates(options, env_url)
    from .config_commands import split_command
    from .config_loader import load_config
    from .config_urls import check_production, validate_staging_url

    config = load_config(config_file, environ) if config_file else RehearsalConfig()
    if options.staging_url:
        url, source = options.staging_url, "--staging-url"
    elif env_url:
        url, source = env_url, "STAGING_URL"
    elif config.staging_url:
        url, source = config.staging_url, f"{config_file}"
    else:
        return None
    url = validate_staging_url(url, source)
    check_production(url, config.production, str(config_file))

    command = (
        split_command(options.rollback_command, "--rollback-command")
        if options.rollback_command
        else config.rollback.command
    )
    wait = _duration(options.staging_wait, "--staging-wait", 0.0)
    timeout = _duration(
        options.staging_timeout,
        "--staging-timeout",
        config.defaults.timeout if config.defaults.timeout is not None else DEFAULT_TIMEOUT,
    )
    if timeout <= 0:
        raise ConfigError(f"--staging-timeout: found {options.staging_timeout!r}, expected > 0")
    ca_bundle = invocation_dir / options.ca_bundle if options.ca_bundle else config.ca_bundle
    if ca_bundle is not None and not ca_bundle.is_file():
        raise ConfigError(f"CA bundle {str(ca_bundle)!r} not found; expected a PEM file")
    return Settings(
        staging_url=url,
        config=config,
        rollback_command=command,
        no_rollback=options.no_rollback,
        staging_wait=wait,
        staging_timeout=timeout,
        report_path=_report_path(options.report_path, "--rehearsal-report", invocation_dir),
        summary_path=_report_path(options.summary_path, "--rehearsal-summary", invocation_dir),
        ca_bundle=ca_bundle,
    )


def _refuse_surrogates(options: Options, env_url: str | None) -> None:
    """Refuse a value that is not text (bytes that are not UTF-8 decode to lone surrogates)."""
    values = [(where, getattr(options, name)) for name, where in _OPTION_NAMES.items()]
    for where, value in [*values, ("STAGING_URL", env_url)]:
        if isinstance(value, str) and (found := lone_surrogate(value, decoded=True)):
            raise ConfigError(
                format_problem(where, "", SURROGATE_PROBLEM, found, SURROGATE_EXPECTED)
            )


def _report_path(value: str | None, where: str, invocation_dir: Path) -> Path | None:
    """Where a report goes; refused when something other than a regular file is there.

    Replacing a device node, a FIFO or a symbolic link with a report (``/dev/null`` as
    root, a link into another tree) would break what the path stood for; ``/dev/stdout``
    would swallow the report. ``lstat``: a link is refused whatever it points to.
    """
    if not value:
        return None
    path = invocation_dir / value
    try:
        mode = path.lstat().st_mode
    except OSError:
        return path  # nothing there yet (or unreachable: writing it names the problem)
    if stat.S_ISREG(mode):
        return path
    kind = next((name for test, name in _FILE_KINDS if test(mode)), "not a regular file")
    raise ConfigError(
        format_problem(
            where,
            "",
            f"the path exists and is {kind}, not a regular file",
            repr(str(path)),
            _REPORT_PATH_EXPECTED,
        )
    )


def _duration(value: str | None, where: str, default: float) -> float:
    if value is None:
        return default
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
