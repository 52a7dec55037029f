"""95 % intervals over seeds and rules: a crossed (two-way) bootstrap, and paired differences.

A depth result varies with the training seed and with the held-out rules (the unit of generalisation), and every
seed is scored on the same rules: the two factors are crossed, not nested. The bootstrap therefore resamples both,
independently (Owen 2007, "The pigeonhole bootstrap"): each replicate draws S seeds and C rules with replacement and
takes the ratio of the summed scores to the summed counts over the drawn (seed, rule) cells, so a rule with more
examples weighs more, exactly as in the point estimate. The interval is the 2.5 and 97.5 percentiles of the
replicates. With one seed only the rules are resampled (the interval then says nothing about seed variation, and
the tables say so: n_seeds = 1).

A comparison of two configurations on the same seeds and rules (a family against the same-size transformer) is a
paired difference: both are resampled with the same draws, which removes the variation they share (common random
numbers) and gives a much tighter interval than two overlapping ones.
"""

from __future__ import annotations

import functools

import numpy as np

LEVEL = 0.95
REPLICATES = 1000
POISSON_FROM = 200  # from this many units on, Poisson(1) weights stand in for the multinomial draw


@functools.lru_cache(maxsize=8)
def resampling_weights(n: int, replicates: int, seed: int) -> np.ndarray:
    """(replicates, n) float32 resampling weights of n units: how often each is drawn in n draws with replacement
    (multinomial); for many units independent Poisson(1) counts, the same distribution in the limit and cheaper (the
    Poisson bootstrap). Cached: every configuration with the same units is resampled with the same draws."""
    rng = np.random.default_rng([seed, n])
    if n >= POISSON_FROM:
        return rng.poisson(1.0, size=(replicates, n)).astype(np.float32)
    return rng.multinomial(n, np.full(n, 1.0 / n), size=replicates).astype(np.float32)


def _rates(num: np.ndarray, den: np.ndarray, replicates: int, seed: int) -> np.ndarray:
    """Bootstrap replicates of sum(num) / sum(den) over (seeds, clusters) cells: seeds and clusters resampled
    independently (only clusters when there is one seed)."""
    n_seeds, n_clusters = num.shape
    wc = resampling_weights(n_clusters, replicates, seed)
    ws = resampling_weights(n_seeds, replicates, seed + 1) if n_seeds > 1 else np.ones((replicates, 1), np.float32)
    top = ((ws @ num.astype(np.float32)) * wc).sum(axis=1)
    bottom = ((ws @ den.astype(np.float32)) * wc).sum(axis=1)
    return np.divide(top, bottom, out=np.full(replicates, np.nan, np.float32), where=bottom > 0)


def _percentiles(values: np.ndarray, level: float) -> tuple[float, float]:
    lo, hi = np.nanquantile(values.astype(np.float64), [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def bootstrap(num: np.ndarray, den: np.ndarray, replicates: int = REPLICATES, seed: int = 0,
              level: float = LEVEL) -> tuple[float, float, float]:
    """(estimate, lo, hi) of sum(num) / sum(den) for (seeds, clusters) arrays of summed scores and counts: the
    crossed bootstrap over seeds and clusters (clusters only when there is one seed)."""
    num, den = np.atleast_2d(np.asarray(num, np.float64)), np.atleast_2d(np.asarray(den, np.float64))
    if den.sum() <= 0:
        return float("nan"), float("nan"), float("nan")
    estimate = float(num.sum() / den.sum())
    if num.shape[1] < 2 and num.shape[0] < 2:
        return estimate, float("nan"), float("nan")
    return (estimate, *_percentiles(_rates(num, den, replicates, seed), level))


def cell_sums(units_by_seed: list[dict], score: str, count: str | None, keep=None) -> tuple[np.ndarray, np.ndarray]:
    """(seeds, clusters) arrays of summed `score` and `count` (None: one per unit) of each seed's units, over the
    union of their clusters; `keep(units)` selects units (a stratum, a slice)."""
    selected = []
    for units in units_by_seed:
        mask = keep(units) if keep is not None else np.ones(len(units[score]), bool)
        selected.append((units["cluster"][mask], units[score][mask].astype(np.float64),
                         units[count][mask].astype(np.float64) if count else np.ones(int(mask.sum()))))
    clusters = np.unique(np.concatenate([c for c, _, _ in selected])) if selected else np.zeros(0, np.int64)
    num, den = np.zeros((len(selected), len(clusters))), np.zeros((len(selected), len(clusters)))
    for i, (c, s, n) in enumerate(selected):
        where = np.searchsorted(clusters, c)
        np.add.at(num[i], where, s)
        np.add.at(den[i], where, n)
    return num, den


def paired(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray], replicates: int = REPLICATES,
           seed: int = 0, level: float = LEVEL) -> tuple[float, float, float]:
    """(difference, lo, hi) of rate(a) - rate(b) for two (num, den) pairs over the same (seeds, clusters) cells,
    both resampled with the same draws."""
    (na, da), (nb, db) = a, b
    if na.shape != nb.shape:
        raise ValueError(f"paired difference needs the same seeds and rules, got {na.shape} and {nb.shape}")
    estimate = float(na.sum() / da.sum() - nb.sum() / db.sum())
    values = _rates(na, da, replicates, seed) - _rates(nb, db, replicates, seed)
    return (estimate, *_percentiles(values, level))
