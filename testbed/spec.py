"""Experiment specs: a TOML file (+ preset + `--set key=value` overrides) resolved into one full, validated config.

    name = "quickstart"
    seed = 0
    [data]            generator = "ca", then the generator's config fields
    [model]           name = "transformer", then the model's config fields
    [train]           TrainConfig fields
    [eval]            EvalConfig fields
    [sweep]           seeds = [...], grid / zip / one_factor = { "model.n_layer" = [1, 2, 4] }
    [presets.cpu]     nested overrides chosen with --preset (default: cpu when the spec has one)
    [tuning]          what was tuned for the spec's presets, over which values, on which split (documentation)
    [paper]           published numbers drawn beside ours (free-form)

A whole section given as a table (a sweep point's `model = { name = "looped", loops = 2 }`, or `--set model={...}`)
is merged into the base section: fields it does not name keep the base's values; when it names another family (or
generator), the base fields that family does not have are left out.

A spec resolves into a RunConfig: one frozen, typed object per run (its generator's and its model's own frozen
configs, TrainConfig, EvalConfig, the seed), built once here and passed everywhere, so that a field keeps its name
and type from the spec to the results table (`cfg.model.n_layer`, `cfg.seed`). It holds every default, and its
`as_dict()` is the run directory's config.json, which says exactly what ran; ids hash that form.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import hashlib
import json
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import generators
from generators.core import ConfigError
from generators.core.registry import GENERATORS, build_config, did_you_mean, fields, hash_mode, to_dict
from generators.core.registry import option as _f

from .models import MAX_ITERATIONS, MODELS

TOP_LEVEL = ("name", "description", "seed", "data", "model", "train", "eval", "sweep", "presets", "tuning", "paper")
SECTIONS = ("data", "model", "train", "eval")
LOGGERS = ("csv", "tensorboard", "wandb")
ALGORITHMS = ("supervised", "grpo")
UPDATES = ("all", "memory", "sparse")
OPTIMIZERS = ("adamw", "muon", "sgd")
CURRICULA = ("", "k")
RUN_START, PRESET_START = "run:", "preset:"  # train.init_from = run:ID (under the runs root) | preset:NAME
GRPO_REWARDS = ("cell_accuracy", "exact_match")


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = _f(128, "examples per optimisation step (per device)")
    optimizer: str = _f("adamw", "adamw | muon (Muon on the hidden matrices, AdamW on the rest) | sgd")
    lr: float = _f(3e-3, "peak learning rate")
    weight_decay: float = _f(0.01, "AdamW weight decay on matrices (not on norms and biases)")
    betas: tuple[float, ...] = _f((0.9, 0.98), "AdamW betas")
    warmup_steps: int = _f(100, "linear warm-up steps")
    schedule: str = _f("cosine", "decay after warm-up: cosine | linear | constant")
    min_lr_ratio: float = _f(0.1, "final learning rate as a fraction of the peak")
    max_steps: int = _f(2000, "optimisation steps")
    grad_clip: float = _f(1.0, "gradient-norm clipping; 0 disables")
    val_every: int = _f(200, "validate (and checkpoint) every this many steps")
    val_size: int = _f(1024, "validation examples (held-out rules)")
    train_size: int = _f(0, "0: fresh examples every step; N: a fixed, cached training set of N examples")
    early_stop_patience: int = _f(0, "stop after this many validations without improvement; 0 disables")
    plateau_steps: int = _f(0, "a budget that follows the validation curves: stop once the best validation exact "
                            "match (whole examples and each k) has not risen by more than plateau_delta for this many "
                            "steps since its first rise (a plateau); 0: train to max_steps, the cap", hash="if_set")
    plateau_delta: float = _f(0.01, "the rise of the best validation exact match that counts as progress for "
                              "plateau_steps", hash="if_set")
    cooldown_steps: int = _f(0, "warm-up, stable, decay: with schedule = constant, the learning rate decays linearly "
                             "to min_lr_ratio over this many steps, starting at the plateau (plateau_steps) or at "
                             "max_steps - cooldown_steps, whichever comes first, and the run stops when it ends; 0: no "
                             "cool-down", hash="if_set")
    early_stop_at: float = _f(1.0, "stop once validation exact match reaches this")
    max_time_s: float = _f(0.0, "stop training after this many seconds (the run is then done); 0 disables")
    accelerator: str = _f("auto", "Lightning accelerator: auto | cpu | gpu | cuda | mps")
    devices: int = _f(1, "devices per node")
    num_nodes: int = _f(1, "nodes")
    strategy: str = _f("auto", "Lightning strategy: auto | ddp | ddp_spawn | ...")
    precision: str = _f("32-true", "Lightning precision: 32-true | bf16-mixed | 16-mixed | ...")
    threads: int = _f(0, "torch CPU threads; 0 chooses from the cores free now", hash="never")
    num_workers: int = _f(0, "data-loader worker processes", hash="never")
    logger: str = _f("csv", "csv | tensorboard | wandb (metrics.csv is always written as well)", hash="never")
    max_memory_gb: float = _f(0.0, "memory cap of the run's estimated needs, GiB; 0: --max-memory, else 80 % of RAM",
                              hash="never")
    algorithm: str = _f("supervised", "supervised | grpo (policy-gradient fine-tuning; needs init_from)",
                        hash="if_set")
    init_from: str = _f("", "the finished run to start from (its weights; for GRPO also the KL reference): a run "
                        "directory, run:ID (under the runs root) or preset:NAME (that preset's run of the same seed, "
                        "trained first)", hash="if_set")
    update: str = _f("all", "the parameters trained: all | memory (the model's memory layer) | sparse (only the "
                     "memory slots each batch reads most, against their use on sparse_background; Lin et al. 2025)",
                     hash="if_set")
    sparse_slots: int = _f(64, "update = sparse: memory slots updated per step (the top t by TF-IDF)", hash="if_set")
    sparse_background: str = _f("", "update = sparse: field=value of the data whose slot use is discounted (e.g. "
                                "subset=stored, the facts to keep); empty: the run's own data", hash="if_set")
    curriculum: str = _f("", "k: a curriculum over the look-ahead of a mixed-k task or the predicted states of O-O "
                         "and RO-O (k = 1 alone, then 1..2, ...: the next k joins once validation at the stage's "
                         "hardest k reaches curriculum_at or stops rising over plateau_steps); empty: every k from the "
                         "start", hash="if_set")
    curriculum_at: float = _f(0.95, "train.curriculum: the validation exact match at a stage's hardest k that lets "
                              "the next k join", hash="if_set")
    grpo_samples: int = _f(8, "GRPO: samples of the target per prompt (the group)", hash="if_set")
    grpo_kl: float = _f(0.01, "GRPO: weight of the KL penalty to the starting model", hash="if_set")
    grpo_clip: float = _f(0.2, "GRPO: clip range of the policy ratio", hash="if_set")
    grpo_reward: str = _f("cell_accuracy", "GRPO: reward of a sample, cell_accuracy | exact_match", hash="if_set")

    def __post_init__(self):
        for name in ("batch_size", "max_steps", "val_every", "val_size", "devices", "num_nodes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name} must be at least 1, got {getattr(self, name)}")
        for name in ("lr", "weight_decay", "min_lr_ratio", "grad_clip", "early_stop_at", "max_time_s", "max_memory_gb",
                     "curriculum_at"):
            if not math.isfinite(getattr(self, name)):
                raise ConfigError(f"train.{name} must be a finite number, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ConfigError(f"train.lr must be positive, got {self.lr}")
        if min(self.weight_decay, self.min_lr_ratio, self.grad_clip, self.max_time_s, self.max_memory_gb) < 0:
            raise ConfigError("train.weight_decay, min_lr_ratio, grad_clip, max_time_s and max_memory_gb must be >= 0")
        if not 0 < self.early_stop_at <= 1:
            raise ConfigError(f"train.early_stop_at must be in (0, 1], got {self.early_stop_at}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"unknown train.optimizer {self.optimizer!r}{did_you_mean(self.optimizer, OPTIMIZERS)}; "
                              f"valid: {', '.join(OPTIMIZERS)}")
        if self.schedule not in ("cosine", "linear", "constant"):
            raise ConfigError(f"train.schedule must be cosine, linear or constant, got {self.schedule!r}")
        if min(self.warmup_steps, self.early_stop_patience, self.threads, self.num_workers, self.train_size) < 0:
            raise ConfigError("train.warmup_steps, early_stop_patience, threads, num_workers, train_size must be >= 0")
        if self.threads > 1024:
            raise ConfigError(f"train.threads must be in 0..1024 (0: the cores free now), got {self.threads:,}")
        if self.num_workers > 64:  # each is a process: more than any machine's loader needs
            raise ConfigError(f"train.num_workers must be in 0..64, got {self.num_workers:,}")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"train.betas must be two numbers in [0, 1), got {list(self.betas)}")
        if self.logger not in LOGGERS:
            raise ConfigError(f"unknown train.logger {self.logger!r}{did_you_mean(self.logger, LOGGERS)}; "
                              f"valid: {', '.join(LOGGERS)}")
        check_lightning_names(self.accelerator, self.strategy, self.precision)
        if self.algorithm not in ALGORITHMS:
            raise ConfigError(f"unknown train.algorithm {self.algorithm!r}; valid: {', '.join(ALGORITHMS)}")
        if self.algorithm == "grpo" and not self.init_from:
            raise ConfigError("train.algorithm = grpo needs train.init_from = RUN_DIR, a finished supervised run to "
                              "start from")
        if self.grpo_samples < 2 or not (math.isfinite(self.grpo_kl) and self.grpo_kl >= 0) or \
                not 0 < self.grpo_clip < 1:
            raise ConfigError("train.grpo_samples must be at least 2, grpo_kl finite and >= 0, grpo_clip in (0, 1)")
        if self.update not in UPDATES:
            raise ConfigError(f"unknown train.update {self.update!r}; valid: {', '.join(UPDATES)}")
        if self.sparse_slots < 1:
            raise ConfigError(f"train.sparse_slots must be at least 1, got {self.sparse_slots}")
        if self.plateau_steps < 0 or not (math.isfinite(self.plateau_delta) and self.plateau_delta >= 0):
            raise ConfigError(f"train.plateau_steps must be >= 0 and plateau_delta finite and >= 0, got "
                              f"{self.plateau_steps} and {self.plateau_delta}")
        if self.plateau_steps and not self.val_every <= self.plateau_steps <= self.max_steps:
            raise ConfigError(f"train.plateau_steps ({self.plateau_steps}) must lie between train.val_every "
                              f"({self.val_every}: one validation) and train.max_steps ({self.max_steps}: the cap)")
        if self.cooldown_steps:
            if self.cooldown_steps < 0 or self.schedule != "constant":
                raise ConfigError(f"train.cooldown_steps ({self.cooldown_steps}) must be >= 0 and follows a constant "
                                  f"rate: set train.schedule = constant (got {self.schedule})")
            if not self.cooldown_steps <= self.max_steps - self.warmup_steps or self.cooldown_steps % self.val_every:
                raise ConfigError(f"train.cooldown_steps ({self.cooldown_steps}) must fit after the warm-up within "
                                  f"train.max_steps ({self.max_steps}) and be a multiple of train.val_every "
                                  f"({self.val_every}), so that the cooled model is validated")
        if self.curriculum not in CURRICULA:
            raise ConfigError(f"unknown train.curriculum {self.curriculum!r}; valid: k (over the look-ahead), or empty")
        if self.curriculum and not self.plateau_steps:
            raise ConfigError("train.curriculum = k needs train.plateau_steps: the window over which a stage's hardest "
                              "k must stop rising before the next k joins")
        if self.curriculum and self.train_size:
            raise ConfigError("train.curriculum = k draws fresh examples at each stage's k; it cannot use a fixed "
                              "training set (train.train_size)")
        if not 0 < self.curriculum_at <= 1:
            raise ConfigError(f"train.curriculum_at must be in (0, 1], got {self.curriculum_at}")
        if self.plateau_steps and self.early_stop_patience:
            raise ConfigError("train.plateau_steps and train.early_stop_patience both stop on no progress: set one")
        if self.grpo_reward not in GRPO_REWARDS:
            raise ConfigError(f"train.grpo_reward must be cell_accuracy or exact_match, got {self.grpo_reward!r}")


def check_lightning_names(accelerator: str, strategy: str, precision: str) -> None:
    """Accelerator, strategy and precision names that Lightning knows (whether the hardware is here is checked when
    a run starts: a GPU preset must resolve on a laptop for --dry-run)."""
    if accelerator in ("auto", "cpu") and strategy == "auto" and precision == "32-true":
        return  # the defaults: no need to import Lightning here
    import typing

    from lightning.fabric.connector import _PRECISION_INPUT_STR, _PRECISION_INPUT_STR_ALIAS
    from lightning.pytorch.accelerators import AcceleratorRegistry
    from lightning.pytorch.strategies import StrategyRegistry

    for what, value, valid in (
        ("accelerator", accelerator, ["auto", "gpu", *sorted(AcceleratorRegistry.available_accelerators())]),
        ("strategy", strategy, ["auto", *StrategyRegistry.available_strategies()]),
        ("precision", precision,
         [*typing.get_args(_PRECISION_INPUT_STR), *typing.get_args(_PRECISION_INPUT_STR_ALIAS)]),
    ):
        if value not in valid:
            raise ConfigError(f"unknown train.{what} {value!r}{did_you_mean(value, valid)}; valid: {', '.join(valid)}")


@dataclass(frozen=True)
class EvalConfig:
    k: tuple[int, ...] = _f((), "evaluate the test set at each of these k (CA); empty: the task's own k slices")
    test_size: int = _f(2048, "test examples (held-out rules), per k when k is given")
    batch_size: int = _f(512, "evaluation batch size")
    seed: int = _f(0, "seed of the validation and test sets, the same for every training seed")
    iterations: tuple[int, ...] = _f((), "weight-tied models: also score the test set after each of these "
                                     "iteration counts")
    track: tuple[str, ...] = _f((), "further validation sets, each one data field=value (e.g. subset=stored), "
                                "logged at every validation as val[field=value]/exact_match", hash="if_set")

    def __post_init__(self):
        if self.test_size < 1 or self.batch_size < 1:
            raise ConfigError("eval.test_size and eval.batch_size must be at least 1")
        if any(not 1 <= r <= MAX_ITERATIONS for r in self.iterations):
            raise ConfigError(f"eval.iterations must be in 1..{MAX_ITERATIONS}, got {list(self.iterations)}")
        if any(k < 1 for k in self.k):
            raise ConfigError(f"eval.k values must be at least 1, got {list(self.k)}")
        generators.check_seed(self.seed)


@dataclass(frozen=True)
class RunConfig:
    """One run, resolved and validated (`resolve`), or read back from its config.json (`from_dict`)."""

    name: str
    preset: str | None
    seed: int
    generator: str  # the registered generator ([data] generator)
    data: Any  # the generator's frozen config: cfg.data.width, cfg.data.task, ...
    model_name: str  # the registered model family ([model] name)
    model: Any  # the model's frozen config: cfg.model.n_layer, cfg.model.d_model, ...
    train: TrainConfig
    eval: EvalConfig

    @classmethod
    def from_dict(cls, resolved: dict) -> "RunConfig":
        """The typed config of a resolved dict (a config.json), every section validated by its own class."""
        data, model = dict(resolved["data"]), dict(resolved["model"])
        generator, model_name = data.pop("generator"), model.pop("name")
        return cls(resolved.get("name", "run"), resolved.get("preset"), resolved["seed"], generator,
                   GENERATORS.config(generator, data), model_name, MODELS.config(model_name, model),
                   build_config(TrainConfig, resolved.get("train", {}), where="[train]"),
                   build_config(EvalConfig, resolved.get("eval", {}), where="[eval]"))

    def as_dict(self) -> dict:
        """config.json: every section a plain table, the generator and the model named in theirs."""
        return {"name": self.name, "preset": self.preset, "seed": self.seed,
                "data": {"generator": self.generator, **to_dict(self.data)},
                "model": {"name": self.model_name, **to_dict(self.model)},
                "train": to_dict(self.train), "eval": to_dict(self.eval)}

    def run_id(self) -> str:
        return run_id(self)

    def config_id(self) -> str:
        return config_id(self)

    def replace(self, **sections) -> "RunConfig":
        """The same run with fields of its sections changed: replace(train={"threads": 2}, seed=1)."""
        changes = {k: (dataclasses.replace(getattr(self, k), **v) if isinstance(v, dict) else v)
                   for k, v in sections.items()}
        return dataclasses.replace(self, **changes)

    def task(self, variant: str = ""):
        """The run's generator (with one data field=value changed: data_variant)."""
        if not variant:
            return GENERATORS.get(self.generator)(self.data)
        data = data_variant(self.as_dict()["data"], variant, "data")
        return generators.make(data.pop("generator"), data)


def _plain(resolved) -> dict:
    """The serialised form ids and comparisons read: a RunConfig's config.json, or a config.json as read."""
    return resolved.as_dict() if isinstance(resolved, RunConfig) else resolved


def load(path: str | Path) -> dict:
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"spec {str(path)!r} is a directory; give a .toml file")
    if not path.is_file():
        raise ConfigError(f"spec file {str(path)!r} does not exist")
    try:
        spec = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"spec {str(path)!r} is not valid TOML: {e}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"spec {str(path)!r} is not a text file") from None
    check_keys(spec, TOP_LEVEL, "spec")
    for section in (*SECTIONS, "sweep", "presets", "tuning", "paper"):
        if section in spec and not isinstance(spec[section], dict):
            raise ConfigError(f"[{section}] of spec {str(path)!r} must be a table, got {spec[section]!r}")
    return spec


def check_keys(table: dict, valid, where: str) -> None:
    for key in table:
        if key not in valid:
            raise ConfigError(f"unknown key {key!r} in {where}{did_you_mean(key, valid)}; valid: {', '.join(valid)}")


def parse_value(text: str) -> Any:
    """A `--set` value: a TOML literal (4, 0.5, true, [1, 2], "s") or else the bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_sets(items: list[str] | None) -> dict[str, Any]:
    out = {}
    for item in items or []:
        key, eq, value = item.partition("=")
        key, value = key.strip(), parse_value(value.strip())
        whole_section = key in SECTIONS and isinstance(value, dict)
        if not eq or not key or ("." not in key and not whole_section):
            raise ConfigError(f"malformed --set {item!r}: expected section.key=value, e.g. model.n_layer=4, "
                              "or a whole section, e.g. model={name=\"lstm\", n_layer=4}")
        out[key] = value
    return out


def _family_fields(section: str, name: str) -> set[str]:
    registry = GENERATORS if section == "data" else MODELS
    return {f.name for f in fields(registry.get(name).Config)}


def merge_section(section: str, base: dict, table: dict) -> dict:
    """A section table merged into the base section; naming another family drops the base fields it lacks."""
    key = "generator" if section == "data" else "name"
    if section in ("data", "model") and key in table and table[key] != base.get(key):
        valid = _family_fields(section, table[key])
        base = {k: v for k, v in base.items() if k in valid}
    return {**base, **copy.deepcopy(table)}


def set_dotted(spec: dict, dotted: str, value: Any) -> None:
    """Set spec[a][b] for "a.b"; a bare section name with a table merges it into that section (merge_section)."""
    if dotted in SECTIONS and isinstance(value, dict):
        spec[dotted] = merge_section(dotted, spec.get(dotted, {}), value)
        return
    *path, last = dotted.split(".")
    if not path:
        raise ConfigError(f"cannot set {dotted!r}: use section.key, or a whole section as a table")
    if path[0] not in SECTIONS:
        raise ConfigError(f"cannot set {dotted!r}: the section must be data, model, train or eval")
    table = spec
    for part in path:
        table = table.setdefault(part, {})
        if not isinstance(table, dict):
            raise ConfigError(f"cannot set {dotted!r}: {part!r} is not a table")
    table[last] = value


def deep_merge(base: dict, extra: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def with_preset(spec: dict, preset: str | None) -> dict:
    presets = spec.get("presets", {})
    if preset is None:
        preset = "cpu" if "cpu" in presets else None
    if preset is None:
        return spec
    if preset not in presets:
        valid = ", ".join(presets) or "none in this spec"
        raise ConfigError(f"unknown preset {preset!r}{did_you_mean(preset, presets)}; valid: {valid}")
    merged = deep_merge(spec, presets[preset])
    if "sweep" in presets[preset]:  # a preset's sweep replaces the base sweep (its axes are not merged)
        merged["sweep"] = copy.deepcopy(presets[preset]["sweep"])
    merged["preset"] = preset
    merged["_unmerged"] = spec.get("_unmerged", spec)  # what a preset:NAME start is resolved from
    return merged


def data_variant(data: dict, assignment: str, where: str) -> dict:
    """A resolved data section with one field=value changed (a tracked validation set, a sparse background),
    validated by its generator."""
    name, eq, text = assignment.partition("=")
    if not eq or not name.strip():
        raise ConfigError(f"{where} {assignment!r}: expected field=value of the data section, e.g. subset=stored")
    gen_name, table = component_config({"data": data}, "data")
    variant = {**table, name.strip(): parse_value(text.strip())}
    return {"generator": gen_name, **to_dict(GENERATORS.config(gen_name, variant))}


def resolve_start(spec: dict, resolved: RunConfig, sets: dict, chain: tuple = ()) -> tuple[RunConfig, list]:
    """(the config with a train.init_from = preset:NAME start named by its run, run:ID; the configs of that start
    and of its own starts, to train first). The start is the preset's base config at the same seed."""
    start = resolved.train.init_from
    if not start.startswith(PRESET_START):
        return resolved, []
    name = start.removeprefix(PRESET_START)
    if name in chain or name == resolved.preset:
        raise ConfigError(f"train.init_from = {start}: the preset starts from itself ({' -> '.join((*chain, name))})")
    ref = with_preset(spec.get("_unmerged", spec), name)
    axes = sorted(k for k in ref.get("sweep", {}) if k != "seeds")
    if axes:
        raise ConfigError(f"train.init_from = {start}: that preset's sweep has {', '.join(axes)}; a start must be "
                          "one run per seed")
    first, before = resolve_start(ref, resolve(ref, sets, seed=resolved.seed), sets, (*chain, name))
    return resolved.replace(train={"init_from": RUN_START + first.run_id()}), [*before, first]


def resolve(spec: dict, overrides: dict[str, Any] | None = None, seed: int | None = None) -> RunConfig:
    """The typed config of one run: defaults filled in, every key validated, the task's layout checked (so that a
    task that cannot be formatted fails here, before any training). `overrides` use dotted keys."""
    spec = copy.deepcopy(spec)
    # whole sections first, so that a dotted key of the same point (model.d_model) applies to the new section
    for key, value in sorted((overrides or {}).items(), key=lambda kv: "." in kv[0]):
        set_dotted(spec, key, value)
    for section in SECTIONS:
        if not isinstance(spec.get(section, {}), dict):
            raise ConfigError(f"[{section}] must be a table of settings, got {spec[section]!r}")
    data, model = dict(spec.get("data", {})), dict(spec.get("model", {}))
    if "generator" not in data:
        raise ConfigError("spec has no data.generator; e.g. [data] generator = \"ca\"")
    if "name" not in model:
        raise ConfigError("spec has no model.name; e.g. [model] name = \"transformer\"")
    gen_name, model_name = data.pop("generator"), model.pop("name")
    run_seed = spec.get("seed", 0) if seed is None else seed
    generators.check_seed(run_seed)
    if run_seed >= 2**32:  # a run seeds torch and numpy's global generators, whose seeds stop there
        raise ConfigError(f"the seed of a run must be below 2^32, got {run_seed}")
    gen_cfg = GENERATORS.config(gen_name, data)
    task = GENERATORS.get(gen_name)(gen_cfg)
    task.layout()  # validates what only the task as a whole can check
    train = build_config(TrainConfig, spec.get("train", {}), where="[train]")
    evaluation = build_config(EvalConfig, spec.get("eval", {}), where="[eval]")
    if task.needs_start and not train.init_from:
        raise ConfigError(f"this {gen_name} task fine-tunes a trained model: set train.init_from to the run it "
                          "starts from (a run directory, run:ID or preset:NAME)")
    if train.curriculum:
        task.curriculum_k()  # raises on a task without a depth axis drawn per example
    resolved_data = {"generator": gen_name, **to_dict(gen_cfg)}
    for entry in evaluation.track:
        data_variant(resolved_data, entry, "eval.track")
    if train.sparse_background:
        data_variant(resolved_data, train.sparse_background, "train.sparse_background")
    return RunConfig(spec.get("name", "run"), spec.get("preset"), run_seed, gen_name, gen_cfg, model_name,
                     MODELS.config(model_name, model), train, evaluation)


def _config_classes(resolved: dict) -> dict[str, type]:
    return {"data": GENERATORS.get(resolved["data"]["generator"]).Config,
            "model": MODELS.get(resolved["model"]["name"]).Config, "train": TrainConfig, "eval": EvalConfig}


@functools.cache
def _defaults(cls: type) -> dict:
    return to_dict(cls())


def _default(cls: type, name: str):
    return _defaults(cls)[name]


def hashed_view(resolved: RunConfig | dict) -> dict:
    """The config as ids see it: the name, the preset and execution details left out, and so are options added
    later while they keep their defaults (`hash` in each field's metadata). Read on the serialised form, so that a
    config.json recorded before an option existed hashes as it did."""
    resolved = _plain(resolved)
    hashed = copy.deepcopy({k: v for k, v in resolved.items() if k not in ("name", "preset")})
    for section, cls in _config_classes(resolved).items():
        for f in dataclasses.fields(cls):
            mode = hash_mode(f)
            if mode == "never" or (mode == "if_set" and hashed[section].get(f.name) == _default(cls, f.name)):
                hashed[section].pop(f.name, None)
    return hashed


def run_id(resolved: RunConfig | dict) -> str:
    """12 hex digits of the hash of everything that determines the result (hashed_view). A generator past version
    1 adds its version, so that a change of its data changes the ids."""
    hashed = hashed_view(resolved)
    version = GENERATORS.get(hashed["data"]["generator"]).version
    if version > 1:
        hashed["data"]["version"] = version
    return hashlib.sha256(json.dumps(hashed, sort_keys=True).encode()).hexdigest()[:12]


def config_id(resolved: RunConfig | dict) -> str:
    """The run id without the seed: what the runs of one configuration, trained with several seeds, share."""
    return run_id({**_plain(resolved), "seed": None})


def component_config(resolved: dict, section: str) -> tuple[str, dict]:
    """(registered name, config dict) of the data or model section of a resolved config."""
    table = dict(resolved[section])
    return table.pop("generator" if section == "data" else "name"), table
