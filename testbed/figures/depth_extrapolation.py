"""The depth-extrapolation figure: exact match vs k beyond training, weight-tied models iterated k times.

Runs: experiments/depth_extrapolation.toml. What the page says beside the numbers:
docs/figures/depth-extrapolation.notes.md; the pages themselves are generated (docs/figures/NAME.md).
"""

from __future__ import annotations

from ..results import plots, tables
from .base import Figure
from .series import (
    k_of,
)


class DepthExtrapolation(Figure):
    """Exact match on fresh targets (none an earlier state of its orbit: on a periodic grid a far target can repeat a
    near one, and then measures the period, not the depth) against k, weight-tied models iterated k times, beyond the
    largest k of training; the non-trivial stratum beside it, and the examples and held-out classes each point rests
    on. No paper has this on CA: the spec's [paper] table holds our targets, not published numbers."""

    metric = "exact_match_fresh"

    def compare(self, res, paper):
        targets = dict(zip(paper.get("k", []), paper.get("target", [])))
        out = []
        for label, k, r in sorted(self._rows(res.rows), key=lambda t: (tables.is_baseline({"model": t[0]}), t[:2])):
            mean, lo, hi = tables.published_point(r, self.metric)
            goal = targets.get(k) if label.endswith("(iterations = k)") else None
            nt, nt_lo, nt_hi = tables.published_point(r, tables.HEADLINE)
            out.append({"series": label, "k": k, "ours": mean, "ours_lo": lo, "ours_hi": hi,
                        "fresh": r.get("n_fresh", ""), "fresh classes": r.get("n_classes_fresh", ""),
                        "non-trivial": nt, "non-trivial_lo": nt_lo, "non-trivial_hi": nt_hi,
                        "published": f"target >= {goal:.2f}" if goal else None,
                        "difference": (("met" if isinstance(lo, float) and lo >= goal else "missed") if goal
                                       else None)})
        return out

    @staticmethod
    def _rows(rows):
        """(label, k, row) of the test rows per k: a weight-tied model's read out after k iterations (labelled as
        tables.extrapolation_table labels it), every other model's and baseline's at their own depth."""
        names = tables.labels([r for r in rows if not tables.is_baseline(r)] or rows)
        tied = {names[r["config_id"]] for r in rows if not tables.is_baseline(r) and r.get("iterations")}
        for r in rows:
            if r["split"] != "test" or r["slice"] != "k" or not k_of(r):
                continue
            if tables.is_baseline(r):
                yield r["model"], k_of(r), r
            elif names[r["config_id"]] in tied:
                if r.get("iterations") and int(r["iterations"]) == k_of(r):
                    yield f"{names[r['config_id']]} (iterations = k)", k_of(r), r
            elif not r.get("iterations"):
                yield names[r["config_id"]], k_of(r), r

    def draw(self, rows, points, out, title, paper):
        plots.plot_extrapolation(rows, out, title, trained_k=int(paper.get("trained_k", 0)),
                                 metrics=(self.metric, tables.HEADLINE))


FIGURE = (
    DepthExtrapolation("depth-extrapolation", "-", "exact match vs k beyond training, weight-tied models iterated k "
                       "times", "depth_extrapolation.toml", {"cpu": 150.0, "radius2": 60.0},
                       presets={"cpu": ("cpu",), "radius2": ("radius2",)},
                       note="Trained on k = 4 only, radius-1 rules on a grid of 20 cells with 40 % of the rule space "
                            "held out (32 test classes); a looped block whose read-out after loop j is trained on the "
                            "state j steps ahead, the same with each loop fed the embedding of the previous loop's "
                            "read-out (feedback), the same model trained on the final state alone, and a fixed-depth "
                            "transformer. The headline is exact match on fresh targets, none an earlier state of its "
                            "orbit (the non-trivial stratum beside it); targets (ours, no paper has this on CA): a "
                            "weight-tied model's 95 % lower bound >= 0.90 at k = 16 and 32. radius2: the feedback "
                            "block alone on radius-2 rules from one given state of 16 cells, where orbits do not "
                            "cycle within 32 steps.")
)
