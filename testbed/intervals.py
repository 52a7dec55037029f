"""95 % intervals over seeds and rules: a crossed (two-way) bootstrap, and paired differences.

A depth result varies with the training seed and with the held-out rules (the unit of generalisation), and every
seed is scored on the same rules: the two factors are crossed, not nested. The bootstrap therefore resamples both,
independently (Owen 2007, "The pigeonhole bootstrap"): each replicate draws S seeds and C rules with replacement and
takes the ratio of the summed scores to the summed counts over the drawn (seed, rule) cells, so a rule with more
examples weighs more, exactly as in the point estimate. The interval is the 2.5 and 97.5 percentiles of the
replicates. With one seed only the rules are resampled (the interval then says nothing about seed variation, and
the tables say so: n_seeds = 1).

Many clusters (i.i.d. examples of a recall task, a radius-2 pool where every example draws its own rule) are pooled
into MAX_CLUSTERS groups of whole clusters (cluster rank modulo MAX_CLUSTERS): sums of exchangeable units are
exchangeable, so resampling the groups estimates the same variance, in bounded memory and time.

A comparison of two configurations on the same seeds and rules (a family against the same-size transformer) is a
paired difference: both are resampled with the same draws, which removes the variation they share (common random
numbers) and gives a much tighter interval than two overlapping ones.

Where a quantity is a mean of independent repeats with no clusters inside them (a fine-tuning run per seed, a
closed-form memory per random draw of embeddings), the interval is Student's t over the repeats.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy import stats

LEVEL = 0.95
REPLICATES = 1000
POISSON_FROM = 200  # from this many units on, Poisson(1) weights stand in for the multinomial draw
MAX_CLUSTERS = 2048  # more clusters than this are pooled into this many groups (see above)


@functools.lru_cache(maxsize=64)  # at most MAX_CLUSTERS units each: <= 8 MB an entry
def resampling_weights(n: int, replicates: int, seed: int) -> np.ndarray:
    """(replicates, n) float32 resampling weights of n units: how often each is drawn in n draws with replacement
    (multinomial); for many units independent Poisson(1) counts, the same distribution in the limit and cheaper (the
    Poisson bootstrap). Cached: every configuration with the same units is resampled with the same draws."""
    if n >= POISSON_FROM:  # independent per unit: the first n columns of one matrix serve every n
        return _poisson_weights(replicates, seed, max(n, MAX_CLUSTERS))[:, :n]
    rng = np.random.default_rng([seed, n])
    draws = rng.integers(0, n, size=(replicates, n)) + n * np.arange(replicates)[:, None]  # n draws per replicate
    return np.bincount(draws.ravel(), minlength=replicates * n).reshape(replicates, n).astype(np.float32)


@functools.lru_cache(maxsize=4)
def _poisson_weights(replicates: int, seed: int, width: int) -> np.ndarray:
    return np.random.default_rng([seed, 0]).poisson(1.0, size=(replicates, width)).astype(np.float32)


def _rates(num: np.ndarray, den: np.ndarray, replicates: int, seed: int) -> np.ndarray:
    """Bootstrap replicates (replicates, M) of sum(num[m]) / sum(den[m]) for M statistics given as (M, seeds,
    clusters) arrays over the same cells: seeds and clusters resampled independently (only clusters when there is
    one seed), every statistic with the same draws."""
    m, n_seeds, n_clusters = num.shape
    wc = resampling_weights(n_clusters, replicates, seed)
    ws = resampling_weights(n_seeds, replicates, seed + 1) if n_seeds > 1 else np.ones((replicates, 1), np.float32)
    # sum over seeds s and clusters c of ws[r, s] * x[s, c] * wc[r, c]: one product with the (replicates, clusters)
    # weights for every statistic's numerator and denominator at once (the weights are read once, not 2M times)
    cells = np.concatenate([num, den]).reshape(2 * m * n_seeds, n_clusters).T.astype(np.float32)
    per_seed = (wc @ cells).reshape(replicates, 2 * m, n_seeds)
    top, bottom = np.split((per_seed * ws[:, None, :]).sum(axis=2), 2, axis=1)
    return np.divide(top, bottom, out=np.full(top.shape, np.nan, np.float32), where=bottom > 0)


def _percentiles(values: np.ndarray, level: float) -> tuple[float, float]:
    lo, hi = np.nanquantile(values.astype(np.float64), [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def bootstrap(num: np.ndarray, den: np.ndarray, replicates: int = REPLICATES, seed: int = 0,
              level: float = LEVEL) -> tuple[float, float, float]:
    """(estimate, lo, hi) of sum(num) / sum(den) for (seeds, clusters) arrays of summed scores and counts: the
    crossed bootstrap over seeds and clusters (clusters only when there is one seed)."""
    return bootstrap_many([(num, den)], replicates, seed, level)[0]


def bootstrap_many(pairs: list[tuple[np.ndarray, np.ndarray]], replicates: int = REPLICATES, seed: int = 0,
                   level: float = LEVEL) -> list[tuple[float, float, float]]:
    """`bootstrap` of several statistics over the same (seeds, clusters) cells, resampled with the same draws in
    one pass (a row's four metric columns)."""
    num = np.stack([np.atleast_2d(np.asarray(n, np.float64)) for n, _ in pairs])
    den = np.stack([np.atleast_2d(np.asarray(d, np.float64)) for _, d in pairs])
    totals = den.sum(axis=(1, 2))
    estimates = np.divide(num.sum(axis=(1, 2)), totals, out=np.full(len(pairs), np.nan), where=totals > 0)
    if num.shape[2] < 2 and num.shape[1] < 2:
        return [(float(e), float("nan"), float("nan")) for e in estimates]
    live = totals > 0
    values = np.full((replicates, len(pairs)), np.nan, np.float32)
    if live.any():
        values[:, live] = _rates(num[live], den[live], replicates, seed)
    return [(float(e), *_percentiles(values[:, i], level)) if live[i] else (float("nan"),) * 3
            for i, e in enumerate(estimates)]


def cluster_index(units_by_seed: list[dict]) -> tuple[list[np.ndarray], int]:
    """(each seed's units' column in the (seeds, clusters) arrays, the number of columns): the union of the seeds'
    clusters, pooled into at most MAX_CLUSTERS groups of whole clusters, the same for every seed."""
    clusters = np.unique(np.concatenate([u["cluster"] for u in units_by_seed])) if units_by_seed else np.zeros(0)
    return ([np.searchsorted(clusters, u["cluster"]) % MAX_CLUSTERS for u in units_by_seed],
            min(len(clusters), MAX_CLUSTERS))


def sums(units_by_seed: list[dict], index: list[np.ndarray], columns: int, score: str, count: str | None,
         keep=None) -> tuple[np.ndarray, np.ndarray]:
    """(seeds, columns) arrays of summed `score` and `count` (None: one per unit) of the units `keep(units)`
    selects (all when None), placed by `index` (cluster_index)."""
    num, den = np.zeros((len(units_by_seed), columns)), np.zeros((len(units_by_seed), columns))
    for i, (units, where) in enumerate(zip(units_by_seed, index)):
        mask = keep(units) if keep is not None else slice(None)
        num[i] = np.bincount(where[mask], units[score][mask].astype(np.float64), minlength=columns)
        den[i] = np.bincount(where[mask], units[count][mask].astype(np.float64) if count else None,
                             minlength=columns)
    return num, den


def cell_sums(units_by_seed: list[dict], score: str, count: str | None, keep=None) -> tuple[np.ndarray, np.ndarray]:
    """(seeds, clusters) arrays of summed `score` and `count` (None: one per unit) of each seed's units, over the
    union of their clusters; `keep(units)` selects units (a stratum, a slice)."""
    if keep is not None:
        units_by_seed = [{k: v[keep(u)] for k, v in u.items()} for u in units_by_seed]
    index, columns = cluster_index(units_by_seed)
    return sums(units_by_seed, index, columns, score, count)


def paired(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray], replicates: int = REPLICATES,
           seed: int = 0, level: float = LEVEL) -> tuple[float, float, float]:
    """(difference, lo, hi) of rate(a) - rate(b) for two (num, den) pairs over the same (seeds, clusters) cells,
    both resampled with the same draws."""
    (na, da), (nb, db) = a, b
    if na.shape != nb.shape:
        raise ValueError(f"paired difference needs the same seeds and rules, got {na.shape} and {nb.shape}")
    estimate = float(na.sum() / da.sum() - nb.sum() / db.sum())
    values = _rates(na[None], da[None], replicates, seed)[:, 0] - _rates(nb[None], db[None], replicates, seed)[:, 0]
    return (estimate, *_percentiles(values, level))


def t_interval(values, bounds: tuple[float, float] = (0.0, 1.0)) -> tuple[float, float, float]:
    """(mean, low, high): the 95 % Student t interval of a mean over independent repeats (the mean alone, with nan
    bounds, for one value), cut to the values the quantity can take (an accuracy's [0, 1], a difference's [-1, 1])."""
    v = np.asarray(values, float)
    m = float(v.mean())
    if len(v) < 2:
        return m, math.nan, math.nan
    half = float(stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))
    return m, max(bounds[0], m - half), min(bounds[1], m + half)
