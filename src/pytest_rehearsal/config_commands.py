"""Commands: the team's deploy, rollback, restore and log commands, and their environment.

A command is an argv list, or a string split like a shell would split it; it is never run by
a shell, so a string only a shell could run (``a && b``, ``$(...)``) is refused, and so is a
secret passed as an argument (``--token=...``: every local user can read argv). The same
rules hold for ``--rollback-command`` (:func:`split_command`) and for the file
(:func:`command`); :func:`environment` reads ``rollback.env``.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .config_nodes import (
    HIDDEN,
    STR,
    Context,
    Invalid,
    Recorded,
    all_or_recorded,
    join_key,
    node_kind,
    type_name,
)
from .config_types import string
from .config_values import CREDENTIAL_WORD, ENV_EXPECTED, ENV_NAME
from .config_yaml import clip
from .errors import ConfigError
from .problems import format_problem
from .redact import MASK

if TYPE_CHECKING:
    from yaml.nodes import Node

    from .config_nodes import Converter

__all__ = ["COMMAND_EXPECTED", "command", "environment", "split_command"]

COMMAND_EXPECTED = (
    "a command as a list of arguments or a string, such as ['./deploy.sh', 'rollback']"
)
_SECRET_OPTION = re.compile(r"--?[\w-]*(?:token|password|passwd|secret|api[-_]?key)", re.I)
# What a shell would read as an operator; a string command is never run by one.
_SHELL_OPERATORS = frozenset({";", "&&", "||", "|", "&", "<", ">", ">>"})
_NO_SHELL_EXPECTED = "a script that does it, or the list form such as ['./deploy.sh', 'rollback']"


def split_command(value: str | list[str], where: str) -> tuple[str, ...]:
    """Turn a command into argv: a list is taken as is, a string is split like a shell would.

    Nothing is ever run by a shell, so a string that only a shell could run (``a && b``,
    ``a | b``, ``$(...)``) is refused. Raises :class:`ConfigError` naming *where* for a shell
    operator, an unterminated quote, an empty command, an empty or non-string argument, or a
    secret passed as ``--token=...``.
    """
    try:
        if isinstance(value, str):
            return _split_string(value)
        if not isinstance(value, list):
            raise Invalid(f"wrong type ({type(value).__name__})", COMMAND_EXPECTED)
        for index, argument in enumerate(value):
            if not isinstance(argument, str):
                raise Invalid(
                    f"argument {index + 1} is not a string",
                    "every argument a string",
                    found=clip(repr(argument)),
                )
            _check_argument(argument, index)
        if not value:
            raise Invalid("empty command", COMMAND_EXPECTED, found="[]")
        return tuple(value)
    except Invalid as exc:
        found = exc.found if exc.found is not None else clip(repr(value))
        raise ConfigError(format_problem(where, "", exc.problem, found, exc.expected)) from None


def _check_argument(argument: str, index: int) -> None:
    if not argument:
        raise Invalid(f"argument {index + 1} is empty", "every argument a non-empty string")
    if "\x00" in argument:
        raise Invalid(
            f"argument {index + 1} contains a NUL character",
            "arguments without NUL characters",
            found=HIDDEN,
        )
    option, sep, value = argument.partition("=")
    if sep and value and _SECRET_OPTION.fullmatch(option):
        # argv is readable by every local user (/proc/*/cmdline) and shows up in error text.
        raise Invalid(
            f"argument {index + 1} passes a secret on the command line",
            "secrets passed through the environment (rollback.env or CI secret variables)",
            found=clip(repr(f"{option}={MASK}")),
        )


def _split_string(value: str) -> tuple[str, ...]:
    try:
        argv = shlex.split(value)
    except ValueError as exc:
        raise Invalid(
            f"cannot split the command ({exc})",
            f"balanced quotes; or {COMMAND_EXPECTED}",
            found=clip(repr(value)),
        ) from None
    if not argv:
        raise Invalid("empty command", COMMAND_EXPECTED, found=clip(repr(value)))
    operator = _shell_syntax(value, argv)
    if operator is not None:
        raise Invalid(
            f"shell syntax {operator!r} in a string command, which is split into arguments "
            "and never run by a shell",
            _NO_SHELL_EXPECTED,
            found=clip(repr(value)),
        )
    for index, argument in enumerate(argv):
        _check_argument(argument, index)
    return tuple(argv)


def _shell_syntax(value: str, argv: Sequence[str]) -> str | None:
    """The shell operator written as a word of its own in *value*, or ``$(`` / a backtick."""
    for marker in ("$(", "`"):
        if marker in value:
            return marker
    try:
        # Quotes stay in non-POSIX words, so a quoted '&&' (a real argument) is not an operator.
        words = shlex.split(value, posix=False)
    except ValueError:
        words = list(argv)
    return next((word for word in words if word in _SHELL_OPERATORS), None)


def command(context: Context, node: Node, keypath: str) -> tuple[str, ...]:
    if node_kind(node) == "scalar" and node.tag == STR:
        return _split_string(node.value)
    if node_kind(node) != "sequence":
        raise Invalid(f"wrong type ({type_name(node)})", COMMAND_EXPECTED)
    if not node.value:
        raise Invalid("empty command", COMMAND_EXPECTED)
    argv = [
        context.attempt(_argument(index), item, f"{keypath}[{index}]")
        for index, item in enumerate(node.value)
    ]
    return tuple(all_or_recorded(argv))


def _argument(index: int) -> Converter[str]:
    def convert(context: Context, node: Node, keypath: str) -> str:
        argument = string(node, "every argument a string")
        _check_argument(argument, index)
        return argument

    return convert


def environment(context: Context, node: Node, keypath: str) -> dict[str, str]:
    if node_kind(node) != "mapping":
        raise Invalid(f"wrong type ({type_name(node)})", "a mapping of variable names to strings")
    items, ok = context.pairs(node, keypath)
    results = [
        context.attempt(_variable(key), value, join_key(keypath, name))
        for name, key, value in items
    ]
    values = all_or_recorded(results)
    if not ok:
        raise Recorded
    return dict(zip((name for name, _, _ in items), values, strict=True))


def _variable(key: Node) -> Converter[str]:
    """One ``rollback.env`` entry: *key* must be a variable name, the value a string."""

    def convert(context: Context, node: Node, keypath: str) -> str:
        # Only the text counts for a name: `ON:` is a fine variable name, not a boolean.
        name = str(key.value)
        if not ENV_NAME.fullmatch(name):
            raise Invalid("not an environment variable name", ENV_EXPECTED, node=key)
        if CREDENTIAL_WORD.search(name) and not (node_kind(node) == "scalar" and node.tag == STR):
            # DB_PASSWORD: 12345678 is a secret typed unquoted: say what is wrong, not what it is.
            raise Invalid(f"wrong type ({type_name(node)})", "a string (quote it)", found=HIDDEN)
        text = string(node, "a string")
        if "\x00" in text:
            raise Invalid("contains a NUL character", "a string", found=HIDDEN)
        return text

    return convert
