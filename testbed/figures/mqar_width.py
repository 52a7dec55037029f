"""The mqar-width figure (Zoology (Arora et al. 2024)): MQAR recall vs width and stored pairs, per family.

Runs: experiments/mqar_capacity.toml. What the page says beside the numbers: docs/figures/mqar-width.notes.md; the
pages themselves are generated (docs/figures/NAME.md).
"""

from __future__ import annotations

from ..results import plots_memory, tables
from .base import Figure


class MQARWidth(Figure):
    """Recall at the query positions against width and stored pairs, per family; each point with its interval over
    seeds and test examples, Zoology's published attention (about 1.00 at every width) beside it."""

    intervals = "over seeds and test examples (a sequence's stored pairs are drawn afresh: no rules or classes here)"

    def compare(self, res, paper):
        out = []
        for fam, ds in sorted(tables.capacity_table(res.rows, intervals=True).items()):
            for d, pts in ds.items():
                for pairs, (acc, _, lo, hi) in pts.items():
                    pub = 1.0 if fam == "attention" else None  # Zoology: attention ~100 % at every width and length
                    out.append({"series": fam, "x": f"d={d} pairs={pairs}", "ours": acc, "ours_lo": lo, "ours_hi": hi,
                                "published": pub, "difference": acc - pub if pub is not None else None})
        for r in res.rows:  # trivial predictors on the same test examples
            if tables.is_baseline(r) and r["split"] == "test" and r["slice"] == "n_pairs":
                out.append({"series": r["model"], "x": f"pairs={int(r['value'])}", "ours": float(r["cell_accuracy"]),
                            "ours_lo": float(r["cell_accuracy_lo"]), "ours_hi": float(r["cell_accuracy_hi"]),
                            "published": None, "difference": None})
        return out

    def draw(self, rows, points, out, title, paper):
        plots_memory.plot_capacity(rows, out, title)


FIGURE = (
    MQARWidth("mqar-width", "Zoology (Arora et al. 2024)", "MQAR recall vs width and stored pairs, per family",
              "mqar_capacity.toml", {"cpu": 30.0, "paper": "320 runs, up to 64 epochs of 100k: ~5 GPU-days"},
              note="cpu: L = 32, V = 128, widths 16, 32 and 64, 2 and 8 stored pairs, attention, the fast-weight sum "
                   "and delta rules and Mamba, three seeds, learning rate 3e-3 (Zoology: best of 4), a plateau "
                   "budget capped at 1,500 steps (Zoology: 64 epochs of 100k sequences); published: attention ~1.00 "
                   "at every width. Recall is the share of queries answered.")
)
