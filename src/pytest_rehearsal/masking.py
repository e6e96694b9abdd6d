"""Secrets out of everything pytest prints or writes about the run: ids, reports, warnings.

pytest glue. The redactor (:mod:`.redact`) knows every token from the environment and every
value a check makes up; here it is applied where pytest's own output is born, so the
terminal, JUnit XML, ``--log-file``, the xdist wire and the rehearsal's reports all get the
masked text: node ids (a token in a parametrize id), phase reports (longrepr, captured
sections, xfail reasons, ``record_property`` values), collection reports and warnings.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any

import pytest

from .redact import Redactor

__all__ = ["mask_items", "mask_report", "mask_warning"]


def mask_items(items: Iterable[pytest.Item], redact: Redactor) -> None:
    """Mask secrets in the ids and names of *items* before anything reports them."""
    if not redact:
        return
    for item in items:
        if redact.finds(item.nodeid) or redact.finds(item.name):
            _rename(item, redact(item.nodeid), redact(item.name))


def _rename(item: pytest.Item, nodeid: str, name: str) -> None:
    """Give *item* another node id and name, before any report is made from them.

    pytest has no public way to do this: the id is set once, at collection, and every
    report, progress line and JUnit name is made from it afterwards. pytest 9.2 keeps it as
    a structured ``_id`` (a ``NodeId`` with a ``parse`` constructor), earlier versions as
    the string ``_nodeid``.
    """
    current = getattr(item, "_id", None)
    if current is not None and hasattr(type(current), "parse"):
        item._id = type(current).parse(nodeid)
    else:
        item._nodeid = nodeid  # type: ignore[attr-defined]
    item.name = name
    item.__dict__.pop("location", None)  # a cached property holding the old name


def mask_report(report: pytest.TestReport | pytest.CollectReport, redact: Redactor) -> None:
    """Mask secrets in a phase or collection report, in place."""
    if not redact:
        return
    report.nodeid = redact(report.nodeid)
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):
        path, lineno, message = longrepr
        report.longrepr = (path, lineno, redact(message))
    elif longrepr is not None:
        text = str(longrepr)
        masked = redact(text)
        if masked != text:
            report.longrepr = masked
    report.sections = [(key, redact(content)) for key, content in report.sections]
    if isinstance(report, pytest.TestReport):
        if hasattr(report, "wasxfail"):
            report.wasxfail = redact(str(report.wasxfail))
        report.user_properties = [
            (name, redact(value) if isinstance(value, str) else value)
            for name, value in report.user_properties
        ]


def mask_warning(message: warnings.WarningMessage, redact: Redactor) -> None:
    """Mask secrets in a recorded warning, in place, before any plugin formats it."""
    if not redact:
        return
    text = str(message.message)
    if redact.finds(text):
        message.message = _warning_like(message.message, redact(text))
    if message.line and redact.finds(message.line):
        message.line = redact(message.line)


def _warning_like(original: Warning | str, text: str) -> Warning:
    """A warning of the same category as *original* whose text is *text*."""
    category: Any = type(original) if isinstance(original, Warning) else UserWarning
    try:
        made = category(text)
    except Exception:  # a warning class with a constructor of its own
        return UserWarning(text)
    return made if isinstance(made, Warning) else UserWarning(text)
