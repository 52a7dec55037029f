"""The p2-input-length figure (P2 (Burtsev 2024)): O-S (k = 1) per-bit accuracy vs number of input states.

Runs: experiments/p2_input_length.toml. What the page says beside the numbers: docs/figures/p2-input-length.notes.md;
the pages themselves are generated (docs/figures/NAME.md).
"""

from __future__ import annotations

from .series import SeriesFigure, ours_by_input_length


class InputLength(SeriesFigure):
    axis, xlabel = "n_input", "input states"

    def results(self, ctx):
        from ..results.collect import task_id

        res = super().results(ctx)
        n_input = {}
        for r in ctx.runs(self):  # configurations by id, baselines by the task they were scored on
            n_input[r.config_id()] = n_input[task_id(r)] = r.data.n_input
        res.rows = [{**r, "n_input": n_input.get(r["config_id"].rsplit("@", 1)[-1], "")} for r in res.rows]
        res.columns = res.columns + ["n_input"]
        return res

    def ours(self, rows, metric, baselines=False):
        return ours_by_input_length(rows, metric, baselines)


FIGURE = (
    InputLength("p2-input-length", "P2 (Burtsev 2024)", "O-S (k = 1) per-bit accuracy vs number of input states",
                "p2_input_length.toml", {"cpu": 18.0, "paper": "9 runs of 25k steps, d = 512: ~15 GPU-hours"},
                note="cpu: 1..6 input states of radius-1 orbits (the paper: 2..18 of radius 2); points at 2, 4, 6 "
                     "compare.")
)
