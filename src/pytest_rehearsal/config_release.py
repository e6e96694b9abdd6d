"""The ``deploy:`` and ``rollback:`` sections of ``rehearsal.yaml``: the release's lifecycle.

The team's commands (:mod:`.config_commands`), the working directory and environment they
run in, their timeouts; what verifies the rollback (``verify``: a path, the answer expected
and the fields tracked from the baseline), the restore and when it runs, the watch and the
recovery budgets. What holds across keys (``max_outage`` needs the watch; ``note`` and
``rollback_note`` are one field) is checked beside the table of keys.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .config import DeployConfig, RollbackConfig, VerifyConfig, WatchConfig
from .config_commands import COMMAND_EXPECTED, command, environment
from .config_nodes import Context, Invalid, MappingReader, section, show_node
from .config_types import (
    choice,
    duration_value,
    json_object,
    list_of,
    non_empty_text,
    string,
    switch,
)
from .config_values import META_KEYS, http_status, local_path, url_path
from .units import format_duration

if TYPE_CHECKING:
    from yaml.nodes import Node

__all__ = ["deploy_section", "rollback_section"]

_TRACK_EXPECTED = "dotted paths into the JSON body, such as version or build.sha"
_MIN_WATCH_INTERVAL = 0.1  # each poll is a request to staging


def _track_path(context: Context, node: Node, keypath: str) -> str:
    value = string(node, _TRACK_EXPECTED)
    if not value or any(not part.strip() for part in value.split(".")):
        raise Invalid("not a dotted path (an empty part)", _TRACK_EXPECTED)
    return value


_track = list_of(_track_path, _TRACK_EXPECTED, unique=True)


_verify = section(
    VerifyConfig,
    {
        "path": url_path,
        "expect_status": http_status,
        "expect_json": json_object,
        "track": _track,
        "within": duration_value(positive=False),
    },
)


def _watch_interval(context: Context, node: Node, keypath: str) -> float:
    seconds = duration_value(positive=True)(context, node, keypath)
    if seconds < _MIN_WATCH_INTERVAL:
        expected = f"at least {format_duration(_MIN_WATCH_INTERVAL)} (each poll is a request)"
        raise Invalid("interval too short", expected)
    return seconds


_watch = section(WatchConfig, {"interval": _watch_interval})
_restore_after = choice(("always", "verified"), "restore_after")


def _rollback_rules(mapping: MappingReader, kwargs: dict[str, Any]) -> None:
    """What holds across ``rollback``'s keys: max_outage needs the watch, and note and
    rollback_note are one field, given once."""
    if "max_outage" in mapping.keys and kwargs.get("watch", WatchConfig()) is None:
        mapping.error(
            mapping.keys["max_outage"],
            mapping.path("max_outage"),
            "max_outage needs the watch, and watch is false",
            show_node(mapping.values["max_outage"]),
            "watch: {interval: ...} (or no max_outage)",
        )
    if "note" in mapping.keys and "rollback_note" in mapping.keys:
        later = max(("note", "rollback_note"), key=lambda name: mapping.keys[name].start_mark.index)
        mapping.error(
            mapping.keys[later],
            mapping.path(later),
            "both note and rollback_note given (they are the same field)",
            show_node(mapping.values[later]),
            "only one of them",
        )
    mapping.put(kwargs, "rollback_note", non_empty_text, field="note")


rollback_section = section(
    RollbackConfig,
    {
        "command": command,
        "cwd": local_path,
        "env": environment,
        "timeout": duration_value(positive=True),
        "verify": switch(_verify, VerifyConfig, "path, expect_status, within"),
        "restore": command,
        "restore_after": _restore_after,
        "watch": switch(_watch, WatchConfig, "interval"),
        "max_recovery": duration_value(positive=True),
        "max_outage": duration_value(positive=False),
        "owner": non_empty_text,
        "expect": non_empty_text,
        "note": non_empty_text,
    },
    more=("rollback_note",),
    finish=_rollback_rules,
)


deploy_section = section(
    DeployConfig,
    {
        "command": command,
        "timeout": duration_value(positive=True),
        "within": duration_value(positive=True),
        **dict.fromkeys(META_KEYS, non_empty_text),
    },
    {"command": COMMAND_EXPECTED},
)
