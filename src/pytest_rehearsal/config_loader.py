"""Reading ``rehearsal.yaml`` into a :class:`~.config.RehearsalConfig`, every problem at once.

:func:`load_config` reads the file strictly (:mod:`.config_yaml`), replaces ``${NAME}``
references in its string values (:mod:`.config_interpolation`), then validates the node
tree section by section, collecting every problem so that all are reported together, one
per line, as ``<file>:<line>:<col>: <key path>: <problem>; found <value>, expected <what>``.

The schema is split by what it describes: the top level and its small sections (``auth``,
``defaults``, ``accept``) are here; ``checks:`` is in :mod:`.config_checks`, ``deploy:`` and
``rollback:`` in :mod:`.config_release`, the staging URL and the production patterns in
:mod:`.config_urls`, commands in :mod:`.config_commands`, and the values several sections
share in :mod:`.config_values`. All of them are built on the reader of :mod:`.config_nodes`
and the generic converters of :mod:`.config_types`. The URL and command rules hold for the
command line and the environment too: the settings call :mod:`.config_urls` and
:mod:`.config_commands` for those.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .accept import refusal
from .checks import BUILTIN
from .config import AcceptEntry, AuthConfig, Defaults, RehearsalConfig
from .config_checks import checks_section
from .config_interpolation import interpolate
from .config_nodes import (
    NULL,
    STR,
    Context,
    Invalid,
    MappingReader,
    Recorded,
    node_kind,
    section,
    show_node,
    type_name,
)
from .config_release import deploy_section, rollback_section
from .config_types import duration_value, integer_in, list_of, non_empty_text, string
from .config_urls import production_patterns, staging_url_value
from .config_values import HEADER_NAME, header_name, local_path, secret_env_name
from .config_yaml import TAG, compose, read_config_text

if TYPE_CHECKING:
    from yaml.nodes import Node

__all__ = ["load_config", "parse_config"]


def load_config(path: Path, environ: Mapping[str, str] | None = None) -> RehearsalConfig:
    """Read, parse and validate the config file at *path*.

    ``${NAME}`` in its values refers to *environ* (default: ``os.environ``). Raises
    :class:`ConfigError` naming the path when the file is missing, a directory or otherwise
    not a regular file, unreadable, larger than 64 KiB, not UTF-8, or invalid.
    """
    return parse_config(read_config_text(path), path, environ)


def parse_config(
    text: str, path: Path, environ: Mapping[str, str] | None = None
) -> RehearsalConfig:
    """Parse and validate config *text*; *path* is named in messages and anchors ``cwd``.

    ``${NAME}`` and ``${NAME:-default}`` in string values are taken from *environ* (default:
    ``os.environ``). Raises :class:`ConfigError` listing every problem found, one per line.
    """
    source = str(path)
    root = compose(text, source)

    # abspath, not resolve(): relative paths in the file are relative to where the user sees it.
    context = Context(source, Path(os.path.abspath(path)), environ)
    if root is None:
        context.record_at(1, 1, "", *_TOP_LEVEL_EMPTY)
        raise context.failure()
    interpolate(context, root)
    try:
        config = context.convert(_top_level, root, "")
    except Recorded:
        raise context.failure() from None
    if context.errors:  # an unset variable in a value that is otherwise fine
        raise context.failure()
    return config


_retries = integer_in(0, 100)


def _scheme(context: Context, node: Node, keypath: str) -> str | None:
    expected = "an auth scheme such as Bearer, or null/'' for the raw token"
    if node_kind(node) == "scalar" and node.tag == NULL:
        return None
    value = string(node, expected)
    if not value:
        return None
    if not HEADER_NAME.fullmatch(value):
        raise Invalid("not a valid auth scheme", expected)
    return value


_ACCEPT_CHECK_EXPECTED = (
    "the item id of a built-in check without 'rehearsal::', such as headers[/] "
    "('*' matches any text)"
)
_DATE_EXPECTED = "a date such as 2027-01-31 (the last day the entry applies)"
_ACCEPT_ENTRY_EXPECTED = "{check: ..., finding: ..., reason: ..., owner: ..., until: ...} entries"
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _accepted_check(context: Context, node: Node, keypath: str) -> str:
    # Node ids are copied from pytest's output, prefix included: the prefix is implied.
    value = non_empty_text(context, node, keypath).strip().removeprefix("rehearsal::")
    problem = refusal(value, BUILTIN)
    if problem is not None:
        raise Invalid(problem, _ACCEPT_CHECK_EXPECTED)
    return value


def _date(context: Context, node: Node, keypath: str) -> date:
    # Unquoted, YAML reads 2027-01-31 as a timestamp; quoted, as a string: both are fine.
    if node_kind(node) != "scalar" or node.tag not in (STR, TAG + "timestamp"):
        raise Invalid(f"wrong type ({type_name(node)})", _DATE_EXPECTED)
    text = str(node.value).strip()
    try:
        if _ISO_DATE.fullmatch(text):
            return date.fromisoformat(text)
    except ValueError:
        raise Invalid("not a valid date", _DATE_EXPECTED) from None
    raise Invalid("not a date", _DATE_EXPECTED)


def _where(mapping: MappingReader, kwargs: dict[str, Any]) -> None:
    """Where an ``accept`` entry is written, for the notes that name it."""
    kwargs["where"] = f"{mapping.context.source}:{mapping.node.start_mark.line + 1}"


_accept_entry = section(
    AcceptEntry,
    {
        "check": _accepted_check,
        "finding": non_empty_text,
        "reason": non_empty_text,
        "owner": non_empty_text,
        "until": _date,
    },
    {
        "check": _ACCEPT_CHECK_EXPECTED,
        "finding": "text the finding's message contains, such as Content-Security-Policy",
        "reason": "why the finding may ship for now, such as a ticket",
        "owner": "who fixes it, such as '@web'",
        "until": _DATE_EXPECTED,
    },
    finish=_where,
)


_auth = section(
    AuthConfig,
    {"header": header_name, "scheme": _scheme, "token_env": secret_env_name},
    {"token_env": "the environment variable holding the token, such as STAGING_TOKEN"},
)


_defaults = section(
    Defaults,
    {
        "owner": non_empty_text,
        "timeout": duration_value(positive=True),
        "retries": _retries,
        "rollback_note": non_empty_text,
    },
)


_TOP_LEVEL_EXPECTED = "keys such as staging_url, checks and rollback"
_TOP_LEVEL_EMPTY = ("expected a mapping at top level", "an empty document", _TOP_LEVEL_EXPECTED)


def _file(mapping: MappingReader, kwargs: dict[str, Any]) -> None:
    kwargs["path"] = mapping.context.file


_top_level_mapping = section(
    RehearsalConfig,
    {
        "staging_url": staging_url_value,
        "production": production_patterns,
        "ca_bundle": local_path,
        "auth": _auth,
        "defaults": _defaults,
        "checks": checks_section,
        "deploy": deploy_section,
        "rollback": rollback_section,
        "accept": list_of(_accept_entry, _ACCEPT_ENTRY_EXPECTED),
    },
    finish=_file,
)


def _top_level(context: Context, node: Node, keypath: str) -> RehearsalConfig:
    if node_kind(node) != "mapping":
        found = "an empty document" if node.tag == NULL and not node.value else show_node(node)
        raise Invalid("expected a mapping at top level", _TOP_LEVEL_EXPECTED, found=found)
    return _top_level_mapping(context, node, keypath)
