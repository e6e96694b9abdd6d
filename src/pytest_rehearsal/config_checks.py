"""The ``checks:`` section of ``rehearsal.yaml``: each built-in check's keys, types and rules.

Each check's section is a table of its keys and their converters (:func:`.config_nodes.section`),
plus the owner, expected result and rollback note every check may carry (:data:`META_KEYS`);
what holds across keys (``permissions`` needs something to check, ``headers.paths`` each
path once) is said beside its table. :data:`checks_section` reads the whole ``checks:``
mapping into a :class:`~.config.ChecksConfig`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from .config import (
    TLS_VERSIONS,
    ChecksConfig,
    HeadersCheckConfig,
    HeadersPathConfig,
    HealthCheckConfig,
    InputEntry,
    LoggingCheckConfig,
    Meta,
    PermissionsCheckConfig,
    RetrySafeEntry,
    RoleConfig,
    SecretsCheckConfig,
    TlsCheckConfig,
    UploadsCheckConfig,
)
from .config_commands import COMMAND_EXPECTED, command
from .config_nodes import (
    Context,
    Invalid,
    MappingReader,
    Recorded,
    all_or_recorded,
    join_key,
    node_kind,
    one_of,
    section,
    show_node,
    type_name,
)
from .config_types import (
    boolean,
    choice,
    duration_value,
    entry_list,
    integer_in,
    json_object,
    json_value,
    list_of,
    non_empty_text,
    string,
    switch,
    text_or_number,
)
from .config_values import (
    HEADER_NAME,
    META_KEYS,
    PATH_EXPECTED,
    header_name,
    http_status,
    secret_env_name,
    url_path,
    url_paths,
)
from .units import SIZE_EXPECTED, format_size, parse_size

if TYPE_CHECKING:
    from yaml.nodes import Node

    from .config_nodes import Converter

__all__ = ["checks_section"]

_ROLE_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_UPLOAD_METHODS = ("POST", "PUT", "PATCH")
_PROFILES = ("auto", "html", "api")
_KEY_FORMATS = ("quoted", "bare")
# The small upload probe is 1 KiB, and its multipart framing (about 200 bytes plus the field
# name, up to 4 bytes a character once encoded) must fit in it: upload_probe.send_upload
# raises ValueError for a body smaller than its framing.
_MIN_UPLOAD_BYTES = 1024
_MAX_FIELD_CHARS = 128
_UPLOAD_FLOOR = f"at least {format_size(_MIN_UPLOAD_BYTES)}"
_UPLOAD_SIZE_EXPECTED = f"{SIZE_EXPECTED} ({_UPLOAD_FLOOR})"

_T = TypeVar("_T")


def _upload_size(context: Context, node: Node, keypath: str) -> int:
    value = text_or_number(node, _UPLOAD_SIZE_EXPECTED, fractions=False)
    try:
        size = parse_size(value)
    except ValueError:
        raise Invalid("not a size", _UPLOAD_SIZE_EXPECTED) from None
    if size < _MIN_UPLOAD_BYTES:
        raise Invalid("too small to hold a multipart upload", _UPLOAD_FLOOR)
    return size


def _form_field(context: Context, node: Node, keypath: str) -> str:
    value = non_empty_text(context, node, keypath)
    if len(value) > _MAX_FIELD_CHARS:
        expected = f"a form field name of at most {_MAX_FIELD_CHARS} characters"
        raise Invalid("field name too long for the upload probe", expected)
    return value


def _method(allowed: Sequence[str]) -> Converter[str]:
    expected = f"an HTTP method, {one_of(allowed)}"

    def convert(context: Context, node: Node, keypath: str) -> str:
        value = string(node, expected).upper()
        if value not in allowed:
            raise Invalid("unsupported HTTP method", expected)
        return value

    return convert


def _header_rule(context: Context, node: Node, keypath: str) -> str:
    expected = "a header name, or 'Name: value', such as X-Content-Type-Options: nosniff"
    value = string(node, expected)
    name, _, _ = value.partition(":")
    if not HEADER_NAME.fullmatch(name.strip()):
        raise Invalid("not a valid header name", expected)
    return value


_profile = choice(_PROFILES, "profile")
_key_format = choice(_KEY_FORMATS, "key format")
_names = list_of(non_empty_text, "non-empty strings")


def _meta(mapping: MappingReader) -> Meta:
    """The owner, expected result and rollback note of an entry."""
    kwargs: dict[str, Any] = {}
    for name in META_KEYS:
        mapping.put(kwargs, name, non_empty_text)
    return Meta(**kwargs)


def _check(
    factory: Callable[..., _T],
    fields: Mapping[str, Converter[Any]],
    required: Mapping[str, str] | None = None,
    *,
    then: Callable[[MappingReader, dict[str, Any]], None] | None = None,
) -> Converter[_T]:
    """A check's section or entry: its *fields*, then its owner, expected result and rollback
    note (``meta``); *then* judges the whole."""

    def finish(mapping: MappingReader, kwargs: dict[str, Any]) -> None:
        kwargs["meta"] = _meta(mapping)
        if then is not None:
            then(mapping, kwargs)

    return section(factory, fields, required, more=META_KEYS, finish=finish)


_health = _check(
    HealthCheckConfig,
    {
        "path": url_path,
        "expect_status": http_status,
        "expect_json": json_object,
        "max_latency": duration_value(positive=True),
    },
)


_header_rules = list_of(_header_rule, "header names or 'Name: value' rules")
_HEADERS_PATH_EXPECTED = (
    "a path starting with '/', or a mapping {path: ..., profile: ..., require: [...], "
    "forbid: [...]}"
)


_headers_path_entry = section(
    HeadersPathConfig,
    {"path": url_path, "profile": _profile, "require": _header_rules, "forbid": _header_rules},
    {"path": PATH_EXPECTED},
)


def _headers_path(context: Context, node: Node, keypath: str) -> HeadersPathConfig:
    """One ``headers.paths`` entry: a path, or a path with rules of its own."""
    if node_kind(node) == "scalar":
        return HeadersPathConfig(url_path(context, node, keypath))
    if node_kind(node) != "mapping":
        raise Invalid(f"wrong type ({type_name(node)})", _HEADERS_PATH_EXPECTED)
    return _headers_path_entry(context, node, keypath)


_header_paths = list_of(
    _headers_path, f"entries, each {_HEADERS_PATH_EXPECTED}", non_empty=True, unique="path"
)


_headers = _check(
    HeadersCheckConfig,
    {
        "paths": _header_paths,
        "require": _header_rules,
        "forbid": _header_rules,
        "profile": _profile,
    },
)


_secrets = _check(SecretsCheckConfig, {"paths": url_paths, "scan_bodies": boolean})


_role = section(
    RoleConfig,
    {"token_env": secret_env_name, "denied": url_paths},
    {"token_env": "the environment variable holding this role's token"},
)


def _roles(context: Context, node: Node, keypath: str) -> dict[str, RoleConfig]:
    expected = "a mapping of role names to {token_env: ..., denied: [...]}"
    if node_kind(node) != "mapping":
        raise Invalid(f"wrong type ({type_name(node)})", expected)
    items, ok = context.pairs(node, keypath)
    for name, key, _ in items:
        if not _ROLE_NAME.fullmatch(name):
            expected = "a role name of letters, digits, '_', '.' or '-'"
            context.record(
                key, join_key(keypath, name), "not a valid role name", show_node(key), expected
            )
            ok = False
    results = [context.attempt(_role, value, join_key(keypath, name)) for name, _, value in items]
    roles = all_or_recorded(results)
    if not ok:
        raise Recorded
    return dict(zip((name for name, _, _ in items), roles, strict=True))


def _something_to_check(mapping: MappingReader, kwargs: dict[str, Any]) -> None:
    if not mapping.failed and not kwargs.get("protected") and not kwargs.get("roles"):
        mapping.error(
            mapping.node,
            mapping.keypath,
            "nothing to check",
            show_node(mapping.node),
            "protected paths or roles (or permissions: false)",
        )


_permissions = _check(
    PermissionsCheckConfig, {"protected": url_paths, "roles": _roles}, then=_something_to_check
)


_uploads = _check(
    UploadsCheckConfig,
    {
        "path": url_path,
        "field": _form_field,
        "max_bytes": _upload_size,
        "method": _method(_UPLOAD_METHODS),
    },
    {"path": PATH_EXPECTED, "max_bytes": _UPLOAD_SIZE_EXPECTED},
)


_ENTRY_REQUIRED = {"method": f"an HTTP method, {one_of(_HTTP_METHODS)}", "path": PATH_EXPECTED}

_retry_safe = _check(
    RetrySafeEntry,
    {
        "method": _method(_HTTP_METHODS),
        "path": url_path,
        "json": json_value,
        "idempotency_header": header_name,
        "key_format": _key_format,
        "conflict_status": list_of(http_status, "HTTP statuses", non_empty=True),
        "ignore_fields": _names,
    },
    _ENTRY_REQUIRED,
)


_input = _check(
    InputEntry,
    {
        "method": _method(_HTTP_METHODS),
        "path": url_path,
        "json": json_value,
        "expect_status": http_status,
        "mentions": _names,
    },
    _ENTRY_REQUIRED,
)


_logging = _check(
    LoggingCheckConfig,
    {
        "command": command,
        "paths": list_of(url_path, "paths starting with '/'", non_empty=True, unique=True),
        "within": duration_value(positive=True),
    },
    {"command": COMMAND_EXPECTED},
)


_tls = _check(
    TlsCheckConfig,
    {"min_days": integer_in(0, 3650), "min_version": choice(TLS_VERSIONS, "TLS version")},
)


checks_section = section(
    ChecksConfig,
    {
        "health": switch(_health, HealthCheckConfig, "path, expect_status..."),
        "headers": switch(_headers, HeadersCheckConfig, "paths, require..."),
        "secrets": switch(_secrets, SecretsCheckConfig, "paths, scan_bodies"),
        "permissions": switch(_permissions, None, "protected and/or roles"),
        "uploads": switch(_uploads, None, "path and max_bytes"),
        "retry_safe": entry_list(_retry_safe, "{method: ..., path: ...} entries"),
        "inputs": entry_list(_input, "{method: ..., path: ...} entries"),
        "logging": switch(_logging, None, "command and paths"),
        "tls": switch(_tls, TlsCheckConfig, "min_days, min_version"),
    },
)
