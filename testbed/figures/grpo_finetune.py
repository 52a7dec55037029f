"""The grpo-finetune figure (P1 (Rodkin et al. 2025)): exact match vs k of GRPO fine-tuned from the supervised
checkpoint, against it.

Runs: experiments/grpo_finetune.toml. What the page says beside the numbers: docs/figures/grpo-finetune.notes.md; the
pages themselves are generated (docs/figures/NAME.md).
"""

from __future__ import annotations

from ..results import plots, tables
from .base import Figure
from .series import (
    k_of,
    test_rows,
)


class GRPOFinetune(Figure):
    """Exact match on the non-trivial stratum per k of the supervised start and of GRPO fine-tuned from it (each
    seed from its own start), and GRPO's paired difference against the start."""

    reference = "cfg.train.algorithm=supervised"
    target = 0.10  # the bar at k = 2 or 3 (P1: GRPO reaches k = 3 where supervised training stops)

    def compare(self, res, paper):
        diffs = {int(d["k"]): d for d in res.paired if d["slice"] == "k" and not d["iterations"]}
        out = []
        for r in test_rows(res.rows) + test_rows(res.rows, baselines=True):
            if not k_of(r):
                continue
            mean, lo, hi = tables.point(r, tables.HEADLINE)
            algorithm = r["model"] if tables.is_baseline(r) else r.get("cfg.train.algorithm") or "supervised"
            d = diffs.get(k_of(r), {}) if algorithm == "grpo" else {}
            out.append({"series": algorithm, "k": k_of(r), "ours": mean, "ours_lo": lo, "ours_hi": hi,
                        "published": f"target >= +{self.target:.2f} vs supervised" if d else None,
                        "vs supervised": d.get("difference"), "vs supervised_lo": d.get("difference_lo"),
                        "vs supervised_hi": d.get("difference_hi"), "seeds": r["n_seeds"]})
        return out

    def draw(self, rows, points, out, title, paper):
        plots.plot_depth(rows, out, title, metrics=(tables.HEADLINE,))


FIGURE = (
    GRPOFinetune("grpo-finetune", "P1 (Rodkin et al. 2025)", "exact match vs k of GRPO fine-tuned from the "
                 "supervised checkpoint, against it", "grpo_finetune.toml", {"cpu": 6.0},
                 presets={"cpu": ("supervised", "grpo")},
                 note="The quickstart's 3-layer transformer (three seeds, its runs reused when they exist) is the "
                      "start; GRPO runs 600 steps from each seed's checkpoint on the same task (8 samples per prompt, "
                      "reward = cell accuracy, KL 0.01 to the start, as P1). The difference is paired by seed and "
                      "test example; P1's claim is qualitative (GRPO reaches k = 3 where supervised stops).")
)
