"""The quickstart figure: exact match on held-out rules vs steps ahead k, one line per depth.

Runs: experiments/quickstart.toml. What the page says beside the numbers: docs/figures/quickstart.notes.md; the pages
themselves are generated (docs/figures/NAME.md).
"""

from __future__ import annotations

from .series import (
    DepthCurve,
)


class Quickstart(DepthCurve):
    """The quickstart's curve, and each depth's paired difference against the one-layer model (the same seeds and
    examples): whether a deeper model is better is a paired question."""

    reference = "n_layer=1"


FIGURE = (
    Quickstart("quickstart", "-", "exact match on held-out rules vs steps ahead k, one line per depth",
               "quickstart.toml", {"cpu": 5.0}, presets={"cpu": ("cpu",)},
               note="The first curve: small transformers of a few depths execute an unseen rule (given as input) k "
                    "steps ahead; three seeds, the baselines on the same examples.")
)
