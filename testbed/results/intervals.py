"""95 % intervals over training seeds and held-out clusters (symmetry classes of rules), and paired differences.

What varies. A depth result varies with the training seed and with the held-out rules, and rules come in symmetry
classes (a rule, its mirror, complement and mirror-complement are one dynamics relabelled) whose scores move
together: the class, not the rule, is the unit of generalisation, the cluster. Every seed is scored on the same
examples, so seeds and clusters are crossed, not nested.

Why not a bootstrap. The project's shapes are 2-5 seeds x 6-40 classes. A percentile bootstrap over three seeds
has only ten distinct resamples and its 2.5 / 97.5 percentiles sit near the smallest and largest seed: simulated
with known truth (tests/test_intervals.py), it covers 75-85 % with rules as clusters and 80-92 % with classes, for a
nominal 95. A studentised bootstrap needs a variance per resample that three seeds cannot give.

The method: a crossed random-effects model of the linearised estimate, moment estimates, Student t.
  1. The estimate is a ratio, sum(score) / sum(count) over every unit (a unit: one example in one slice). Its
     first-order (delta-method) expansion is a sum of unit contributions u = (score - estimate * count) / total,
     summed per (seed, cluster) cell into z[s, c]; w[s, c] is the cell's share of the total count.
  2. Model: z[s, c] = w[s, c] (a_s + b_c + g_sc) + e_sc, with seed effects a (variance va), cluster effects b (vb),
     their interaction g (vg) and the within-cell noise e of the units (its variance read off the units of each
     cell, so unequal cells weigh right). Then var(estimate) = va sum_s W_s^2 + vb sum_c W_c^2 + vg sum w^2
     + sum var(e), with W_s, W_c the seed and cluster shares.
  3. va, vb, vg are solved from the expected values of three sums of squares of z (by seed, by cluster, and the
     interaction remainder), computed exactly for the weights at hand and for z summing to zero (the estimate is
     fitted): Henderson's method III, the crossed-design ANOVA estimator when cells are balanced. A negative
     component is set to zero and the others solved again from their own sums of squares.
  4. The interval is t-based with Satterthwaite's degrees of freedom (each sum of squares a scaled chi-square with
     S - 1, C - 1, (S - 1)(C - 1) df): few seeds give few degrees of freedom and a wide t quantile, many clusters
     many.
  5. A rate lives in [0, 1] and is skewed near its bounds, so its interval is built on the logit scale (the delta
     method: standard error / (p (1 - p))) and mapped back; a paired difference, in [-1, 1], on its own scale.
  6. A rate of exactly 0 (or 1) has no spread to measure, yet C clusters that all failed do not prove the rate is
     0: the bound is the exact binomial one with each cluster a trial, 1 - (0.025)^(1/C) (the rule of three's
     3 / C for many clusters), the share of clusters a model could solve and still fail on all C drawn.
With one seed the seed component is not identifiable and the interval is over clusters alone (n_seeds = 1 says so);
with one cluster (a fixed rule) it is over seeds and examples. tests/test_intervals.py simulates the project's
shapes with known truth and checks coverage >= 0.93 and width <= 1.5x an oracle that knows the true variance.

A comparison of two configurations on the same seeds and examples (a family against the same-size transformer) is a
paired difference: the contributions of both are subtracted unit by unit before the variance is estimated, which
removes what they share (common random numbers) and gives a much tighter interval than two overlapping ones.

Where a quantity is a mean of independent repeats with no clusters inside them (a fine-tuning run per seed, a
closed-form memory per random draw of embeddings), the interval is Student's t over the repeats (t_interval).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

LEVEL = 0.95
METHOD = ("t over seeds and held-out clusters, moment estimates, Satterthwaite df; at 0 or 1 the exact "
          "binomial bound over clusters")  # reproductions record it


def _share(group: np.ndarray, weights: np.ndarray, size: int) -> np.ndarray:
    return np.bincount(group, weights, minlength=size)


def crossed_variance(u: np.ndarray, w: np.ndarray, seed: np.ndarray, cluster: np.ndarray, n_seeds: int,
                     n_clusters: int) -> tuple[float, float]:
    """(variance, degrees of freedom) of sum(u), the linearised estimate, under the crossed random-effects model of
    the module docstring. u: unit contributions (summing to 0); w: unit weights (summing to 1); seed, cluster: each
    unit's dense indices in 0..n_seeds-1 and 0..n_clusters-1."""
    S, C = n_seeds, n_clusters
    cell = seed * C + cluster
    z = _share(cell, u, S * C).reshape(S, C)
    wc = _share(cell, w, S * C).reshape(S, C)
    n = np.bincount(cell, minlength=S * C).reshape(S, C)
    ssw = np.maximum(_share(cell, u * u, S * C).reshape(S, C) - np.divide(z * z, n, out=np.zeros_like(z),
                                                                           where=n > 0), 0.0)
    df_within = float(np.maximum(n - 1, 0).sum())
    per_unit = ssw.sum() / df_within if df_within else 0.0  # a cell of one unit borrows the pooled variance
    noise = np.where(n > 1, ssw * n / np.maximum(n - 1, 1), per_unit * n).ravel()  # var of each cell's total
    ws, wcl, wf = wc.sum(1), wc.sum(0), wc.ravel()
    s_of, c_of = np.repeat(np.arange(S), C), np.tile(np.arange(C), S)

    def spread(r: np.ndarray) -> float:  # sum_G r_G^2: how a partition's shares spread
        return float((r * r).sum())

    # E[sum of squares] per unit of each component: rows by seed, by cluster, by cell; the partitions' shares r are
    # ws, wcl and w, and (1 - 2 r_own + spread) is what centring (z summing to 0) leaves of a cell's own variance
    def diag(x: np.ndarray) -> np.ndarray:  # a component independent across cells, cell variances x
        return np.array([(x * (1 - 2 * ws[s_of] + spread(ws))).sum(), (x * (1 - 2 * wcl[c_of] + spread(wcl))).sum(),
                         (x * (1 - 2 * wf + spread(wf))).sum()])

    seed_part = np.array([(ws ** 2 * (1 - 2 * ws + spread(ws))).sum(), ((wc - np.outer(ws, wcl)) ** 2).sum(),
                          (wf ** 2 * (1 - 2 * ws[s_of] + spread(ws))).sum()])
    cluster_part = np.array([((wc - np.outer(ws, wcl)) ** 2).sum(), (wcl ** 2 * (1 - 2 * wcl + spread(wcl))).sum(),
                             (wf ** 2 * (1 - 2 * wcl[c_of] + spread(wcl))).sum()])
    divisor = np.array([C, S, 1.0])  # seed and cluster sums of squares as ANOVA's (per cell of the margin)
    to_ss = np.array([[1, 0, 0], [0, 1, 0], [-1, -1, 1]])  # (by seed, by cluster, by cell) -> (seed, cluster, inter)

    def expected(part):
        return to_ss @ (part / divisor)

    coef = np.stack([expected(seed_part), expected(cluster_part), expected(diag(wf ** 2))], axis=1)  # (ss, comp)
    from_noise = expected(diag(noise))
    observed = to_ss @ (np.array([(z.sum(1) ** 2).sum(), (z.sum(0) ** 2).sum(), (z * z).sum()]) / divisor)
    target = np.array([(ws ** 2).sum(), (wcl ** 2).sum(), (wf ** 2).sum()])  # var(sum u) per unit of each component
    df = np.array([S - 1, C - 1, (S - 1) * (C - 1)], float)
    active = [j for j in range(3) if df[j] > 0]  # with one seed (or one cluster) that component is not identifiable
    while active:
        m = coef[np.ix_(active, active)]
        sol = np.linalg.lstsq(m, observed[active] - from_noise[active], rcond=None)[0]
        if (sol >= 0).all():
            break
        active.pop(int(np.argmin(sol)))  # a negative variance: zero, and the others solved again
    noise_total = float(noise.sum())
    if not active:
        variance = noise_total
        return variance, (df_within if variance > 0 and df_within else math.inf)
    variance = noise_total + float(target[active] @ sol)
    # Satterthwaite: variance = sum_j c_j SS_j + (noise part), each SS_j ~ E[SS_j] chi2(df_j) / df_j
    c = np.linalg.lstsq(coef[np.ix_(active, active)].T, target[active], rcond=None)[0]
    rest = noise_total - float(c @ from_noise[active])
    denominator = float(((c * observed[active]) ** 2 / df[active]).sum())
    denominator += rest ** 2 / df_within if df_within else 0.0
    return variance, (variance ** 2 / denominator if denominator > 0 else math.inf)


def _quantile(dof: float, level: float) -> float:
    return float(stats.t.ppf((1 + level) / 2, max(dof, 1.0)) if math.isfinite(dof) else
                 stats.norm.ppf((1 + level) / 2))


def rate_interval(estimate: float, variance: float, dof: float, level: float = LEVEL,
                  clusters: int = 0) -> tuple[float, float]:
    """The interval of a rate in [0, 1]: t on the logit scale, mapped back. At 0 or 1 every unit scored the same:
    the exact binomial bound over the `clusters` (point 6 of the module docstring); the estimate alone without
    clusters, or where a rate inside (0, 1) shows no spread."""
    if estimate in (0.0, 1.0) and clusters >= 1:
        bound = 1 - ((1 - level) / 2) ** (1 / clusters)
        return (0.0, bound) if estimate == 0 else (1 - bound, 1.0)
    if not 0 < estimate < 1 or variance <= 0:
        return estimate, estimate
    half = _quantile(dof, level) * math.sqrt(variance) / (estimate * (1 - estimate))
    centre = math.log(estimate / (1 - estimate))
    return 1 / (1 + math.exp(-(centre - half))), 1 / (1 + math.exp(-(centre + half)))


def _dense(units_by_seed: list[dict], keep) -> tuple[list[dict], int, np.ndarray]:
    """(each seed's kept units, the number of clusters, each kept unit's dense cluster index, seed after seed)."""
    kept = [{k: v[keep(u)] for k, v in u.items()} if keep is not None else u for u in units_by_seed]
    clusters = np.concatenate([u["cluster"] for u in kept]) if kept else np.zeros(0, np.int64)
    values, index = np.unique(clusters, return_inverse=True)
    return kept, len(values), index.reshape(-1)


def _contributions(kept: list[dict], score: str, count: str | None) -> tuple[float, np.ndarray, np.ndarray]:
    """(estimate, unit contributions u, unit weights w) of sum(score) / sum(count) over the units of every seed."""
    y = np.concatenate([u[score] for u in kept]).astype(np.float64)
    c = np.concatenate([u[count] for u in kept]).astype(np.float64) if count else np.ones_like(y)
    total = c.sum()
    if total <= 0:
        return math.nan, y, c
    estimate = y.sum() / total
    return estimate, (y - estimate * c) / total, c / total


def ratio(units_by_seed: list[dict], score: str, count: str | None = None, keep=None,
          level: float = LEVEL) -> tuple[float, float, float]:
    """(estimate, lo, hi) of sum(score) / sum(count) (count None: one per unit) over the units `keep(units)` selects
    in every seed (all when None): the interval over seeds and clusters of the module docstring; (nan, nan, nan)
    where nothing is selected."""
    kept, n_clusters, cluster = _dense(units_by_seed, keep)
    estimate, u, w = _contributions(kept, score, count)
    if not len(u) or math.isnan(estimate):
        return math.nan, math.nan, math.nan
    seed = np.repeat(np.arange(len(kept)), [len(k[score]) for k in kept])
    variance, dof = crossed_variance(u, w, seed, cluster, len(kept), n_clusters)
    return (estimate, *rate_interval(estimate, variance, dof, level, n_clusters))


def paired(a: list[dict], b: list[dict], score: str, count: str | None = None, keep_a=None, keep_b=None,
           level: float = LEVEL) -> tuple[float, float, float]:
    """(difference, lo, hi) of rate(a) - rate(b) for two configurations' units of the same seeds and examples (unit
    i of seed s of a is unit i of seed s of b): both linearised, subtracted unit by unit, and the difference's
    variance estimated over seeds and clusters; the interval is t on the difference's own scale, cut to [-1, 1]."""
    ka, n_clusters, cluster = _dense(a, keep_a)
    kb, _, cluster_b = _dense(b, keep_b)
    if [len(k[score]) for k in ka] != [len(k[score]) for k in kb] or not np.array_equal(cluster, cluster_b):
        raise ValueError("a paired difference needs the same seeds, examples and clusters on both sides")
    est_a, u_a, w_a = _contributions(ka, score, count)
    est_b, u_b, w_b = _contributions(kb, score, count)
    if not len(u_a) or math.isnan(est_a) or math.isnan(est_b):
        return math.nan, math.nan, math.nan
    seed = np.repeat(np.arange(len(ka)), [len(k[score]) for k in ka])
    variance, dof = crossed_variance(u_a - u_b, (w_a + w_b) / 2, seed, cluster, len(ka), n_clusters)
    difference = est_a - est_b
    half = _quantile(dof, level) * math.sqrt(max(variance, 0.0))
    return difference, max(-1.0, difference - half), min(1.0, difference + half)


def threshold_interval(per_trial: dict, floor: float, replicates: int = 2000, seed: int = 0,
                       level: float = LEVEL) -> tuple[int, int, int]:
    """(capacity, lo, hi) of a capacity read off mean recall: the most pairs whose mean recall over independent
    trials is at least `floor`, every smaller tested number too (0 if none). `per_trial`: {pairs: each trial's share
    recalled}. The interval is a percentile bootstrap over trials, each number of pairs resampled on its own (its
    trials are random memories of their own, independent and many: the case the percentile bootstrap is right
    for); its bounds are tested numbers of pairs."""
    counts = sorted(per_trial)
    rng = np.random.default_rng(seed)

    def most(means) -> int:
        best = 0
        for pairs, mean in zip(counts, means):
            if mean < floor:
                break
            best = pairs
        return best

    trials = [np.asarray(per_trial[p], float) for p in counts]
    draws = np.stack([t[rng.integers(0, len(t), (replicates, len(t)))].mean(1) for t in trials], axis=1)
    caps = np.array([most(row) for row in draws])
    lo, hi = np.quantile(caps, [(1 - level) / 2, (1 + level) / 2], method="inverted_cdf")
    return most([t.mean() for t in trials]), int(lo), int(hi)


def t_interval(values, bounds: tuple[float, float] = (0.0, 1.0)) -> tuple[float, float, float]:
    """(mean, low, high): the 95 % Student t interval of a mean over independent repeats (the mean alone, with nan
    bounds, for one value), cut to the values the quantity can take (an accuracy's [0, 1], a difference's [-1, 1])."""
    v = np.asarray(values, float)
    m = float(v.mean())
    if len(v) < 2:
        return m, math.nan, math.nan
    half = float(stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))
    return m, max(bounds[0], m - half), min(bounds[1], m + half)
