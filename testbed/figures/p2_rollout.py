"""The p2-rollout figure (P2 (Burtsev 2024)): per-bit accuracy per autoregressive rollout step (fed own predictions).

Runs: experiments/p2_rollout.toml. What the page says beside the numbers: docs/figures/p2-rollout.notes.md; the pages
themselves are generated (docs/figures/NAME.md).
"""

from __future__ import annotations

from pathlib import Path

from .. import spec as specs
from .base import Results
from .series import (
    SeriesFigure,
    ours_by_rollout,
)


class Rollout(SeriesFigure):
    """Models trained for the next state, fed their own predictions: outcomes per rollout step (cached per run in
    RUN/rollout.npz), over seeds and rules like every other result, the baselines beside."""

    axis, xlabel = "step", "rollout step"

    def results(self, ctx):
        res = super().results(ctx)
        steps = len(specs.load(ctx.experiments / self.spec)["paper"]["step"])  # as many steps as the paper shows
        ids = [r.run_id() for r in ctx.runs(self)]
        done = [ctx.runs_dir / rid for rid in ids if (ctx.runs_dir / rid / "model.pt").is_file()]
        return Results(res.columns, rollout_results(done, steps, ctx.echo), failure=res.failure,
                       runs=res.runs, reused=res.reused)

    def ours(self, rows, metric, baselines=False):
        return ours_by_rollout(rows, metric, baselines)


def rollout_results(run_dirs: list[Path], steps: int, echo) -> list[dict]:
    """Rollout rows over the seeds of each configuration (and of the baselines), the format of `testbed collect`."""
    from generators.core.io import load

    from ..evaluation import MODEL, rollout_outcomes
    from ..results import aggregate
    from ..results.collect import task_id
    from ..store import open_run, read_config, write_outcomes

    groups, baselines = {}, {}
    for run_dir in run_dirs:
        cached, config = run_dir / "rollout.npz", read_config(run_dir)
        units = load(cached)[0] if cached.is_file() else None
        if units is None or int(units["value"].max()) < steps or "fresh" not in units:  # (or from before fresh)
            echo(f"rolling out {run_dir.name} ({config.data.task}), {steps} steps")
            _, model, generator = open_run(run_dir)
            units = rollout_outcomes(model, generator, config.eval, steps)
            write_outcomes(run_dir, units, "rollout.npz")
        units = {k: v[units["value"] <= steps] for k, v in units.items()}
        model_units = {k: v[units["source"] == MODEL] for k, v in units.items()}
        groups.setdefault(config.config_id(), (config, [], []))[1].append(model_units)
        groups[config.config_id()][2].append(config.seed)
        baselines.setdefault(task_id(config), (config, {k: v[units["source"] != MODEL] for k, v in units.items()}))
    rows = []
    for cid, (config, units, seeds) in groups.items():
        meta = {"config_id": cid, "name": config.name, "model": config.model_name, "task": config.data.task,
                "seeds": ",".join(map(str, seeds))}
        rows += [{**meta, **row} for row in aggregate.rows(units, "rollout")]
    for tid, (config, units) in baselines.items():
        for source in dict.fromkeys(units["source"].tolist()):
            keep = {k: v[units["source"] == source] for k, v in units.items()}
            rows += [{"config_id": f"{source}@{tid}", "name": config.name, "model": source,
                      "task": config.data.task, **row, "n_seeds": 0, "seeds": "-"}
                     for row in aggregate.rows([keep], "rollout")]
    return rows


FIGURE = (
    Rollout("p2-rollout", "P2 (Burtsev 2024)", "per-bit accuracy per autoregressive rollout step (fed own predictions)",
            "p2_rollout.toml", {"cpu": 24.0, "paper": "the 4 k = 1 runs of p2-lookahead (shared): ~8 GPU-hours"},
            note="rollout of 10 steps from models trained for k = 1 (O-O: its first predicted state is fed back).")
)
