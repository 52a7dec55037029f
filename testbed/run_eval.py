"""Evaluating a finished run on demand (`testbed eval`): on held-out examples per k, on an interchange file, at other
iteration counts of a weight-tied model, by another per-example key, or in autoregressive rollout; the model and the
task's baselines on the same examples, recorded beside the run as RUN/eval-*.json.

Everything asked is checked before the run's examples are drawn: sizes against the memory cap, the model's fit to
the mode (only a weight-tied model reads out at other iteration counts), and the mode's fit to the split.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from generators.core import ConfigError
from generators.core import io as gio

SPLITS = ("test", "val")


@dataclasses.dataclass(frozen=True)
class EvalRequest:
    """What `testbed eval` asks of a run (empty / 0 / None: the run's own)."""

    k: tuple[int, ...] = ()
    data: Path | None = None
    size: int | None = None
    iterations: tuple[int, ...] = ()
    by: str | None = None
    rollout: int = 0
    baselines: tuple[str, ...] = ()
    split: str = "test"

    def __post_init__(self):
        from .models import MAX_ITERATIONS

        if any(k < 1 for k in self.k):
            raise ConfigError(f"--k values must be at least 1, got {list(self.k)}")
        if self.iterations and not 1 <= min(self.iterations) <= max(self.iterations) <= MAX_ITERATIONS:
            raise ConfigError(f"--iterations must be in 1..{MAX_ITERATIONS}, got {list(self.iterations)}")
        if self.size is not None and self.size < 1:
            raise ConfigError(f"--size must be positive, got {self.size}")
        if self.rollout < 0:
            raise ConfigError(f"--rollout must be at least 1, got {self.rollout}")
        if self.split not in SPLITS:
            raise ConfigError(f"--split must be test or val, got {self.split!r}")
        if self.split == "val" and (self.rollout or self.data is not None):
            raise ConfigError("--split val applies to held-out examples per k, not to --rollout or --data")
        if self.rollout and (self.iterations or self.by or self.data is not None or self.k):
            raise ConfigError("--rollout is scored on the held-out test split alone (no --k, --iterations, --by, "
                              "--data)")
        if self.data is not None and self.by:
            raise ConfigError("--by applies to the held-out test split, not to --data files")


@dataclasses.dataclass
class Evaluation:
    """What an evaluation found: the model's rows, each baseline's rows on the same examples, and where they went."""

    model: str
    rows: list
    baselines: dict
    path: Path


def _units(req: EvalRequest, cfg, model, generator) -> tuple[dict, str, str]:
    """(outcomes, the rows' split, the record's file name) of the mode asked."""
    from . import evaluation
    from .limits import cap

    n = req.size or cfg.eval.test_size
    if req.rollout:
        ecfg = dataclasses.replace(cfg.eval, test_size=n)
        return evaluation.rollout_outcomes(model, generator, ecfg, req.rollout), "rollout", "eval-rollout"
    if req.data is not None:
        arrays, _ = gio.load(req.data, max_bytes=cap())
        units = evaluation.file_outcomes(model, generator, arrays, list(req.k) or None, iterations=req.iterations)
        return units, "file", f"eval-{req.data.name.removesuffix('.npz')}" + ("-iterations" if req.iterations else "")
    ecfg = dataclasses.replace(cfg.eval, test_size=n, k=req.k or cfg.eval.k, iterations=req.iterations)
    units = evaluation.test_outcomes(model, generator, ecfg, by=req.by, split=req.split)
    name = "eval-iterations" if req.iterations else f"eval-by-{req.by}" if req.by else "eval-test"
    return units, req.split, name if req.split == "test" else f"{name}-{req.split}"


def evaluate_run(run_dir: Path, req: EvalRequest) -> Evaluation:
    """Score a finished run as `req` asks, record it beside the run, and return what was found."""
    from . import evaluation
    from .limits import check, examples_bytes
    from .store import open_run, write_json

    cfg, model, generator = open_run(run_dir)
    n_sets = max(1, len(req.k or cfg.eval.k))
    check("the evaluation set", examples_bytes(generator, (req.size or cfg.eval.test_size) * n_sets), "--size")
    if req.iterations and not model.tied:
        raise ConfigError(f"model {cfg.model_name!r} is not weight-tied: --iterations needs looped or recurrent_depth")
    units, split, name = _units(req, cfg, model, generator)
    rows = evaluation.rows(units, split)
    rows = [r for r in rows if r.get("iterations")] if req.iterations else rows
    baselines = {s: evaluation.rows(units, split, s) for s in evaluation.sources(units) if s != evaluation.MODEL}
    if req.baselines:
        have = [s.removeprefix("baseline:") for s in baselines]
        unknown = [b for b in req.baselines if b not in have]
        if unknown:
            raise ConfigError(f"task {cfg.generator!r} ({getattr(cfg.data, 'task', '-')}) has no baseline "
                              f"{unknown[0]!r}; its baselines: {', '.join(have) or 'none'}")
        baselines = {f"baseline:{b}": baselines[f"baseline:{b}"] for b in req.baselines}
    path = Path(run_dir) / f"{name}.json"
    write_json(path, {"data": str(req.data) if req.data else f"{split} split", "rows": rows, "baselines": baselines})
    return Evaluation(cfg.model_name, rows, baselines, path)
