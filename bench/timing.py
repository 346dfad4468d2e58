"""Two ways to time things: a rate over a fixed duration, and a median latency."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def rate(seconds: float, step: Callable[[], int]) -> tuple[int, float]:
    """Call `step` (which returns units done) until `seconds` pass; (units, elapsed)."""
    done = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        done += step()
        now = time.perf_counter()
        if now >= deadline:
            return done, now - start


def median_us(
    seconds: float,
    call: Callable[[int], object],
    *,
    warmup: int = 100,
    min_samples: int = 200,
    max_samples: int = 200_000,
) -> tuple[float, int]:
    """Median wall time of `call(i)` in microseconds, and the number of samples.

    `call` gets the sample number so it can pick pre-generated random arguments.
    """
    for i in range(warmup):
        call(i)
    samples: list[int] = []
    clock = time.perf_counter_ns
    deadline = clock() + int(seconds * 1e9)
    i = warmup
    while len(samples) < max_samples and (len(samples) < min_samples or clock() < deadline):
        t0 = clock()
        call(i)
        samples.append(clock() - t0)
        i += 1
    return statistics.median(samples) / 1000, len(samples)
