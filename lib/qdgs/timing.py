"""Interleaved timing on a device: how the package compares the speed of alternatives.

Machines are noisy, so alternatives are timed in one run, round-robin with the order rotated every
round, and compared by their medians; CUDA work is synchronised around each call so that queued
kernels count where they run. The clock is an argument, so that tests drive a choice with a fake
clock instead of depending on the machine's speed.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch

__all__ = ["synchronize", "timed", "interleaved_ms"]

Clock = Callable[[], float]


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device, clock: Clock = time.perf_counter) -> float:
    """Seconds one call of ``fn`` takes on ``device``, queued work included."""
    synchronize(device)
    start = clock()
    fn()
    synchronize(device)
    return clock() - start


def interleaved_ms(calls: dict[str, Callable[[], object]], rounds: int, warmup: int, device: torch.device,
                   clock: Clock = time.perf_counter,
                   statistic: Callable[[list[float]], float] = np.median) -> dict[str, float]:
    """Milliseconds of each call: ``warmup`` untimed rounds, then ``rounds`` timed round-robin rounds
    with the order rotated every round, so drifts of a noisy machine hit every call alike.

    ``statistic`` summarises each call's rounds: the median (reported timings) by default; the
    minimum estimates what a call costs when other load only ever adds time (``timeit``'s choice).
    """
    names = list(calls)
    for _ in range(warmup):
        for name in names:
            calls[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            times[name].append(timed(calls[name], device, clock))
    return {name: 1000 * float(statistic(t)) for name, t in times.items()}
