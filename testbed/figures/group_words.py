"""The group-words figure (Merrill et al. 2024; P1 v3): prefix-product accuracy vs word length, Z_5 against S_5, per
family.

Runs: experiments/group_words.toml. What the page says beside the numbers: docs/figures/group-words.notes.md; the
pages themselves are generated (docs/figures/NAME.md).
"""

from __future__ import annotations

from .series import (
    DepthCurve,
)


class WordLength(DepthCurve):
    """Group words: accuracy of the prefix product against the prefix length, per group and family."""

    title = "State tracking: the prefix product of a word, against its length"
    intervals = "over seeds and test words (each word its own cluster)"
    xlabel = "prefix length (compositions in sequence)"


FIGURE = (
    WordLength("group-words", "Merrill et al. 2024; P1 v3", "prefix-product accuracy vs word length, Z_5 against "
               "S_5, per family", "group_words.toml", {"cpu": 15.0}, presets={"cpu": ("cpu",)},
               note="No published numbers to match: the claim is the shape (on S_5 the fixed-depth transformer "
                    "falls with length, the LSTM does not; Z_5 has shallow shortcuts: over its unit rotation the "
                    "product is a count mod 5, and a count of at most 16 is in reach of every family, Mamba's "
                    "diagonal recurrence included; its limit, no counting mod m beyond a bounded length in finite "
                    "precision, is Sarrof et al. 2024 and Grazzi et al. 2024, arXiv 2411.12537). Mamba is in TC^0 "
                    "like the transformer, so it too should lose S_5 with length. Words of 16 elements over a "
                    "generating set and the identity (Z_5: the unit rotation; S_5: the swaps), three seeds.")
)
