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

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .config import RehearsalConfig
from .errors import ConfigError
from .units import parse_duration

__all__ = ["DEFAULT_TIMEOUT", "Options", "Settings", "resolve"]

DEFAULT_TIMEOUT = 10.0


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
    from .config_loader import (
        check_production,
        load_config,
        split_command,
        validate_staging_url,
    )

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
        report_path=invocation_dir / options.report_path if options.report_path else None,
        summary_path=invocation_dir / options.summary_path if options.summary_path else None,
        ca_bundle=ca_bundle,
    )


def _duration(value: str | None, where: str, default: float) -> float:
    if value is None:
        return default
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
