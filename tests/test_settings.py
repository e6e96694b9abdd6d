"""Where each setting comes from, and what is refused at start-up (exit 4) before anything runs."""

from __future__ import annotations

import dataclasses
import os
import stat
from pathlib import Path

import pytest

from pytest_rehearsal.activation import find_config_file
from pytest_rehearsal.config import ConfigError
from pytest_rehearsal.settings import _OPTION_NAMES, Options, Settings, resolve

URL = "http://127.0.0.1:9"
UNDECODABLE = os.fsdecode(b"report-\xff.json")  # a file name that is not UTF-8


def settle(tmp_path: Path, options: Options, environ: dict[str, str] | None = None) -> Settings:
    settings = resolve(options, environ or {}, None, tmp_path)
    assert settings is not None
    return settings


def refusal(tmp_path: Path, options: Options, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        settle(tmp_path, options, environ)
    return str(info.value)


def test_report_paths_are_relative_to_the_invocation_directory(tmp_path: Path) -> None:
    (tmp_path / "existing.json").write_text("{}")
    settings = settle(
        tmp_path, Options(staging_url=URL, report_path="existing.json", summary_path="new/s.md")
    )
    assert settings.report_path == tmp_path / "existing.json"
    assert settings.summary_path == tmp_path / "new" / "s.md"


def _make(kind: str, path: Path, tmp_path: Path) -> Path:
    if kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "link":
        (tmp_path / "target.json").write_text("{}")
        path.symlink_to(tmp_path / "target.json")
    elif kind == "dangling link":
        path.symlink_to(tmp_path / "nowhere.json")
    return path


@pytest.mark.parametrize(
    ("kind", "shown"),
    [
        ("directory", "a directory"),
        ("fifo", "a named pipe (FIFO)"),
        ("link", "a symbolic link"),
        ("dangling link", "a symbolic link"),
    ],
)
@pytest.mark.parametrize(
    ("field", "option"),
    [("report_path", "--rehearsal-report"), ("summary_path", "--rehearsal-summary")],
)
def test_a_report_path_that_is_not_a_regular_file_is_a_usage_error(
    tmp_path: Path, kind: str, shown: str, field: str, option: str
) -> None:
    path = _make(kind, tmp_path / "out", tmp_path)
    message = refusal(tmp_path, Options(staging_url=URL, **{field: "out"}))
    assert message == (
        f"{option}: the path exists and is {shown}, not a regular file; found {str(path)!r}, "
        "expected a regular file, or a path where nothing exists yet (the report is written "
        "to a new file that then replaces what is there)"
    )


def test_a_device_as_report_path_is_a_usage_error(tmp_path: Path) -> None:
    """Issue 11.16: as root, the report used to replace /dev/null with a regular file."""
    assert stat.S_ISCHR(os.lstat("/dev/null").st_mode)
    message = refusal(tmp_path, Options(staging_url=URL, report_path="/dev/null"))
    assert "--rehearsal-report: the path exists and is a character device" in message
    assert "found '/dev/null'" in message
    assert stat.S_ISCHR(os.lstat("/dev/null").st_mode)


@pytest.mark.parametrize("field", sorted(_OPTION_NAMES))
def test_a_command_line_value_that_is_not_text_is_a_usage_error(tmp_path: Path, field: str) -> None:
    """Issue 11.6: bytes that are not UTF-8 become lone surrogates no report can encode."""
    values = {"staging_url": URL, field: UNDECODABLE}
    message = refusal(tmp_path, Options(**values))
    assert message.startswith(
        f"{_OPTION_NAMES[field]}: a lone surrogate is not text; found \\udcff at character 8 "
        "(the byte 0xff, which is not UTF-8), expected UTF-8 text"
    )
    message.encode("utf-8")


def test_every_text_option_is_checked_for_surrogates() -> None:
    text_fields = {f.name for f in dataclasses.fields(Options) if f.type == "str | None"}
    assert text_fields == set(_OPTION_NAMES)


def test_a_staging_url_variable_that_is_not_text_is_a_usage_error(tmp_path: Path) -> None:
    message = refusal(tmp_path, Options(), {"STAGING_URL": URL + "/\udcff"})
    assert message.startswith("STAGING_URL: a lone surrogate is not text; found \\udcff")


@pytest.mark.parametrize(
    ("field", "option"),
    [("staging_timeout", "--staging-timeout"), ("staging_wait", "--staging-wait")],
)
@pytest.mark.parametrize("value", ["999999999999h", "25h", "9" * 400])
def test_durations_on_the_command_line_are_bounded(
    tmp_path: Path, field: str, option: str, value: str
) -> None:
    """Issue 11.10: refused at start-up, not an OverflowError in every request later."""
    message = refusal(tmp_path, Options(staging_url=URL, **{field: value}))
    assert message.startswith(f"{option}: expected a duration of at most 24 h, got ")
    assert len(message) < 200


@pytest.mark.parametrize("where", ["cli", "ini"])
def test_a_config_path_that_is_not_text_is_a_usage_error(tmp_path: Path, where: str) -> None:
    name = os.fsdecode(b"rehearsal-\xff.yaml")
    (tmp_path / name).write_text("{}\n")
    cli, ini = (name, None) if where == "cli" else (None, name)
    with pytest.raises(ConfigError) as info:
        find_config_file(cli, ini, tmp_path, tmp_path)
    option = "--rehearsal-config" if where == "cli" else "ini option rehearsal_config"
    assert str(info.value).startswith(
        f"{option}: a lone surrogate is not text; found \\udcff at character 11 "
        "(the byte 0xff, which is not UTF-8)"
    )
