"""The mqar-width figure (Zoology (Arora et al. 2024)): MQAR recall vs width and stored pairs, per family.

Runs: experiments/mqar_capacity.toml. What the page says beside the numbers: docs/figures/mqar-width.notes.md; the
pages themselves are generated (docs/figures/NAME.md).
"""

from __future__ import annotations

from ..results import plots_memory, tables
from .base import Figure


class MQARWidth(Figure):
    def compare(self, res, paper):
        rows = res.rows
        out = []
        for fam, ds in sorted(tables.capacity_table(rows).items()):
            for d, pts in ds.items():
                for pairs, (acc, _) in pts.items():
                    pub = 1.0 if fam == "attention" else None  # Zoology: attention ~100 % at every width and length
                    out.append({"series": fam, "x": f"d={d} pairs={pairs}", "ours": acc, "published": pub,
                                "difference": acc - pub if pub is not None else None})
        return out

    def draw(self, rows, points, out, title, paper):
        plots_memory.plot_capacity(rows, out, title)


FIGURE = (
    MQARWidth("mqar-width", "Zoology (Arora et al. 2024)", "MQAR recall vs width and stored pairs, per family",
              "mqar_capacity.toml", {"cpu": 60.0, "paper": "320 runs, up to 64 epochs of 100k: ~5 GPU-days"},
              note="cpu: L = 64, V = 128, widths 16-64, 3,000 steps, one learning rate (ARMT's diverging points "
                   "also at 1e-3, the one that validates higher kept; Zoology: best of 4); published: attention ~1.00 "
                   "at every width. Diverged runs are "
                   "reported, not drawn.")
)
