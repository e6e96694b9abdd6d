"""Which of the rehearsal's own items a run selects, decided by the xdist controller itself.

Under xdist the controller collects nothing (the workers do), yet it runs the built-in checks
and the rollback itself, from the start of the session. It applies the selection the
contract names to those items exactly as a plain run would: ``--deselect`` prefixes, ``-k``
and ``-m``, through pytest's own implementations of them (the ``main`` and ``mark`` plugins'
``pytest_collection_modifyitems``), so a deselected check is never sent.
"""

from __future__ import annotations

import pytest

__all__ = ["select"]

# pytest's own plugins that deselect: "main" (--deselect), then "mark" (-k, -m).
_SELECTING_PLUGINS = ("main", "mark")


def select(items: list[pytest.Item], config: pytest.Config) -> list[pytest.Item]:
    """The items of *items* that ``--deselect``, ``-k`` and ``-m`` keep, in order."""
    remaining = list(items)
    for name in _SELECTING_PLUGINS:
        plugin = config.pluginmanager.get_plugin(name)
        if plugin is not None:
            plugin.pytest_collection_modifyitems(items=remaining, config=config)
    return remaining
