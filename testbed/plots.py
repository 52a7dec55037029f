"""Figures drawn from a results table (the CSV of `testbed collect`)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from generators import ConfigError  # noqa: E402
from generators.io import atomic_write  # noqa: E402

NOT_SOLVED = 0.73  # per-cell accuracy of a model that has not inferred the rule (local statistics only)


def _label(row: dict, vary_task: bool) -> str:
    label = f"{row['model']} L={row['layers']}" if row.get("layers") else row["model"]
    return f"{row['task']} {label}" if vary_task else label


def depth_table(rows: list[dict]):
    """{label: {k: (mean cell acc, mean exact, n seeds)}} and {(layers, k): mean cell acc} over the test rows."""
    # k = 0 marks the rule bits of O-SR (not a look-ahead): they are reported in the table, not drawn over k
    rows = [r for r in rows if r["slice"] == "k" and r["split"] == "test" and r["k"] != "" and int(r["k"]) > 0]
    if not rows:
        raise ConfigError("the results table has no per-k test rows to plot")
    vary_task = len({r["task"] for r in rows}) > 1
    acc = defaultdict(lambda: defaultdict(list))
    for r in rows:
        acc[_label(r, vary_task)][int(r["k"])].append((float(r["cell_accuracy"]), float(r["exact_match"])))
    curves = {lab: {k: (*np.mean(v, axis=0), len(v)) for k, v in sorted(ks.items())} for lab, ks in acc.items()}
    by_layers = defaultdict(list)
    for r in rows:
        if r.get("layers"):
            by_layers[(int(r["layers"]), int(r["k"]))].append(float(r["cell_accuracy"]))
    return curves, {key: float(np.mean(v)) for key, v in by_layers.items()}


def _save(fig, out: str | Path) -> None:
    out = Path(out)
    if not out.parent.is_dir():
        raise ConfigError(f"cannot write {str(out)!r}: directory {str(out.parent)!r} does not exist")
    atomic_write(out, lambda f: fig.savefig(f, format=out.suffix.lstrip(".") or "png", dpi=120, bbox_inches="tight"))
    plt.close(fig)


def published_series(paper: dict | None) -> tuple[str | None, dict]:
    """(x axis 'k' or 'layers', {series: {x: value}}) of a spec's [paper] table, or (None, {})."""
    if not paper:
        return None, {}
    axis = "layers" if "layers" in paper else "k" if "k" in paper else None
    if axis is None:
        return None, {}
    xs = paper[axis]
    series = {name: dict(zip(xs, ys)) for name, ys in paper.items()
              if isinstance(ys, list) and name != axis and len(ys) == len(xs)}
    return axis, series


def plot_depth(rows: list[dict], out: str | Path, title: str = "", paper: dict | None = None) -> None:
    """Per-cell accuracy and exact match against k (one line per model); per-cell accuracy against layers (one line
    per k). The published numbers of a spec's [paper] table are drawn beside ours as grey dashed lines."""
    curves, by_layers = depth_table(rows)
    axis, published = published_series(paper)
    layer_values = sorted({layers for layers, _ in by_layers})
    n_panels = 3 if len(layer_values) > 1 else 2
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
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    _save(fig, out)


def format_table(rows: list[dict]) -> str:
    """Plain-text table: one line per model, exact match (cell accuracy) per k."""
    curves, _ = depth_table(rows)
    ks = sorted({k for c in curves.values() for k in c})
    width = max(len(lab) for lab in curves) + 2
    lines = ["model".ljust(width) + "".join(f"k={k:<14}" for k in ks)]
    for label, c in sorted(curves.items()):
        cells = "".join(f"{c[k][1]:.3f} ({c[k][0]:.3f})  " if k in c else " " * 16 for k in ks)
        lines.append(label.ljust(width) + cells)
    lines.append("exact match (per-cell accuracy) on held-out rules")
    return "\n".join(lines)
