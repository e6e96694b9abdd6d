"""Without a staging URL the plugin is dormant: free to import, no items, rehearsal tests skip."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from plugin_helpers import QUIET_CHECKS, TinyStaging, write_config
from processes import PEAK_RSS_CONFTEST

HEAVY = ("httpx", "yaml", "tenacity")


def test_importing_the_plugin_imports_nothing_heavy() -> None:
    code = (
        "import sys, pytest_rehearsal.plugin, pytest_rehearsal.hooks;"
        f"print(sorted(set({HEAVY!r}) & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_dormant_run_imports_nothing_heavy_and_skips_rehearsal_tests(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STAGING_URL", raising=False)
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makeconftest(
        f"""
        import sys

        def pytest_sessionfinish(session):
            print("HEAVY:", sorted(set({HEAVY!r}) & set(sys.modules)))
            # Only the glue: the config schema and settings are the active run's business.
            print("LOADED:", sorted(m for m in sys.modules if m.startswith("pytest_rehearsal")))
        """
    )
    pytester.makepyfile(
        """
        import pytest

        def test_uses_staging(staging):
            raise AssertionError("must not run")

        def test_uses_url(staging_url):
            raise AssertionError("must not run")

        @pytest.mark.rehearsal(owner="@me")
        def test_marked():
            raise AssertionError("must not run")

        def test_plain():
            pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "pytest_rehearsal.plugin", "-rs", "-s")
    result.assert_outcomes(passed=1, skipped=3)
    result.stdout.fnmatch_lines(
        [
            "*HEAVY: []",
            "LOADED: ['pytest_rehearsal', 'pytest_rehearsal.activation', "
            "'pytest_rehearsal.errors', 'pytest_rehearsal.hooks', 'pytest_rehearsal.markers', "
            "'pytest_rehearsal.plugin']",
            *["SKIPPED [[]1[]] *.py:*: no staging URL (pass --staging-url)"] * 3,
        ]
    )
    assert "rehearsal::" not in result.stdout.str()


def test_an_active_run_loads_only_what_it_uses(
    pytester: pytest.Pytester, tiny_staging: tuple[TinyStaging, str]
) -> None:
    # Lazy by design: no retry happens (tenacity), nothing is rolled back (the command
    # runner), and only the configured checks' modules are needed.
    result = _health_rehearsal_printing(
        pytester,
        tiny_staging,
        'print("LOADED:", sorted(m for m in sys.modules if m.startswith('
        '("tenacity", "pytest_rehearsal.command", "pytest_rehearsal.checks."))))',
    )
    result.assert_outcomes(passed=1, skipped=1)
    loaded = (
        "LOADED: ['pytest_rehearsal.checks._base', 'pytest_rehearsal.checks._leaks', "
        "'pytest_rehearsal.checks.health']"
    )
    assert loaded in result.stdout.str()


def _health_rehearsal_printing(
    pytester: pytest.Pytester, tiny_staging: tuple[TinyStaging, str], printed: str
) -> pytest.RunResult:
    """A health-only rehearsal (``--no-rollback``) whose conftest runs *printed* at its end."""
    _, url = tiny_staging
    write_config(pytester, QUIET_CHECKS + "  health: {path: /health}\n")
    pytester.makeconftest(f"import sys\n\ndef pytest_sessionfinish(session):\n    {printed}\n")
    return pytester.runpytest_subprocess(f"--staging-url={url}", "--no-rollback", "-s")


def test_an_xdist_worker_loads_neither_httpx_nor_yaml_nor_the_checks_nor_the_records(
    pytester: pytest.Pytester, tiny_staging: tuple[TinyStaging, str]
) -> None:
    # A worker runs only the team's tests: the checks are the controller's, httpx waits
    # for the first test that uses the staging fixture (none here), and the settings come
    # from the controller, so the config file is not parsed again.
    _, url = tiny_staging
    write_config(pytester, QUIET_CHECKS + "  health: {path: /health}\n")
    pytester.makeconftest(
        """
        import sys

        def pytest_sessionfinish(session):
            if hasattr(session.config, "workerinput"):
                loaded = sorted(m for m in sys.modules if m.startswith(
                    ("httpx", "httpcore", "yaml", "pytest_rehearsal.checks.",
                     "pytest_rehearsal.client", "pytest_rehearsal.config_loader"))
                    or m in ("pytest_rehearsal.release", "pytest_rehearsal.lifecycle",
                            "pytest_rehearsal.lifecycle_steps"))
                with open("worker-modules.txt", "w") as out:
                    out.write(repr(loaded))
        """
    )
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.rehearsal(owner="@team")
        def test_a_team_check():
            pass
        """
    )
    result = pytester.runpytest_subprocess(f"--staging-url={url}", "--no-rollback", "-n", "1")
    result.assert_outcomes(passed=2, skipped=1)
    assert (pytester.path / "worker-modules.txt").read_text() == "[]"


def test_the_engine_is_built_with_the_collector_paused_and_it_is_on_again_for_the_tests(
    pytester: pytest.Pytester, tiny_staging: tuple[TinyStaging, str]
) -> None:
    # A garbage collection while the engine builds frees nothing and costs 20-30 ms.
    _, url = tiny_staging
    write_config(pytester, QUIET_CHECKS + "  health: {path: /health}\n")
    pytester.makeconftest(
        """
        import gc

        from pytest_rehearsal.session import RehearsalSession

        collector_on_while_building = []
        build = RehearsalSession.__init__

        def recording_build(self, *args):
            collector_on_while_building.append(gc.isenabled())
            build(self, *args)

        RehearsalSession.__init__ = recording_build
        """
    )
    pytester.makepyfile(
        """
        import gc

        import conftest

        def test_the_collector():
            assert conftest.collector_on_while_building == [False]
            assert gc.isenabled()
        """
    )
    result = pytester.runpytest_subprocess(f"--staging-url={url}", "--no-rollback")
    result.assert_outcomes(passed=2, skipped=1)


def test_the_engine_loads_as_python_loads_it_while_the_team_s_asserts_are_rewritten(
    pytester: pytest.Pytester, tiny_staging: tuple[TinyStaging, str]
) -> None:
    # pytest's rewriting loader costs ~6 % of an active start-up, and a whole re-parse of the
    # engine per run where it cannot write its cache (PYTHONDONTWRITEBYTECODE=1 here).
    pytester.makepyfile("def test_a_team_check():\n    assert [1, 2] == [1, 3]\n")
    names = ["pytest_rehearsal.session", "pytest_rehearsal.config"]
    names += ["pytest_rehearsal.checks.health", "conftest"]
    result = _health_rehearsal_printing(
        pytester,
        tiny_staging,
        f"print('LOADERS:', [type(sys.modules[n].__loader__).__name__ for n in {names!r}])",
    )
    result.assert_outcomes(passed=1, failed=1, skipped=1)
    result.stdout.fnmatch_lines(["*At index 1 diff: 2 != 3*"])
    loaded = "LOADERS: ['SourceFileLoader', 'SourceFileLoader', 'SourceFileLoader', 'Assertion"
    assert loaded + "RewritingHook']" in result.stdout.str()


def test_the_standard_loading_is_put_first_once_and_taken_off_by_who_put_it() -> None:
    from pytest_rehearsal._loading import StandardLoading, load_own_modules_plainly

    assert StandardLoading not in sys.meta_path
    remove = load_own_modules_plainly()
    try:
        assert sys.meta_path[0] is StandardLoading
        load_own_modules_plainly()()  # a nested run's: it did not put it there
        assert sys.meta_path[0] is StandardLoading
        assert StandardLoading.find_spec("json") is None  # nobody else's modules
        spec = StandardLoading.find_spec("pytest_rehearsal.units", pytest_rehearsal_path())
        assert spec is not None
        assert str(spec.origin).endswith("units.py")
    finally:
        remove()
    assert StandardLoading not in sys.meta_path


def pytest_rehearsal_path() -> list[str]:
    import pytest_rehearsal

    return list(pytest_rehearsal.__path__)


def test_a_collector_the_team_switched_off_stays_off() -> None:
    import gc

    from pytest_rehearsal.plugin import collector_paused

    def build_that_fails() -> None:
        with collector_paused():
            assert not gc.isenabled()
            raise RuntimeError("the engine could not be built")

    assert gc.isenabled()
    with pytest.raises(RuntimeError):
        build_that_fails()
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_the_plugin_can_be_disabled(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain():\n    pass\n")
    result = pytester.runpytest("-p", "no:rehearsal", "--co", "-q")
    result.stdout.fnmatch_lines(["test_the_plugin_can_be_disabled.py::test_plain"])


def test_help_lists_the_option_group(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(
        [
            "staging rehearsal (pytest-rehearsal):",
            "  --staging-url=URL*",
            "  --rehearsal-config=PATH*",
            "  --rollback-command=CMD*",
            "  --no-rollback*",
            "  --staging-wait=DURATION*",
            "  --staging-timeout=DURATION*",
            "  --rehearsal-report=PATH*",
            "  --rehearsal-summary=PATH*",
        ]
    )


def test_the_marker_is_registered_for_strict_markers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        "import pytest\n\n@pytest.mark.rehearsal(owner='@me')\ndef test_x():\n    pass\n"
    )
    result = pytester.runpytest("--strict-markers")
    result.assert_outcomes(skipped=1)


def test_a_misused_marker_fails_clearly(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        "import pytest\n\n@pytest.mark.rehearsal('@me', ownr='x')\ndef test_x():\n    pass\n"
    )
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert (
        "test_a_misused_marker_fails_clearly.py::test_x: @pytest.mark.rehearsal takes only "
        "owner=, expect= and rollback_note=; got '@me', ownr"
    ) in result.stderr.str()


def test_rehearsal_init_writes_a_starter_config_once(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--rehearsal-init")
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        [f"rehearsal: wrote {pytester.path / 'rehearsal.yaml'}", "next steps:"]
    )
    assert "rollback:" in (pytester.path / "rehearsal.yaml").read_text()
    again = pytester.runpytest("--rehearsal-init")
    assert again.ret == pytest.ExitCode.USAGE_ERROR
    assert "already exists; not overwriting it" in again.stderr.str()


def test_a_dormant_run_reads_only_the_head_of_a_huge_config_file(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 11.11: a 1 GB ``rehearsal.yaml`` used to be read whole (2.1 GB RSS, 9 s) to look
    for ``staging_url:``; only the first 64 KiB can hold a valid config's key."""
    monkeypatch.delenv("STAGING_URL", raising=False)
    config = pytester.path / "rehearsal.yaml"
    with config.open("w", encoding="utf-8") as stream:
        stream.write("checks:\n  headers: false\n")
        stream.truncate(1024**3)  # sparse: 1 GB on paper, nothing on disk
    pytester.makeconftest(PEAK_RSS_CONFTEST)
    pytester.makepyfile("def test_plain():\n    pass\n")
    started = time.monotonic()
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=120)
    elapsed = time.monotonic() - started
    result.assert_outcomes(passed=1)
    peak_mib = int((pytester.path / "maxrss.txt").read_text()) / 1024
    # Generous: a bare pytest run peaks near 40 MiB and starts in about a second.
    assert peak_mib < 250, f"peak RSS {peak_mib:.0f} MiB"
    assert elapsed < 60
