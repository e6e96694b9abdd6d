"""The bench's judgement: paired rounds, the median's interval, and when a miss is undecided.

``make bench`` says yes, NO or undecided from these (issue 16: a bench that noise cannot
flip), so they are tested like the plugin: the CPU meter against real processes.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _bench_module(name: str, module_name: str | None = None) -> ModuleType:
    """bench/<name>.py as a module. The driver imports its siblings by their bare names
    (``from measure import ...``), so they are registered under those; the driver itself
    under *module_name*, which no other module could be taking."""
    module_name = module_name or name
    path = BENCH / f"{name}.py"
    loaded = sys.modules.get(module_name)
    if loaded is not None:
        assert Path(loaded.__file__ or "") == path, f"{module_name} is not bench's: {loaded}"
        return loaded
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


measure = _bench_module("measure")
_bench_module("venvs")
bench_run = _bench_module("run", "bench_run")

BURN = "import time\nend = time.process_time() + {seconds}\nwhile time.process_time() < end: pass\n"


# -- paired rounds ---------------------------------------------------------------------------


def test_rounds_alternate_which_variant_goes_first_and_drop_the_warm_ups() -> None:
    calls: list[str] = []
    values = iter(range(1, 100))

    def variant(name: str) -> Callable[[], float]:
        def measure_once() -> float:
            calls.append(name)
            return float(next(values))

        return measure_once

    rounds = measure.interleave(
        {"a": variant("a"), "b": variant("b")}, warmups=1, repeats=4, meter=None
    )
    assert calls == ["a", "b", "b", "a", "a", "b", "b", "a", "a", "b"]
    # Round 0 (a=1, b=2) is the warm-up; then b=3 a=4, a=5 b=6, b=7 a=8, a=9 b=10.
    assert rounds.samples == {"a": (4.0, 5.0, 8.0, 9.0), "b": (3.0, 6.0, 7.0, 10.0)}
    assert rounds.load is None


def test_a_ratio_is_taken_within_each_round_not_between_medians() -> None:
    # A burst of load slows both members of round 2 fivefold: their ratio does not move.
    rounds = measure.Rounds({"plugin": (1.1, 5.5, 1.1), "plain": (1.0, 5.0, 1.0)})
    ratios = measure.paired(rounds, "plugin", "plain")
    assert ratios.values == pytest.approx((1.1, 1.1, 1.1))
    differences = measure.paired(rounds, "plugin", "plain", lambda a, b: a - b)
    assert differences.values == pytest.approx((0.1, 0.5, 0.1))


def test_pairs_of_unequal_rounds_are_refused() -> None:
    with pytest.raises(ValueError):
        measure.paired(measure.Rounds({"a": (1.0, 2.0), "b": (1.0,)}), "a", "b")


def test_with_a_meter_the_rounds_say_how_busy_the_machine_was() -> None:
    meter = measure.CpuMeter()
    rounds = measure.interleave({"a": lambda: 1.0}, warmups=1, repeats=2, meter=meter)
    assert isinstance(rounds.load, measure.Load)
    assert rounds.load.cores == (os.cpu_count() or 1)


# -- the median's interval -------------------------------------------------------------------


def test_twenty_pairs_give_the_sixth_smallest_to_the_sixth_largest() -> None:
    values = [float(v) for v in range(1, 21)]
    random.Random(4).shuffle(values)
    assert measure.median_interval(values) == (6.0, 15.0)


@pytest.mark.parametrize(("n", "k"), [(15, 4), (7, 1), (9, 2), (40, 14)])
def test_the_interval_is_the_sign_tests(n: int, k: int) -> None:
    # k from the binomial tables: the largest k with P(Binomial(n, 1/2) < k) <= 2.5 %.
    values = [float(v) for v in range(n)]
    assert measure.median_interval(values) == (float(k - 1), float(n - k))


def test_too_few_pairs_give_their_whole_range() -> None:
    # With 5 pairs even the extremes miss the median 2 * (1/2)^5 = 6 % of the time.
    assert measure.median_interval([3.0, 1.0, 2.0, 5.0, 4.0]) == (1.0, 5.0)


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=60))
def test_the_interval_always_holds_the_sample_median(values: list[float]) -> None:
    low, high = measure.median_interval(values)
    assert low <= statistics.median(values) <= high
    assert min(values) <= low <= high <= max(values)


def test_the_interval_misses_the_true_median_as_often_as_the_sign_test_says() -> None:
    # 2000 samples of 20 lognormal "ratios" whose true median is exactly 1. The interval
    # from the 6th to the 15th of 20 misses it 2 * P(Binomial(20, 1/2) <= 5) = 4.1 % of the
    # time; one order statistic further in or out would miss 11.5 % or 1.2 %.
    generator = random.Random(16)
    misses = 0
    for _ in range(2000):
        low, high = measure.median_interval([generator.lognormvariate(0, 0.1) for _ in range(20)])
        misses += not low <= 1.0 <= high
    assert 0.02 <= misses / 2000 <= 0.06


def test_a_limit_inside_the_interval_straddles_it() -> None:
    ratios = measure.Stats(tuple(round(0.90 + 0.01 * i, 2) for i in range(20)))  # to 1.09
    assert measure.straddles(ratios, 0.95)  # the interval is 0.95 to 1.04
    assert not measure.straddles(ratios, 0.94)
    assert not measure.straddles(ratios, 1.05)


# -- yes, NO, undecided ----------------------------------------------------------------------


def _row(median: float, limit: float, *, noisy: bool, others: float | None = 0.0) -> object:
    pairs = measure.Stats(tuple(median + d for d in (-0.02, -0.01, 0.0, 0.01, 0.02)))
    load = measure.Load(seconds=10.0, others=others, load_max=0.5, cores=2)
    return bench_run.Row(
        "5 scale-out",
        "full rehearsal",
        pairs=pairs,
        load=load,
        limit=f">= {limit}x",
        holds=median >= limit,
        noisy=noisy,
    )


def test_a_miss_the_pairs_cannot_place_is_undecided_not_no() -> None:
    quiet = measure.Load(seconds=1.0, others=0.0, load_max=0.1, cores=2)
    rows = bench_run._decide([_row(0.94, 0.95, noisy=True)], quiet)
    assert rows[0].verdict == "undecided (noisy: median within 0.920x to 0.960x)"


def test_a_miss_while_others_used_the_cpus_is_undecided_busy() -> None:
    quiet = measure.Load(seconds=1.0, others=0.0, load_max=0.1, cores=2)
    rows = bench_run._decide([_row(0.90, 0.95, noisy=False, others=0.25)], quiet)
    assert rows[0].verdict == "undecided (busy: others 25%)"


def test_a_clear_miss_on_a_quiet_machine_is_no_and_a_hold_stays_yes() -> None:
    quiet = measure.Load(seconds=1.0, others=0.0, load_max=0.1, cores=2)
    missed, held = bench_run._decide(
        [_row(0.90, 0.95, noisy=False), _row(0.97, 0.95, noisy=True, others=0.5)], quiet
    )
    assert missed.verdict == "NO"
    assert held.verdict == "yes"  # a busy, noisy machine does not take a hold away


def test_a_row_without_its_own_load_is_judged_by_its_targets() -> None:
    row = dataclasses.replace(_row(0.90, 0.95, noisy=False), load=None)
    busy = measure.Load(seconds=1.0, others=0.4, load_max=3.0, cores=2)
    assert bench_run._decide([row], busy)[0].verdict == "undecided (busy: others 40%)"


def test_without_proc_stat_the_load_average_decides() -> None:
    assert measure.Load(seconds=1.0, others=None, load_max=2.5, cores=2).busy
    assert not measure.Load(seconds=1.0, others=None, load_max=1.5, cores=2).busy
    assert not measure.Load(seconds=1.0, others=0.10, load_max=9.0, cores=2).busy
    assert measure.Load(seconds=1.0, others=0.11, load_max=0.0, cores=2).busy


# -- the CPU meter, against real processes ---------------------------------------------------


@pytest.fixture
def burner() -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Starts Python processes that burn CPU; reaps them after the test."""
    started: list[subprocess.Popen[bytes]] = []

    def start(seconds: float, executable: str = sys.executable) -> subprocess.Popen[bytes]:
        process = subprocess.Popen([executable, "-c", BURN.format(seconds=seconds)])
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()
        process.wait()


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="needs Linux's /proc/stat")
def test_a_process_the_bench_does_not_own_counts_as_others(
    burner: Callable[..., subprocess.Popen[bytes]],
) -> None:
    loads: list[object] = []
    meter = measure.CpuMeter()
    with meter.window(loads):
        stranger = burner(0.6)
        time.sleep(0.8)
    stranger.wait(timeout=10)  # reaped only after the window: not the bench's own
    (load,) = loads
    assert isinstance(load, measure.Load)
    cores = os.cpu_count() or 1
    # 0.6 s of one core in a window of about 0.8 s; other load on the machine only adds.
    assert load.others is not None
    assert load.others >= 0.6 / (load.seconds * cores) - 0.1


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="needs Linux's /proc/stat")
def test_a_helper_is_read_from_proc_even_with_a_parenthesis_in_its_name(
    tmp_path: Path, burner: Callable[..., subprocess.Popen[bytes]]
) -> None:
    # /proc/<pid>/stat shows the command name in parentheses; this one holds ") (" too.
    strange = tmp_path / "svc) (x y"
    strange.symlink_to(Path(sys.executable).resolve())
    helper = burner(5.0, str(strange))
    assert Path(f"/proc/{helper.pid}/stat").read_text(encoding="ascii").count(")") >= 2
    meter = measure.CpuMeter(own_pids=[helper.pid])
    seen = [meter._process_cpu(helper.pid)]
    deadline = time.monotonic() + 10
    while seen[-1] < 0.3 and time.monotonic() < deadline:
        time.sleep(0.05)
        seen.append(meter._process_cpu(helper.pid))
    assert seen == sorted(seen)  # utime + stime only grow
    assert seen[-1] >= 0.3


def test_a_helper_that_is_gone_counts_nothing() -> None:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    assert measure.CpuMeter()._process_cpu(process.pid) == 0.0
