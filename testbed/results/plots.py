"""Figures drawn from results tables (matplotlib only; the numbers come from tables.py)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from generators import ConfigError  # noqa: E402
from generators.core.io import atomic_write  # noqa: E402

from .tables import (  # noqa: E402
    AXIS_NAMES,
    HEADLINE,
    SOLVED_LO,
    SOLVED_MEAN,
    by_layers,
    depth_table,
    extrapolation_table,
    heatmap_table,
    iterations_table,
    published_series,
    staircase,
)

METRIC_NAMES = {
    "exact_match_nontrivial": "exact match, non-trivial examples",
    "exact_match": "exact match, every example",
    "cell_accuracy": "per-cell accuracy",
    "cell_accuracy_nontrivial": "per-cell accuracy, non-trivial examples",
    "exact_match_fresh": "exact match, fresh targets",
}
BASELINE_STYLES = ["--", ":", "-.", (0, (1, 3))]


def finish(fig, out: str | Path, title: str) -> None:
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    _save(fig, out)


def _save(fig, out: str | Path) -> None:
    out = Path(out)
    if not out.parent.is_dir():
        raise ConfigError(f"cannot write {str(out)!r}: directory {str(out.parent)!r} does not exist")
    atomic_write(out, lambda f: fig.savefig(f, format=out.suffix.lstrip(".") or "png", dpi=120, bbox_inches="tight"))
    plt.close(fig)


def _errorbar(ax, xs, points, **style) -> None:
    """Means with their 95 % intervals as error bars (none where a point has no interval)."""
    xs, mean = np.asarray(xs, float), np.array([p[0] for p in points])
    lo, hi = np.array([p[1] for p in points]), np.array([p[2] for p in points])
    err = np.where(np.isnan(lo), 0, [mean - lo, hi - mean])
    ax.errorbar(xs, mean, yerr=np.maximum(err, 0), capsize=3, marker="o", ms=4, **style)


def _baselines(ax, curves: dict) -> None:
    for j, (name, ks) in enumerate(sorted(curves.items())):
        xs = sorted(ks)
        ax.plot(xs, [ks[x][0] for x in xs], ls=BASELINE_STYLES[j % len(BASELINE_STYLES)], color="gray", lw=1.2,
                label=name)


def plot_depth(rows: list[dict], out: str | Path, title: str = "", paper: dict | None = None,
               metrics=("exact_match_nontrivial", "exact_match"), xlabel: str = "steps ahead k") -> None:
    """Each metric against k, one line per model with its 95 % interval (over seeds and classes), the baselines on
    the same examples in grey; against layers as well (one line per k) when one family varies its depth. The
    published numbers of a spec's [paper] table are drawn beside ours (dashed) on the panel of their metric."""
    axis, published = published_series(paper)
    metric_of_paper = (paper or {}).get("metric", "cell_accuracy")
    layers = by_layers(rows, metrics[0])
    layer_values = sorted({d for d, _ in layers})
    one_family = len({r["model"] for r in rows if not str(r["model"]).startswith("baseline:")}) == 1
    n_panels = len(metrics) + (1 if len(layer_values) > 1 and one_family else 0)
    fig, axes = plt.subplots(1, n_panels, figsize=(5 * n_panels, 4.2), squeeze=False)
    axes = axes[0]
    for ax, metric in zip(axes, metrics):
        curves, baselines = depth_table(rows, metric)
        labels = sorted(curves)
        for i, label in enumerate(labels):
            ks = list(curves[label])
            _errorbar(ax, [k + 0.06 * (i - len(labels) / 2) for k in ks], [curves[label][k] for k in ks],
                      color=f"C{i}", label=label)
        _baselines(ax, baselines)
        if axis == "k" and metric == metric_of_paper:
            for name, pts in published.items():  # same colour as our line of the same task, grey otherwise
                match = [i for i, label in enumerate(labels) if label.split()[0] == name]
                k = sorted(pts)
                ax.plot(k, [pts[x] for x in k], "s--", color=f"C{match[0]}" if match else "gray", alpha=0.5,
                        label=f"published {name}")
        ax.set(xlabel=xlabel, ylabel=f"{METRIC_NAMES.get(metric, metric)} (test split)",
               ylim=(-0.02, 1.02), xticks=sorted({k for c in curves.values() for k in c}))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    if n_panels > len(metrics):
        ax = axes[-1]
        for i, k in enumerate(sorted({k for _, k in layers})):
            xs = [d for d in layer_values if (d, k) in layers]
            _errorbar(ax, xs, [layers[(x, k)] for x in xs], color=f"C{i}", label=f"k={k}")
            if axis == "layers" and f"k={k}" in published and metrics[0] == metric_of_paper:
                pts = published[f"k={k}"]
                ax.plot(sorted(pts), [pts[x] for x in sorted(pts)], "s--", color=f"C{i}", alpha=0.5,
                        label=f"published k={k}")
        ticks = sorted(set(layer_values) | ({x for p in published.values() for x in p} if axis == "layers" else set()))
        ax.set(xlabel="layers", ylabel=f"{METRIC_NAMES.get(metrics[0], metrics[0])} (held-out rules)",
               ylim=(-0.02, 1.02), xticks=ticks)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    finish(fig, out, title)


def plot_iterations(rows: list[dict], out: str | Path, title: str = "", metric: str = HEADLINE) -> None:
    """Test-time compute: exact match on a stratum (the non-trivial one by default) against iterations (log scale),
    one panel per model, one line per k with its 95 % band; the best of the baselines at each k dotted in the same
    colour (a model above it is above every one of them; the legend names them); the training iteration count
    marked."""
    table = iterations_table(rows, metric)
    _, baselines = depth_table(rows, metric)
    best = {k: max(c[k][0] for c in baselines.values() if k in c) for k in {k for c in baselines.values() for k in c}}
    labels = sorted(table)
    fig, axes = plt.subplots(1, len(labels), figsize=(4.5 * len(labels), 3.8), squeeze=False)
    for ax, label in zip(axes[0], labels):
        for i, (k, its) in enumerate(table[label].items()):
            xs = list(its)
            mean, lo, hi = (np.array([its[x][j] for x in xs]) for j in range(3))
            ax.plot(xs, mean, "o-", color=f"C{i}", label=f"k={k}")
            ax.fill_between(xs, lo, hi, color=f"C{i}", alpha=0.15)
            if k in best:
                ax.axhline(best[k], color=f"C{i}", ls=":", lw=1)
        trained = [float(r["loops"]) for r in rows if r.get("loops") not in ("", None) and label.startswith(r["model"])]
        if trained:
            ax.axvline(trained[0], color="gray", ls=":", lw=1, label="training iterations")
        ax.set_xscale("log", base=2)
        ax.set(xlabel="iterations at test time", ylabel=f"{METRIC_NAMES[metric]} (held-out rules)",
               ylim=(-0.02, 1.02))
        ax.set_title(textwrap.fill(label, 40), fontsize=10)  # long labels would run into the next panel
        ax.grid(alpha=0.3)
        names = ", ".join(b.removeprefix("baseline:") for b in sorted(baselines))
        ax.legend(fontsize=7, title=textwrap.fill(f"dotted: the best of {names}", 30), title_fontsize=7)
    finish(fig, out, title)


def plot_extrapolation(rows: list[dict], out: str | Path, title: str = "", trained_k: int = 0,
                       metrics=(HEADLINE, "exact_match")) -> None:
    """Exact match against k with weight-tied models iterated k times, the baselines in grey, the largest k seen in
    training marked: does more test-time iteration reach further than training did?"""
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 4.2), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        curves, baselines = extrapolation_table(rows, metric)
        for i, label in enumerate(sorted(curves)):
            ks = list(curves[label])
            _errorbar(ax, [k + 0.08 * (i - len(curves) / 2) for k in ks], [curves[label][k] for k in ks],
                      color=f"C{i}", label=label)
        _baselines(ax, baselines)
        if trained_k:
            ax.axvline(trained_k + 0.5, color="k", lw=0.8, ls=":", label=f"trained up to k = {trained_k}")
        ax.set(xlabel="steps ahead k", ylabel=f"{METRIC_NAMES.get(metric, metric)} (held-out rules)",
               ylim=(-0.02, 1.02))
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    finish(fig, out, title)


def plot_probe(rows: list[dict], out: str | Path, title: str = "") -> None:
    """Probe accuracy per hidden state (rows, in model order) and intermediate step (columns), with selectivity."""
    states, steps = list(dict.fromkeys(r["state"] for r in rows)), sorted({r["step"] for r in rows})
    grid = np.array([[next(r["accuracy"] for r in rows if r["state"] == s and r["step"] == j) for j in steps]
                     for s in states])
    fig, ax = plt.subplots(figsize=(2 + 1.4 * len(steps), 1 + 0.45 * len(states)))
    im = ax.imshow(grid, vmin=0.5, vmax=1.0, cmap="viridis", aspect="auto")
    for (i, j), v in np.ndenumerate(grid):
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", color="w" if v < 0.8 else "k", fontsize=8)
    ax.set(xticks=range(len(steps)), xticklabels=[f"state {j} ahead" for j in steps], yticks=range(len(states)),
           yticklabels=states)
    fig.colorbar(im, ax=ax, label="per-cell accuracy (held-out half)")
    finish(fig, out, title)


def _heatmap(ax, rows: list[dict], by: str, metric: str = HEADLINE):
    """Draw the (depth, k) heat map of exact match on a stratum (the non-trivial one by default) into ax, the
    baselines as rows of their own below a white line; returns the image (for a colour bar)."""
    depths, ks, mean, half = heatmap_table(rows, by, metric)
    _, baselines = depth_table(rows, metric)
    names = sorted(baselines)
    grid = np.vstack([np.array([[baselines[b].get(k, (np.nan,))[0] for k in ks] for b in names]).reshape(-1, len(ks)),
                      mean])
    halves = np.vstack([np.full((len(names), len(ks)), np.nan), half])
    ylabels = [b.removeprefix("baseline:") for b in names] + [str(d) for d in depths]
    im = ax.imshow(grid, cmap="viridis", vmin=0, vmax=1, aspect="auto", origin="lower")
    for i in range(grid.shape[0]):
        for j in range(len(ks)):
            if not np.isnan(grid[i, j]):
                text = f"{grid[i, j]:.2f}" + (f"\n±{halves[i, j]:.2f}" if not np.isnan(halves[i, j]) else "")
                ax.text(j, i, text, ha="center", va="center", fontsize=7,
                        color="black" if grid[i, j] > 0.6 else "white")
    if names:
        ax.axhline(len(names) - 0.5, color="white", lw=3)
    ax.set(xticks=range(len(ks)), xticklabels=ks, yticks=range(len(ylabels)), yticklabels=ylabels,
           xlabel="steps ahead k", ylabel=f"{AXIS_NAMES.get(by, by)} (baselines below the line)")
    return im


def _heatmap_size(rows: list[dict], by: str) -> tuple[int, int]:
    depths, ks, _, _ = heatmap_table(rows, by)
    return len(ks), len(depths) + len(depth_table(rows)[1])


def plot_heatmap(rows: list[dict], out: str | Path, title: str = "", by: str = "n_layer",
                 metric: str = HEADLINE) -> None:
    """Exact match on a stratum of held-out rules (the non-trivial one by default) as a (depth, k) heat map, each
    cell with its 95 % half-width, the baselines as rows of their own below: which depth solves which look-ahead."""
    n_k, n_rows = _heatmap_size(rows, by)
    fig, ax = plt.subplots(figsize=(1.4 * n_k + 2.8, 0.5 * n_rows + 1.8))
    im = _heatmap(ax, rows, by, metric)
    fig.colorbar(im, ax=ax, label=f"{METRIC_NAMES[metric]} (held-out rules)")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    _save(fig, out)


def plot_staircase(rows: list[dict], out: str | Path, title: str = "", paper: dict | None = None,
                   by: str = "n_layer") -> None:
    """The heat map beside the staircase: the smallest depth that solves each k (tables.staircase), ours against
    the published one; a k no tested depth solves is drawn as an open marker above the deepest tested."""
    n_k, n_rows = _heatmap_size(rows, by)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(1.4 * n_k + 7.5, max(4.0, 0.5 * n_rows + 1.8)),
                                  gridspec_kw={"width_ratios": [1.4 * n_k + 2.8, 4.7]})
    im = _heatmap(ax, rows, by)
    fig.colorbar(im, ax=ax, label="exact match, non-trivial (held-out rules)")
    steps = staircase(rows, by)
    deepest = max(heatmap_table(rows, by)[0])
    ks = sorted(steps)
    solved = [k for k in ks if steps[k] is not None]
    shift = -0.08  # ours a little left of the published points, so that neither hides the other
    ax2.step([k + shift for k in solved], [steps[k] for k in solved], where="mid", color="C0", marker="o",
             label=f"ours: mean >= {SOLVED_MEAN:.2f}, lower bound >= {SOLVED_LO:.2f}")
    unsolved = [k for k in ks if steps[k] is None]
    if unsolved:
        ax2.plot([k + shift for k in unsolved], [deepest + 1] * len(unsolved), "o", mfc="none", color="C0",
                 label=f"ours: not solved by {AXIS_NAMES.get(by, by)} <= {deepest}")
    if paper and paper.get("smallest_depth"):
        ax2.step(paper["k"], paper["smallest_depth"], where="mid", color="C3", marker="s", ls="--",
                 label=textwrap.fill(f"published ({paper.get('metric', 'its metric')} >= 0.9)", 40))
    ax2.set(xlabel="steps ahead k", ylabel=f"smallest {by} that solves k", xticks=sorted(set(ks) |
            set((paper or {}).get("k", []))))
    ax2.grid(alpha=0.3)
    ax2.legend(fontsize=7)
    finish(fig, out, title)


def plot_series(points: list[dict], axis: str, out: str | Path, title: str = "", xlabel: str = "") -> None:
    """Ours (solid, with 95 % intervals) beside the published values (dashed, same colour) per series, the
    baselines on the same examples in grey, from `reproduce` comparison points {series, <axis>, ours, published}."""
    series = sorted({p["series"] for p in points})
    if not series:
        raise ConfigError("no points to plot")
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    models = [n for n in series if "baseline:" not in n]
    for i, name in enumerate(models):
        mine = sorted((p for p in points if p["series"] == name and p["ours"] is not None), key=lambda p: p[axis])
        if mine:
            _errorbar(ax, [p[axis] for p in mine], [(p["ours"], *((p["ours_lo"], p["ours_hi"]) if p.get("ours_lo")
                                                                   is not None else (np.nan, np.nan)))
                                                    for p in mine], color=f"C{i}", label=f"{name} (ours)")
        pub = sorted((p[axis], p["published"]) for p in points if p["series"] == name and p["published"] is not None)
        if pub:
            ax.plot([x for x, _ in pub], [y for _, y in pub], "s--", color=f"C{i}", alpha=0.5,
                    label=f"{name} (published)")
    for j, name in enumerate(n for n in series if "baseline:" in n):
        pts = sorted((p[axis], p["ours"]) for p in points if p["series"] == name and p["ours"] is not None)
        ax.plot([x for x, _ in pts], [y for _, y in pts], ls=BASELINE_STYLES[j % 4], color="gray", lw=1, label=name)
    ax.set(xlabel=xlabel or axis, ylabel="per-cell accuracy (held-out rules)", ylim=(0.3, 1.02))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6)
    finish(fig, out, title)
