"""What the run writes for a reviewer: the JSON report, the Markdown summary, the step summary.

pytest glue at its edge only (a usage error reads the paths from pytest's options). A file
that cannot be written fails the run with a line naming it: a gate must never promote a
release without the report it reads.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .redact import mask_url
from .report import RehearsalReport, report_json_text
from .report_files import append_text, write_atomically

if TYPE_CHECKING:
    from .markdown import Phase

__all__ = ["STARTED_AT_FORMAT", "usage_error", "write_reports"]

STARTED_AT_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def usage_error(config: pytest.Config, message: str) -> pytest.UsageError:
    """A usage error of the run, once the error reports its options name are written."""
    option = config.option
    base = config.invocation_params.dir
    url = option.staging_url or os.environ.get("STAGING_URL") or ""
    started_at = datetime.now(timezone.utc).strftime(STARTED_AT_FORMAT)
    report = RehearsalReport.for_usage_error(message, mask_url(url), started_at)
    report_path = base / option.rehearsal_report if option.rehearsal_report else None
    summary_path = base / option.rehearsal_summary if option.rehearsal_summary else None
    # A path that exists and is not a regular file is itself the usage error: leave it be.
    write_reports(
        report,
        report_path if _writable(report_path) else None,
        summary_path if _writable(summary_path) else None,
    )
    return pytest.UsageError(message)


def _writable(path: Path | None) -> bool:
    if path is None:
        return False
    return not os.path.lexists(path) or (path.is_file() and not path.is_symlink())


def write_reports(
    report: RehearsalReport,
    report_path: Path | None,
    summary_path: Path | None,
    phases: Callable[[], Sequence[Phase]] = tuple,
) -> list[str]:
    """Write the JSON report, the Markdown summary and the step summary; the failures.

    *phases* gives the summary's timeline; it is asked for only when a summary is written.
    """
    errors: list[str] = []
    targets: list[tuple[Path, str, bool]] = []
    if report_path is not None:
        targets.append((report_path, report_json_text(report), False))
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary_path is not None or step_summary:
        from .markdown import render_markdown  # only a run that writes a summary needs it

        markdown = render_markdown(report, phases())
        if summary_path is not None:
            targets.append((summary_path, markdown, False))
        if step_summary:
            targets.append((Path(step_summary), markdown, True))
    for path, text, append in targets:
        problem = _write_one(path, text, append=append)
        if problem is not None:
            errors.append(problem)
    return errors


def _write_one(path: Path, text: str, *, append: bool) -> str | None:
    """Write one report file; why it could not be written, or ``None``."""
    try:
        if append:
            append_text(path, text)
        else:
            write_atomically(path, text)
    except OSError as exc:
        # A gate that reads the report must not pass without it: say so and fail the run.
        return f"could not write {exc.filename or path}: {exc.strerror or exc}"
    return None
