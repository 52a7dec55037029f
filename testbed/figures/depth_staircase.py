"""The depth-staircase figure (P2 (Burtsev 2024)): exact match per (depth, k) and the smallest depth that solves each k.

Runs: experiments/depth_staircase.toml. What the page says beside the numbers: docs/figures/depth-staircase.notes.md;
the pages themselves are generated (docs/figures/NAME.md).
"""

from __future__ import annotations

from ..results import plots, tables
from .base import Figure
from .series import (
    ours_by_task_k,
)


class DepthStaircase(Figure):
    """Every (depth, k) cell with its interval, and the smallest depth that solves each k (tables.staircase)
    against the published staircase; `by` is the depth axis of the preset (layers, or loops of a tied block)."""

    def by(self, rows) -> str:
        return "loops" if any(r.get("model") == "looped" for r in rows) else "n_layer"

    def compare(self, res, paper):
        by = self.by(res.rows)
        name = tables.AXIS_NAMES.get(by, by)  # "layers", as the papers say it
        steps = tables.staircase(res.rows, by)
        published = dict(zip(paper.get("k", []), paper.get("smallest_depth", [])))
        out = [{"series": f"smallest {name} solving k", "x": f"k={k}",
                "ours": "-" if steps.get(k) is None else steps[k], "published": published.get(k, "-"),
                "difference": None}
               for k in sorted(set(steps) | set(published))]
        for (d, k), (mean, lo, hi) in sorted(tables.heatmap_cells(res.rows, by).items()):
            out.append({"series": f"{name}={d}", "x": f"exact match (non-trivial) k={k}", "ours": mean, "ours_lo": lo,
                        "ours_hi": hi})
        for (series, k), (mean, lo, hi) in sorted(ours_by_task_k(res.rows, tables.HEADLINE, baselines=True).items()):
            out.append({"series": series, "x": f"exact match (non-trivial) k={k}", "ours": mean, "ours_lo": lo,
                        "ours_hi": hi})
        return out

    def draw(self, rows, points, out, title, paper):
        plots.plot_staircase(rows, out, title, paper, self.by(rows))


FIGURE = (
    DepthStaircase("depth-staircase", "P2 (Burtsev 2024)", "exact match per (depth, k) and the smallest depth that "
                   "solves each k", "depth_staircase.toml",
                   {"cpu": 55.0, "paper": "33 runs of 40k steps, d = 128: ~2 GPU-days", "loops": 70.0, "long": 82.0,
                    "radius2": 60.0, "radius2-gpu": "15 runs side by side on one GPU: docs/gpu/radius2.sh"},
                   presets={"cpu": ("cpu",), "paper": ("paper",), "loops": ("loops",), "long": ("long",),
                            "radius2": ("radius2",), "radius2-gpu": ("radius2-gpu",)},
                   note=f"cpu: RO-O at r = 1 (the rule given, one given state, the next four states each "
                        f"supervised), depths 1, 2, 4 and 8, three seeds, Muon at 6e-3 and a plateau budget "
                        f"within 4,000 steps; "
                        f"solved: mean >= {tables.SOLVED_MEAN:.2f} and 95 % lower bound >= {tables.SOLVED_LO:.2f} "
                        "on the non-trivial stratum. P2's staircase is per-bit accuracy >= 0.9 on O-O at radius 2 with "
                        "the rule inferred, a looser criterion on a harder task: compare the shape, not the depths. "
                        "long: the AdamW recipe (3e-3, cosine, a fixed budget) at depths 6 and 8 only, 8,000 steps, so "
                        "its smallest depth is the smaller of those two. radius2: RO-O at r = 2 (width 16, one "
                        "given state, the next two states), depths 1-4, a plateau budget within 5,000 steps.")
)
