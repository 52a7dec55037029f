"""The p2-lookahead figure (P2 (Burtsev 2024)): per-bit accuracy vs steps ahead k for O-S, O-O, O-SR, RO-S.

Runs: experiments/p2_lookahead.toml. What the page says beside the numbers: docs/figures/p2-lookahead.notes.md; the
pages themselves are generated (docs/figures/NAME.md).
"""

from __future__ import annotations

from .series import PerBitFigure, ours_by_task_k


class Lookahead(PerBitFigure):
    def ours(self, rows, metric, baselines=False):
        return ours_by_task_k(rows, metric, baselines)


FIGURE = (
    Lookahead("p2-lookahead", "P2 (Burtsev 2024)", "per-bit accuracy vs steps ahead k for O-S, O-O, O-SR, RO-S",
              "p2_lookahead.toml", {"cpu": 30.0, "paper": "13 runs of 25k-105k steps, d = 512: ~1 GPU-day"},
              note="cpu: radius 1, width 12, d = 64, 2,000 steps, one mixed-k model per task; P2: radius 2, width 20, "
                   "d = 512, one model per task and k.")
)
