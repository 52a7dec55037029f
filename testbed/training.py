"""Training one run: the Lightning Trainer built from [train], resumed from the run's last checkpoint, scored on the
test split at the end. See store.py for what the run directory holds.

A run is trained by one process at a time (its lock); Ctrl-C stops it at the next step boundary and says how to
resume; a NaN loss is recorded as the run's outcome (it diverged) instead of a failure to retry.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import dataclasses
import os
import shutil
import signal
import threading
import time
import warnings
from pathlib import Path

import lightning as L
import torch

from generators.core import ConfigError
from generators.core.io import atomic_write

from . import evaluation, store
from .budgets import Curriculum, Plateau
from .environment import choose_threads, environment
from .spec import RunConfig, TrainConfig


def quiet_lightning(level: int = 30) -> None:
    """Lightning's info banners (GPU available, tips) and a deprecation warning of its own are noise here."""
    import logging

    import lightning  # noqa: F401  (importing it sets its loggers to INFO: lower them afterwards)

    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(level)
    warnings.filterwarnings("ignore", module="lightning")
    warnings.filterwarnings("ignore", ".*LeafSpec.*")


class Interrupted(ConfigError):
    """Training was stopped by the user (Ctrl-C); the run resumes from its last checkpoint when asked again."""

    exit_code = 130


class DivergedRun(ConfigError):
    """The run's loss became NaN or infinite: its recorded outcome. A sweep reports it and goes on (a learning rate
    that diverges is a result of a learning-rate sweep); a single `train` exits with it."""


TRACKER_EXTRAS = {"tensorboard": ("tensorboardX", "TensorBoardLogger"), "wandb": ("wandb", "WandbLogger")}


def check_logger(tcfg: TrainConfig) -> None:
    """The tracker asked for is installed (checked before a run directory is made)."""
    import importlib.util

    if tcfg.logger in TRACKER_EXTRAS:
        module, _ = TRACKER_EXTRAS[tcfg.logger]
        if importlib.util.find_spec(module) is None and not (tcfg.logger == "tensorboard"
                                                             and importlib.util.find_spec("tensorboard")):
            raise ConfigError(f"train.logger = {tcfg.logger!r} needs the {module} package: "
                              f"pip install 'testbed[{tcfg.logger}]'")


def loggers(tcfg: TrainConfig, run_dir: Path, attempt: int) -> list:
    """Lightning loggers: CSV always (metrics.csv is part of the run directory), plus the tracker asked for."""
    from lightning.pytorch import loggers as pl_loggers

    check_logger(tcfg)
    version = f"attempt-{attempt}"  # a resume keeps earlier logs
    out = [pl_loggers.CSVLogger(run_dir, name="logs", version=version)]
    if tcfg.logger == "tensorboard":
        out.append(pl_loggers.TensorBoardLogger(run_dir, name="logs", version=version, sub_dir="tensorboard"))
    elif tcfg.logger == "wandb":  # offline unless the user has configured W&B (an API key or WANDB_MODE)
        offline = not (os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_MODE"))
        out.append(pl_loggers.WandbLogger(save_dir=run_dir / "logs" / version, name=run_dir.name,
                                          id=f"{run_dir.name}-{attempt}", offline=offline))
    return out


def check_accelerator(name: str) -> None:
    if name in ("auto", "cpu"):
        return
    from lightning.pytorch.accelerators import AcceleratorRegistry

    def available(choice: str) -> bool:
        try:
            return choice in AcceleratorRegistry and AcceleratorRegistry.get(choice).is_available()
        except Exception:  # its support package is missing (torch_xla for a TPU): not available here
            return False

    if not any(available(c) for c in {"gpu": ("cuda", "mps")}.get(name, (name,))):
        raise ConfigError(f"train.accelerator = {name!r} is not available on this machine; use auto or cpu here")


def check_nodes(num_nodes: int) -> None:
    """Several nodes need a launcher that starts a process on each (SLURM, torchrun); started here alone, the run
    would wait half an hour for nodes that never come."""
    if num_nodes > 1 and not (os.environ.get("SLURM_NTASKS") or os.environ.get("NODE_RANK")
                              or os.environ.get("GROUP_RANK")):
        raise ConfigError(f"train.num_nodes = {num_nodes} needs a launcher that starts every node (--launcher "
                          "submitit on SLURM, or torchrun); on one machine use --devices")


@contextlib.contextmanager
def stop_on_interrupt(flag: dict):
    """Ctrl-C sets flag['stop'] instead of raising (the trainer stops at the next step); restored afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, lambda *_: flag.update(stop=True))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class StopWhenAsked(L.Callback):
    """Once flag['stop'] is set (by Ctrl-C): saves the resumable checkpoint at the end of the step and stops."""

    def __init__(self, flag: dict, last: Path):
        self.flag, self.last = flag, last

    def on_train_batch_end(self, trainer, *args):
        if self.flag.get("stop") and not trainer.should_stop:
            trainer.save_checkpoint(self.last)
            trainer.should_stop = True


def train(cfg: RunConfig, runs_root: str | Path, force: bool = False, callbacks=(), quiet: bool = False,
          share: int = 1):
    """Train (or skip, or resume) the run of a RunConfig. Returns (run_dir, result, status). `share`: how
    many runs share this machine's cores (a sweep's jobs). Everything that can fail on the config (sizes, the
    start's weights, the tracker, the model's fit to the recipe) fails before the run directory is made."""
    from .limits import check_run

    rid = cfg.run_id()
    run_dir = Path(runs_root) / rid
    check_run(cfg)  # before anything is written or allocated
    check_accelerator(cfg.train.accelerator)
    check_nodes(cfg.train.num_nodes)
    if run_dir.is_file():
        raise ConfigError(f"{str(run_dir)!r} is a file where the run directory belongs; remove it")
    if (run_dir / "result.json").is_file() and not force:
        result = store.read_result(run_dir)
        if result.get("status") == "diverged":  # deterministic given the seed: report it again, do not retrain
            raise DivergedRun(f"run {rid} diverged ({result.get('error', 'no message')}); --force retrains it")
        return run_dir, result, "skipped"
    if cfg.train.init_from:  # a run still to train: its start must be there and fit
        store.check_init(store.start_dir(cfg.train.init_from, runs_root), cfg)
    job = build(cfg, run_dir, share)
    run_dir.mkdir(parents=True, exist_ok=True)
    with store.RunLock(run_dir):
        if force:
            for name in ("result.json", "model.pt", "metrics.csv", "outcomes.npz", "checkpoints", "logs"):
                path = run_dir / name
                shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
        store.write_json(run_dir / "config.json", cfg.as_dict())
        store.write_json(run_dir / "env.json", environment(job.threads, job.why))
        trainer, fit_seconds, best_score = fit(job, callbacks, quiet)
        if trainer.global_rank > 0:  # DDP launched as processes (strategy ddp): rank zero alone tests and writes
            return run_dir, {"run_id": rid, "test": [], "params": job.model.num_params(),
                             "steps": trainer.global_step}, "worker"
        return run_dir, finalise(job, trainer, fit_seconds, best_score), "trained"


@dataclasses.dataclass
class Job:
    """One run, built and checked, nothing written yet: its configs, threads, generator, model (with its start's
    weights), the LightningModule and the DataModule."""

    rid: str
    run_dir: Path
    cfg: RunConfig
    threads: int
    why: str
    generator: object
    model: torch.nn.Module
    system: L.LightningModule
    data: L.LightningDataModule
    resumed: bool = False  # set by fit: whether it resumed from the run's last checkpoint
    plateau: object = None  # set by fit: the Plateau callback, when the budget follows the validation curve
    curriculum: object = None  # set by fit: the Curriculum callback (train.curriculum)


def build(cfg: RunConfig, run_dir: Path, share: int = 1) -> Job:
    """Everything a run trains with, built from its config before its directory is made: a config the model or
    the recipe cannot take, a damaged start or a missing tracker is an error that leaves nothing behind."""
    from .data import TaskData, fixed_batches
    from .system import TaskSystem

    tcfg, ecfg = cfg.train, cfg.eval
    check_logger(tcfg)
    threads, why = choose_threads(tcfg.threads, share)
    torch.set_num_threads(threads)
    L.seed_everything(cfg.seed, verbose=False)
    generator, model = store.build(cfg)  # after seeding: the initial weights depend on the seed
    reference = None
    if tcfg.init_from:  # the starting weights (a resumed run's own come from its checkpoint), and GRPO's reference
        store.load_weights(model, store.start_dir(tcfg.init_from, run_dir.parent) / "model.pt")  # checked by train()
        if tcfg.algorithm == "grpo":
            reference = copy.deepcopy(model).requires_grad_(False).eval()
    background = None
    if tcfg.update == "sparse":  # the data whose slot use is discounted: 16 batches of it
        source = cfg.task(tcfg.sparse_background) if tcfg.sparse_background else generator
        background = fixed_batches(source, "train", cfg.seed, 16 * tcfg.batch_size, tcfg.batch_size)
    system = TaskSystem(model, tcfg, reference, ecfg.track, background)
    system.configure_optimizers()  # a recipe the model cannot take (muon without hidden matrices) fails here
    data = TaskData(generator, cfg.seed, tcfg, ecfg, tuple(cfg.task(t) for t in ecfg.track))
    return Job(cfg.run_id(), run_dir, cfg, threads, why, generator, model, system, data)


def fit(job: Job, callbacks=(), quiet: bool = False):
    """Lightning's fit of a built run, resumed from its last checkpoint when there is one. Returns (trainer, fit
    seconds, best validation exact match); a NaN loss is recorded as the run's outcome, Ctrl-C as an interruption."""
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

    from .system import Diverged

    run_dir, tcfg, model, rid = job.run_dir, job.cfg.train, job.model, job.rid
    last = run_dir / "checkpoints" / "last.ckpt"
    resume = last.is_file()
    if resume:
        store.check_resumable(last, model)  # fail early, with a clear message, on a damaged file
    job.resumed = resume
    done = store.attempts(run_dir)
    attempt = int(done[-1].name.removeprefix("attempt-")) + 1 if done else 0
    system, data = job.system, job.data
    best = ModelCheckpoint(
        dirpath=run_dir / "checkpoints", filename="best", monitor="val/exact_match", mode="max",
        enable_version_counter=False, auto_insert_metric_name=False,
    )
    # the resumable checkpoint at every validation, improved or not (save_last writes only with the best)
    latest = ModelCheckpoint(dirpath=run_dir / "checkpoints", filename="last", every_n_train_steps=tcfg.val_every,
                             save_top_k=1, enable_version_counter=False, auto_insert_metric_name=False)
    flag: dict = {}
    curriculum = (Curriculum(data, job.generator.curriculum_k(), tcfg.plateau_steps, tcfg.plateau_delta,
                             tcfg.curriculum_at) if tcfg.curriculum else None)
    plateau = (Plateau(tcfg.plateau_steps, tcfg.plateau_delta, curriculum=curriculum, after_progress=True,
                       cooldown=tcfg.cooldown_steps) if tcfg.plateau_steps else None)
    job.plateau, job.curriculum = plateau, curriculum
    cbs = [best, latest, StopWhenAsked(flag, last), *filter(None, (curriculum, plateau)), *callbacks]
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
        logger=loggers(tcfg, run_dir, attempt),
        callbacks=cbs,
        enable_progress_bar=not quiet and os.isatty(2),
        enable_model_summary=False,
        log_every_n_steps=min(50, tcfg.val_every),
        deterministic=False,
    )
    t0 = time.perf_counter()
    with warnings.catch_warnings(), stop_on_interrupt(flag):
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        warnings.filterwarnings("ignore", ".*resuming from a checkpoint that ended before the epoch ended.*")
        warnings.filterwarnings("ignore", ".*is an invalid value for `val_check_interval`.*")
        warnings.filterwarnings("ignore", ".*sync_dist=True.*")  # every rank validates on the same examples
        try:
            trainer.fit(system, datamodule=data, ckpt_path=last if resume else None, weights_only=True)
        except Diverged as e:
            # recorded as the run's outcome, so sweeps and figures skip it instead of diverging again every time
            store.write_json(run_dir / "result.json", {"run_id": rid, "status": "diverged", "error": str(e),
                                                       "test": [], "params": model.num_params(),
                                                       "steps": trainer.global_step})
            store.merge_logs(run_dir)
            raise DivergedRun(f"run {rid} diverged: {e}; the last good checkpoint is kept in "
                              f"{run_dir / 'checkpoints'}") from None
    fit_seconds = time.perf_counter() - t0
    if trainer.global_rank > 0:
        return trainer, fit_seconds, None
    store.merge_logs(run_dir)
    if flag.get("stop") or trainer.interrupted:
        saved = f"the last checkpoint is {last}" if last.is_file() else "no checkpoint was saved yet"
        raise Interrupted(f"run {rid} interrupted at step {trainer.global_step}; {saved}; run the same command "
                          "again to resume")
    return trainer, fit_seconds, best.best_model_score


def stop_reason(job: Job, steps: int, fit_seconds: float) -> str:
    """Why training ended: "plateau" (the validation curve had stopped rising), "cap" (it reached max_steps),
    "max_time", or "early_stop" (early_stop_patience or early_stop_at)."""
    tcfg = job.cfg.train
    if job.plateau is not None and job.plateau.stopped_at is not None:
        return "plateau"
    if steps >= tcfg.max_steps:
        return "cap"
    return "max_time" if tcfg.max_time_s and fit_seconds >= tcfg.max_time_s else "early_stop"


def finalise(job: Job, trainer, fit_seconds: float, best_score) -> dict:
    """The trained run's outcome: its best checkpoint's weights saved and scored on the test split (read once, here),
    its result.json written last."""
    run_dir, model, rid, generator, system = job.run_dir, job.model, job.rid, job.generator, job.system
    # Read the outcome from the checkpoints on disk, not from the trainer: with spawned DDP workers (ddp_spawn)
    # this process's trainer and callbacks never saw the training, the workers' rank zero wrote the files.
    best_file, steps = run_dir / "checkpoints" / "best.ckpt", trainer.global_step
    if best_file.is_file():
        ckpt = store.load_checkpoint(best_file)
        model.load_state_dict(store.model_state(ckpt))
        if best_score is None:
            best_score = next((c["best_model_score"] for name, c in ckpt.get("callbacks", {}).items()
                               if name.startswith("ModelCheckpoint") and c.get("best_model_score") is not None), None)
    logged = []
    if (run_dir / "metrics.csv").is_file():
        with open(run_dir / "metrics.csv") as f:
            logged = list(csv.DictReader(f))
    if not steps:  # the workers' logged steps (0-based)
        steps = 1 + max((int(r["step"]) for r in logged if r.get("step")), default=-1)
    val_cells = [float(r["val/cell_accuracy"]) for r in logged if r.get("val/cell_accuracy")]
    atomic_write(run_dir / "model.pt", lambda f: torch.save(model.state_dict(), f))
    model.to(trainer.strategy.root_device)  # Lightning hands the model back on the CPU: test where it trained
    units = evaluation.test_outcomes(model, generator, job.cfg.eval)
    store.write_outcomes(run_dir, units)
    rows = evaluation.rows(units, "test")
    baselines = {s: evaluation.rows(units, "test", s) for s in evaluation.sources(units) if s != evaluation.MODEL}
    result = {
        "run_id": rid,
        "status": "done",
        "steps": steps,
        "stopped": stop_reason(job, steps, fit_seconds),
        "curriculum": [list(s) for s in job.curriculum.stages] if job.curriculum else None,  # (updates, k_max)
        "cooldown_from": job.plateau.cooling_from if job.plateau else None,  # where a plateau started the cool-down
        "params": model.num_params(),
        "active_params": model.active_params(),
        "state_size": model.state_size(),
        "model": model.describe(),
        "best_val_exact_match": float(best_score) if best_score is not None else None,
        "best_val_cell_accuracy": max(val_cells) if val_cells else None,  # breaks ties when choosing on validation
        "fit_seconds": fit_seconds,
        "train_tokens_per_s": system.train_tokens / system.train_seconds if system.train_seconds else None,
        "resumed": job.resumed,
        "test": rows,
        "baselines": baselines,
    }
    store.write_json(run_dir / "result.json", result)
    return result
