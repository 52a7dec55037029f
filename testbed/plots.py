"""Figures drawn from results tables (matplotlib only; the numbers come from tables.py)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from generators import ConfigError  # noqa: E402
from generators.io import atomic_write  # noqa: E402

from .tables import (  # noqa: E402
    RECALL_FLOOR,
    capacity,
    capacity_table,
    depth_table,
    heatmap_table,
    iterations_table,
    memory_table,
    published_by_d,
    published_series,
)

NOT_SOLVED = 0.73  # per-cell accuracy of a model that has not inferred the rule (local statistics only)


def _finish(fig, out: str | Path, title: str) -> None:
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


def plot_depth(rows: list[dict], out: str | Path, title: str = "", paper: dict | None = None) -> None:
    """Per-cell accuracy and exact match against k (one line per model); per-cell accuracy against layers (one line
    per k). The published numbers of a spec's [paper] table are drawn beside ours as grey dashed lines."""
    curves, by_layers = depth_table(rows)
    axis, published = published_series(paper)
    layer_values = sorted({layers for layers, _ in by_layers})
    one_family = len({r["model"] for r in rows if r.get("slice") == "k"}) == 1  # layers only compare within a family
    n_panels = 3 if len(layer_values) > 1 and one_family else 2
    fig, axes = plt.subplots(1, n_panels, figsize=(5 * n_panels, 4))
    labels = sorted(curves)
    for i, label in enumerate(labels):
        ks = curves[label]
        k = list(ks)
        axes[0].plot(k, [ks[x][0] for x in k], "o-", color=f"C{i}", label=label)
        axes[1].plot(k, [ks[x][1] for x in k], "o-", color=f"C{i}", label=label)
    if axis == "k":
        for name, points in published.items():  # same colour as our line of the same task, grey otherwise
            match = [i for i, label in enumerate(labels) if label.split()[0] == name]
            k = sorted(points)
            axes[0].plot(k, [points[x] for x in k], "s--", color=f"C{match[0]}" if match else "gray", alpha=0.5,
                         label=f"published {name}")
    axes[0].axhline(NOT_SOLVED, color="red", lw=1, ls=":", label="≈0.73 not-solved floor")
    axes[0].set(xlabel="steps ahead k", ylabel="per-cell accuracy (held-out rules)", ylim=(0.45, 1.02))
    axes[1].set(xlabel="steps ahead k", ylabel="exact match (held-out rules)", ylim=(-0.02, 1.02))
    for ax in axes[:2]:
        ax.set_xticks(sorted({k for ks in curves.values() for k in ks}))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    if n_panels == 3:
        ax = axes[2]
        for i, k in enumerate(sorted({k for _, k in by_layers})):
            xs = [layers for layers in layer_values if (layers, k) in by_layers]
            ax.plot(xs, [by_layers[(x, k)] for x in xs], "o-", color=f"C{i}", label=f"k={k}")
            if axis == "layers" and f"k={k}" in published:
                pts = published[f"k={k}"]
                ax.plot(sorted(pts), [pts[x] for x in sorted(pts)], "s--", color=f"C{i}", alpha=0.5,
                        label=f"published k={k}")
        ax.axhline(NOT_SOLVED, color="red", lw=1, ls=":")
        ticks = sorted(set(layer_values) | ({x for p in published.values() for x in p} if axis == "layers" else set()))
        ax.set(xlabel="layers", ylabel="per-cell accuracy (held-out rules)", ylim=(0.45, 1.02), xticks=ticks)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    _finish(fig, out, title)


def plot_iterations(rows: list[dict], out: str | Path, title: str = "") -> None:
    """Test-time compute: exact match against iterations (log scale), one panel per model, one line per k; the
    training iteration count marked."""
    table = iterations_table(rows)
    labels = sorted(table)
    fig, axes = plt.subplots(1, len(labels), figsize=(4.5 * len(labels), 3.8), squeeze=False)
    for ax, label in zip(axes[0], labels):
        for i, (k, its) in enumerate(table[label].items()):
            xs = list(its)
            ax.plot(xs, [its[x][1] for x in xs], "o-", color=f"C{i}", label=f"k={k}")
        trained = [float(r["loops"]) for r in rows if r.get("loops") and label.startswith(r["model"])]
        if trained:
            ax.axvline(trained[0], color="gray", ls=":", lw=1, label="training iterations")
        ax.set_xscale("log", base=2)
        ax.set(xlabel="iterations at test time", ylabel="exact match (held-out rules)", ylim=(-0.02, 1.02))
        ax.set_title(textwrap.fill(label, 40), fontsize=10)  # long labels would run into the next panel
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    _finish(fig, out, title)


def plot_heatmap(rows: list[dict], out: str | Path, title: str = "", by: str = "layers") -> None:
    """Exact match on held-out rules as a (depth, k) heat map: which depth solves which look-ahead."""
    depths, ks, grid = heatmap_table(rows, by)
    fig, ax = plt.subplots(figsize=(1.2 * len(ks) + 2.5, 0.45 * len(depths) + 1.8))
    im = ax.imshow(grid, cmap="viridis", vmin=0, vmax=1, aspect="auto", origin="lower")
    for i in range(len(depths)):
        for j in range(len(ks)):
            if not np.isnan(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.2f}", ha="center", va="center", fontsize=8,
                        color="black" if grid[i, j] > 0.6 else "white")
    ax.set(xticks=range(len(ks)), xticklabels=ks, yticks=range(len(depths)), yticklabels=depths,
           xlabel="steps ahead k", ylabel=by)
    fig.colorbar(im, ax=ax, label="exact match (held-out rules)")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    _save(fig, out)


def plot_capacity(rows: list[dict], out: str | Path, title: str = "") -> None:
    """Recall against stored pairs (one line per family and width), recall against width at the most pairs, and
    the capacity curve: the most pairs recalled at >= 90 % against the state size (floats), per family, with the
    line S = state / d (as many pairs as key dimensions) for reference."""
    table = capacity_table(rows)
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.2))
    styles = ["-", "--", ":", "-."]
    for i, fam in enumerate(sorted(table)):
        for j, (d, pts) in enumerate(table[fam].items()):
            axes[0].plot(list(pts), [v[0] for v in pts.values()], styles[j % 4], marker="o", ms=3, color=f"C{i}",
                         label=f"{fam} d={d}")
        most = max(p for pts in table[fam].values() for p in pts)
        widths = [(d, pts[most][0]) for d, pts in table[fam].items() if most in pts]
        axes[1].plot([d for d, _ in widths], [v for _, v in widths], "o-", color=f"C{i}", label=f"{fam}, {most} pairs")
        caps = []
        for pts in table[fam].values():
            c = capacity({p: v[0] for p, v in pts.items()})
            if c and pts[c][1]:
                caps.append((pts[c][1], c))
        if caps:
            caps.sort()
            axes[2].plot([s for s, _ in caps], [c for _, c in caps], "o-", color=f"C{i}", label=fam)
    sizes = [v[1] for ds in table.values() for pts in ds.values() for v in pts.values() if v[1]]
    if sizes:
        xs = np.geomspace(min(sizes), max(sizes), 20)
        axes[2].plot(xs, np.sqrt(xs), color="gray", ls=":", label="S = sqrt(state) (= d for a d x d matrix)")
    axes[0].axhline(RECALL_FLOOR, color="red", ls=":", lw=1)
    axes[0].set(xlabel="stored pairs S", ylabel="recall accuracy (share of pairs)", ylim=(-0.02, 1.02), xscale="log")
    axes[1].set(xlabel="key width d", ylabel="recall accuracy", ylim=(-0.02, 1.02), xscale="log")
    axes[2].set(xlabel="state size (floats)", ylabel=f"capacity: most pairs recalled at ≥ {RECALL_FLOOR:.0%}",
                xscale="log", yscale="log")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    _finish(fig, out, title)


def plot_memory(rows: list[dict], out: str | Path, title: str = "", paper: dict | None = None) -> None:
    """Population error against memory size d, one line per preset (setting), published values dashed beside."""
    table = memory_table(rows)
    published = published_by_d(paper)
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for i, (preset, ds) in enumerate(table.items()):
        ax.plot(list(ds), list(ds.values()), "o-", color=f"C{i}", label=f"{preset} (ours)")
        if preset in published:
            pts = published[preset]
            ax.plot(list(pts), list(pts.values()), "s--", color=f"C{i}", alpha=0.5, label=f"{preset} (published)")
    if paper and "data_floor" in paper:
        ax.axhline(paper["data_floor"], color="gray", ls=":", label="data floor (unseen mass)")
    ax.set(xscale="log", yscale="log", xlabel="memory size d", ylabel="population error")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    _finish(fig, out, title)


def plot_memory_law(rows: list[dict], out: str | Path, paper: dict | None = None, title: str = "") -> None:
    """Closed-form memories: error against d per scheme (theory lines dotted), or per T for the joint grid; the
    published values as open squares."""
    from .memory.law import SCHEMES, THEORY

    joint = any(r["T"] != "" for r in rows)
    groups = sorted({r["T"] for r in rows}) if joint else [s for s in SCHEMES if any(r["scheme"] == s for r in rows)]
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for i, g in enumerate(groups):
        pts = sorted((r["d"], r["error"]) for r in rows if (r["T"] if joint else r["scheme"]) == g)
        label = f"T = {g}" if joint else SCHEMES[g]
        ax.plot([d for d, _ in pts], [e for _, e in pts], "o-", color=f"C{i}", label=f"{label} (ours)")
        key = f"T={g}" if joint else g
        if paper and key in paper and "d" in paper:
            ax.plot(paper["d"], paper[key], "s", mfc="none", color=f"C{i}", label=f"{label} (published)")
        if not joint and g in THEORY:
            c, slope = THEORY[g]
            xs = np.array([d for d, _ in pts], dtype=float)
            ax.plot(xs, c * xs**slope, ":", color=f"C{i}", label=f"{c} d^{slope:g} (theory)")
    ax.set(xscale="log", yscale="log", xlabel="memory size d", ylabel="error (Zipf mass of wrong recalls)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    _finish(fig, out, title)


def plot_series(points: list[dict], axis: str, out: str | Path, title: str = "", xlabel: str = "") -> None:
    """Ours (solid) beside the published values (dashed, same colour) per series, from `reproduce` comparison
    points {series, <axis>, ours, published}."""
    series = sorted({p["series"] for p in points})
    if not series:
        raise ConfigError("no points to plot")
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for i, name in enumerate(series):
        for key, style, label in (("ours", "o-", "ours"), ("published", "s--", "published")):
            pts = sorted((p[axis], p[key]) for p in points if p["series"] == name and p[key] is not None)
            if pts:
                ax.plot([x for x, _ in pts], [y for _, y in pts], style, color=f"C{i}",
                        alpha=1 if key == "ours" else 0.5, label=f"{name} ({label})")
    ax.axhline(NOT_SOLVED, color="red", lw=1, ls=":", label="≈0.73 not-solved floor")
    ax.set(xlabel=xlabel or axis, ylabel="per-cell accuracy (held-out rules)", ylim=(0.45, 1.02))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    _finish(fig, out, title)
