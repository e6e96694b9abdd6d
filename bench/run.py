"""``make bench``: measure the performance targets of pytest-rehearsal and print one table.

    .venv/bin/python bench/run.py [--quick] [--only 1,2,3,4,5,6]

Makes the environments (``bench/.venvs/``: the plugin, the plugin with pytest-xdist,
pytest + httpx, Tavern), starts the example service on 127.0.0.1 twice (no latency, and
100 ms added to every response), and runs each comparison in pairs after warm-ups (A then
B, B then A, ...; see ``measure.py``). The table gives min / median / max of each figure,
the median of the per-pair ratios with their spread, and whether each target holds; a
target missed while other processes kept the machine busy is "undecided (busy)", not NO.
The table also goes to ``bench/results/latest.md`` and the raw figures to
``bench/results/latest.json``. Exit status 0 when every target holds, 1 when one does not,
3 when none failed but some were undecided (busy), 2 when the bench could not run.
Nothing is sent beyond 127.0.0.1. bench/README.md explains each figure.
"""

from __future__ import annotations

import argparse
import dataclasses
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

from measure import (
    BUSY_SHARE,
    CpuMeter,
    Load,
    Result,
    RunFailed,
    Stats,
    interleave,
    median_interval,
    paired,
    run,
    straddles,
)
from venvs import Venv, VenvFailed, ensure

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
DEPLOY = ROOT / "examples" / "deploy.sh"
CONFIGS = BENCH / "configs"

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
# callgrind's closing line on stderr: "==1234== I   refs:      1,824,105,974".
_INSTRUCTIONS = re.compile(r"I\s+refs:\s+([\d,]+)")


# -- rows of the table -------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One line of the table: a measured figure, or a verdict on a target.

    *pairs* holds the per-pair values of a comparison (ratios, or differences in *pair_unit*):
    the table shows their median as the value and their min-max as the spread.
    """

    target: str
    what: str
    unit: str = ""
    stats: Stats | None = None
    value: str = ""
    limit: str = ""
    holds: bool | None = None  # None: context for the reader, not a target
    pairs: Stats | None = None
    pair_unit: str = "x"
    load: Load | None = None  # how busy the machine was while this figure was measured
    undecided: bool = False  # missed while the machine was too busy or too noisy to decide
    noisy: bool = False  # the limit lies inside the 95 % interval of the pairs' median

    def cells(self) -> list[str]:
        if self.stats is None:
            low = mid = high = ""
        else:
            low, mid, high = (
                _fmt(v, self.unit) for v in (self.stats.min, self.stats.median, self.stats.max)
            )
        value, spread = self.value, ""
        if self.pairs is not None:
            shown = _pair(self.pairs.median, self.pair_unit)
            value = f"{shown} {value}".strip()
            low_pair, high_pair = (
                _pair(v, self.pair_unit) for v in (self.pairs.min, self.pairs.max)
            )
            spread = f"{low_pair} to {high_pair} ({len(self.pairs.values)})"
        return [self.target, self.what, low, mid, high, value, spread, self.limit, self.verdict]

    @property
    def verdict(self) -> str:
        if self.holds is None:
            return ""
        if self.holds:
            return "yes"
        if not self.undecided:
            return "NO"
        if self.noisy and self.pairs is not None:
            low, high = (_pair(v, self.pair_unit) for v in median_interval(self.pairs.values))
            return f"undecided (noisy: median within {low} to {high})"
        others = self.load.others if self.load is not None else None
        return "undecided (busy)" if others is None else f"undecided (busy: others {others:.0%})"


HEADER = [
    "target",
    "measurement",
    "min",
    "median",
    "max",
    "value (median of pairs)",
    "pairs: min to max (n)",
    "limit",
    "holds",
]


def _fmt(value: float, unit: str) -> str:
    if unit == "ms":
        return f"{value * 1000:.1f} ms"
    if unit == "s":
        return f"{value:.3f} s"
    if unit == "MiB":
        return f"{value / MIB:.1f} MiB"
    return f"{value:g}"


def _pair(value: float, unit: str) -> str:
    if unit == "x":
        return f"{value:.3f}x"
    if unit == "rt":
        return f"{value:.2f} RT"
    return _fmt(value, unit)


def _difference(a: float, b: float) -> float:
    return a - b


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

    @property
    def pid(self) -> int:
        return self.process.pid

    def count(self) -> int:
        """How many requests the app has served so far."""
        with urllib.request.urlopen(self.url + "/__bench__/count", timeout=5) as response:
            return int(response.read())

    def round_trip(self, times: int = 10) -> Stats:
        """Seconds of a ``GET /health`` (a fresh connection each), as the driver sees it."""
        seconds = []
        for _ in range(times):
            started = time.perf_counter()
            with urllib.request.urlopen(self.url + "/health", timeout=5) as response:
                response.read()
            seconds.append(time.perf_counter() - started)
        return Stats(tuple(seconds))

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
    xdist: Venv
    peer: Venv
    tavern: Venv | None
    tavern_problem: str
    fast: Service
    slow: Service
    quick: bool
    meter: CpuMeter

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


def _make_venvs() -> tuple[Venv, Venv, Venv, Venv | None, str]:
    """The plugin's venvs (alone, and with pytest-xdist) and the peers', side by side.

    The same pytest and httpx in each, and in the xdist one the dev environment's xdist.
    """
    from importlib.metadata import version

    pins = [f"pytest=={version('pytest')}", f"httpx=={version('httpx')}"]
    root = BENCH / ".venvs"
    root.mkdir(exist_ok=True)
    # Keeps git, ruff and mypy out of the environments even without the root .gitignore line.
    (root / ".gitignore").write_text("*\n", encoding="utf-8")
    plugin = ["-e", str(ROOT), *pins]
    jobs: dict[str, tuple[list[str], list[Path]]] = {
        "rehearsal": (plugin, [ROOT / "pyproject.toml"]),
        "xdist": (
            [*plugin, f"pytest-xdist=={version('pytest-xdist')}"],
            [ROOT / "pyproject.toml"],
        ),
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
    for name in ("rehearsal", "xdist", "httpx"):
        if name in problems:
            raise VenvFailed(problems[name])
    # Tavern is optional: without it the table says so and measures the rest.
    return (
        made["rehearsal"],
        made["xdist"],
        made["httpx"],
        made.get("tavern"),
        problems.get("tavern", ""),
    )


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
        {"disabled": suite("-p", "no:rehearsal"), "dormant": suite()},
        warmups=2,
        repeats=bench.repeats(20, 4),
        meter=bench.meter,
    )
    overhead = paired(times, "dormant", "disabled")
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
            pairs=overhead,
            load=times.load,
            limit="<= 1.02x",
            holds=overhead.median <= 1.02,
            noisy=straddles(overhead, 1.02),
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

    def instructions(self, valgrind: str) -> int:
        """The CPU instructions of one more run, counted by valgrind's callgrind.

        A count, not a time: the same from run to run (to 0.1 %) whatever else the machine
        does, so it shows a change of the code when the wall clock is too noisy to.
        """
        argv = [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null", *self.argv]
        result = run(argv, cwd=self.cwd, env=self.env)
        found = _INSTRUCTIONS.search(result.stderr)
        if found is None:
            raise RunFailed(f"no instruction count in callgrind's output:\n{result.stderr[-500:]}")
        return int(found[1].replace(",", ""))


def _checklist_suites(bench: Bench, service: Service) -> dict[str, Counted]:
    """The four suites, in the order they run in a round: the rehearsal next to its peer."""
    env = bench.with_env(BENCH_URL=service.url)
    peers = BENCH / "peers"
    floor_dir = bench.folder("floor", [(peers / "checklist_httpx.py", "checklist_httpx.py")])
    httpx_dir = bench.folder(
        "pytest-httpx", [(peers / "test_checklist_httpx.py", "test_checklist_httpx.py")]
    )
    plugin_dir = bench.folder("rehearsal", [(CONFIGS / "checklist.yaml", "rehearsal.yaml")])

    suites = {
        "bare httpx script": Counted(
            service, [bench.peer.python, "checklist_httpx.py"], floor_dir, env
        ),
    }
    if bench.tavern is not None:
        tavern_files = [(p, p.name) for p in (peers / "tavern").iterdir() if p.is_file()]
        tavern_dir = bench.folder("tavern", tavern_files)
        suites["Tavern"] = Counted(service, [bench.tavern.python, *_PYTEST], tavern_dir, env)
    suites["pytest + httpx"] = Counted(service, [bench.peer.python, *_PYTEST], httpx_dir, env)
    rehearsal = [bench.plugin.python, *_PYTEST, f"--staging-url={service.url}", "--no-rollback"]
    suites["pytest-rehearsal"] = Counted(service, rehearsal, plugin_dir, env)
    return suites


def target_checklist(bench: Bench) -> list[Row]:
    suites = _checklist_suites(bench, bench.fast)
    # 20 rounds: the ratios against the peers move by a few per cent between runs of 10.
    times = interleave(
        dict(suites), warmups=WARMUPS, repeats=bench.repeats(20, 4), meter=bench.meter
    )
    floor_runs = suites["bare httpx script"].results[WARMUPS:]
    floor_requests = Stats(tuple(float(r.stdout.split()[-1]) for r in floor_runs))
    rows = [
        Row(
            "2 active", "bare httpx script (floor), whole process", "s", times["bare httpx script"]
        ),
        Row("2 active", "  its 13 requests alone", "ms", floor_requests),
        Row("2 active", "hand-written pytest + httpx", "s", times["pytest + httpx"]),
    ]
    if "Tavern" in suites:
        rows.append(Row("2 active", "Tavern 3.7.1 YAML (pytest<9.2)", "s", times["Tavern"]))
    rows.append(
        Row(
            "2 active",
            "pytest-rehearsal, same 13 requests",
            "s",
            times["pytest-rehearsal"],
            pairs=paired(times, "pytest-rehearsal", "bare httpx script"),
            value="floor",
        )
    )
    versus_pytest = paired(times, "pytest-rehearsal", "pytest + httpx")
    rows.append(
        Row(
            "2 active",
            "  ÷ pytest + httpx",
            pairs=versus_pytest,
            load=times.load,
            limit="<= 1.2x (aim 1.1x)",
            holds=versus_pytest.median <= 1.2,
            noisy=straddles(versus_pytest, 1.2),
        )
    )
    if "Tavern" in suites:
        # Context only: the 0.6x Tavern target is withdrawn (on loopback it meant about
        # 1.04x the hand-written suite, a start-up race no user feels).
        rows.append(
            Row("2 active", "  ÷ Tavern", pairs=paired(times, "pytest-rehearsal", "Tavern"))
        )
    else:
        rows.append(
            Row("2 active", "  ÷ Tavern", value="not measured: " + bench.tavern_problem[:60])
        )
    rows.append(_extra_imports(suites["pytest-rehearsal"], suites["pytest + httpx"]))
    rows.append(_instructions(suites["pytest-rehearsal"], suites["pytest + httpx"]))
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
    modules: dict[str, int] = {}
    for module, seconds in plugin.import_times().items():
        if module not in theirs:
            package = module.partition(".")[0]
            by_package[package] = by_package.get(package, 0.0) + seconds
            modules[package] = modules.get(package, 0) + 1
    ranked = sorted(by_package.items(), key=lambda item: item[1], reverse=True)
    shown = [f"{name} {seconds * 1000:.0f} ({modules[name]})" for name, seconds in ranked[:2]]
    rest = sum(seconds for _, seconds in ranked[2:])
    total = sum(by_package.values())
    if rest >= 0.0005:
        shown.append(f"other {rest * 1000:.0f}")
    return Row(
        "2 active",
        "  imports the hand-written suite lacks (one run, ms (modules))",
        value=f"{total * 1000:.0f}: {', '.join(shown)}",
    )


def _instructions(plugin: Counted, peer: Counted) -> Row:
    """The rehearsal's CPU instructions against the hand-written suite's: one run of each."""
    what = "  CPU instructions, one run each under callgrind"
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return Row("2 active", what, value="not measured: valgrind not found")
    ours, theirs = plugin.instructions(valgrind), peer.instructions(valgrind)
    shown = f"{ours / theirs:.3f}x: {ours / 1e6:,.0f} M ÷ {theirs / 1e6:,.0f} M"
    return Row("2 active", what, value=shown)


# -- target 3: latency-bound -------------------------------------------------------------------


def target_latency(bench: Bench, memory_rows: list[Row]) -> list[Row]:
    folder = bench.folder("full")
    config = f"--rehearsal-config={CONFIGS / 'full.yaml'}"

    def full(service: Service) -> Counted:
        argv = [bench.plugin.python, *_PYTEST, f"--staging-url={service.url}", config]
        return Counted(service, argv, folder, bench.env)

    runs = {"0 ms": full(bench.fast), "100 ms": full(bench.slow)}
    times = interleave(dict(runs), warmups=1, repeats=bench.repeats(7, 2), meter=bench.meter)
    added = paired(times, "100 ms", "0 ms", _difference)
    in_round_trips = Stats(tuple(value / LATENCY for value in added.values))
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
            "  slower by (per pair), in round trips of 100 ms",
            pairs=in_round_trips,
            pair_unit="rt",
            load=times.load,
            value=f"= {added.median:.3f} s",
            limit="<= 8 round trips",
            holds=in_round_trips.median <= 8,
            noisy=straddles(in_round_trips, 8),
        ),
        Row("3 latency", "  requests per full rehearsal", value="/".join(map(str, requests))),
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
            pairs=paired(slow, "pytest-rehearsal", "pytest + httpx"),
            value="the hand-written",
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


class XdistRuns:
    """Runs of one suite with ``-n 0`` and ``-n 2``; each must roll back exactly once."""

    def __init__(
        self, bench: Bench, folder: Path, config: Path, passed: Callable[[int], int] | None
    ) -> None:
        self.bench = bench
        self.folder = folder
        self.config = config
        self.passed = passed  # the number of checks -> the number of passed items
        self.rollbacks: list[int] = []

    def measure(self, workers: str, count: int = 0) -> Callable[[], float]:
        def once() -> float:
            log = self.folder / "rollbacks.log"
            log.unlink(missing_ok=True)
            env = self.bench.with_env(BENCH_SCALE_COUNT=str(count), BENCH_ROLLBACK_LOG=str(log))
            argv = [self.bench.xdist.python, *_PYTEST, "-n", workers]
            argv += [f"--staging-url={self.bench.slow.url}", f"--rehearsal-config={self.config}"]
            result = run(argv, cwd=self.folder, env=env)
            expected = f"{self.passed(count)} passed" if self.passed else " passed"
            if expected not in result.stdout:  # exit status 0 already says nothing failed
                raise RunFailed(f"-n {workers}: expected {expected!r}:\n{result.stdout[-800:]}")
            lines = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
            self.rollbacks.append(len(lines))
            return result.seconds

        return once


def target_scale(bench: Bench) -> list[Row]:
    # The plugin with pytest-xdist and nothing else: the dev venv's other plugins (hypothesis,
    # pytest-html, ...) would be imported by the controller and by every worker.
    folder = bench.folder("scale", [(BENCH / "scale" / "test_scale.py", "test_scale.py")])
    scale = XdistRuns(bench, folder, CONFIGS / "scale.yaml", lambda count: count + 1)
    for workers in ("0", "2"):  # warm-ups: a few checks each, to fill the caches
        scale.measure(workers, 10)()
    times = interleave(
        {"0": scale.measure("0", SCALE_CHECKS), "2": scale.measure("2", SCALE_CHECKS)},
        warmups=0,
        repeats=bench.repeats(3, 1),
        meter=bench.meter,
    )
    speedup = paired(times, "0", "2")

    # The built-in checks only (no test of the team's): -n 2 must not make the gate slower.
    builtin_folder = bench.folder("full-xdist")
    full = XdistRuns(bench, builtin_folder, CONFIGS / "full.yaml", None)
    builtin = interleave(
        {"0": full.measure("0"), "2": full.measure("2")},
        warmups=1,
        repeats=bench.repeats(15, 3),  # 15 pairs: the median's interval spans 4th-12th
        meter=bench.meter,
    )
    plain_over_xdist = paired(builtin, "0", "2")
    rollbacks = scale.rollbacks + full.rollbacks
    return [
        Row("5 scale-out", f"{SCALE_CHECKS} user checks at 100 ms, -n 0", "s", times["0"]),
        Row(
            "5 scale-out",
            f"{SCALE_CHECKS} user checks at 100 ms, -n 2",
            "s",
            times["2"],
            pairs=speedup,
            load=times.load,
            value="speed-up",
            limit=">= 1.7x",
            holds=speedup.median >= 1.7,
            noisy=straddles(speedup, 1.7),
        ),
        Row(
            "5 scale-out",
            "full rehearsal (built-in checks, rollback) at 100 ms, -n 0",
            "s",
            builtin["0"],
        ),
        Row(
            "5 scale-out",
            "full rehearsal (built-in checks, rollback) at 100 ms, -n 2",
            "s",
            builtin["2"],
            pairs=plain_over_xdist,
            load=builtin.load,
            value="-n 0 ÷ -n 2",
            limit=">= 0.95x",
            holds=plain_over_xdist.median >= 0.95,
            noisy=straddles(plain_over_xdist, 0.95),
        ),
        Row(
            "5 scale-out",
            "  rollback runs per pytest run (both suites)",
            value="/".join(map(str, sorted(set(rollbacks)))),
            limit="1 in every run",
            holds=bool(rollbacks) and set(rollbacks) == {1},
        ),
    ]


# -- target 6: the release lifecycle's own cost ------------------------------------------------

#: The lifecycle's steps beyond the commands: baseline, verify and restore verify, one request
#: each when staging answers at once, plus a little local work (preflight, the records).
LIFECYCLE_ROUND_TRIPS = 3
LIFECYCLE_LOCAL_WORK = 0.03


def _beyond_commands(rollback: Mapping[str, Any]) -> float:
    """The rollback's duration minus its commands' (the rollback command and the restore)."""
    commands = sum(
        float(step["duration_s"])
        for step in rollback["steps"]
        if step["step"] in ("command", "restore")
    )
    return float(rollback["duration_s"]) - commands


def target_lifecycle(bench: Bench) -> list[Row]:
    folder = bench.folder("lifecycle")
    round_trip = bench.slow.round_trip()
    rt = round_trip.median
    records: dict[str, list[Mapping[str, Any]]] = {}

    def variant(name: str, config: str, **env: str) -> Callable[[], float]:
        records[name] = []
        report = folder / "report.json"
        argv = [bench.plugin.python, *_PYTEST, f"--staging-url={bench.slow.url}"]
        argv += [f"--rehearsal-config={CONFIGS / config}", f"--rehearsal-report={report}"]

        def once() -> float:
            run(argv, cwd=folder, env=bench.with_env(**env))
            rollback = json.loads(report.read_text(encoding="utf-8"))["rollback"]
            if rollback["outcome"] != "passed":
                raise RunFailed(f"{name}: the rollback did not pass: {rollback['message']}")
            records[name].append(rollback)
            return _beyond_commands(rollback)

        return once

    rounds = interleave(
        {
            "off": variant("off", "lifecycle-nowatch.yaml"),
            "on": variant("on", "lifecycle.yaml"),
            "100 ms": variant("100 ms", "lifecycle.yaml", BENCH_WATCH_INTERVAL="100ms"),
        },
        warmups=1,
        repeats=bench.repeats(9, 3),
        meter=bench.meter,
    )
    watched = records["on"][1:]  # after the warm-up

    def step(name: str) -> Stats:
        return Stats(
            tuple(s["duration_s"] for r in watched for s in r["steps"] if s["step"] == name)
        )

    commands = Stats(tuple(r["duration_s"] - _beyond_commands(r) for r in watched))
    beyond = rounds["on"]
    in_round_trips = beyond.median / rt
    watch_cost = paired(rounds, "on", "off", lambda a, b: (a - b) / rt)
    fast_watch_cost = paired(rounds, "100 ms", "off", lambda a, b: (a - b) / rt)
    polls = sorted({r["recovery"]["watch"]["polls"] for r in watched})
    verify_polls = sorted({r["verify_polls"] for r in watched if "verify_polls" in r})
    limit = LIFECYCLE_ROUND_TRIPS * rt + LIFECYCLE_LOCAL_WORK
    return [
        Row(
            "6 lifecycle", "one round trip at 100 ms: GET /health from the driver", "ms", round_trip
        ),
        Row("6 lifecycle", "the commands' own time (rollback.sh, then the restore)", "s", commands),
        Row("6 lifecycle", "  baseline step (GET before the rollback)", "s", step("baseline")),
        Row(
            "6 lifecycle",
            "  verify step",
            "s",
            step("verify"),
            value=f"{'/'.join(map(str, verify_polls))} poll(s)" if verify_polls else "",
        ),
        Row("6 lifecycle", "  restore verify step", "s", step("restore_verify")),
        Row(
            "6 lifecycle",
            "rollback beyond its commands, watch on (500 ms)",
            "s",
            beyond,
            load=rounds.load,
            value=f"{in_round_trips:.2f} round trips",
            limit=f"<= {LIFECYCLE_ROUND_TRIPS} round trips + {LIFECYCLE_LOCAL_WORK * 1000:.0f} ms",
            holds=beyond.median <= limit,
        ),
        Row("6 lifecycle", "same, watch off", "s", rounds["off"]),
        Row(
            "6 lifecycle",
            "  the watch's cost (per pair: on - off)",
            pairs=watch_cost,
            pair_unit="rt",
            load=rounds.load,
            value=f"({'/'.join(map(str, polls))} poll(s) per rollback)",
            limit="< 0.5 round trip",
            holds=watch_cost.median < 0.5,
            noisy=straddles(watch_cost, 0.5),
        ),
        Row(
            "6 lifecycle",
            "  the same with a watch every 100 ms",
            pairs=fast_watch_cost,
            pair_unit="rt",
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
def bench_context(quick: bool, meter: CpuMeter) -> Iterator[Bench]:
    """Environments, a scratch folder with a release root, and both services."""
    plugin, xdist, peer, tavern, problem = _make_venvs()
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rehearsal-bench-")))
        env = _environment(work)
        fast = Service(work, "fast", env, 0.0)
        stack.callback(fast.stop)
        slow = Service(work, "slow", env, LATENCY)
        stack.callback(slow.stop)
        meter.own_pids += [fast.pid, slow.pid]
        yield Bench(work, env, plugin, xdist, peer, tavern, problem, fast, slow, quick, meter)


def _decide(rows: list[Row], load: Load) -> list[Row]:
    """A target missed while others kept the machine busy, or by a median its pairs cannot
    place on either side of the limit, is undecided, not failed.

    A comparison is judged by the load while its pairs ran, any other row by its target's
    (which its verdict then shows).
    """
    return [
        dataclasses.replace(r, undecided=True, load=r.load or load)
        if r.holds is False and (r.noisy or (r.load or load).busy)
        else r
        for r in rows
    ]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen targets, print the table, save it.

    0 when every target holds, 1 when one does not, 3 when the only misses are undecided.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a rough look)")
    parser.add_argument("--only", default="1,2,3,4,5,6", help="targets to run, e.g. 2,3")
    args = parser.parse_args(argv)
    chosen = {int(t) for t in args.only.split(",") if t.strip()}
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    print(f"pytest-rehearsal bench: targets {sorted(chosen)} on {machine()}", flush=True)
    rows: list[Row] = []
    meter = CpuMeter()
    loads: dict[int, Load] = {}
    try:
        with bench_context(args.quick, meter) as bench:
            memory_context: list[Row] = []
            steps: list[tuple[int, Callable[[], list[Row]]]] = [
                (1, lambda: target_dormant(bench)),
                (2, lambda: target_checklist(bench)),
                (3, lambda: target_latency(bench, memory_context)),
                (4, lambda: target_memory(bench, memory_context)),
                (5, lambda: target_scale(bench)),
                (6, lambda: target_lifecycle(bench)),
            ]
            for number, step in steps:
                if number in chosen:
                    print(f"  target {number} ...", flush=True)
                    window: list[Load] = []
                    with meter.window(window):
                        measured = step()
                    loads[number] = window[0]
                    print(f"    {window[0].describe()}", flush=True)
                    rows += _decide(measured, window[0])
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
    others = ", ".join(
        f"{n} {load.others:.0%}" if load.others is not None else f"{n} load {load.load_max:.2f}"
        for n, load in loads.items()
    )
    notes = [f"Others' share of the CPUs while each target ran: {others}."]
    if any(r.undecided and not r.noisy for r in rows):
        notes.append(
            "The machine was too busy to decide some targets (other processes used more than "
            f"{BUSY_SHARE:.0%} of the CPUs while they were measured): they say 'undecided "
            "(busy)'. Rerun on an idle machine."
        )
    if any(r.undecided and r.noisy for r in rows):
        notes.append(
            "Some comparisons were too noisy to decide: the 95 % interval of the median of "
            "their pairs holds the limit, so they say 'undecided (noisy)'. Run times varied "
            "that much from one run to the next; rerun on a steadier machine."
        )
    print()
    print(heading)
    print(render(rows, markdown=False))
    print("\n" + "\n".join(notes))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.md").write_text(
        f"{heading}\n\n{render(rows, True)}\n\n{' '.join(notes)}\n", encoding="utf-8"
    )
    document = {
        "when": stamp,
        "machine": machine(),
        "load_before": load_before,
        "load_after": load_after,
        "targets": {
            str(n): {**dataclasses.asdict(load), "busy": load.busy} for n, load in loads.items()
        },
        "rows": [
            {
                "target": r.target,
                "what": r.what,
                "unit": r.unit,
                "values": list(r.stats.values) if r.stats else None,
                "pairs": list(r.pairs.values) if r.pairs else None,
                "value": r.value,
                "limit": r.limit,
                "holds": r.holds,
                "verdict": r.verdict,
                "load": dataclasses.asdict(r.load) if r.load else None,
            }
            for r in rows
        ],
    }
    (RESULTS / "latest.json").write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    held = [r for r in rows if r.holds]
    failed = [r for r in rows if r.holds is False and not r.undecided]
    undecided = [r for r in rows if r.holds is False and r.undecided]
    print(
        f"\n{len(held)} targets hold, {len(failed)} do not, "
        f"{len(undecided)} undecided (machine busy or noisy)."
    )
    if failed:
        return 1
    return 3 if undecided else 0


if __name__ == "__main__":
    sys.exit(main())
