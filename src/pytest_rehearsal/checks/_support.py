"""Small pure helpers shared by the built-in checks (metadata, ids, verdicts, URLs, JSON)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from urllib.parse import urljoin, urlsplit

from ..config import Meta, RehearsalConfig
from ._base import Reply, Verdict

__all__ = [
    "combine",
    "entry_params",
    "is_html",
    "is_json",
    "meta_for",
    "not_idempotent",
    "origin",
    "resolve_location",
    "staging_path",
    "tag",
]


def meta_for(config: RehearsalConfig, meta: Meta) -> Meta:
    """An entry's metadata over the configured defaults (owner and rollback note)."""
    defaults = Meta(owner=config.defaults.owner, rollback_note=config.defaults.rollback_note)
    return meta.merged_over(defaults)


def entry_params(entries: Iterable[tuple[str, str]]) -> list[str]:
    """Item params ``METHOD /path`` for entries; a repeated one gets ``#2``, ``#3``, ..."""
    counts: dict[str, int] = {}
    params: list[str] = []
    for method, path in entries:
        base = f"{method.upper()} {path}"
        counts[base] = counts.get(base, 0) + 1
        params.append(base if counts[base] == 1 else f"{base}#{counts[base]}")
    return params


def combine(verdicts: Sequence[Verdict]) -> Verdict:
    """One verdict from several: every finding, then every note, in order."""
    return Verdict(
        findings=tuple(found for verdict in verdicts for found in verdict.findings),
        notes=tuple(note for verdict in verdicts for note in verdict.notes),
    )


def tag(verdict: Verdict, **properties: str) -> Verdict:
    """*verdict* with extra report properties (for example the ASVS requirement ids)."""
    return dataclasses.replace(verdict, properties={**verdict.properties, **properties})


def not_idempotent(reply: Reply) -> Reply:
    """*reply* whose probe is marked not idempotent: the evidence showed a repeat is unsafe."""
    return dataclasses.replace(reply, probe=dataclasses.replace(reply.probe, idempotent=False))


def is_json(reply: Reply) -> bool:
    """Whether the reply declares a JSON media type (``application/json``, ``*+json``)."""
    media = reply.media_type
    return media == "application/json" or media.endswith("+json")


def is_html(reply: Reply) -> bool:
    """Whether the reply is an HTML document, by its type or its first bytes."""
    if reply.media_type in {"text/html", "application/xhtml+xml"}:
        return True
    head = reply.body[:512].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html")) or b"<body" in head


def origin(url: str) -> tuple[str, str, int | None]:
    """Scheme, host and port of *url* (default ports made explicit), for same-origin tests."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port


def resolve_location(reply: Reply) -> str | None:
    """The absolute target of a redirect reply, or None when it has no ``Location``."""
    location = reply.header("Location")
    return urljoin(reply.url, location.strip()) if location else None


def staging_path(reply: Reply, target: str) -> str | None:
    """*target* (an absolute URL) as a probe path, when it lies under the staging URL.

    The staging base is what remains of ``reply.url`` once its probe path is taken off, so a
    staging URL with a base path (``https://host/app``) keeps working.
    """
    if origin(target) != origin(reply.url):
        return None
    parts = urlsplit(target)
    full = parts.path or "/"
    if parts.query:
        full += f"?{parts.query}"
    sent_path = urlsplit(reply.url).path
    probe_path = reply.probe.path.split("?", 1)[0]
    prefix = sent_path[: len(sent_path) - len(probe_path)] if sent_path.endswith(probe_path) else ""
    prefix = prefix.rstrip("/")
    if not full.startswith(prefix + "/"):
        return None
    return full[len(prefix) :]
