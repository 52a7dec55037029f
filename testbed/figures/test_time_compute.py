"""The test-time-compute figure (Geiping et al. 2025): exact match vs test-time iterations of weight-tied models.

Runs: experiments/test_time_compute.toml. What the page says beside the numbers:
docs/figures/test-time-compute.notes.md; the pages themselves are generated (docs/figures/NAME.md).
"""

from __future__ import annotations

from ..results import plots, tables
from .base import Figure


class TestTimeCompute(Figure):
    """Exact match on the non-trivial stratum per iteration count of weight-tied models, against the published
    shape (rises to the training count, flat beyond)."""

    def compare(self, res, paper):
        out = []
        for label, ks in tables.iterations_table(res.rows).items():
            for k, its in ks.items():
                counts = sorted(its)
                best = max(counts, key=lambda i: its[i][0])
                out.append({"series": label, "x": f"k={k}", "ours": " / ".join(f"{i}: {tables.fmt(its[i])}"
                                                                                 for i in counts),
                            "published": "non-decreasing up to the training mean, flat beyond",
                            "difference": f"best at {best}; last minus best {its[counts[-1]][0] - its[best][0]:+.3f}"})
        _, baselines = tables.depth_table(res.rows)  # trivial predictors on the same examples: no iterations to vary
        for label, ks in sorted(baselines.items()):
            for k, p in ks.items():
                out.append({"series": label, "x": f"k={k}", "ours": tables.fmt(p), "published": None,
                            "difference": None})
        return out

    def draw(self, rows, points, out, title, paper):
        plots.plot_iterations(rows, out, title)


FIGURE = (
    TestTimeCompute("test-time-compute", "Geiping et al. 2025", "exact match vs test-time iterations of weight-tied "
                    "models", "test_time_compute.toml", {"cpu": 40.0, "paper": "3 runs of 40k steps: ~6 GPU-hours"},
                    note="published: a curve that rises to the training mean and stays flat beyond it (no numbers to "
                         "match).")
)
