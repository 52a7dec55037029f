"""The p2-depth-sweep figure (P2 (Burtsev 2024)): O-O per-step accuracy vs number of layers.

Runs: experiments/p2_depth_sweep.toml. What the page says beside the numbers: docs/figures/p2-depth-sweep.notes.md;
the pages themselves are generated (docs/figures/NAME.md).
"""

from __future__ import annotations

from .series import PerBitFigure, ours_by_layers


class DepthSweep(PerBitFigure):
    axis = "layers"

    def ours(self, rows, metric, baselines=False):
        return ours_by_layers(rows, metric, baselines)


FIGURE = (
    DepthSweep("p2-depth-sweep", "P2 (Burtsev 2024)", "O-O per-step accuracy vs number of layers",
               "p2_depth_sweep.toml", {"cpu": 31.0, "paper": "11 runs of 105k steps, d = 512: ~2 GPU-days"},
               note="cpu: layers 1, 2, 3, 4, 6 at radius 1 and 2,000 steps; the paper: 1..11 at radius 2, 105k steps.")
)
