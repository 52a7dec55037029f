"""Intervals over seeds and held-out classes: checked against an independent formula, and calibrated by simulation
with known truth in the shapes this project has (2-5 seeds x 6-40 symmetry classes x tens of examples per class).

The simulated world: a configuration's logit accuracy on an example is mu + a_seed + b_class + g_(seed, class) +
r_rule (rules nested in classes, 1, 2 or 4 per class like the radius-1 classes), and each example is a Bernoulli
draw. The truth is the accuracy on a new seed and a new class, E[expit(mu + ...)] (Gauss-Hermite). Coverage is the
share of simulated studies whose 95 % interval holds the truth; the oracle interval is estimate +- 1.96 x the true
standard deviation of the estimate (its root mean square error over the studies), which no method can know."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import expit

from testbed.results import intervals

# (seeds, classes, examples per rule, mu, sd of (seed, class, seed x class, rule)): the project's 3 seeds x 9
# radius-1 test classes in several mixes (class-dominated, seed-dominated like the one-layer quickstart model, near
# the bounds), fewer seeds and classes, and a larger held-out share
SETTINGS = [
    (3, 9, 12, 0.0, (0.5, 1.0, 0.3, 0.3)),
    (3, 9, 12, 0.5, (1.0, 0.5, 0.3, 0.3)),
    (3, 9, 12, 0.0, (2.0, 0.5, 0.2, 0.2)),
    (3, 9, 12, 2.5, (0.5, 1.0, 0.3, 0.3)),
    (2, 6, 12, 0.0, (0.5, 1.0, 0.3, 0.3)),
    (5, 40, 8, -1.0, (0.5, 1.0, 0.3, 0.3)),
]
STUDIES = 600


def truth(mu: float, sd) -> float:
    x, w = np.polynomial.hermite_e.hermegauss(80)
    return float((w * expit(mu + math.sqrt(sum(s * s for s in sd)) * x)).sum() / w.sum())


class World:
    """One design (classes, their rules and examples, fixed like a test split) and its random studies."""

    def __init__(self, rng, seeds, classes, per_rule, mu, sd):
        self.rng, self.seeds, self.classes, self.mu, self.sd = rng, seeds, classes, mu, sd
        rules = rng.choice([1, 2, 4], classes, p=[0.1, 0.3, 0.6])
        self.rule_class = np.repeat(np.arange(classes), rules)
        sizes = np.maximum(rng.poisson(per_rule, len(self.rule_class)), 1)
        self.rule = np.repeat(np.arange(len(self.rule_class)), sizes)  # each example's rule
        self.cluster = self.rule_class[self.rule]

    def logits(self):
        sa, sb, sg, sr = self.sd
        rng, s = self.rng, self.seeds
        a, b = rng.normal(0, sa, s), rng.normal(0, sb, self.classes)
        g, r = rng.normal(0, sg, (s, self.classes)), rng.normal(0, sr, len(self.rule_class))
        return self.mu + a[:, None] + b[self.cluster][None] + g[:, self.cluster] + r[self.rule][None]  # (s, n)

    def study(self, logits=None):
        logits = self.logits() if logits is None else logits
        exact = (self.rng.random(logits.shape) < expit(logits)).astype(np.float64)
        return [{"cluster": self.cluster, "rule": self.rule, "exact": e} for e in exact]


def old_percentile_bootstrap(units, key, rng, replicates=400):
    """The method this project used before: a percentile bootstrap resampling seeds and `key` clusters."""
    seeds = len(units)
    clusters, index = np.unique(units[0][key], return_inverse=True)
    num = np.stack([np.bincount(index, u["exact"], len(clusters)) for u in units])
    den = np.stack([np.bincount(index, None, len(clusters)) for u in units]).astype(float)
    ws = rng.multinomial(seeds, [1 / seeds] * seeds, replicates)
    wc = rng.multinomial(len(clusters), [1 / len(clusters)] * len(clusters), replicates)
    t = np.einsum("rs,sc,rc->r", ws, num, wc) / np.einsum("rs,sc,rc->r", ws, den, wc)
    return np.quantile(t, [0.025, 0.975])


def coverage(estimates, bounds, true_value):
    bounds = np.asarray(bounds)
    covered = (bounds[:, 0] <= true_value) & (true_value <= bounds[:, 1])
    oracle = 1.96 * np.sqrt(np.mean((np.asarray(estimates) - true_value) ** 2))
    return covered.mean(), np.mean((bounds[:, 1] - bounds[:, 0]) / 2) / oracle


@pytest.mark.slow
@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: f"{s[0]}seeds-{s[1]}classes-mu{s[3]}-sd{s[4]}")
def test_intervals_keep_their_coverage_in_the_projects_shapes(setting):
    seeds, classes, per_rule, mu, sd = setting
    rng = np.random.default_rng(SETTINGS.index(setting))
    world, goal = World(rng, *setting), truth(mu, sd)
    got = [intervals.ratio(world.study(), "exact") for _ in range(STUDIES)]
    cov, width = coverage([g[0] for g in got], [g[1:] for g in got], goal)
    assert cov >= 0.93, f"coverage {cov:.3f} of nominal 95 % intervals"
    assert width <= 1.5, f"half-width {width:.2f}x the oracle's"


@pytest.mark.slow
def test_the_old_percentile_bootstrap_fails_the_coverage_check():
    """The check can fail: the percentile bootstrap over seeds and rules (and over seeds and classes) under-covers
    in the project's 3 seeds x 9 classes, as the simulation of the intervals issue found."""
    rng = np.random.default_rng(5)
    setting = SETTINGS[0]
    world, goal = World(rng, *setting), truth(setting[3], setting[4])
    for key in ("rule", "cluster"):
        studies = [world.study() for _ in range(300)]
        est = [np.mean([u["exact"] for u in s]) for s in studies]
        cov, _ = coverage(est, [old_percentile_bootstrap(s, key, rng) for s in studies], goal)
        assert cov < 0.93, (key, cov)


def seed_limited(seeds: int) -> float:
    """How much wider than the oracle any valid interval must be when all variation is between seeds: the t
    interval over seed means (the best there is for normal data, Student) has the expected half-width t(0.975,
    S - 1) E[s] / (1.96 sigma), E[s] = c4 sigma; 1.94 for three seeds."""
    from scipy import stats
    from scipy.special import gammaln

    c4 = math.sqrt(2 / (seeds - 1)) * math.exp(gammaln(seeds / 2) - gammaln((seeds - 1) / 2))
    return stats.t.ppf(0.975, seeds - 1) * c4 / 1.96


@pytest.mark.slow
@pytest.mark.parametrize("setting, width_bound", [(SETTINGS[0], 1.5), (SETTINGS[5], 1.5),
                                                  (SETTINGS[1], 1.1 * seed_limited(3))],
                         ids=["class-led", "5x40", "seed-led"])
def test_paired_differences_keep_their_coverage(setting, width_bound):
    """Two configurations on the same seeds and examples, sharing most of their class and rule effects (a family
    and the same-size transformer): the paired difference covers the true difference of accuracies. Where its
    variance is almost all between seeds (seed-led), no valid three-seed interval is within 1.5x of the oracle:
    there it is held to 1.1x the t interval's own cost (seed_limited)."""
    seeds, classes, per_rule, mu, sd = setting
    rng = np.random.default_rng(11)
    world = World(rng, *setting)
    shift, own = 0.8, 0.3  # b: a's logits shifted down, plus effects of its own (0.3 of a's spread)
    total = math.sqrt(sum(s * s for s in sd))
    x, w = np.polynomial.hermite_e.hermegauss(80)
    goal = float((w * (expit(mu + total * x) - expit(mu - shift + math.hypot(total, own * total) * x))).sum()
                 / w.sum())
    got = []
    for _ in range(STUDIES):
        shared = world.logits()
        a, b = world.study(shared), world.study(shared - shift + own * (world.logits() - mu))
        got.append(intervals.paired(a, b, "exact"))
    est = [g[0] for g in got]
    cov, width = coverage(est, [g[1:] for g in got], goal)
    assert cov >= 0.93 and width <= width_bound, (cov, width)


def test_balanced_cells_give_the_crossed_anova_variance():
    """One unit per (seed, class) cell, balanced: the method is the classical two-way random-effects estimator,
    var(mean) = (MS_seed + MS_class - MS_interaction) / (S C), with Satterthwaite's degrees of freedom."""
    rng = np.random.default_rng(0)
    S, C = 4, 7
    y = rng.normal(0, 1, (S, C)) + rng.normal(0, 2, (S, 1)) + rng.normal(0, 1.5, (1, C))
    grand = y.mean()
    ms_s = C * ((y.mean(1) - grand) ** 2).sum() / (S - 1)
    ms_c = S * ((y.mean(0) - grand) ** 2).sum() / (C - 1)
    resid = y - y.mean(1, keepdims=True) - y.mean(0, keepdims=True) + grand
    ms_sc = (resid ** 2).sum() / ((S - 1) * (C - 1))
    assert ms_s > ms_sc and ms_c > ms_sc  # every component positive: no truncation in play
    want = (ms_s + ms_c - ms_sc) / (S * C)
    want_df = (ms_s + ms_c - ms_sc) ** 2 / (ms_s ** 2 / (S - 1) + ms_c ** 2 / (C - 1)
                                            + ms_sc ** 2 / ((S - 1) * (C - 1)))
    seed, cluster = np.repeat(np.arange(S), C), np.tile(np.arange(C), S)
    u = (y.ravel() - grand) / (S * C)
    variance, dof = intervals.crossed_variance(u, np.full(S * C, 1 / (S * C)), seed, cluster, S, C)
    assert variance == pytest.approx(want, rel=1e-9) and dof == pytest.approx(want_df, rel=1e-9)


def test_one_seed_of_independent_examples_is_a_binomial_interval():
    """One seed, every example its own cluster: the interval is the logit (delta-method) interval of a binomial
    proportion."""
    rng = np.random.default_rng(0)
    n = 2000
    exact = (rng.random(n) < 0.3).astype(float)
    est, lo, hi = intervals.ratio([{"cluster": np.arange(n), "exact": exact}], "exact")
    p = exact.mean()
    half = 1.96 * math.sqrt(p * (1 - p) / n) / (p * (1 - p))
    logit = math.log(p / (1 - p))
    assert est == pytest.approx(p)
    assert lo == pytest.approx(expit(logit - half), rel=2e-3) and hi == pytest.approx(expit(logit + half), rel=2e-3)


def test_many_clusters_are_cheap():
    """100,000 i.i.d. examples as clusters and three seeds: exact sums over the cells, no resampling, no pooling."""
    rng = np.random.default_rng(2)
    n = 100_000
    units = [{"cluster": np.arange(n), "exact": (rng.random(n) < 0.9).astype(float)} for _ in range(3)]
    est, lo, hi = intervals.ratio(units, "exact")
    assert lo < est < hi and hi - lo < 0.01


def test_seed_variation_widens_the_interval_and_pairing_narrows_a_difference():
    rng = np.random.default_rng(1)
    classes = np.arange(60)
    solved = rng.random(60) < 0.5  # per class: solved by a good model or not

    def units(rows):
        return [{"cluster": classes, "exact": r.astype(float)} for r in rows]

    same = units([solved] * 3)  # three seeds that agree: no seed variation
    shifted = units([solved & (rng.random(60) < f) for f in (0.5, 0.8, 1.0)])  # seeds that differ
    _, lo_s, hi_s = intervals.ratio(same, "exact")
    _, lo_d, hi_d = intervals.ratio(shifted, "exact")
    assert hi_d - lo_d > hi_s - lo_s
    # b is a, less a few classes: the difference is small and certain when paired, invisible from two intervals
    lost = rng.random(60) > 0.1
    b = units([solved & lost] * 3)
    diff, lo, hi = intervals.paired(same, b, "exact")
    _, lo_b, hi_b = intervals.ratio(b, "exact")
    assert 0 < lo <= diff <= hi and hi - lo < 0.7 * (hi_s - lo_s)
    assert lo_s < hi_b  # the two intervals overlap
    assert intervals.paired(same, same, "exact") == (0.0, 0.0, 0.0)


def test_a_rate_at_its_bound_and_an_empty_selection():
    """Every unit right (or wrong) in 5 clusters does not prove the rate is 1 (or 0): the bound is the exact binomial
    one with a trial per cluster, P(5 of 5 | p = lo) = 0.025, and it narrows as clusters are added."""
    units = [{"cluster": np.arange(5), "exact": np.ones(5)} for _ in range(3)]
    est, lo, hi = intervals.ratio(units, "exact")
    assert (est, hi) == (1.0, 1.0) and lo ** 5 == pytest.approx(0.025)
    zeros = [{"cluster": np.repeat(np.arange(20), 4), "exact": np.zeros(80)} for _ in range(3)]
    est, lo, hi = intervals.ratio(zeros, "exact")
    assert (est, lo) == (0.0, 0.0) and (1 - hi) ** 20 == pytest.approx(0.025) and hi < 1 - 0.025 ** (1 / 5)
    assert all(math.isnan(v) for v in intervals.ratio(units, "exact", keep=lambda u: u["exact"] < 0))
    with pytest.raises(ValueError, match="same seeds"):
        intervals.paired(units, units[:2], "exact")


def test_t_interval_stops_at_the_bounds():
    assert intervals.t_interval([0.9, 1.0, 1.0])[2] == 1.0
    assert math.isnan(intervals.t_interval([0.5])[1])


def test_a_capacity_read_off_mean_recall_gets_an_interval_over_trials():
    """The threshold statistic (most pairs recalled at >= floor, every smaller number too) and its bootstrap over
    trials: certain where recall is far from the floor, spanning the neighbours where it sits on it."""
    rng = np.random.default_rng(0)
    far = {1: np.ones(40), 2: np.full(40, 0.99), 4: rng.uniform(0.97, 1.0, 40), 8: rng.uniform(0.0, 0.3, 40)}
    assert intervals.threshold_interval(far, 0.9) == (4, 4, 4)
    half = np.tile([0.0, 1.0], 10)  # mean recall exactly on the floor of 0.5 at 2 and 4 pairs
    near = {1: np.ones(20), 2: half, 4: half, 8: np.zeros(20)}
    assert intervals.threshold_interval(near, 0.5) == (4, 1, 4)  # a resample can fall under it at 2 or at 4 pairs
    assert intervals.threshold_interval({1: np.full(5, 0.5)}, 0.9) == (0, 0, 0)
