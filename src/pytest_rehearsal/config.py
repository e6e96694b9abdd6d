"""The rehearsal configuration: the typed, frozen schema of ``rehearsal.yaml``.

Every value here is already validated and converted (durations in seconds, sizes in bytes,
commands as argv tuples). The YAML loader that builds these objects lives in
:mod:`pytest_rehearsal.config_loader`; nothing in this module imports yaml.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

from .errors import ConfigError

__all__ = [
    "DEFAULT_SECRET_PATHS",
    "TLS_VERSIONS",
    "AcceptEntry",
    "AuthConfig",
    "ChecksConfig",
    "ConfigError",
    "Defaults",
    "DeployConfig",
    "HeadersCheckConfig",
    "HeadersPathConfig",
    "HealthCheckConfig",
    "InputEntry",
    "LoggingCheckConfig",
    "Meta",
    "PermissionsCheckConfig",
    "RehearsalConfig",
    "RetrySafeEntry",
    "RoleConfig",
    "RollbackConfig",
    "SecretsCheckConfig",
    "TlsCheckConfig",
    "UploadsCheckConfig",
    "VerifyConfig",
    "WatchConfig",
]


@dataclass(frozen=True)
class Meta:
    """Owner, expected result and rollback note of a check: they reach every report."""

    owner: str | None = None
    expect: str | None = None
    rollback_note: str | None = None

    def merged_over(self, defaults: Meta) -> Meta:
        """This entry's metadata, with blanks filled from *defaults*."""
        return Meta(
            owner=self.owner if self.owner is not None else defaults.owner,
            expect=self.expect if self.expect is not None else defaults.expect,
            rollback_note=(
                self.rollback_note if self.rollback_note is not None else defaults.rollback_note
            ),
        )


@dataclass(frozen=True)
class AuthConfig:
    """Credentials header built from an environment variable; the value is never stored here."""

    header: str = "Authorization"
    scheme: str | None = "Bearer"
    token_env: str | None = None


@dataclass(frozen=True)
class Defaults:
    """``defaults:``: applied to every check that does not say otherwise."""

    owner: str | None = None
    rollback_note: str | None = None
    timeout: float | None = None  # seconds; None: the --staging-timeout value
    retries: int = 2


@dataclass(frozen=True)
class HealthCheckConfig:
    """``checks.health``: the path that says staging is up, and what it must answer."""

    path: str = "/health"
    expect_status: int = 200
    expect_json: Mapping[str, Any] | None = None
    max_latency: float | None = None  # seconds
    meta: Meta = field(default_factory=Meta)


@dataclass(frozen=True)
class HeadersPathConfig:
    """One ``headers.paths`` entry: a path and the rules it adds to the section's."""

    path: str
    profile: str | None = None  # None: the section's profile
    require: tuple[str, ...] = ()
    forbid: tuple[str, ...] = ()


@dataclass(frozen=True)
class HeadersCheckConfig:
    """``checks.headers``: the security headers every listed path must send (or not send)."""

    paths: tuple[HeadersPathConfig, ...] = (HeadersPathConfig("/"),)
    # Header names (or "Name: value" rules) required / forbidden on every path of the section.
    require: tuple[str, ...] = ()
    forbid: tuple[str, ...] = ()
    # "auto" decides per response (JSON bodies get the API profile), or force "html" / "api".
    profile: str = "auto"
    meta: Meta = field(default_factory=Meta)


DEFAULT_SECRET_PATHS: tuple[str, ...] = (
    "/.git/config",
    "/.git/HEAD",
    "/.env",
    "/.env.local",
    "/.env.production",
    "/.env.backup",
    "/api/.env",
    "/.svn/entries",
    "/.hg/requires",
    "/.DS_Store",
    "/backup.zip",
    "/backup.tar.gz",
    "/backup.sql",
    "/dump.sql",
    "/database.sql",
    "/docker-compose.yml",
    "/.npmrc",
    "/.aws/credentials",
    "/actuator/env",
    "/actuator/heapdump",
    "/env",
    "/phpinfo.php",
    "/info.php",
)


@dataclass(frozen=True)
class SecretsCheckConfig:
    """``checks.secrets``: files that must not be served, and the scan of every body read."""

    paths: tuple[str, ...] = DEFAULT_SECRET_PATHS
    scan_bodies: bool = True  # scan every response the rehearsal reads for leaked secrets
    meta: Meta = field(default_factory=Meta)


@dataclass(frozen=True)
class RoleConfig:
    """One ``permissions.roles`` entry: a role's token variable and the paths it must not reach."""

    token_env: str
    denied: tuple[str, ...] = ()


@dataclass(frozen=True)
class PermissionsCheckConfig:
    """``checks.permissions``: paths refused without credentials, and to each role."""

    protected: tuple[str, ...] = ()
    roles: Mapping[str, RoleConfig] = field(default_factory=dict)
    meta: Meta = field(default_factory=Meta)


@dataclass(frozen=True)
class UploadsCheckConfig:
    """``checks.uploads``: a small upload is accepted, one byte over ``max_bytes`` gets 413."""

    path: str
    max_bytes: int
    # Declared before `field`, whose name shadows dataclasses.field inside this class body.
    meta: Meta = field(default_factory=Meta)
    field: str = "file"
    method: str = "POST"


@dataclass(frozen=True)
class RetrySafeEntry:
    """One ``checks.retry_safe`` entry: a write that must be safe to retry with its key."""

    method: str
    path: str
    json: Any = None
    idempotency_header: str = "Idempotency-Key"
    # "quoted": the key as an RFC 8941 sf-string (IETF draft); "bare": the raw UUID (Stripe).
    key_format: str = "quoted"
    # Statuses that count as refusing a different payload under a reused key (IETF draft: 422).
    conflict_status: tuple[int, ...] = (409, 422)
    # JSON fields whose values may differ between the original response and its replay.
    ignore_fields: tuple[str, ...] = ()
    meta: Meta = field(default_factory=Meta)


@dataclass(frozen=True)
class InputEntry:
    """One ``checks.inputs`` entry: invalid input that must be refused at the boundary."""

    method: str
    path: str
    json: Any = None
    expect_status: int = 422
    mentions: tuple[str, ...] = ()
    meta: Meta = field(default_factory=Meta)


@dataclass(frozen=True)
class LoggingCheckConfig:
    """``checks.logging``: canary requests, then the team's log command, until the marker shows."""

    command: tuple[str, ...]  # argv, never run by a shell; rollback.cwd/env apply
    paths: tuple[str, ...] = ("/",)
    within: float = 30.0  # seconds: how long the log command is rerun for the marker to appear
    meta: Meta = field(default_factory=Meta)


#: The protocol floors ``checks.tls.min_version`` accepts, oldest first.
TLS_VERSIONS: tuple[str, ...] = ("TLSv1.1", "TLSv1.2", "TLSv1.3")


@dataclass(frozen=True)
class TlsCheckConfig:
    """``checks.tls`` (https staging only): certificate life and protocol floor."""

    min_days: int = 30  # the certificate must stay valid at least this many days
    min_version: str = "TLSv1.2"  # one of TLS_VERSIONS: anything older must be refused
    meta: Meta = field(default_factory=Meta)


@dataclass(frozen=True)
class ChecksConfig:
    """The checklist. ``None`` means the check is switched off (or, for the opt-in ones, absent)."""

    health: HealthCheckConfig | None = field(default_factory=HealthCheckConfig)
    headers: HeadersCheckConfig | None = field(default_factory=HeadersCheckConfig)
    secrets: SecretsCheckConfig | None = field(default_factory=SecretsCheckConfig)
    permissions: PermissionsCheckConfig | None = None
    uploads: UploadsCheckConfig | None = None
    retry_safe: tuple[RetrySafeEntry, ...] = ()
    inputs: tuple[InputEntry, ...] = ()
    logging: LoggingCheckConfig | None = None
    # On by default, but built only for an https staging URL (see checks.build_checks).
    tls: TlsCheckConfig | None = field(default_factory=TlsCheckConfig)


@dataclass(frozen=True)
class AcceptEntry:
    """One ``accept:`` entry: a known finding that does not block the release until ``until``."""

    check: str  # an item id without "rehearsal::"; "*" matches any run of characters
    finding: str  # text the finding's message contains (case-insensitive)
    reason: str
    owner: str
    until: date  # the last day on which the entry applies
    where: str = ""  # "rehearsal.yaml:12": where the entry is written, named in notes


@dataclass(frozen=True)
class VerifyConfig:
    """How staging is seen to have gone back (and, after the restore, forward again)."""

    path: str = "/health"
    expect_status: int = 200
    expect_json: Mapping[str, Any] | None = None
    # Dotted paths into the JSON body (``version``, ``build.sha``): the fields that tell
    # releases apart. After the rollback they must differ from the release under test.
    track: tuple[str, ...] = ()
    within: float = 60.0  # seconds


@dataclass(frozen=True)
class WatchConfig:
    """``rollback.watch``: the health path polled while the rollback and restore run."""

    interval: float = 0.5  # seconds


@dataclass(frozen=True)
class RollbackConfig:
    """``rollback``: the command that takes staging back, how that is verified, and the restore."""

    command: tuple[str, ...] | None = None
    # cwd and env apply to every command of the lifecycle: deploy, rollback, restore.
    cwd: Path | None = None  # absolute once loaded: relative paths are resolved against the file
    env: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 120.0  # seconds
    verify: VerifyConfig | None = None
    restore: tuple[str, ...] | None = None
    restore_after: Literal["always", "verified"] = "always"
    watch: WatchConfig | None = field(default_factory=WatchConfig)  # None: watch: false
    max_recovery: float | None = None  # seconds: rollback start -> verify met
    max_outage: float | None = None  # seconds: longest run of failed watch polls
    owner: str | None = None
    expect: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class DeployConfig:
    """``deploy``: the real deployment of the release under test, before the checks."""

    command: tuple[str, ...]
    timeout: float = 300.0  # seconds
    within: float = 120.0  # seconds: staging must then pass the health check
    owner: str | None = None
    expect: str | None = None
    rollback_note: str | None = None


@dataclass(frozen=True)
class RehearsalConfig:
    """The whole configuration file; ``RehearsalConfig()`` is what no file at all means."""

    path: Path | None = None
    staging_url: str | None = None
    production: tuple[str, ...] = ()
    auth: AuthConfig | None = None
    ca_bundle: Path | None = None
    defaults: Defaults = field(default_factory=Defaults)
    checks: ChecksConfig = field(default_factory=ChecksConfig)
    deploy: DeployConfig | None = None
    rollback: RollbackConfig = field(default_factory=RollbackConfig)
    accept: tuple[AcceptEntry, ...] = ()
