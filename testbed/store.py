"""Run store: one directory per resolved config, named by its hash.

    RUNS/<run_id>/config.json     the resolved spec (every default filled in)
                  env.json        versions, git commit, device, threads (and why that many)
                  metrics.csv     Lightning's CSV logs of every attempt, merged: one row per step, the latest attempt's
                  logs/attempt-N/ each attempt's own logs (and TensorBoard or W&B files when asked for)
                  checkpoints/    best.ckpt (validation exact match) and last.ckpt (for resuming)
                  model.pt        weights of the best checkpoint (plain tensors)
                  outcomes.npz    per-example test outcomes of the model and the baselines (for intervals)
                  result.json     test metrics per slice, parameters, timings; written last, marks the run done
                  .lock           held while a process trains the run

A run with result.json is skipped; one with checkpoints/last.ckpt resumes from it; --force starts afresh. Every file
is read as untrusted input: JSON is checked against what it must hold, tensors are loaded without unpickling.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import math
import os
from pathlib import Path

import torch

from generators.core import ConfigError
from generators.core.io import atomic_write

from .metrics import is_curve

RESULT_STATUSES = ("done", "diverged")
ROW_KEYS = ("split", "slice", "value", "cell_accuracy", "exact_match", "n")


def write_json(path: Path, obj) -> None:
    atomic_write(path, lambda f: f.write((json.dumps(obj, indent=2, default=str) + "\n").encode()))


def read_json(path: Path):
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{str(path)!r} is a directory, not a JSON file")
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{str(path)!r} does not exist") from None
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read {str(path)!r} as JSON: {e}") from None


def damaged(path: Path, what: str) -> ConfigError:
    run = Path(path).parent
    return ConfigError(f"{str(path)!r} is damaged ({what}); retrain the run with --force, or delete {str(run)!r}")


def read_config(run_dir: Path):
    """The RunConfig a run directory's config.json records (every section present and valid; options added since
    it was written take their defaults)."""
    from .spec import RunConfig

    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise ConfigError(f"{str(run_dir)!r} is not a run directory (no config.json)")
    config = read_json(path)
    if not isinstance(config, dict):
        raise damaged(path, "not a JSON object")
    for section, key in (("data", "generator"), ("model", "name"), ("train", None), ("eval", None)):
        if not isinstance(config.get(section), dict) or (key and not isinstance(config[section].get(key), str)):
            raise damaged(path, f"no [{section}] table" + (f" with a {key}" if key else ""))
    if not isinstance(config.get("seed"), int):
        raise damaged(path, "no integer seed")
    try:
        return RunConfig.from_dict(config)
    except ConfigError as e:
        raise damaged(path, str(e)) from None


def read_result(run_dir: Path) -> dict:
    """result.json of a finished run, checked to hold a status and well-formed test rows."""
    path = Path(run_dir) / "result.json"
    result = read_json(path)
    if not isinstance(result, dict):
        raise damaged(path, "not a JSON object")
    if result.get("status", "done") not in RESULT_STATUSES:
        raise damaged(path, f"status {result.get('status')!r} is not one of {', '.join(RESULT_STATUSES)}")
    rows = result.get("test")
    if not isinstance(rows, list) or not all(isinstance(r, dict) and all(k in r for k in ROW_KEYS) for r in rows):
        raise damaged(path, "no list of test rows with " + ", ".join(ROW_KEYS))
    if result.get("status", "done") == "done" and not isinstance(result.get("params"), int):
        raise damaged(path, "no parameter count")
    return result


def load_checkpoint(path: Path) -> dict:
    """A checkpoint's contents, loaded as plain tensors only; a corrupt file is a one-line error."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"checkpoint {str(path)!r} is a directory, not a file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, wrong format, pickled objects: all mean "not a usable checkpoint"
        raise ConfigError(
            f"checkpoint {str(path)!r} is corrupt or truncated ({type(e).__name__}); delete it or rerun with --force"
        ) from None


def model_state(ckpt) -> dict:
    """The model's tensors of a plain state dict (model.pt) or of a Lightning checkpoint (its `model.` entries; a
    GRPO run's frozen reference policy is kept there too, under `reference.`)."""
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError("the checkpoint holds no state dict of tensors")
    if "state_dict" in ckpt:
        return {k.removeprefix("model."): v for k, v in state.items() if not k.startswith("reference.")}
    return state


def check_fits(state: dict, model: torch.nn.Module, path: Path) -> None:
    """Every tensor of the model present in `state` with its shape, and nothing else."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    extra = [k for k in state if k not in own]
    wrong = [k for k in own if k in state and state[k].shape != own[k].shape]
    if missing or extra or wrong:
        what = (f"{len(missing)} tensors missing (e.g. {missing[0]})" if missing else
                f"{len(extra)} unexpected tensors (e.g. {extra[0]})" if extra else
                f"{wrong[0]} has shape {tuple(state[wrong[0]].shape)}, the model {tuple(own[wrong[0]].shape)}")
        raise ConfigError(f"{str(path)!r} does not fit the run's model: {what}; delete it or rerun with --force")


def check_resumable(path: Path, model: torch.nn.Module) -> None:
    """A last.ckpt that Lightning can resume from: a training checkpoint whose weights fit the model."""
    ckpt = load_checkpoint(path)
    if not isinstance(ckpt, dict) or not {"state_dict", "global_step", "optimizer_states"} <= set(ckpt):
        raise ConfigError(f"{str(path)!r} is not a training checkpoint (it holds plain tensors, not a Lightning "
                          "checkpoint); delete it or rerun with --force")
    check_fits(model_state(ckpt), model, path)


def load_weights(model: torch.nn.Module, path: Path) -> None:
    state = model_state(load_checkpoint(path)) if Path(path).is_file() else None
    if state is None:
        raise ConfigError(f"run {str(Path(path).parent)!r} has no trained weights ({Path(path).name}); train it first")
    check_fits(state, model, path)
    model.load_state_dict(state)


def start_dir(init_from: str, runs_root: str | Path) -> Path:
    """The run directory train.init_from names: run:ID under the runs root, or a path."""
    from .spec import RUN_START

    return Path(runs_root) / init_from.removeprefix(RUN_START) if init_from.startswith(RUN_START) else Path(init_from)


def check_init(init_dir: str | Path, resolved) -> Path:
    """The run a config starts from (train.init_from): finished, not diverged, of the same task layout (vocabulary
    and length: its weights fit) and model."""
    init_dir = Path(init_dir)
    if not (init_dir / "result.json").is_file():
        what = "does not exist" if not init_dir.exists() else "has not finished (no result.json)"
        raise ConfigError(f"train.init_from: run {str(init_dir)!r} {what}; train it first")
    result, config = read_result(init_dir), read_config(init_dir)
    if result.get("status") != "done":
        raise ConfigError(f"train.init_from: run {str(init_dir)!r} {result.get('status', 'did not finish')}; start "
                          "from a run that trained")
    layouts = [c.task().layout() for c in (config, resolved)]
    theirs, ours = config.as_dict()["data"], resolved.as_dict()["data"]
    if config.generator != resolved.generator or \
            (layouts[0].vocab, layouts[0].seq_len) != (layouts[1].vocab, layouts[1].seq_len):
        key = next((k for k in theirs if theirs.get(k) != ours.get(k)), "generator")
        raise ConfigError(f"train.init_from: run {str(init_dir)!r} is of another task (data.{key} = "
                          f"{theirs.get(key)!r}, this run {ours.get(key)!r})")
    from .spec import hashed_view

    theirs, ours = hashed_view(config)["model"], hashed_view(resolved)["model"]  # options added later, at their
    if theirs != ours:  # defaults, are the same model as the runs recorded before them
        differ = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))
        raise ConfigError(f"train.init_from: run {str(init_dir)!r} is of another model (model.{differ[0]} differs)")
    return init_dir / "model.pt"


def attempts(run_dir: Path) -> list[Path]:
    """The run's attempt log folders (logs/attempt-N), oldest first; anything else under logs/ is ignored."""
    logs = Path(run_dir) / "logs"
    found = [p for p in logs.glob("attempt-*") if p.is_dir() and p.name.removeprefix("attempt-").isdigit()]
    return sorted(found, key=lambda p: int(p.name.removeprefix("attempt-")))


def merge_logs(run_dir: Path) -> None:
    """The CSV logs of every attempt as run_dir/metrics.csv: one row per step (the train and validation rows of a
    step joined), and where a resumed attempt replayed steps, the latest attempt's row."""
    by_step, columns = {}, []
    for log in (a / "metrics.csv" for a in attempts(run_dir)):
        if not log.is_file():
            continue
        with open(log, newline="") as f:
            reader = csv.DictReader(f)
            columns += [c for c in reader.fieldnames or [] if c not in columns]
            fresh: dict = {}
            for row in reader:
                step = row.get("step", "")
                fresh.setdefault(step, {}).update({k: v for k, v in row.items() if v not in ("", None)})
        by_step.update(fresh)  # a later attempt replaces the steps it replayed
    if not columns:
        return
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns)
    writer.writeheader()
    writer.writerows(row for _, row in sorted(by_step.items(), key=lambda kv: int(kv[0]) if kv[0].isdigit() else -1))
    atomic_write(Path(run_dir) / "metrics.csv", lambda f: f.write(buf.getvalue().encode()))


def validation_history(run_dir: Path, metric: str = "val/exact_match") -> list[tuple[int, float]]:
    """(step, value) of every validation of a run, from its merged metrics.csv; [] when it has none (a damaged or
    foreign file included: the history is a diagnostic, never a reason to refuse a run)."""
    return validation_curves(run_dir, metric).get(metric, [])


def validation_curves(run_dir: Path, metric: str = "val/exact_match") -> dict[str, list[tuple[int, float]]]:
    """{name: history} of the metric and of its per-k curves (`metric@k=j`), as validation_history reads one."""
    path = Path(run_dir) / "metrics.csv"
    if not path.is_file():
        return {}
    out: dict[str, list] = {}
    with open(path, newline="", errors="replace") as f:
        for row in csv.DictReader(f):
            for name, value in row.items():
                if name is None or not is_curve(name, metric):
                    continue
                try:
                    v, step = float(value), int(row["step"])
                except (KeyError, TypeError, ValueError):
                    continue
                if math.isfinite(v):
                    out.setdefault(name, []).append((step, v))
    return out


class RunLock:
    """An OS file lock on RUN/.lock held while a process trains the run: a second process training the same run
    is told which process holds it instead of training it twice. Released when the process ends, however it ends."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / ".lock"
        self.fd: int | None = None

    def __enter__(self):
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            if e.errno in (errno.EAGAIN, errno.EACCES):
                raise RunLocked(f"run {self.path.parent.name} is being trained by process {holder} "
                                f"(lock {self.path}); wait for it to finish") from None
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self.fd = fd
        return self

    def __exit__(self, *exc):
        if self.fd is not None:
            os.close(self.fd)  # closing releases the lock
            self.fd = None


class RunLocked(ConfigError):
    """Another process holds the run's lock."""


def write_outcomes(run_dir: Path, units: dict, name: str = "outcomes.npz") -> None:
    """outcomes.npz: the per-unit test outcomes of the model and the baselines (plain arrays, no pickle)."""
    from generators.core.io import write_npz

    atomic_write(Path(run_dir) / name, lambda f: write_npz(f, units))


def read_outcomes(run_dir: Path) -> dict | None:
    """The run's outcomes.npz, checked to hold every field; None for a run recorded before outcomes existed."""
    from generators.core.io import load

    from .metrics import UNIT_FIELDS

    path = Path(run_dir) / "outcomes.npz"
    if not path.is_file():
        return None
    arrays, _ = load(path)
    missing = [k for k in (*UNIT_FIELDS, "source", "iterations", "set_k") if k not in arrays]
    lengths = {len(v) for v in arrays.values()}
    if missing or len(lengths) > 1:
        raise damaged(path, f"missing {', '.join(missing)}" if missing else "arrays of different lengths")
    return arrays


def build(cfg):
    """(generator, model) of a RunConfig."""
    from .models import MODELS

    generator = cfg.task()
    return generator, MODELS.get(cfg.model_name)(cfg.model, generator.layout())


def open_run(run_dir: str | Path) -> tuple:
    """(RunConfig, model with its best weights, generator) of a finished run directory."""
    run_dir = Path(run_dir)
    if run_dir.is_file():
        raise ConfigError(f"{str(run_dir)!r} is a file, not a run directory")
    if not run_dir.is_dir():
        raise ConfigError(f"run directory {str(run_dir)!r} does not exist")
    cfg = read_config(run_dir)
    try:
        generator, model = build(cfg)
    except ConfigError as e:
        raise damaged(run_dir / "config.json", str(e)) from None
    load_weights(model, run_dir / "model.pt")
    return cfg, model, generator
