"""Evaluation: a trained model and the task's baselines scored on the same held-out examples, sliced by k (or another
per-example key), at several iteration counts for weight-tied models, on interchange files, and in autoregressive
rollout.

Every evaluation yields outcomes, one unit per example and slice (metrics.py), tagged with their source ("model" or
"baseline:NAME"), the iteration count (0: the model's own) and the look-ahead of the example set (0: the task's own
mix). Rows of rates are taken from them; the outcomes themselves are kept (outcomes.npz) for intervals over rules and
seeds. Task-specific behaviour (examples at one depth, baselines, a file's orbits, rollout) comes from the generator's
hooks; nothing here asks what kind of generator or model it holds.
"""

from __future__ import annotations

import numpy as np
import torch

from generators.core import ConfigError

from . import metrics
from .data import batches, held_out
from .metrics import MODEL, tagged
from .spec import EvalConfig


def model_device(model) -> torch.device:
    """Where the model's weights are: evaluation runs there (a GPU after GPU training), results come back as numpy."""
    return next(model.parameters(), torch.empty(0)).device


@torch.no_grad()
def predictions(model, examples: dict, batch_size: int, iterations=()) -> dict:
    """{iteration count (0: the model's own): (predicted tokens (n, L), compute steps (n, L) or None)}; with
    `iterations` (weight-tied models), one pass at the largest count read out after every iteration."""
    model.eval()
    device = model_device(model)
    out: dict = {}
    for batch in batches(examples, batch_size):
        inputs = batch["inputs"].to(device)
        if iterations:
            logits = model.forward_steps(inputs, max(iterations))
            got = {r: (logits[r - 1].argmax(-1), None) for r in iterations}
        else:
            pred = model(inputs).argmax(-1)
            got = {0: (pred, model.steps_used)}
        for r, (pred, steps) in got.items():
            out.setdefault(r, []).append((pred.cpu().numpy(), None if steps is None else steps.float().cpu().numpy()))
    return {r: (np.concatenate([p for p, _ in parts]),
                None if parts[0][1] is None else np.concatenate([s for _, s in parts])) for r, parts in out.items()}


def score(model, generator, examples: dict, batch_size: int, iterations=(), by: str | None = None,
          set_k: int = 0, baselines: bool = True) -> dict:
    """Outcomes of the model (at its own iteration count, and at `iterations` for weight-tied models) and of the
    task's baselines on one set of examples."""
    key, member = generator.cluster_key, generator.member_key
    parts = []
    for r, (pred, steps) in predictions(model, examples, batch_size).items():
        parts.append(tagged(metrics.outcomes(pred, examples, key, by, steps=steps, member_key=member), MODEL, r,
                            set_k))
    if iterations and model.tied:
        for r, (pred, _) in predictions(model, examples, batch_size, iterations).items():
            parts.append(tagged(metrics.outcomes(pred, examples, key, by, member_key=member), MODEL, r, set_k))
    if baselines:
        for name, pred in generator.baselines(examples).items():
            parts.append(tagged(metrics.outcomes(pred, examples, key, by, member_key=member), f"baseline:{name}", 0,
                                set_k))
    return metrics.concat(parts)


def test_sets(generator, eval_cfg: EvalConfig, split: str = "test") -> list[tuple[int, dict]]:
    """(k, examples) of a held-out split (the test split unless asked): one fixed-k set per configured k, or the
    task's own examples (k = 0)."""
    if not eval_cfg.k:
        return [(0, held_out(generator, split, eval_cfg.seed, eval_cfg.test_size))]
    return [(k, held_out(generator, split, eval_cfg.seed, eval_cfg.test_size, k=k)) for k in eval_cfg.k]


def test_outcomes(model, generator, eval_cfg: EvalConfig, by: str | None = None, baselines: bool = True,
                  split: str = "test") -> dict:
    """Outcomes of the model and the baselines on the test split (or `split`: choices made after training, such as
    how far to iterate, read the validation split), every set, every iteration count."""
    return metrics.concat([score(model, generator, examples, eval_cfg.batch_size, eval_cfg.iterations, by, k,
                                 baselines) for k, examples in test_sets(generator, eval_cfg, split)])


def rows(units: dict, split: str, source: str = MODEL) -> list[dict]:
    """Rows of rates of one source: per example set and iteration count; a fixed-k set gives its per-k rows (its
    overall row would repeat them), tagged with k when the slices are another key (`by`)."""
    if not units:
        return []
    out = []
    of_source = units["source"] == source
    for r in sorted(set(units["iterations"][of_source].tolist())):
        for k in dict.fromkeys(units["set_k"][of_source].tolist()):
            keep = of_source & (units["iterations"] == r) & (units["set_k"] == k)
            got = metrics.rates(metrics.select(units, keep), split)
            if k:
                got = [{**row, "k": k} if row["slice"] != "k" else row for row in got if row["slice"] != "all"]
            out += [{**row, "iterations": r} if r else row for row in got]
    return out


def sources(units: dict) -> list[str]:
    return list(dict.fromkeys(units["source"].tolist())) if units else []


def test_rows(model, generator, eval_cfg: EvalConfig, by: str | None = None) -> list[dict]:
    """The model's rows on the test split (see `rows`)."""
    return rows(test_outcomes(model, generator, eval_cfg, by, baselines=False), "test")


def evaluate(model, examples: dict, batch_size: int, split: str = "test") -> list[dict]:
    """The model's rows on one set of examples (its own slices; clusters are the examples)."""
    units = [tagged(metrics.outcomes(pred, examples, steps=steps), MODEL, r)
             for r, (pred, steps) in predictions(model, examples, batch_size).items()]
    return rows(metrics.concat(units), split)


def predictor(model):
    """inputs (numpy) -> predicted tokens (numpy): the model as a generator's rollout hook sees it."""
    @torch.no_grad()
    def predict(inputs: np.ndarray) -> np.ndarray:
        return model(torch.from_numpy(inputs).to(model_device(model))).argmax(-1).cpu().numpy()
    return predict


def rollout_outcomes(model, generator, eval_cfg: EvalConfig, steps: int) -> dict:
    """Outcomes per rollout step j = 1..steps (slice "k", value j) of the j-th state the model predicts from its own
    earlier predictions, on held-out rules, and of the baselines predicting j steps ahead of the same orbits (the
    true state's triviality and freshness as at look-ahead j)."""
    model.eval()
    n = eval_cfg.test_size
    out = generator.rollout(predictor(model), "test", eval_cfg.seed, n, steps, eval_cfg.batch_size)
    index, cells = np.arange(n), np.full(n, out["cells"], np.int32)

    def units(correct, exact, source):
        return metrics.concat([tagged({
            "slice": np.full(n, "k", dtype="<U16"), "value": np.full(n, j + 1, np.int64), "index": index,
            "cluster": out["class_id"], "member": out["rule_id"], "trivial": out["trivial"][j],
            "fresh": out["fresh"][j], "exact": exact[j],
            "correct": correct[j].astype(np.int32), "cells": cells, "steps": np.full(n, np.nan, np.float32),
        }, source) for j in range(steps)])

    return metrics.concat([units(out["correct"], out["exact"], MODEL)] +
                          [units(b["correct"], b["exact"], f"baseline:{name}") for name, b in out["baselines"].items()])


def file_outcomes(model, generator, arrays: dict[str, np.ndarray], ks: list[int] | None,
                  batch_size: int = 512, iterations=()) -> dict:
    """Outcomes of the model and the baselines on the examples of an interchange file, formatted with the run's own
    task settings (one example set per k where the task has a depth axis); a weight-tied model also read out after
    each of `iterations`, so that a shared file tests depth extrapolation too."""
    sets = generator.examples_from_file(arrays, ks)
    if not sets or not len(sets[0][1]["inputs"]):
        raise ConfigError("the file holds no examples")
    return metrics.concat([score(model, generator, examples, batch_size, iterations, set_k=k or 0)
                           for k, examples in sets])
