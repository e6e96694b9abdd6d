"""``make dist``: the wheel a team installs holds the plugin, its entry point and its types."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--no-isolation",
            "--wheel",
            "--outdir",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    (built,) = out.glob("pytest_rehearsal-*-py3-none-any.whl")
    return zipfile.ZipFile(built)


def test_the_wheel_registers_the_plugin_and_ships_its_types(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    assert "pytest_rehearsal/plugin.py" in names
    assert "pytest_rehearsal/py.typed" in names
    assert not any(name.startswith(("tests/", "examples/")) for name in names)
    (entry_points,) = [name for name in names if name.endswith("entry_points.txt")]
    assert "[pytest11]\nrehearsal = pytest_rehearsal.plugin" in wheel.read(entry_points).decode()
    (metadata,) = [name for name in names if name.endswith("METADATA")]
    requires = {
        line.split(":", 1)[1].split(">=")[0].strip()
        for line in wheel.read(metadata).decode().splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    }
    assert requires == {"pytest", "pluggy", "httpx", "pyyaml", "tenacity"}
