"""Evaluation: a trained model scored on held-out examples, sliced by k (or another per-example key), at several
iteration counts for weight-tied models, on interchange files, and in autoregressive rollout.

Task-specific behaviour (examples at one depth, formatting a file's orbits, rollout) comes from the generator's
hooks; nothing here asks what kind of generator or model it holds.
"""

from __future__ import annotations

import numpy as np
import torch

from generators import ConfigError

from . import metrics
from .data import batches, fixed_batches
from .spec import EvalConfig


@torch.no_grad()
def evaluate(model: torch.nn.Module, batches, split: str = "test", iterations=(), by: str | None = None) -> list[dict]:
    """Rows of sliced metrics over an iterable of tensor batches. With `iterations` (weight-tied models), one pass
    at the largest count reads the output head out after every iteration and scores each requested count: rows get
    an `iterations` field. `by` slices by a per-example key (e.g. rule_id) instead of k."""
    model.eval()
    totals: dict = {}
    name = "all"
    for batch in batches:
        name, groups = metrics.slice_groups(batch, by)
        if iterations:
            outputs = model.forward_steps(batch["inputs"], max(iterations))
            for r in iterations:
                counts = metrics.count(outputs[r - 1].argmax(-1), batch["targets"], groups)
                metrics.merge(totals.setdefault(r, {}), counts)
        else:
            pred = model(batch["inputs"]).argmax(-1)
            metrics.merge(totals.setdefault(None, {}), metrics.count(pred, batch["targets"], groups, model.steps_used))
    rows = []
    for r, total in totals.items():
        rows += [{**row, "iterations": r} if r else row for row in metrics.rates(total, name, split)]
    return rows


def test_rows(model, generator, eval_cfg: EvalConfig, by: str | None = None) -> list[dict]:
    """Test-split metrics: at each configured k (one fixed-k test set per k), or the task's own slices; for
    weight-tied models also at each configured iteration count. `by` slices by a per-example key as well."""
    passes = [()] + ([tuple(eval_cfg.iterations)] if eval_cfg.iterations and model.tied else [])
    rows = []
    for iterations in passes:
        if not eval_cfg.k:
            sets = fixed_batches(generator, "test", eval_cfg.seed, eval_cfg.test_size, eval_cfg.batch_size)
            rows += evaluate(model, sets, iterations=iterations, by=by)
            continue
        for k in eval_cfg.k:
            sets = fixed_batches(generator, "test", eval_cfg.seed, eval_cfg.test_size, eval_cfg.batch_size, k=k)
            rows += [{**r, "k": k} if by else r for r in evaluate(model, sets, iterations=iterations, by=by)
                     if r["slice"] != "all"]
    return rows


def predictor(model):
    """inputs (numpy) -> predicted tokens (numpy): the model as a generator's rollout hook sees it."""
    @torch.no_grad()
    def predict(inputs: np.ndarray) -> np.ndarray:
        return model(torch.from_numpy(inputs)).argmax(-1).numpy()
    return predict


def rollout_rows(model, generator, eval_cfg: EvalConfig, steps: int) -> list[dict]:
    """Rows per rollout step j = 1..steps (split "rollout", slice "k", value j): per-cell accuracy and exact match
    of the j-th state the model predicts from its own earlier predictions, on held-out rules."""
    model.eval()
    n = eval_cfg.test_size
    out = generator.rollout(predictor(model), "test", eval_cfg.seed, n, steps, eval_cfg.batch_size)
    return [{"split": "rollout", "slice": "k", "value": j + 1,
             "cell_accuracy": float(out["correct"][j].sum() / (n * out["cells"])),
             "exact_match": float(out["exact"][j].mean()), "n": n} for j in range(steps)]


def evaluate_file(model, generator, arrays: dict[str, np.ndarray], ks: list[int] | None,
                  batch_size: int = 512) -> list[dict]:
    """Metrics on the examples of an interchange file, formatted with the run's own task settings; an example set
    at one look-ahead k gives its per-k row (its overall row would repeat it)."""
    sets = generator.examples_from_file(arrays, ks)
    if not sets or not len(sets[0][1]["inputs"]):
        raise ConfigError("the file holds no examples")
    rows = []
    for k, examples in sets:
        got = evaluate(model, batches(examples, batch_size), "file")
        rows += got if k is None else [r for r in got if r["slice"] != "all"]
    return rows
