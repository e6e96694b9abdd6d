"""Writing the rehearsal's report files: atomically, whatever text they hold, naming the path.

A report is written from text that came from everywhere (test names, assertion messages,
server bodies), and Python text may hold lone surrogates (``os.fsdecode(b"\\xff")`` gives
``"\\udcff"``) that UTF-8 cannot encode. Such characters are written as their backslash
escape (``\\udcff``), which inside a JSON string is also the JSON escape of that character:
the report stays valid JSON, and no text can keep it from being written.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["append_text", "write_atomically"]

# Every file the rehearsal writes is created with this mode; the kernel applies the umask, as
# it does for pytest's JUnit file (open(path, "w")), so both get the same permissions.
_CREATE_MODE = 0o666
_NAME_ATTEMPTS = 100


def write_atomically(path: Path, text: str) -> None:
    """Write *text* to a temporary file beside *path*, then rename it over *path*.

    A run killed half-way leaves either the old file or none: never a truncated report
    that a CI gate could read as valid. The file gets mode ``0666 & ~umask``. Raises
    :class:`OSError` whose ``filename`` is *path* when the file cannot be written (a full
    disk, a file size limit, a missing permission).
    """
    data = _encoded(text)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = _create_beside(path)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise _naming(exc, path) from exc


def append_text(path: Path, text: str) -> None:
    """Append *text* to *path* (created with mode ``0666 & ~umask`` when missing).

    For files the rehearsal adds to rather than owns, such as ``$GITHUB_STEP_SUMMARY``.
    Like :func:`write_atomically` it writes any text and raises :class:`OSError` naming
    *path*.
    """
    data = _encoded(text)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, _CREATE_MODE)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
    except OSError as exc:
        raise _naming(exc, path) from exc


def _encoded(text: str) -> bytes:
    return text.encode("utf-8", errors="backslashreplace")


def _create_beside(path: Path) -> tuple[int, Path]:
    """A new, empty file ``.<name>.<random>.tmp`` in *path*'s directory, open for writing.

    Not :func:`tempfile.mkstemp`: it creates files with mode 0600 whatever the umask says.
    """
    attempts = 0
    while True:
        candidate = path.with_name(f".{path.name}.{os.urandom(8).hex()}.tmp")
        try:
            return os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _CREATE_MODE), candidate
        except FileExistsError:
            attempts += 1
            if attempts >= _NAME_ATTEMPTS:
                raise


def _naming(exc: OSError, path: Path) -> OSError:
    """*exc* as an error about *path* (the same errno, so the same subclass)."""
    if exc.filename == str(path):
        return exc
    return OSError(exc.errno, exc.strerror or str(exc), str(path))
