"""Benchmarks: throughput figures reported as ratios against references measured in the same run."""

from __future__ import annotations

import os
import random
import time
from contextlib import contextmanager

import numpy as np

import generators
from generators.cellular_automata import evolve


@contextmanager
def one_core():
    """Pin this process to a single core while benchmarking (where the OS allows it)."""
    if not hasattr(os, "sched_getaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def _best_rate(fn, cells: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return cells / best


def reference_python(n: int, radius: int, width: int, steps: int, seed: int = 0) -> list:
    """Plain per-example, per-cell Python: random rule and state, then the textbook update."""
    rnd = random.Random(seed)
    size = 1 << (2 * radius + 1)
    orbits = []
    for _ in range(n):
        rule = [rnd.getrandbits(1) for _ in range(size)]
        x = [rnd.getrandbits(1) for _ in range(width)]
        orbit = [x]
        for _ in range(steps - 1):
            nxt = []
            for i in range(width):
                v = 0
                for j in range(-radius, radius + 1):
                    v = 2 * v + x[(i + j) % width]
                nxt.append(rule[v])
            x = nxt
            orbit.append(x)
        orbits.append(orbit)
    return orbits


def reference_numpy(init: np.ndarray, tables: np.ndarray, steps: int) -> np.ndarray:
    """Straightforward numpy: np.roll neighbourhoods and take_along_axis lookups, vectorised over examples."""
    r = (tables.shape[1].bit_length() - 2) // 2
    out = [init]
    x = init
    for _ in range(steps - 1):
        v = np.zeros(x.shape, np.int64)
        for j in range(-r, r + 1):
            v = 2 * v + np.roll(x, -j, axis=1)
        x = np.take_along_axis(tables, v, axis=1)
        out.append(x)
    return np.stack(out, 1)


def bench_generators(radius: int = 2, width: int = 20, steps: int = 20, n: int = 100_000, repeats: int = 3) -> dict:
    """Cells per second of the CA generator on one core, beside per-example Python and straightforward numpy."""
    gen = generators.make("ca", {"radius": radius, "width": width, "steps": steps, "n_input": 1})
    idx = np.arange(n)
    with one_core():
        states, tables = gen.orbits("train", 0, idx[:1000])
        ours = _best_rate(lambda: gen.orbits("train", 0, idx), n * steps * width, repeats)
        init = gen.initial_states("train", 0, idx.astype(np.uint64))
        tables = gen.rules("train", 0, idx.astype(np.uint64))
        evolve_only = _best_rate(lambda: evolve(init, tables, steps), n * steps * width, repeats)
        ref_np = _best_rate(lambda: reference_numpy(init, tables, steps), n * steps * width, repeats)
        n_py = max(1, n // 500)
        ref_py = _best_rate(lambda: reference_python(n_py, radius, width, steps), n_py * steps * width, 1)
    return {
        "radius": radius, "width": width, "steps": steps, "examples": n,
        "cells_per_s": ours, "evolve_cells_per_s": evolve_only,
        "reference_numpy_cells_per_s": ref_np, "reference_python_cells_per_s": ref_py,
        "speedup_vs_numpy": ours / ref_np, "speedup_vs_python": ours / ref_py,
    }
