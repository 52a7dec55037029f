"""Drawing the memory figures: recall and capacity against state size, memory error against d, bits stored
against parameters (the numbers come from tables.py; the shared styles and the atomic save from plots.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .plots import BASELINE_STYLES, finish, plt
from .tables import RECALL_FLOOR, capacity, capacity_table, memory_table, published_by_d


def plot_capacity(rows: list[dict], out: str | Path, title: str = "") -> None:
    """Recall against stored pairs (one line per family and width), recall against width at the most pairs, and
    the capacity curve: the most pairs recalled at >= 90 % against the state size (floats), per family, with the
    line S = state / d (as many pairs as key dimensions) for reference."""
    table = capacity_table(rows, intervals=True)
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.2))
    styles = ["-", "--", ":", "-."]
    guesses = {}  # baselines (a value of the context at random): recall per stored pairs, in grey
    for r in rows:
        if str(r.get("model", "")).startswith("baseline:") and r["slice"] == "n_pairs" and r["split"] == "test":
            guesses.setdefault(r["model"], {})[int(r["value"])] = float(r["cell_accuracy"])
    for j, (name, pts) in enumerate(sorted(guesses.items())):
        axes[0].plot(sorted(pts), [pts[p] for p in sorted(pts)], ls=BASELINE_STYLES[j % 4], color="gray", label=name)
    for i, fam in enumerate(sorted(table)):
        for j, (d, pts) in enumerate(table[fam].items()):
            axes[0].errorbar(list(pts), [v[0] for v in pts.values()], yerr=_bars(pts.values()), ls=styles[j % 4],
                             marker="o", ms=3, capsize=2, color=f"C{i}", label=f"{fam} d={d}")
        most = max(p for pts in table[fam].values() for p in pts)
        widths = {d: pts[most] for d, pts in table[fam].items() if most in pts}
        axes[1].errorbar(list(widths), [v[0] for v in widths.values()], yerr=_bars(widths.values()), fmt="o-",
                         capsize=2, color=f"C{i}", label=f"{fam}, {most} pairs")
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
    pairs = sorted({p for ds in table.values() for pts in ds.values() for p in pts})
    widths = sorted({d for ds in table.values() for d in ds})
    for ax, ticks in ((axes[0], pairs), (axes[1], widths)):  # the tested values, not powers of ten, on a log axis
        ax.set_xscale("log")
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.minorticks_off()
    axes[0].axhline(RECALL_FLOOR, color="red", ls=":", lw=1)
    axes[0].set(xlabel="stored pairs S", ylabel="recall accuracy (share of pairs)", ylim=(-0.02, 1.02))
    axes[1].set(xlabel="key width d", ylabel="recall accuracy", ylim=(-0.02, 1.02))
    axes[2].set(xlabel="state size (floats)", ylabel=f"capacity: most pairs recalled at ≥ {RECALL_FLOOR:.0%}",
                xscale="log", yscale="log")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    finish(fig, out, title)


def _bars(values) -> np.ndarray | None:
    """Error bars (2, n) below and above each (mean, size, lo, hi); None where no point has an interval."""
    values = list(values)
    bars = np.array([[v[0] - v[2], v[3] - v[0]] for v in values], dtype=float).T
    return None if np.isnan(bars).all() else np.nan_to_num(bars.clip(min=0))


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
    finish(fig, out, title)


def plot_memory_law(rows: list[dict], out: str | Path, paper: dict | None = None, title: str = "",
                    schemes: dict | None = None, theory: dict | None = None) -> None:
    """Closed-form memories: error against d per scheme (`schemes`: name -> label; `theory`: name -> (c, slope) of a
    c d^slope line, dotted), or per T for the joint grid; the published values as open squares."""
    SCHEMES, THEORY = schemes or {}, theory or {}
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
    finish(fig, out, title)


def plot_facts(points: list[dict], out: str | Path, title: str = "", per_param: float | None = None) -> None:
    """Bits stored against parameters (log-log), one marker per (family and size, world size), the world each
    stores most of ringed (">=" where it stored most of that world: a lower bound), each with its interval as a bar;
    the published bits per parameter as a line."""
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for i, name in enumerate(sorted({p["series"] for p in points})):
        mine = [p for p in points if p["series"] == name]
        for p in mine:
            lo, hi = (float(p.get(f"ours_{end}", "nan") or "nan") for end in ("lo", "hi"))
            if np.isfinite(lo) and np.isfinite(hi):
                ax.plot([p["params"]] * 2, [max(lo, 1.0), max(hi, 1.0)], color=f"C{i}", alpha=0.5, lw=1)
        ax.scatter([p["params"] for p in mine if p["n_entities"] != "best on validation"],
                   [max(p["ours"], 1.0) for p in mine if p["n_entities"] != "best on validation"], s=12,
                   color=f"C{i}", alpha=0.5)
        best = next(p for p in mine if p["n_entities"] == "best on validation")
        ax.scatter([best["params"]], [max(best["ours"], 1.0)], s=60, facecolors="none", edgecolors=f"C{i}",
                   label=f"{name}: {'>= ' if best['capacity'] else ''}{best['bits per parameter']:.2f} bits/param")
    if per_param:
        xs = np.array([min(p["params"] for p in points), max(p["params"] for p in points)])
        ax.plot(xs, per_param * xs, "k--", lw=1, label=f"{per_param:g} bits per parameter (Allen-Zhu & Li)")
    ax.set(xscale="log", yscale="log", xlabel="parameters", ylabel="bits stored (beyond chance)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=6)
    finish(fig, out, title)


def plot_forgetting(curves: list[dict], points: list[dict], out: str | Path, title: str = "") -> None:
    """Per phase, retained against learned over fine-tuning steps (mean over seeds per validation), one line per
    method; the points where they are compared (at equal learned accuracy) with their intervals."""
    phases = sorted({r["phase"] for r in curves})
    fig, axes = plt.subplots(1, max(1, len(phases)), figsize=(6 * max(1, len(phases)), 4.4), squeeze=False)
    for ax, phase in zip(axes[0], phases):
        updates = sorted({r["update"] for r in curves if r["phase"] == phase})
        for i, update in enumerate(updates):
            by_step: dict = {}
            for r in curves:
                if r["phase"] == phase and r["update"] == update:
                    by_step.setdefault(int(r["step"]), []).append((float(r["learned"]), float(r["retained"])))
            steps = sorted(by_step)
            xs = [np.mean([v[0] for v in by_step[s]]) for s in steps]
            ys = [np.mean([v[1] for v in by_step[s]]) for s in steps]
            ax.plot(xs, ys, "-", marker=".", ms=3, color=f"C{i}", label=update)
            for p in points:
                if p["series"] == f"{phase} {update}":
                    level = float(p["x"].split(">=")[1])
                    lo, hi = float(p["ours_lo"]), float(p["ours_hi"])
                    ax.errorbar([level], [p["ours"]], yerr=[[p["ours"] - lo], [hi - p["ours"]]] if np.isfinite(lo)
                                else None, fmt="o", color=f"C{i}", capsize=3)
                    ax.axvline(level, color="gray", ls=":", lw=1)
        ax.set(xlabel="learned (new facts, validation exact match)", ylabel="retained (facts to keep)",
               title=phase, xlim=(0, 1.02), ylim=(0, 1.02))
        ax.legend(fontsize=8)
    finish(fig, out, title)
