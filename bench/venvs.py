"""The virtual environments of the benchmark: the plugin and each peer in its own.

Each lives in ``bench/.venvs/<name>`` (gitignored), made with ``python -m venv`` and pip from
PyPI, and is reused while its requirements are unchanged (a stamp file records them).
Isolation matters: every pytest plugin installed in an environment is imported by every
pytest run in it, so a shared environment would charge each suite for the others' plugins.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Venv", "VenvFailed", "ensure"]

STAMP = ".bench-stamp"
INSTALL_TIMEOUT = 600.0


class VenvFailed(RuntimeError):
    """The environment could not be made; the message has pip's last lines."""


@dataclass(frozen=True)
class Venv:
    """A ready environment."""

    name: str
    path: Path

    @property
    def python(self) -> str:
        return str(self.path / "bin" / "python")


def _fingerprint(requirements: Sequence[str], watched: Sequence[Path]) -> str:
    digest = hashlib.sha256("\n".join(requirements).encode())
    for path in watched:
        digest.update(path.read_bytes())
    return f"{sys.version}\n{digest.hexdigest()}\n"


def ensure(
    root: Path, name: str, requirements: Sequence[str], watched: Sequence[Path] = ()
) -> Venv:
    """The venv *name* under *root* with *requirements*, made or remade when they changed.

    *watched* files (``pyproject.toml`` for an editable install) also invalidate it.
    Raises :class:`VenvFailed` when ``venv`` or pip fails.
    """
    path = root / name
    venv = Venv(name, path)
    stamp = path / STAMP
    wanted = _fingerprint(requirements, watched)
    if stamp.exists() and stamp.read_text(encoding="utf-8") == wanted:
        return venv
    shutil.rmtree(path, ignore_errors=True)
    # The base interpreter, not this venv's: the new venv must not inherit its packages.
    base = getattr(sys, "_base_executable", sys.executable)
    steps = [
        [base, "-m", "venv", str(path)],
        [
            venv.python,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            *requirements,
        ],
    ]
    for argv in steps:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False
        )
        if done.returncode != 0:
            shutil.rmtree(path, ignore_errors=True)
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-8:])
            raise VenvFailed(f"{' '.join(argv[2:5])} ... failed for {name}:\n{tail}")
    stamp.write_text(wanted, encoding="utf-8")
    return venv
