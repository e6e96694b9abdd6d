"""``${NAME}`` in ``rehearsal.yaml``: environment references, replaced before validation.

:func:`interpolate` replaces ``${NAME}`` / ``${NAME:-default}`` in every string value of the
node tree before it is validated, so every converter sees the values the rehearsal will use;
a reference that cannot be replaced is recorded at its value's line, and the value is muted
(:meth:`.config_nodes.Context.unresolved`): what else is wrong with it is moot.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .config_nodes import STR, Context, join_key, node_kind

if TYPE_CHECKING:
    from yaml.nodes import Node

__all__ = ["interpolate"]

# $$, ${NAME}, ${NAME:-default}, or a "${" that is none of these (malformed).
_REFERENCE = re.compile(
    r"\$(?:(?P<dollar>\$)|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}|(?P<bad>\{))"
)
_REFERENCE_EXPECTED = "${NAME} or ${NAME:-default} (NAME of letters, digits and _), or $$ for a $"


def interpolate(context: Context, node: Node, keypath: str = "") -> None:
    """Replace environment references in every string value under *node*, in place.

    ``${NAME}`` becomes the variable's value and ``${NAME:-default}`` its value or, when it
    is unset or empty, the default; ``$$`` is a literal ``$``; a bare ``$NAME`` (or any other
    ``$``) stays as written. Every unset variable without a default, and every malformed
    ``${``, is recorded at its value's line; keys are never interpolated.
    """
    kind = node_kind(node)
    if kind == "mapping":
        for key, value in node.value:
            name = key.value if node_kind(key) == "scalar" else "?"
            interpolate(context, value, join_key(keypath, str(name)))
    elif kind == "sequence":
        for index, item in enumerate(node.value):
            interpolate(context, item, f"{keypath}[{index}]")
    elif node.tag == STR and "$" in node.value:
        problems: list[tuple[str, str]] = []

        def replace(match: re.Match[str]) -> str:
            if match["dollar"]:
                return "$"
            name = match["name"]
            if name is None:
                problems.append(("malformed ${...} reference", _REFERENCE_EXPECTED))
                return match.group(0)
            value = context.environ.get(name)
            if match["default"] is not None:
                return value or match["default"]
            if value is None:
                problems.append(
                    (
                        f"environment variable {name} is not set",
                        f"{name} set in the environment, or a default: ${{{name}:-value}}",
                    )
                )
                return match.group(0)
            return value

        replaced = _REFERENCE.sub(replace, node.value)
        if problems:
            context.unresolved(node, keypath, list(dict.fromkeys(problems)))
        else:
            node.value = replaced
