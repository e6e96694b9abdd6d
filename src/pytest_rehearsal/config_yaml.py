"""Reading ``rehearsal.yaml`` strictly: a YAML node tree, or a usage error at its line.

The file must be a regular UTF-8 file of at most 64 KiB; it is composed into nodes (never
constructed into Python objects) by a :class:`yaml.SafeLoader` subclass that refuses anchors,
aliases, non-standard tags and deep nesting. Nodes keep their line, column and source text,
which :mod:`.config_nodes` and the schema (the modules :mod:`.config_loader` names) need.
Every problem is reported in one format: ``<file>:<line>:<col>: <key path>: <problem>;
found <value>, expected <what>``.

``yaml`` is imported inside functions only: pytest imports the plugin on every run.
"""

from __future__ import annotations

import functools
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from .activation import MAX_CONFIG_BYTES
from .errors import ConfigError
from .problems import SURROGATE_EXPECTED, SURROGATE_PROBLEM, format_problem, lone_surrogate

if TYPE_CHECKING:
    from yaml import MarkedYAMLError, SafeLoader
    from yaml.nodes import Node

__all__ = [
    "SHOW_WIDTH",
    "TAG",
    "clip",
    "compose",
    "read_config_text",
]

# Deeper than any sane config; stops a "[[[[..." file from exhausting the recursive composer.
_MAX_DEPTH = 32
SHOW_WIDTH = 60
TAG = "tag:yaml.org,2002:"
_STANDARD_TAGS = frozenset(
    TAG + name for name in ("str", "int", "float", "bool", "null", "seq", "map")
)


# Half of a UTF-16 pair: from a YAML escape ("\ud800"), or a byte that is not UTF-8 in a
# command-line value or a file name (Python decodes those with surrogateescape). Such text
# cannot be encoded, so it would break every report it reached.
class _Position(Protocol):
    """A yaml mark (pure-Python or libyaml): 0-based line and column."""

    line: int
    column: int


class _Refused(Exception):
    """Raised by the composer for YAML features this config refuses (aliases, tags, depth)."""

    def __init__(
        self, mark: _Position | None, keypath: str, problem: str, found: str, expected: str
    ) -> None:
        super().__init__(problem)
        self.mark = mark
        self.keypath = keypath
        self.problem = problem
        self.found = found
        self.expected = expected


def read_config_text(path: Path) -> str:
    """The text of the config file at *path*.

    Raises :class:`ConfigError` naming the path when the file is missing, a directory or
    otherwise not a regular file, unreadable, larger than 64 KiB, or not UTF-8.
    """
    source = str(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ConfigError(
            format_problem(source, "", "no such file", "nothing at that path", "a YAML file")
        ) from None
    except OSError as exc:
        raise ConfigError(_os_problem(source, exc)) from None
    if stat.S_ISDIR(info.st_mode):
        raise ConfigError(format_problem(source, "", "is a directory", repr(source), "a YAML file"))
    if not stat.S_ISREG(info.st_mode):
        # A FIFO or device would block or never end.
        raise ConfigError(
            format_problem(source, "", "not a regular file", repr(source), "a YAML file")
        )
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(_os_problem(source, exc)) from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(_too_large(source, f"{info.st_size} bytes"))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(
            format_problem(
                f"{source}:{line}:{column}",
                "",
                "not valid UTF-8",
                f"byte 0x{data[exc.start]:02x}",
                "a UTF-8 text file",
            )
        ) from None
    return text


def compose(text: str, source: str) -> Node | None:
    """The YAML node tree of config *text* (``None`` for an empty document).

    Only plain mappings, lists and scalars with the standard tags are composed; aliases,
    anchors, other tags, deep nesting and syntax errors raise :class:`ConfigError` at
    ``<source>:<line>:<col>``.
    """
    import yaml

    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(_too_large(source, f"{size} bytes"))
    loader: SafeLoader | None = None
    try:
        loader = _strict_loader(yaml)(text)
        root = loader.get_single_node()
    except _Refused as exc:
        where = _where(source, exc.mark)
        raise ConfigError(
            format_problem(where, exc.keypath, exc.problem, exc.found, exc.expected)
        ) from None
    except yaml.MarkedYAMLError as exc:
        keypath = getattr(loader, "error_path", None) or ""
        raise ConfigError(_syntax_error(source, keypath, exc)) from None
    except yaml.reader.ReaderError as exc:
        where = _where_in_text(source, text, exc.position)
        found = f"character U+{exc.character:04X}" if isinstance(exc.character, int) else "?"
        raise ConfigError(
            format_problem(where, "", "special characters are not allowed", found, "printable text")
        ) from None
    finally:
        if loader is not None:
            loader.dispose()
    return root


def _where(source: str, mark: _Position | None) -> str:
    if mark is None:
        return f"{source}:1:1"
    return f"{source}:{mark.line + 1}:{mark.column + 1}"


def _where_in_text(source: str, text: str, position: int) -> str:
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    return f"{source}:{line}:{column}"


def _too_large(source: str, size: str) -> str:
    return format_problem(
        source,
        "",
        f"config larger than {MAX_CONFIG_BYTES // 1024} KiB",
        size,
        f"a file of at most {MAX_CONFIG_BYTES // 1024} KiB",
    )


def _os_problem(source: str, exc: OSError) -> str:
    reason = exc.strerror or type(exc).__name__
    return format_problem(
        source, "", f"cannot read the file ({reason})", repr(source), "a readable file"
    )


def _syntax_error(source: str, keypath: str, exc: MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or "invalid YAML"
    if exc.context:
        started = ""
        context_mark = exc.context_mark
        if context_mark is not None and mark is not None and context_mark.line != mark.line:
            started = f" (started at line {context_mark.line + 1})"
        problem = f"{exc.context}{started}, {problem}"
    if "'\\t'" in problem:
        expected = "spaces for indentation (YAML does not allow tabs)"
    elif "'@'" in problem or "'`'" in problem:
        expected = "a quoted value: '@' and '`' cannot start a plain YAML value"
    else:
        expected = "valid YAML (check the indentation, colons and quotes)"
    found = "unparsable text"
    return format_problem(
        _where(source, mark), keypath, f"YAML syntax error: {problem}", found, expected
    )


def clip(text: str) -> str:
    """*text* cut to what a message shows of a value."""
    return text if len(text) <= SHOW_WIDTH else text[: SHOW_WIDTH - 3] + "..."


@functools.cache
def _strict_loader(module: object) -> type[SafeLoader]:
    """The SafeLoader subclass, built on first use so that yaml is imported only then.

    Cached per yaml *module* object: its exceptions must be the ones :func:`compose`
    catches, even after something (pytester's in-process runs) made Python import yaml anew.
    """
    import yaml
    from yaml.events import AliasEvent, CollectionStartEvent, Event, NodeEvent, ScalarEvent
    from yaml.nodes import ScalarNode

    class StrictLoader(yaml.SafeLoader):
        """Composes nodes only; refuses anchors, aliases, non-standard tags, deep nesting
        and strings (values and keys) that hold lone surrogates."""

        def __init__(self, stream: str) -> None:
            super().__init__(stream)
            self.key_path: list[str] = []
            self.error_path: str | None = None

        def joined_path(self) -> str:
            return "".join(self.key_path).lstrip(".")

        def compose_node(self, parent: Node | None, index: object) -> Node | None:
            if isinstance(index, ScalarNode):
                segment = f".{index.value}"
            elif isinstance(index, int):
                segment = f"[{index}]"
            else:
                segment = ""  # the document root, or a mapping key
            self.key_path.append(segment)
            try:
                self.refuse_unsafe(self.peek_event())  # type: ignore[no-untyped-call]
                return super().compose_node(parent, index)  # type: ignore[arg-type]
            except yaml.YAMLError:
                if self.error_path is None:
                    self.error_path = self.joined_path()
                raise
            finally:
                self.key_path.pop()

        def refuse_unsafe(self, event: Event) -> None:
            mark = event.start_mark
            if isinstance(event, AliasEvent):
                raise _Refused(
                    mark,
                    self.joined_path(),
                    "aliases are not allowed (they can expand a small file into a huge one)",
                    f"*{event.anchor}",
                    "each value written out in full",
                )
            if isinstance(event, NodeEvent) and event.anchor is not None:
                raise _Refused(
                    mark,
                    self.joined_path(),
                    "anchors and aliases are not allowed",
                    f"&{event.anchor}",
                    "each value written out in full",
                )
            tag = event.tag if isinstance(event, (ScalarEvent, CollectionStartEvent)) else None
            if tag is not None and tag not in _STANDARD_TAGS:
                shown = "!!" + tag[len(TAG) :] if tag.startswith(TAG) else tag
                raise _Refused(
                    mark,
                    self.joined_path(),
                    f"tag {clip(shown)} is not allowed",
                    clip(repr(shown)),
                    "plain values (only the tags !!str, !!int, !!float, !!bool, !!null, "
                    "!!seq and !!map)",
                )
            if isinstance(event, ScalarEvent) and (where := lone_surrogate(event.value)):
                raise _Refused(
                    mark, self.joined_path(), SURROGATE_PROBLEM, where, SURROGATE_EXPECTED
                )
            if len(self.key_path) > _MAX_DEPTH:
                raise _Refused(
                    mark,
                    self.joined_path(),
                    f"nested more than {_MAX_DEPTH} levels deep",
                    "deeper nesting",
                    f"at most {_MAX_DEPTH} levels",
                )

    return StrictLoader
