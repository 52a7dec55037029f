"""The facts-capacity figure (Allen-Zhu & Li 2024): bits stored in the weights vs parameters, per memory family.

Runs: experiments/facts_capacity.toml. What the page says beside the numbers: docs/figures/facts-capacity.notes.md;
the pages themselves are generated (docs/figures/NAME.md).
"""

from __future__ import annotations

import dataclasses

from generators.core import ConfigError

from ..results import plots_memory, tables
from .base import Figure


class FactsCapacity(Figure):
    """Bits stored in the weights against parameters, per memory family: for each model size the world size it
    stores most of (chosen on validation), its bits per parameter beside Allen-Zhu & Li's 2 bits per parameter."""

    WORLD = ("n_entities", "n_attributes", "n_values")
    intervals = "over seeds and facts (each test example asks one fact, its own cluster: no rules or classes here)"

    def results(self, ctx):
        res = super().results(ctx)
        world = {}
        for r in res.configs:
            world[r.config_id()] = {k: getattr(r.data, k) for k in self.WORLD}
            if r.data.law != "uniform":
                raise ConfigError("the facts capacity figure counts bits of uniform values (law = uniform)")
        rows = [{**r, **world.get(r["config_id"], {})} for r in res.rows]
        return dataclasses.replace(res, columns=[*res.columns, *self.WORLD], rows=rows)

    def compare(self, res, paper):
        return tables.facts_points(res.rows, paper.get("bits_per_parameter"))

    def draw(self, rows, points, out, title, paper):
        plots_memory.plot_facts(points, out, title, paper.get("bits_per_parameter"))


FIGURE = (
    FactsCapacity("facts-capacity", "Allen-Zhu & Li 2024", "bits stored in the weights vs parameters, per memory "
                  "family", "facts_capacity.toml", {"cpu": 35.0, "transformers": 30.0},
                  presets={"cpu": ("mlp", "pkm", "hash"), "transformers": ("transformer", "pkm_transformer")},
                  note="Worlds of 250-4,000 entities x 4 attributes of 16 uniform values (--preset transformers: "
                       "500-2,000 entities, each named by two tokens shared by every entity); cpu: three sizes of each "
                       "query memory; transformers: a transformer of widths 16 and 32 and one with a product-key "
                       "memory; three seeds; cpu: each trained until its recall rose by less than 0.01 over 100 "
                       "exposures per fact, or to 1,024 exposures; transformers: 1,024 exposures, the learning rate "
                       "decaying over them; bits at 100 and 1,000 exposures read on validation, which "
                       "asks the same facts; bits per parameter counts every parameter, the entity embeddings "
                       "included (the published 2 bits/param is for transformers with enough exposures). The query "
                       "memories read out over the 16 values only (model.readout = answers); --set "
                       "model.readout=vocab measures them with a read-out over every token, most of a small memory's "
                       "parameters.")
)
