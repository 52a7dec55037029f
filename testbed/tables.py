"""Aggregation of results tables (the CSV of `testbed collect`) into the numbers figures and comparisons need:
depth curves, iteration read-outs, heat maps, capacity and memory tables, and their plain-text renderings.
No drawing here (plots.py draws), so `reproduce` and the CLI can compare numbers without matplotlib.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from generators import ConfigError


def _label(row: dict, vary_task: bool) -> str:
    label = f"{row['model']} L={row['layers']}" if row.get("layers") else row["model"]
    return f"{row['task']} {label}" if vary_task else label


def depth_table(rows: list[dict]):
    """{label: {k: (mean cell acc, mean exact, n seeds)}} and {(layers, k): mean cell acc} over the test rows."""
    # k = 0 marks the rule bits of O-SR (not a look-ahead): they are reported in the table, not drawn over k
    rows = [r for r in rows if r["slice"] == "k" and r["split"] == "test" and r["k"] != "" and int(r["k"]) > 0
            and not r.get("iterations")]  # rows at other iteration counts belong to the iterations view
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


def _test_k_rows(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r["slice"] == "k" and r["split"] == "test" and r["k"] != "" and int(r["k"]) > 0]


def iterations_table(rows: list[dict]) -> dict:
    """{label: {k: {iterations: (mean cell acc, mean exact)}}} of the rows scored at several iteration counts."""
    rows = [r for r in _test_k_rows(rows) if r.get("iterations")]
    if not rows:
        raise ConfigError("the results table has no rows at several iteration counts (train or eval with iterations)")
    acc = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for r in rows:
        label = f"{r['model']} (trained at {float(r['loops']):g})" if r.get("loops") else r["model"]
        extra = {k: v for k, v in r.items()
                 if k.startswith("cfg.") and k != "cfg.eval.iterations" and v not in ("", None)}
        if extra:
            label += " " + " ".join(f"{k.split('.')[-1]}={v}" for k, v in sorted(extra.items()) if "seed" not in k)
        acc[label][int(r["k"])][int(r["iterations"])].append((float(r["cell_accuracy"]), float(r["exact_match"])))
    return {lab: {k: {i: tuple(np.mean(v, axis=0)) for i, v in sorted(its.items())} for k, its in sorted(ks.items())}
            for lab, ks in acc.items()}


def format_iterations(rows: list[dict]) -> str:
    table = iterations_table(rows)
    lines = []
    for label, ks in sorted(table.items()):
        its = sorted({i for v in ks.values() for i in v})
        lines.append(f"{label}: exact match per iteration count")
        lines.append("  k    " + "".join(f"{i:>7}" for i in its))
        for k, v in ks.items():
            lines.append(f"  k={k:<3}" + "".join(f"{v[i][1]:>7.3f}" if i in v else " " * 7 for i in its))
    return "\n".join(lines)


HEATMAP_AXES = ("layers", "loops", "iterations")


def heatmap_table(rows: list[dict], by: str) -> tuple[list, list, np.ndarray]:
    """(depth values, k values, mean exact match [depth, k]) over the test rows."""
    if by not in HEATMAP_AXES:
        raise ConfigError(f"unknown heat-map axis {by!r}; valid: {', '.join(HEATMAP_AXES)}")
    rows = [r for r in _test_k_rows(rows)
            if r.get(by) not in ("", None) and (by == "iterations" or not r.get("iterations"))]
    if not rows:
        raise ConfigError(f"the results table has no test rows with a {by!r} value")
    cells = defaultdict(list)
    for r in rows:
        cells[(int(float(r[by])), int(r["k"]))].append(float(r["exact_match"]))
    depths, ks = sorted({d for d, _ in cells}), sorted({k for _, k in cells})
    grid = np.full((len(depths), len(ks)), np.nan)
    for (d, k), v in cells.items():
        grid[depths.index(d), ks.index(k)] = np.mean(v)
    return depths, ks, grid


def format_heatmap(rows: list[dict], by: str = "layers") -> str:
    depths, ks, grid = heatmap_table(rows, by)
    lines = [f"{by:<10}" + "".join(f"k={k:<6}" for k in ks)]
    for i, d in enumerate(depths):
        lines.append(f"{d:<10}" + "".join(f"{grid[i, j]:<8.3f}" for j in range(len(ks))))
    lines.append("exact match on held-out rules")
    return "\n".join(lines)


RECALL_FLOOR = 0.9  # a number of pairs counts as stored when at least this share of queries is recalled


def _family(row: dict) -> str:
    name = {"transformer": "attention"}.get(row["model"], row["model"])
    rule = row.get("cfg.model.rule")
    return f"{name} ({rule} rule)" if rule and row["model"] == "fast_weights" else name


def capacity_table(rows: list[dict]) -> dict:
    """{family: {d_model: {pairs: (recall accuracy, state size)}}} over the test rows sliced by n_pairs: the mean
    over seeds at the best learning rate when a sweep varies it."""
    rows = [r for r in rows if r["split"] == "test" and r["slice"] == "n_pairs" and r.get("value") not in ("", None)]
    if not rows:
        raise ConfigError("the results table has no test rows sliced by n_pairs (train MQAR or kv_segments models)")
    acc = defaultdict(lambda: defaultdict(lambda: defaultdict(lambda: defaultdict(list))))
    for r in rows:
        size = float(r["state_size"]) if r.get("state_size") not in ("", None) else 0.0
        lr = r.get("cfg.train.lr", "")  # Zoology reports a sweep's best learning rate: mean over seeds, max over lr
        acc[_family(r)][int(float(r["d_model"] or 0))][int(r["value"])][lr].append((float(r["cell_accuracy"]), size))

    def best(by_lr):
        return max((tuple(np.mean(v, axis=0)) for v in by_lr.values()), key=lambda t: t[0])

    return {fam: {d: {p: best(v) for p, v in sorted(ps.items())} for d, ps in sorted(ds.items())}
            for fam, ds in acc.items()}


def capacity(points: dict[int, float], floor: float = RECALL_FLOOR) -> int:
    """The largest number of pairs recalled at >= floor, all smaller tested numbers included (0 if none)."""
    best = 0
    for pairs, value in sorted(points.items()):
        if value < floor:
            break
        best = pairs
    return best


def format_capacity(rows: list[dict]) -> str:
    table = capacity_table(rows)
    lines = [f"{'family':<24}{'d':>5}  recall per stored pairs (capacity at >= {RECALL_FLOOR:.0%}, state floats)"]
    for fam, ds in sorted(table.items()):
        for d, pts in ds.items():
            cells = " ".join(f"{p}:{v[0]:.2f}" for p, v in pts.items())
            c = capacity({p: v[0] for p, v in pts.items()})
            lines.append(f"{fam:<24}{d:>5}  {cells}  (capacity {c}, state {int(pts[c][1]) if c else '-'})")
    return "\n".join(lines)


def memory_table(rows: list[dict]) -> dict:
    """{preset: {d: mean population error}} of linear-memory runs (error = 1 - exact match on the test split)."""
    rows = [r for r in rows if r["split"] == "test" and r["slice"] == "all" and r.get("d_model") not in ("", None)]
    if not rows:
        raise ConfigError("the results table has no overall test rows with a memory size d")
    acc = defaultdict(lambda: defaultdict(list))
    for r in rows:
        acc[r.get("preset") or r["model"]][int(float(r["d_model"]))].append(1 - float(r["exact_match"]))
    return {p: {d: float(np.mean(v)) for d, v in sorted(ds.items())} for p, ds in sorted(acc.items())}


def published_by_d(paper: dict | None) -> dict[str, dict]:
    """{row name: {d: value}} of a [paper] table with a `d` list; {} without one."""
    if not paper or "d" not in paper:
        return {}
    return {k: dict(zip(paper["d"], v)) for k, v in paper.items() if isinstance(v, list) and k != "d"}


def format_memory(rows: list[dict], paper: dict | None = None) -> str:
    table = memory_table(rows)
    published = published_by_d(paper)
    lines = []
    for preset, ds in table.items():
        lines.append(f"{preset}: d, ours, published, ours/published")
        for d, err in ds.items():
            pub = published.get(preset, {}).get(d)
            ratio = f"{err / pub:.2f}" if pub else "-"
            lines.append(f"  {d:>5}  {err:.4f}  {pub if pub is not None else '-':>7}  {ratio}")
    return "\n".join(lines)
