"""Latency statistics: percentiles per pass, then the median over passes.

Every measurement runs its warm-up first (excluded) and then ``repeats`` passes over
the same inputs; reporting the median of each pass's percentile damps a noisy
neighbour on a shared machine without hiding a consistently slow tail.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")


@dataclass(frozen=True)
class Stats:
    n: int
    mean_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    qps: float  # sequential, one caller: 1000 / mean_ms

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def ratio(self, floor: Stats) -> dict[str, float]:
        """Each percentile as a multiple of the floor's."""
        return {k: _div(getattr(self, k), getattr(floor, k)) for k in ("mean_ms", "p50_ms", "p95_ms", "p99_ms")}


def _div(a: float, b: float) -> float:
    return a / b if b > 0 else float("nan")


def summarize(seconds: Sequence[float]) -> Stats:
    ms = np.asarray(seconds, dtype=np.float64) * 1000.0
    if ms.size == 0:
        return Stats(0, float("nan"), float("nan"), float("nan"), float("nan"), float("nan"))
    mean = float(ms.mean())
    p50, p95, p99 = (float(x) for x in np.percentile(ms, [50, 95, 99]))
    return Stats(int(ms.size), mean, p50, p95, p99, 1000.0 / mean if mean > 0 else float("nan"))


def median_of_passes(passes: Sequence[Sequence[float]]) -> Stats:
    per_pass = [summarize(p) for p in passes]
    if len(per_pass) == 1:
        return per_pass[0]
    med = {k: statistics.median(getattr(s, k) for s in per_pass) for k in ("mean_ms", "p50_ms", "p95_ms", "p99_ms")}
    return Stats(per_pass[0].n, med["mean_ms"], med["p50_ms"], med["p95_ms"], med["p99_ms"],
                 1000.0 / med["mean_ms"] if med["mean_ms"] > 0 else float("nan"))


def time_each(fn: Callable[[T], object], items: Sequence[T], *, warmup: int, repeats: int) -> list[list[float]]:
    """Seconds per call of ``fn(item)``, one list per pass; the first ``warmup`` items run untimed first."""
    for item in items[:warmup]:
        fn(item)
    passes = []
    for _ in range(repeats):
        times = []
        for item in items:
            start = time.perf_counter()
            fn(item)
            times.append(time.perf_counter() - start)
        passes.append(times)
    return passes


def time_interleaved(fns: Sequence[Callable[[T], object]], items: Sequence[T], *, warmup: int,
                     repeats: int) -> list[list[list[float]]]:
    """``time_each`` for several functions at once, alternating them item by item.

    A comparison timed one side after the other absorbs any change in machine load
    (a background compaction, a noisy neighbour) into one side; alternating per item,
    with the order reversed on every other pass, spreads it over both. Returns one
    list of passes per function.
    """
    for item in items[:warmup]:
        for fn in fns:
            fn(item)
    out: list[list[list[float]]] = [[] for _ in fns]
    for r in range(repeats):
        order = list(range(len(fns)))
        if r % 2:
            order.reverse()
        times: list[list[float]] = [[] for _ in fns]
        for item in items:
            for f in order:
                start = time.perf_counter()
                fns[f](item)
                times[f].append(time.perf_counter() - start)
        for f in range(len(fns)):
            out[f].append(times[f])
    return out


def elementwise_sum(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]]) -> list[list[float]]:
    """Pair two timings of the same queries (embed + store) into end-to-end times, pass by pass."""
    return [[x + y for x, y in zip(pa, pb, strict=True)] for pa, pb in zip(a, b, strict=True)]
