"""The values several sections of ``rehearsal.yaml`` share: paths, statuses, names, files.

Converters in the manner of :mod:`.config_nodes` (``(context, node, keypath)``, raising
:class:`~.config_nodes.Invalid`), for values that mean the same wherever they are written: a
URL path of staging, an HTTP status, a header name, the name of an environment variable that
holds a secret, a local file. The names and words the sections check against live here too,
as do the keys every check (and the deploy) may carry about itself.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from .config_nodes import HIDDEN, Context, Invalid
from .config_types import integer_in, list_of, non_empty_text, string
from .redact import CREDENTIAL_WORDS

if TYPE_CHECKING:
    from yaml.nodes import Node

__all__ = [
    "CREDENTIAL_WORD",
    "ENV_EXPECTED",
    "ENV_NAME",
    "HEADER_NAME",
    "META_KEYS",
    "PATH_EXPECTED",
    "header_name",
    "http_status",
    "local_path",
    "secret_env_name",
    "url_path",
    "url_paths",
]

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 token
# Query parameters and options that carry credentials: the words redact.mask_url masks.
CREDENTIAL_WORD = re.compile(CREDENTIAL_WORDS, re.IGNORECASE)
_BAD_PATH_CHARS = re.compile(r"[\s\\\x00-\x1f\x7f]")

#: What a check (and the deploy) may say about itself: who owns it, what it expects, what to
#: do when it fails.
META_KEYS = ("owner", "expect", "rollback_note")
PATH_EXPECTED = "a path starting with '/', such as /health"
ENV_EXPECTED = "an environment variable name such as STAGING_TOKEN ([A-Za-z_][A-Za-z0-9_]*)"

http_status = integer_in(100, 599)


def url_path(context: Context, node: Node, keypath: str) -> str:
    value = string(node, PATH_EXPECTED)
    if not value.startswith("/"):
        raise Invalid("path does not start with '/'", PATH_EXPECTED)
    if value.startswith("//"):
        # An HTTP client reads "//host/x" as another host, and would send credentials there.
        raise Invalid("path starts with '//' (read as another host)", PATH_EXPECTED)
    if _BAD_PATH_CHARS.search(value):
        raise Invalid("path contains whitespace, backslashes or control characters", PATH_EXPECTED)
    return value


url_paths = list_of(url_path, "paths starting with '/'", unique=True)


def header_name(context: Context, node: Node, keypath: str) -> str:
    expected = "an HTTP header name such as Authorization"
    value = string(node, expected)
    if not HEADER_NAME.fullmatch(value):
        raise Invalid("not a valid header name", expected)
    return value


def secret_env_name(context: Context, node: Node, keypath: str) -> str:
    value = string(node, ENV_EXPECTED)
    if not ENV_NAME.fullmatch(value):
        # Someone may have pasted the token itself here: never echo it.
        raise Invalid("not an environment variable name", ENV_EXPECTED, found=HIDDEN)
    return value


def local_path(context: Context, node: Node, keypath: str) -> Path:
    value = non_empty_text(context, node, keypath)
    if "\x00" in value:
        raise Invalid("contains a NUL character", "a file system path")
    return Path(os.path.normpath(context.base / value))
