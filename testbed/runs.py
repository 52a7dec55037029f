"""Run store: one directory per resolved config, named by its hash.

    RUNS/<run_id>/config.json     the resolved spec (every default filled in)
                  env.json        versions, git commit, device, threads
                  metrics.csv     Lightning's CSV logs (loss, lr, validation metrics) of every attempt, merged
                  checkpoints/    best.ckpt (validation exact match) and last.ckpt (for resuming)
                  model.pt        weights of the best checkpoint (plain tensors)
                  result.json     test metrics per slice, parameters, timings; written last, marks the run done

A run with result.json is skipped; one with checkpoints/last.ckpt resumes from it; --force starts afresh.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import shutil
import socket
import subprocess
import time
import warnings
from pathlib import Path

import numpy as np
import torch

import generators
from generators import ConfigError
from generators.io import atomic_write

from . import __version__, metrics
from .data import TaskData, batches, fixed_batches
from .models import build_model
from .spec import EvalConfig, TrainConfig, build_config, component_config, run_id


def quiet_lightning(level: int = 30) -> None:
    """Lightning's info banners (GPU available, tips) and a deprecation warning of its own are noise here."""
    import logging

    import lightning  # noqa: F401  (importing it sets its loggers to INFO: lower them afterwards)

    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(level)
    warnings.filterwarnings("ignore", module="lightning")
    warnings.filterwarnings("ignore", ".*LeafSpec.*")


def write_json(path: Path, obj) -> None:
    atomic_write(path, lambda f: f.write((json.dumps(obj, indent=2, default=str) + "\n").encode()))


def read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read {str(path)!r}: {e}") from None


def environment(threads: int) -> dict:
    repo = Path(__file__).resolve().parents[1]

    def git(*args):
        try:
            out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=5)
            return out.stdout.strip() if out.returncode == 0 else None
        except (OSError, subprocess.SubprocessError):
            return None

    import lightning

    return {
        "testbed": __version__,
        "git_commit": git("rev-parse", "HEAD"),
        "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "cpu_count": os.cpu_count(),
        "torch_threads": threads,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def build(resolved: dict):
    """(generator, model) of a resolved config."""
    gen_name, gen_cfg = component_config(resolved, "data")
    model_name, model_cfg = component_config(resolved, "model")
    generator = generators.make(gen_name, gen_cfg)
    model = build_model(model_name, model_cfg, generator.layout())
    return generator, model


def load_checkpoint(path: Path) -> dict:
    """A checkpoint's contents, loaded as plain tensors only; a corrupt file is a one-line error."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, wrong format, pickled objects: all mean "not a usable checkpoint"
        raise ConfigError(
            f"checkpoint {str(path)!r} is corrupt or truncated ({type(e).__name__}); delete it or rerun with --force"
        ) from None


def model_state(ckpt: dict) -> dict:
    state = ckpt.get("state_dict", ckpt)
    return {k.removeprefix("model."): v for k, v in state.items()}


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
    passes = [()] + ([tuple(eval_cfg.iterations)] if eval_cfg.iterations and getattr(model, "tied", False) else [])
    rows = []
    for iterations in passes:
        if not eval_cfg.k:
            batches = fixed_batches(generator, "test", eval_cfg.seed, eval_cfg.test_size, eval_cfg.batch_size)
            rows += evaluate(model, batches, iterations=iterations, by=by)
            continue
        for k in eval_cfg.k:
            batches = fixed_batches(generator, "test", eval_cfg.seed, eval_cfg.test_size, eval_cfg.batch_size, k=k)
            rows += [{**r, "k": k} if by else r for r in evaluate(model, batches, iterations=iterations, by=by)
                     if r["slice"] != "all"]
    return rows


@torch.no_grad()
def rollout_rows(model, generator, eval_cfg: EvalConfig, steps: int) -> list[dict]:
    """Autoregressive rollout (P2): a model trained to predict the next state is fed its own predictions, the
    oldest input state dropped each time. Rows per rollout step j = 1..steps (split "rollout", slice "k", value j):
    per-cell accuracy and exact match of the j-th predicted state against the true orbit of a held-out rule."""
    if not hasattr(generator, "format"):
        raise ConfigError("--rollout needs a cellular-automaton run (a model that predicts the next state)")
    c = generator.config
    if steps < 1:
        raise ConfigError(f"--rollout must be at least 1, got {steps}")
    model.eval()
    n, b = eval_cfg.test_size, eval_cfg.batch_size
    ahead = c.m if c.task in ("O-O", "RO-O") else 1  # states after the window that format() reads as targets
    states, tables = generator.orbits("test", eval_cfg.seed, np.arange(n), steps=c.n_input + steps + ahead)
    correct, exact = np.zeros(steps), np.zeros(steps)
    for lo in range(0, n, b):
        orbit, table = states[lo:lo + b], tables[lo:lo + b]
        window = orbit[:, : c.n_input]
        for j in range(steps):
            truth = orbit[:, c.n_input + j]
            data = generator.format(np.concatenate([window, orbit[:, c.n_input + j:]], axis=1), table, 1)
            cells = np.flatnonzero(data["step"][0] == 1)  # the next state's positions (O-O: its first of m)
            pred = model(torch.from_numpy(data["inputs"])).argmax(-1)[:, cells].numpy()
            correct[j] += (pred == truth).sum()  # scored like the test split: a non-bit token is wrong
            exact[j] += (pred == truth).all(1).sum()
            state = (pred == 1).astype(np.uint8)  # and fed back as 0
            window = np.concatenate([window[:, 1:], state[:, None]], axis=1)
    return [{"split": "rollout", "slice": "k", "value": j + 1, "cell_accuracy": float(correct[j] / (n * c.width)),
             "exact_match": float(exact[j] / n), "n": n} for j in range(steps)]


def merge_logs(run_dir: Path) -> None:
    """Concatenate the CSV logs of every attempt into run_dir/metrics.csv (columns are the union)."""
    import io

    rows, columns = [], []
    for log in sorted((run_dir / "logs").glob("*/metrics.csv"), key=lambda p: int(p.parent.name.split("-")[-1])):
        with open(log, newline="") as f:
            reader = csv.DictReader(f)
            columns += [c for c in reader.fieldnames or [] if c not in columns]
            rows += list(reader)
    if not columns:
        return
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(run_dir / "metrics.csv", lambda f: f.write(buf.getvalue().encode()))


class Interrupted(RuntimeError):
    pass


class DivergedRun(ConfigError):
    """The run's loss became NaN or infinite: its recorded outcome. A sweep reports it and goes on (a learning rate
    that diverges is a result of a learning-rate sweep); a single `train` exits with it."""


def train(resolved: dict, runs_root: str | Path, force: bool = False, callbacks=(), quiet: bool = False):
    """Train (or skip, or resume) the run of a resolved config. Returns (run_dir, result, status)."""
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    from .system import Diverged, TaskSystem

    rid = run_id(resolved)
    run_dir = Path(runs_root) / rid
    if force and run_dir.exists():
        shutil.rmtree(run_dir)
    if (run_dir / "result.json").is_file():
        result = read_json(run_dir / "result.json")
        if result.get("status") == "diverged":  # deterministic given the seed: report it again, do not retrain
            raise DivergedRun(f"run {rid} diverged ({result['error']}); --force retrains it")
        return run_dir, result, "skipped"
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json(run_dir / "config.json", resolved)

    tcfg = build_config(TrainConfig, resolved["train"], where="[train]")
    ecfg = build_config(EvalConfig, resolved["eval"], where="[eval]")
    threads = tcfg.threads or os.cpu_count() or 1
    torch.set_num_threads(threads)
    write_json(run_dir / "env.json", environment(threads))

    last = run_dir / "checkpoints" / "last.ckpt"
    resume = last.is_file()
    attempt = len(list((run_dir / "logs").glob("*"))) if (run_dir / "logs").is_dir() else 0
    if resume:
        load_checkpoint(last)  # fail early, with a clear message, on a corrupt file
    L.seed_everything(resolved["seed"], verbose=False)
    generator, model = build(resolved)
    system = TaskSystem(model, tcfg)
    data = TaskData(generator, resolved["seed"], tcfg, ecfg)
    best = ModelCheckpoint(
        dirpath=run_dir / "checkpoints", filename="best", monitor="val/exact_match", mode="max",
        save_last=True, enable_version_counter=False, auto_insert_metric_name=False,
    )
    cbs = [best, *callbacks]
    if tcfg.early_stop_patience or tcfg.early_stop_at < 1.0:
        cbs.append(EarlyStopping(
            monitor="val/exact_match", mode="max", patience=tcfg.early_stop_patience or 10**9,
            stopping_threshold=tcfg.early_stop_at if tcfg.early_stop_at < 1.0 else None,
            check_on_train_epoch_end=False,
        ))
    trainer = L.Trainer(
        default_root_dir=run_dir,
        max_steps=tcfg.max_steps,
        max_epochs=-1,
        max_time={"seconds": tcfg.max_time_s} if tcfg.max_time_s else None,
        val_check_interval=tcfg.val_every,
        check_val_every_n_epoch=None,
        num_sanity_val_steps=0,
        accelerator=tcfg.accelerator,
        devices=tcfg.devices,
        num_nodes=tcfg.num_nodes,
        strategy=tcfg.strategy,
        precision=tcfg.precision,
        gradient_clip_val=tcfg.grad_clip or None,
        use_distributed_sampler=False,  # StepBatches already gives every rank its own examples
        logger=CSVLogger(run_dir, name="logs", version=f"attempt-{attempt}"),  # a resume keeps earlier logs
        callbacks=cbs,
        enable_progress_bar=not quiet and os.isatty(2),
        enable_model_summary=False,
        log_every_n_steps=min(50, tcfg.val_every),
        deterministic=False,
    )
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        warnings.filterwarnings("ignore", ".*resuming from a checkpoint that ended before the epoch ended.*")
        warnings.filterwarnings("ignore", ".*is an invalid value for `val_check_interval`.*")
        warnings.filterwarnings("ignore", ".*sync_dist=True.*")  # every rank validates on the same examples
        try:
            trainer.fit(system, datamodule=data, ckpt_path=last if resume else None, weights_only=True)
        except Diverged as e:
            # recorded as the run's outcome, so sweeps and figures skip it instead of diverging again every time
            write_json(run_dir / "result.json", {"run_id": rid, "status": "diverged", "error": str(e), "test": [],
                                                 "params": model.num_params(), "steps": trainer.global_step})
            raise DivergedRun(f"run {rid} diverged: {e}; the last good checkpoint is kept in {run_dir / 'checkpoints'}")
    fit_seconds = time.perf_counter() - t0
    if trainer.global_rank > 0:  # DDP launched as processes (strategy ddp): rank zero alone tests and writes
        return run_dir, {"run_id": rid, "test": [], "params": model.num_params(), "steps": trainer.global_step}, "worker"
    merge_logs(run_dir)
    if trainer.interrupted:
        raise Interrupted(f"run {rid} was interrupted at step {trainer.global_step}; run it again to resume")

    # Read the outcome from the checkpoints on disk, not from the trainer: with spawned DDP workers (ddp_spawn)
    # this process's trainer and callbacks never saw the training, the workers' rank zero wrote the files.
    best_file, steps, best_score = run_dir / "checkpoints" / "best.ckpt", trainer.global_step, best.best_model_score
    if best_file.is_file():
        ckpt = load_checkpoint(best_file)
        model.load_state_dict(model_state(ckpt))
        if best_score is None:
            best_score = next((c["best_model_score"] for name, c in ckpt.get("callbacks", {}).items()
                               if name.startswith("ModelCheckpoint") and c.get("best_model_score") is not None), None)
    if not steps and (run_dir / "metrics.csv").is_file():  # the workers' logged steps (0-based)
        with open(run_dir / "metrics.csv") as f:
            steps = 1 + max((int(r["step"]) for r in csv.DictReader(f) if r.get("step")), default=-1)
    atomic_write(run_dir / "model.pt", lambda f: torch.save(model.state_dict(), f))
    rows = test_rows(model, generator, ecfg)
    result = {
        "run_id": rid,
        "status": "done",
        "steps": steps,
        "params": model.num_params(),
        "state_size": model.state_size(),
        "best_val_exact_match": float(best_score) if best_score is not None else None,
        "fit_seconds": fit_seconds,
        "train_tokens_per_s": system.train_tokens / system.train_seconds if system.train_seconds else None,
        "resumed": resume,
        "test": rows,
    }
    write_json(run_dir / "result.json", result)
    return run_dir, result, "trained"


def open_run(run_dir: str | Path) -> tuple[dict, torch.nn.Module, object]:
    """(resolved config, model with its best weights, generator) of a finished run directory."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise ConfigError(f"{str(run_dir)!r} is not a run directory (no config.json)")
    if not (run_dir / "model.pt").is_file():
        raise ConfigError(f"run {str(run_dir)!r} has no trained weights (model.pt); train it first")
    resolved = read_json(run_dir / "config.json")
    generator, model = build(resolved)
    state = load_checkpoint(run_dir / "model.pt")
    try:
        model.load_state_dict(model_state(state))
    except (RuntimeError, KeyError) as e:
        raise ConfigError(f"weights in {str(run_dir / 'model.pt')!r} do not fit the run's model ({str(e)[:120]})")
    return resolved, model, generator


def evaluate_file(model, generator, data_path, ks: list[int] | None, batch_size: int = 512) -> list[dict]:
    """Metrics on the orbits of an interchange file, formatted with the run's own task settings."""
    from generators.io import load, load_orbits

    if hasattr(generator, "format"):
        states, tables, _ = load_orbits(data_path)
        c = generator.config
        ks = ks or ([c.k] if not c.mixed_k else list(range(1, c.k + 1)))
        rows = []
        for k in ks if c.task not in ("O-O", "RO-O") else [None]:
            data = generator.format(states, tables, None if k is None else np.full(len(states), k))
            rows += [r for r in evaluate(model, batches(data, batch_size), "file") if r["slice"] != "all" or k is None]
        return rows
    arrays, _ = load(data_path)
    if not {"inputs", "targets", "loss_mask"} <= set(arrays):
        raise ConfigError(f"{str(data_path)!r} has no inputs/targets/loss_mask arrays for this run's generator")
    return evaluate(model, batches(arrays, batch_size), "file")
