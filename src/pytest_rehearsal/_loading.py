"""The rehearsal's own modules load as Python loads them, not through pytest's assert rewriter.

pytest rewrites the ``assert`` statements of every module of a plugin's distribution, so that
a plugin's test helpers explain their failures as tests do. The rehearsal's modules hold no
assert a test relies on (a failed check is a finding, never an AssertionError), and rewriting
them costs every active run: pytest's loader reads and hashes each source again and
unmarshals its own cached copy from a file object, some 6 % of a rehearsal's start-up; where it
cannot write that cache (a read-only site-packages, ``PYTHONDONTWRITEBYTECODE=1`` as in many
container images) it parses and rewrites the whole engine on every run, 0.15-0.3 s more.

:class:`StandardLoading`, ahead of pytest's finder on ``sys.meta_path`` for the duration of a
run, hands these modules to Python's own path finder (its ``.pyc`` files, written by the
installer). It answers for no other module: the team's tests and conftests are rewritten as
always.
"""

from __future__ import annotations

import importlib.machinery
import sys
from collections.abc import Callable, Sequence
from types import ModuleType

__all__ = ["StandardLoading", "load_own_modules_plainly"]

_OWN_PREFIX = f"{__package__}."


class StandardLoading:
    """A ``sys.meta_path`` finder for the rehearsal's submodules: Python's standard one."""

    @staticmethod
    def find_spec(
        name: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if not name.startswith(_OWN_PREFIX):
            return None
        return importlib.machinery.PathFinder.find_spec(name, path, target)


def load_own_modules_plainly() -> Callable[[], None]:
    """Put :class:`StandardLoading` first on ``sys.meta_path``; returns what takes it off.

    Nested runs (``pytester``) share one finder: only the call that put it there removes it.
    """
    if StandardLoading in sys.meta_path:
        return lambda: None
    sys.meta_path.insert(0, StandardLoading)

    def remove() -> None:
        if StandardLoading in sys.meta_path:
            sys.meta_path.remove(StandardLoading)

    return remove
