"""The retrieval-capacity figure (Schlag et al. 2021; ARMT): most pairs recalled at >= 90 % vs state size.

Runs: experiments/mqar_capacity.toml. What the page says beside the numbers:
docs/figures/retrieval-capacity.notes.md; the pages themselves are generated (docs/figures/NAME.md).
"""

from __future__ import annotations

from ..results import plots_memory, tables
from .base import Figure, Results

CAPACITY = {"cpu": dict(ds=[8, 16, 32, 64], trials=20), "paper": dict(ds=[8, 16, 32, 64, 128], trials=50)}


CAPACITY_PAIRS = [1, 2, 4, 8, 16, 32, 64, 128, 256]


class RetrievalCapacity(Figure):
    """Mechanism-level: store random pairs in each memory, read them back (no training); each capacity with its
    interval over the random memories (trials)."""

    trains = False
    intervals = "over the random memories of each point (trials), a percentile bootstrap of the threshold statistic"

    def results(self, ctx):
        from ..memory.capacity import capacity_rows
        from ..results.collect import BASE_COLUMNS

        self.check_preset(ctx.preset)
        setting = CAPACITY[ctx.preset]
        per_trial: dict = {}
        rows = capacity_rows(["attention", "sum", "delta", "armt"], setting["ds"], CAPACITY_PAIRS, setting["trials"],
                             per_trial=per_trial)
        return Results(BASE_COLUMNS, rows, extra={"per_trial": per_trial})

    def compare(self, res, paper):
        from ..results.intervals import threshold_interval

        per_trial = res.extra["per_trial"]
        out = []
        for (fam, d), pts in sorted(per_trial.items()):
            theory = {"sum": d, "delta": d}.get(fam)  # at most dim phi(k) = d keys without interference
            c, lo, hi = threshold_interval(pts, tables.RECALL_FLOOR)
            out.append({"series": fam, "x": f"d={d}", "ours": c, "ours_lo": lo, "ours_hi": hi, "published": theory,
                        "difference": c - theory if theory is not None else None,
                        "ratio": c / theory if theory else None})
        return out

    def draw(self, rows, points, out, title, paper):
        plots_memory.plot_capacity(rows, out, title)


FIGURE = (
    RetrievalCapacity("retrieval-capacity", "Schlag et al. 2021; ARMT", "most pairs recalled at >= 90 % vs state size",
                      "mqar_capacity.toml", {"cpu": 0.7, "paper": 4.0},
                      note="mechanism-level (no training), pairs tested at powers of two; published: retrieval "
                           "breaks at S ~ dim phi(k) = d pairs (sum rule: signal-to-noise sqrt(d/S); delta rule: exact "
                           "up to d orthogonal keys).")
)
