"""``make bench``: measure the performance targets of pytest-rehearsal and print one table.

    .venv/bin/python bench/run.py [--quick] [--only 1,2,3,4,5]

Makes the environments (``bench/.venvs/``: the plugin, pytest + httpx, Tavern), starts the
example service on 127.0.0.1 twice (no latency, and 100 ms added to every response), runs
each measurement after warm-ups, round-robin with what it is compared to, and prints
min / median / max with the ratios the targets set. The table also goes to
``bench/results/latest.md`` and the raw figures to ``bench/results/latest.json``.
Exit status 0 when every target holds, 1 when one does not, 2 when the bench could not run.
Nothing is sent beyond 127.0.0.1. bench/README.md explains each figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from measure import Result, RunFailed, Stats, interleave, run
from venvs import Venv, VenvFailed, ensure

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
DEPLOY = ROOT / "examples" / "deploy.sh"

LATENCY = 0.1
ONE_GIB = 1 << 30
MIB = 1 << 20
CHECKLIST_REQUESTS = 13
DORMANT_TESTS = 300
SCALE_CHECKS = 200
TAVERN = ("tavern==3.7.1", "pytest<9.2")
STARTUP_TIMEOUT = 20.0
WARMUPS = 2
# Variables that would change what a pytest run does, or where the plugin writes.
_DROPPED_ENV = frozenset(
    {
        "PYTHONDONTWRITEBYTECODE",  # users keep .pyc caches; so does pytest's rewriter
        "PYTHONPATH",
        "STAGING_URL",
        "PYTEST_ADDOPTS",
        "PYTEST_PLUGINS",
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD",
        "GITHUB_STEP_SUMMARY",
    }
)
_PYTEST = ("-m", "pytest", "-q", "-p", "no:cacheprovider")
# One line of ``python -X importtime``: self microseconds, cumulative, the module's name.
_IMPORT_TIME = re.compile(r"^import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)$", re.MULTILINE)


# -- rows of the table -------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One line of the table: a measured figure, or a verdict on a target."""

    target: str
    what: str
    unit: str = ""
    stats: Stats | None = None
    value: str = ""
    limit: str = ""
    holds: bool | None = None  # None: context for the reader, not a target

    def cells(self) -> list[str]:
        if self.stats is None:
            low = mid = high = ""
        else:
            low, mid, high = (
                _fmt(v, self.unit) for v in (self.stats.min, self.stats.median, self.stats.max)
            )
        verdict = {None: "", True: "yes", False: "NO"}[self.holds]
        return [self.target, self.what, low, mid, high, self.value, self.limit, verdict]


HEADER = ["target", "measurement", "min", "median", "max", "ratio / value", "limit", "holds"]


def _fmt(value: float, unit: str) -> str:
    if unit == "ms":
        return f"{value * 1000:.1f} ms"
    if unit == "s":
        return f"{value:.3f} s"
    if unit == "MiB":
        return f"{value / MIB:.1f} MiB"
    return f"{value:g}"


def ratio(numerator: Stats, denominator: Stats) -> float:
    """The ratio of the medians."""
    return numerator.median / denominator.median


# -- the services ------------------------------------------------------------------------------


class Service:
    """``bench/service.py`` (the example app, counted) in a process of its own."""

    def __init__(self, work: Path, name: str, env: dict[str, str], latency: float) -> None:
        port_file = work / f"{name}.url"
        argv = [sys.executable, str(BENCH / "service.py"), "--release-root"]
        argv.append(env["STAGING_RELEASE_ROOT"])
        argv += ["--port-file", str(port_file), "--latency", str(latency)]
        argv += ["--upload-limit", str(ONE_GIB)]
        self.log = (work / f"{name}.log").open("wb")
        self.process = subprocess.Popen(argv, env=env, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{name} service exited on startup; see {self.log.name}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{name} service did not start within {STARTUP_TIMEOUT}s")
            if port_file.exists():
                self.url = port_file.read_text(encoding="utf-8").strip()
                try:
                    self.count()
                    return
                except OSError:
                    pass
            time.sleep(0.05)

    def count(self) -> int:
        """How many requests the app has served so far."""
        with urllib.request.urlopen(self.url + "/__bench__/count", timeout=5) as response:
            return int(response.read())

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.log.close()


class SilentAfter413:
    """A server that answers 413 to every request head, then neither reads nor closes.

    Held connections are closed when the client closes them... which this server never sees,
    since it does not read: they are closed at :meth:`stop`, after at most a few seconds.
    """

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}/upload"
        self._held: list[socket.socket] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="silent-413", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self._listener.settimeout(0.2)
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(5)
            head = b""
            try:
                while b"\r\n\r\n" not in head and len(head) < 65536:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    head += chunk
                body = b'{"detail":"Request body exceeds the limit"}'
                conn.sendall(
                    b"HTTP/1.1 413 Content Too Large\r\ncontent-type: application/json\r\n"
                    b"content-length: %d\r\n\r\n%s" % (len(body), body)
                )
            except OSError:
                conn.close()
                continue
            self._held.append(conn)  # not read from, not closed

    def stop(self) -> None:
        self._stopping.set()
        self._listener.close()
        self._thread.join(5)
        for conn in self._held:
            conn.close()


# -- the context of one bench run --------------------------------------------------------------


@dataclass
class Bench:
    """What every target needs: the work folder, environments, services and repeat counts."""

    work: Path
    env: dict[str, str]
    plugin: Venv
    peer: Venv
    tavern: Venv | None
    tavern_problem: str
    fast: Service
    slow: Service
    quick: bool

    def repeats(self, full: int, quick: int = 2) -> int:
        return quick if self.quick else full

    def folder(self, name: str, files: Sequence[tuple[Path, str]] = ()) -> Path:
        """A fresh project folder with an empty pytest.ini (so no repository config applies)."""
        path = self.work / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir()
        (path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
        for source, target in files:
            shutil.copy(source, path / target)
        return path

    def with_env(self, **extra: str) -> dict[str, str]:
        return {**self.env, **extra}


def _environment(work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
    admin, viewer = secrets.token_urlsafe(18), secrets.token_urlsafe(18)
    releases = work / "releases"
    env.update(
        STAGING_ADMIN_TOKEN=admin,
        STAGING_VIEWER_TOKEN=viewer,
        STAGING_TOKEN=admin,
        VIEWER_TOKEN=viewer,
        STAGING_RELEASE_ROOT=str(releases),
    )
    for version in ("1.4.2", "1.5.0"):
        subprocess.run(
            [str(DEPLOY), "deploy", version], env=env, check=True, capture_output=True, timeout=60
        )
    return env


def _make_venvs() -> tuple[Venv, Venv, Venv | None, str]:
    """The plugin's venv and the peers', side by side; the same pytest and httpx in each."""
    from importlib.metadata import version

    pins = [f"pytest=={version('pytest')}", f"httpx=={version('httpx')}"]
    root = BENCH / ".venvs"
    root.mkdir(exist_ok=True)
    # Keeps git, ruff and mypy out of the environments even without the root .gitignore line.
    (root / ".gitignore").write_text("*\n", encoding="utf-8")
    jobs: dict[str, tuple[list[str], list[Path]]] = {
        "rehearsal": (["-e", str(ROOT), *pins], [ROOT / "pyproject.toml"]),
        "httpx": (pins, []),
        "tavern": (list(TAVERN), []),
    }
    made: dict[str, Venv] = {}
    problems: dict[str, str] = {}

    def make(name: str) -> None:
        requirements, watched = jobs[name]
        try:
            made[name] = ensure(root, name, requirements, watched)
        except (VenvFailed, subprocess.TimeoutExpired, OSError) as exc:
            problems[name] = str(exc)

    threads = [threading.Thread(target=make, args=(name,)) for name in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for name in ("rehearsal", "httpx"):
        if name in problems:
            raise VenvFailed(problems[name])
    # Tavern is optional: without it the table says so and measures the rest.
    return made["rehearsal"], made["httpx"], made.get("tavern"), problems.get("tavern", "")


# -- target 1: dormant -------------------------------------------------------------------------

_IMPORT_CODE = (
    "import json, sys, time, pytest\n"
    "t = time.perf_counter()\n"
    "import pytest_rehearsal.plugin, pytest_rehearsal.hooks\n"
    "seconds = time.perf_counter() - t\n"
    "heavy = sorted({'httpx', 'yaml', 'tenacity'} & set(sys.modules))\n"
    "print(json.dumps({'seconds': seconds, 'heavy': heavy}))\n"
)


def _dormant_suite(folder: Path) -> None:
    """300 ordinary tests in 10 modules: plain, parametrized, with fixtures, in classes."""
    for module in range(10):
        lines = [
            "import pytest",
            "",
            "@pytest.fixture",
            "def numbers():",
            "    return list(range(10))",
            "",
        ]
        lines += [f"def test_plain_{i}():\n    assert {i} + 1 == {i + 1}\n" for i in range(10)]
        lines += [
            "@pytest.mark.parametrize('n', range(10))",
            "def test_param(n, numbers):",
            "    assert n in numbers",
            "",
            "class TestGroup:",
        ]
        lines += [f"    def test_method_{i}(self, tmp_path):\n        pass\n" for i in range(10)]
        (folder / f"test_dormant_{module}.py").write_text("\n".join(lines), encoding="utf-8")


def target_dormant(bench: Bench) -> list[Row]:
    python = bench.plugin.python
    imports: list[float] = []
    heavy: set[str] = set()
    for attempt in range(2 + bench.repeats(15, 5)):
        result = run([python, "-c", _IMPORT_CODE], cwd=bench.work, env=bench.env)
        document = json.loads(result.stdout)
        heavy.update(document["heavy"])
        if attempt >= 2:
            imports.append(document["seconds"])
    import_stats = Stats(tuple(imports))

    folder = bench.folder("dormant")
    _dormant_suite(folder)
    expected = f"{DORMANT_TESTS} passed"

    def suite(*extra: str) -> Callable[[], float]:
        def measure() -> float:
            result = run([python, *_PYTEST, *extra], cwd=folder, env=bench.env)
            if expected not in result.stdout:
                raise RunFailed(f"the dormant suite did not report {expected!r}")
            return result.seconds

        return measure

    times = interleave(
        {"dormant": suite(), "disabled": suite("-p", "no:rehearsal")},
        warmups=2,
        repeats=bench.repeats(20, 3),
    )
    overhead = ratio(times["dormant"], times["disabled"])
    return [
        Row(
            "1 dormant",
            "import pytest_rehearsal.plugin (after pytest)",
            "ms",
            import_stats,
            limit="median < 5 ms",
            holds=import_stats.median < 0.005,
        ),
        Row(
            "1 dormant",
            "httpx / yaml / tenacity imported by it",
            value=", ".join(sorted(heavy)) or "none",
            limit="none",
            holds=not heavy,
        ),
        Row("1 dormant", f"{DORMANT_TESTS}-test suite, -p no:rehearsal", "s", times["disabled"]),
        Row(
            "1 dormant",
            f"{DORMANT_TESTS}-test suite, plugin installed, no URL",
            "s",
            times["dormant"],
            value=f"{overhead:.3f}x",
            limit="<= 1.02x",
            holds=overhead <= 1.02,
        ),
    ]


# -- target 2: the 13-request checklist against its peers -------------------------------------


class Counted:
    """Runs one command line against a service and keeps how many requests each run sent."""

    def __init__(
        self, service: Service, argv: Sequence[str], cwd: Path, env: Mapping[str, str]
    ) -> None:
        self.service = service
        self.argv = list(argv)
        self.cwd = cwd
        self.env = env
        self.requests: list[int] = []
        self.results: list[Result] = []

    def __call__(self) -> float:
        before = self.service.count()
        result = run(self.argv, cwd=self.cwd, env=self.env)
        self.requests.append(self.service.count() - before)
        self.results.append(result)
        return result.seconds

    def import_times(self) -> dict[str, float]:
        """One more run under ``python -X importtime``: seconds each module's import took.

        With ``-s``: pytest's capture would swallow what is imported during collection.
        """
        python, *rest = self.argv
        result = run([python, "-X", "importtime", *rest, "-s"], cwd=self.cwd, env=self.env)
        return {m[2]: int(m[1]) / 1e6 for m in _IMPORT_TIME.finditer(result.stderr)}


def _checklist_suites(bench: Bench, service: Service) -> dict[str, Counted]:
    env = bench.with_env(BENCH_URL=service.url)
    peers = BENCH / "peers"
    floor_dir = bench.folder("floor", [(peers / "checklist_httpx.py", "checklist_httpx.py")])
    httpx_dir = bench.folder(
        "pytest-httpx", [(peers / "test_checklist_httpx.py", "test_checklist_httpx.py")]
    )
    plugin_dir = bench.folder(
        "rehearsal", [(BENCH / "configs" / "checklist.yaml", "rehearsal.yaml")]
    )

    suites = {
        "bare httpx script": Counted(
            service, [bench.peer.python, "checklist_httpx.py"], floor_dir, env
        ),
        "pytest + httpx": Counted(service, [bench.peer.python, *_PYTEST], httpx_dir, env),
    }
    if bench.tavern is not None:
        tavern_files = [(p, p.name) for p in (peers / "tavern").iterdir() if p.is_file()]
        tavern_dir = bench.folder("tavern", tavern_files)
        suites["Tavern"] = Counted(service, [bench.tavern.python, *_PYTEST], tavern_dir, env)
    rehearsal = [bench.plugin.python, *_PYTEST, f"--staging-url={service.url}", "--no-rollback"]
    suites["pytest-rehearsal"] = Counted(service, rehearsal, plugin_dir, env)
    return suites


def target_checklist(bench: Bench) -> list[Row]:
    suites = _checklist_suites(bench, bench.fast)
    # 20 rounds: the ratios against the peers move by a few per cent between runs of 10.
    times = interleave(dict(suites), warmups=WARMUPS, repeats=bench.repeats(20, 3))
    floor_runs = suites["bare httpx script"].results[WARMUPS:]
    floor_requests = Stats(tuple(float(r.stdout.split()[-1]) for r in floor_runs))
    rows = [
        Row(
            "2 active", "bare httpx script (floor), whole process", "s", times["bare httpx script"]
        ),
        Row("2 active", "  its 13 requests alone", "ms", floor_requests),
        Row("2 active", "hand-written pytest + httpx", "s", times["pytest + httpx"]),
    ]
    if "Tavern" in times:
        rows.append(Row("2 active", "Tavern 3.7.1 YAML (pytest<9.2)", "s", times["Tavern"]))
    plugin = times["pytest-rehearsal"]
    versus_floor = ratio(plugin, times["bare httpx script"])
    rows.append(
        Row(
            "2 active",
            "pytest-rehearsal, same 13 requests",
            "s",
            plugin,
            value=f"{versus_floor:.2f}x floor",
        )
    )
    versus_pytest = ratio(plugin, times["pytest + httpx"])
    rows.append(
        Row(
            "2 active",
            "  ÷ pytest + httpx",
            value=f"{versus_pytest:.2f}x",
            limit="<= 1.2x",
            holds=versus_pytest <= 1.2,
        )
    )
    if "Tavern" in times:
        versus_tavern = ratio(plugin, times["Tavern"])
        rows.append(
            Row(
                "2 active",
                "  ÷ Tavern",
                value=f"{versus_tavern:.2f}x",
                limit="<= 0.6x",
                holds=versus_tavern <= 0.6,
            )
        )
    else:
        rows.append(
            Row("2 active", "  ÷ Tavern", value="not measured", limit=bench.tavern_problem[:60])
        )
    rows.append(_extra_imports(suites["pytest-rehearsal"], suites["pytest + httpx"]))
    counts = {name: sorted(set(suite.requests)) for name, suite in suites.items()}
    same = all(values == [CHECKLIST_REQUESTS] for values in counts.values())
    shown = "; ".join(f"{name} {'/'.join(map(str, v))}" for name, v in counts.items())
    rows.append(
        Row(
            "2 active",
            "requests per run, counted by the service",
            value=f"{CHECKLIST_REQUESTS} each" if same else shown,
            limit=f"{CHECKLIST_REQUESTS} each",
            holds=same,
        )
    )
    return rows


def _extra_imports(plugin: Counted, peer: Counted) -> Row:
    """What the rehearsal imports that the hand-written suite does not, by package, in ms."""
    theirs = peer.import_times()
    by_package: dict[str, float] = {}
    for module, seconds in plugin.import_times().items():
        if module not in theirs:
            package = module.partition(".")[0]
            by_package[package] = by_package.get(package, 0.0) + seconds
    ranked = sorted(by_package.items(), key=lambda item: item[1], reverse=True)
    shown = [f"{name} {seconds * 1000:.0f}" for name, seconds in ranked[:2]]
    rest = sum(seconds for _, seconds in ranked[2:])
    total = sum(by_package.values())
    if rest >= 0.0005:
        shown.append(f"other {rest * 1000:.0f}")
    return Row(
        "2 active",
        "  imports the hand-written suite lacks (one run, ms)",
        value=f"{total * 1000:.0f}: {', '.join(shown)}",
    )


# -- target 3: latency-bound -------------------------------------------------------------------


def target_latency(bench: Bench, memory_rows: list[Row]) -> list[Row]:
    folder = bench.folder("full")
    config = f"--rehearsal-config={BENCH / 'configs' / 'full.yaml'}"

    def full(service: Service) -> Counted:
        argv = [bench.plugin.python, *_PYTEST, f"--staging-url={service.url}", config]
        return Counted(service, argv, folder, bench.env)

    runs = {"0 ms": full(bench.fast), "100 ms": full(bench.slow)}
    times = interleave(dict(runs), warmups=1, repeats=bench.repeats(5))
    added = times["100 ms"].median - times["0 ms"].median
    requests = sorted(set(runs["0 ms"].requests + runs["100 ms"].requests))
    peak = Stats(tuple(float(r.peak_rss) for c in runs.values() for r in c.results))
    memory_rows.append(
        Row("4 memory", "full rehearsal process (1 GiB upload limit), peak RSS", "MiB", peak)
    )

    # Context: the checklist of target 2 at 100 ms, against the hand-written suite.
    suites = _checklist_suites(bench, bench.slow)
    slow = interleave(
        {name: suites[name] for name in ("pytest + httpx", "pytest-rehearsal")},
        warmups=1,
        repeats=bench.repeats(3),
    )
    return [
        Row("3 latency", "full rehearsal, rollback included, 0 ms added", "s", times["0 ms"]),
        Row("3 latency", "same, 100 ms added to every response", "s", times["100 ms"]),
        Row(
            "3 latency",
            "  slower by (medians)",
            value=f"{added:.3f} s = {added / LATENCY:.1f} round trips",
            limit="<= 0.8 s (8 round trips)",
            holds=added <= 0.8,
        ),
        Row(
            "3 latency",
            "  requests per full rehearsal",
            value="/".join(map(str, requests)),
        ),
        Row(
            "3 latency",
            "13-request checklist at 100 ms: pytest + httpx",
            "s",
            slow["pytest + httpx"],
        ),
        Row(
            "3 latency",
            "13-request checklist at 100 ms: pytest-rehearsal",
            "s",
            slow["pytest-rehearsal"],
        ),
    ]


# -- target 4: the upload probe's memory and early 413 -----------------------------------------


def _upload(bench: Bench, how: str, url: str) -> tuple[float, int, dict[str, Any]]:
    argv = [bench.plugin.python, str(BENCH / "upload_child.py"), how, url, str(ONE_GIB + 1)]
    result = run(argv, cwd=bench.work, env=bench.env)
    document: dict[str, Any] = json.loads(result.stdout)
    return float(document["seconds"]), result.peak_rss, document


def target_memory(bench: Bench, context: list[Row]) -> list[Row]:
    rows: list[Row] = []
    silent = SilentAfter413()
    try:
        cases = [
            ("probe", silent.url, "upload probe, 1 GiB + 1 body, server answers 413 then stalls"),
            ("probe", bench.fast.url + "/upload", "upload probe, 1 GiB + 1 body, example service"),
            ("httpx", silent.url, "httpx alone, same body, server answers 413 then stalls"),
        ]
        for how, url, label in cases:
            seconds: list[float] = []
            peaks: list[float] = []
            statuses: set[object] = set()
            for attempt in range(1 + bench.repeats(5 if how == "probe" else 3)):
                elapsed, peak, document = _upload(bench, how, url)
                if attempt >= 1:
                    seconds.append(elapsed)
                    peaks.append(float(peak))
                    statuses.add(document["status"] or document["error"])
            time_stats, rss_stats = Stats(tuple(seconds)), Stats(tuple(peaks))
            got = ", ".join(sorted(map(str, statuses)))
            if how == "probe":
                learned = statuses == {413}
                rows.append(
                    Row(
                        "4 memory",
                        f"{label}: time to the 413",
                        "s",
                        time_stats,
                        value=got,
                        limit="413, max <= 1 s",
                        holds=learned and time_stats.max <= 1.0,
                    )
                )
                rows.append(
                    Row(
                        "4 memory",
                        "  peak RSS of that process",
                        "MiB",
                        rss_stats,
                        limit="max < 50 MiB",
                        holds=rss_stats.max < 50 * MIB,
                    )
                )
            else:
                rows.append(
                    Row("4 memory", f"{label}: time to give up", "s", time_stats, value=got[:40])
                )
                rows.append(Row("4 memory", "  peak RSS of that process", "MiB", rss_stats))
    finally:
        silent.stop()
    return rows + context


# -- target 5: scale out under xdist -----------------------------------------------------------


def target_scale(bench: Bench) -> list[Row]:
    # The project's dev venv: it has pytest-xdist, which the plugin's own venv does not need.
    folder = bench.folder("scale", [(BENCH / "scale" / "test_scale.py", "test_scale.py")])
    config = f"--rehearsal-config={BENCH / 'configs' / 'scale.yaml'}"
    rollbacks: list[int] = []

    def scale(workers: str, count: int) -> Callable[[], float]:
        def measure() -> float:
            log = folder / "rollbacks.log"
            log.unlink(missing_ok=True)
            env = bench.with_env(BENCH_SCALE_COUNT=str(count), BENCH_ROLLBACK_LOG=str(log))
            argv = [sys.executable, *_PYTEST, "-n", workers, f"--staging-url={bench.slow.url}"]
            result = run([*argv, config], cwd=folder, env=env)
            if f"{count + 1} passed" not in result.stdout:  # the rollback is a test case too
                raise RunFailed(f"-n {workers}: expected {count + 1} passed")
            if count == SCALE_CHECKS:
                lines = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
                rollbacks.append(len(lines))
            return result.seconds

        return measure

    for workers in ("0", "2"):  # warm-ups: a few checks each, to fill the caches
        scale(workers, 10)()
    times = interleave(
        {"0": scale("0", SCALE_CHECKS), "2": scale("2", SCALE_CHECKS)},
        warmups=0,
        repeats=bench.repeats(3, 1),
    )
    speedup = ratio(times["0"], times["2"])
    once = bool(rollbacks) and set(rollbacks) == {1}

    # Context: the built-in checks under xdist (each worker runs its items one at a time).
    full = bench.folder("full-xdist")
    full_config = f"--rehearsal-config={BENCH / 'configs' / 'full.yaml'}"

    def builtin(workers: str) -> Callable[[], float]:
        argv = [sys.executable, *_PYTEST, "-n", workers, f"--staging-url={bench.slow.url}"]
        return lambda: run([*argv, full_config], cwd=full, env=bench.env).seconds

    builtin_times = interleave(
        {"0": builtin("0"), "2": builtin("2")}, warmups=1, repeats=bench.repeats(3, 1)
    )
    return [
        Row("5 scale-out", f"{SCALE_CHECKS} user checks at 100 ms, -n 0", "s", times["0"]),
        Row(
            "5 scale-out",
            f"{SCALE_CHECKS} user checks at 100 ms, -n 2",
            "s",
            times["2"],
            value=f"speed-up {speedup:.2f}x",
            limit=">= 1.7x",
            holds=speedup >= 1.7,
        ),
        Row(
            "5 scale-out",
            "  rollback runs per pytest run",
            value="/".join(map(str, sorted(set(rollbacks)))),
            limit="1 in every run",
            holds=once,
        ),
        Row(
            "5 scale-out",
            "full rehearsal (built-in checks) at 100 ms, -n 0",
            "s",
            builtin_times["0"],
        ),
        Row(
            "5 scale-out",
            "full rehearsal (built-in checks) at 100 ms, -n 2",
            "s",
            builtin_times["2"],
            value=f"speed-up {ratio(builtin_times['0'], builtin_times['2']):.2f}x",
        ),
    ]


# -- the table -----------------------------------------------------------------------------------


def render(rows: Sequence[Row], markdown: bool) -> str:
    """The table as aligned text, or as Markdown."""
    table = [HEADER, *(row.cells() for row in rows)]
    if markdown:
        lines = ["| " + " | ".join(cells) + " |" for cells in table]
        lines.insert(1, "|" + "|".join("---" for _ in HEADER) + "|")
        return "\n".join(lines)
    widths = [max(len(cells[i]) for cells in table) for i in range(len(HEADER))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) for cells in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def machine() -> str:
    """One line about the machine, for the table's heading."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{platform.system()} {platform.machine()}, {cpu}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )


@contextmanager
def bench_context(quick: bool) -> Iterator[Bench]:
    """Environments, a scratch folder with a release root, and both services."""
    plugin, peer, tavern, problem = _make_venvs()
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rehearsal-bench-")))
        env = _environment(work)
        fast = Service(work, "fast", env, 0.0)
        stack.callback(fast.stop)
        slow = Service(work, "slow", env, LATENCY)
        stack.callback(slow.stop)
        yield Bench(work, env, plugin, peer, tavern, problem, fast, slow, quick)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen targets, print the table, save it; 1 when a target does not hold."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a rough look)")
    parser.add_argument("--only", default="1,2,3,4,5", help="targets to run, e.g. 2,3")
    args = parser.parse_args(argv)
    chosen = {int(t) for t in args.only.split(",") if t.strip()}
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    print(f"pytest-rehearsal bench: targets {sorted(chosen)} on {machine()}", flush=True)
    rows: list[Row] = []
    try:
        with bench_context(args.quick) as bench:
            memory_context: list[Row] = []
            steps: list[tuple[int, Callable[[], list[Row]]]] = [
                (1, lambda: target_dormant(bench)),
                (2, lambda: target_checklist(bench)),
                (3, lambda: target_latency(bench, memory_context)),
                (4, lambda: target_memory(bench, memory_context)),
                (5, lambda: target_scale(bench)),
            ]
            for number, step in steps:
                if number in chosen:
                    print(f"  target {number} ...", flush=True)
                    rows += step()
    except (RunFailed, VenvFailed, RuntimeError, subprocess.SubprocessError) as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 2
    load_after = os.getloadavg()[0]
    took = time.monotonic() - started
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    heading = (
        f"{stamp} · {machine()} · load average {load_before:.2f} before, {load_after:.2f} after"
        f" · {took:.0f} s"
    )
    print()
    print(heading)
    print(render(rows, markdown=False))
    if load_before > 1.0:
        print(
            f"\nnote: the machine was busy before the bench (load {load_before:.2f}): "
            "figures are inflated and ratios noisier; rerun on an idle machine."
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.md").write_text(f"{heading}\n\n{render(rows, True)}\n", encoding="utf-8")
    document = {
        "when": stamp,
        "machine": machine(),
        "load_before": load_before,
        "load_after": load_after,
        "rows": [
            {
                "target": r.target,
                "what": r.what,
                "unit": r.unit,
                "values": list(r.stats.values) if r.stats else None,
                "value": r.value,
                "limit": r.limit,
                "holds": r.holds,
            }
            for r in rows
        ],
    }
    (RESULTS / "latest.json").write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    failed = [r for r in rows if r.holds is False]
    print(f"\n{len([r for r in rows if r.holds])} targets hold, {len(failed)} do not.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
