"""The p1-comparison figure (P1 (Rodkin et al. 2025)): exact match vs k of every depth-extending family.

Runs: experiments/p1_comparison.toml. What the page says beside the numbers: docs/figures/p1-comparison.notes.md; the
pages themselves are generated (docs/figures/NAME.md).
"""

from __future__ import annotations

from collections import defaultdict

from ..results import plots, tables
from .base import Figure
from .series import (
    ours_by_task_k,
)


class FamilyComparison(Figure):
    """Exact match on the non-trivial stratum per family and k, each family's paired difference against the
    same-size transformer (the same seeds and examples), and the largest k solved (the interval's lower bound at or
    above 0.9 for it and every smaller k) against P1's qualitative verdict."""

    reference = "model=transformer"

    def compare(self, res, paper):
        metric = tables.HEADLINE
        table = defaultdict(dict)
        for (model, k), p in ours_by_task_k([{**r, "task": r["model"]} for r in res.rows], metric).items():
            table[model][k] = p
        diffs = {(d["model"], int(d["k"])): d for d in res.paired if d["slice"] == "k" and not d["iterations"]}
        out = []
        for model, ks in sorted(table.items()):
            solved = 0
            for k in sorted(ks):
                if ks[k][1] < 0.9 or solved != k - 1:
                    break
                solved = k
            out.append({"series": model, "x": "largest k solved (lower bound >= 0.9)", "ours": solved,
                        "published": paper.get(model, "-"), "difference": None})  # P1's verdicts are qualitative
            for k, (mean, lo, hi) in sorted(ks.items()):
                d = diffs.get((model, k), {})
                out.append({"series": model, "x": f"exact match (non-trivial) k={k}", "ours": mean, "ours_lo": lo,
                            "ours_hi": hi, "vs transformer": d.get("difference"), "vs_lo": d.get("difference_lo"),
                            "vs_hi": d.get("difference_hi")})
        for (series, k), (mean, lo, hi) in sorted(ours_by_task_k(res.rows, metric, baselines=True).items()):
            out.append({"series": series, "x": f"exact match (non-trivial) k={k}", "ours": mean, "ours_lo": lo,
                        "ours_hi": hi})
        return out

    def draw(self, rows, points, out, title, paper):
        plots.plot_depth(rows, out, title, paper)


FIGURE = (
    FamilyComparison("p1-comparison", "P1 (Rodkin et al. 2025)", "exact match vs k of every depth-extending family",
                     "p1_comparison.toml",
                     {"cpu": 100.0, "cpu-mamba": 60.0, "radius2": 30.0,
                      "paper": "30 runs (10 families x 3 seeds) of 40k steps, d = 128: ~3 GPU-days"},
                     presets={"cpu": ("cpu",), "cpu-mamba": ("cpu-mamba",), "cpu-os": ("cpu-os",),
                              "radius2": ("radius2",), "paper": ("paper",)},
                     note="P1 gives the largest k each family solves (qualitative); cpu: the depth-staircase regime "
                          "(RO-O at r = 1: the rule given, one given state, the next four states supervised), every "
                          "family at the two-layer transformer's parameter count; cpu-mamba: Mamba beside the "
                          "transformer on the same regime; radius2: the transformer and chain of thought on RO-O at "
                          "r = 2 (width 16, the next two states), paired.")
)
