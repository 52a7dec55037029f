"""Experiment specs: a TOML file (+ preset + `--set key=value` overrides) resolved into one full, validated config.

    name = "quickstart"
    seed = 0
    [data]            generator = "ca", then the generator's config fields
    [model]           name = "transformer", then the model's config fields
    [train]           TrainConfig fields
    [eval]            EvalConfig fields
    [sweep]           seeds = [...], grid / zip / one_factor = { "model.n_layer" = [1, 2, 4] }
    [presets.cpu]     nested overrides chosen with --preset (default: cpu when the spec has one)
    [paper]           published numbers drawn beside ours (free-form)

The resolved config holds every default, so a run directory's config.json says exactly what ran.
"""

from __future__ import annotations

import copy
import hashlib
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import generators
from generators import ConfigError
from generators.registry import build_config, did_you_mean, option as _f, to_dict

from .models import MODELS

TOP_LEVEL = ("name", "description", "seed", "data", "model", "train", "eval", "sweep", "presets", "paper")
# Execution details that do not change what is computed: left out of the run hash.
NOT_HASHED = {("train", "threads"), ("train", "num_workers")}
# Options added after runs were published: hashed only when set away from their default, so that the runs made
# before they existed keep their ids (and are skipped, not retrained).
HASHED_IF_SET = {("model", "init"): "gpt2", ("model", "short_conv"): 0, ("model", "norm"): "layer",
                 ("model", "w_init"): "zero"}



@dataclass(frozen=True)
class TrainConfig:
    batch_size: int = _f(128, "examples per optimisation step (per device)")
    optimizer: str = _f("adamw", "adamw | sgd")
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
    early_stop_at: float = _f(1.0, "stop once validation exact match reaches this")
    max_time_s: float = _f(0.0, "stop training after this many seconds; 0 disables")
    accelerator: str = _f("auto", "Lightning accelerator: auto | cpu | gpu | ...")
    devices: int = _f(1, "devices per node")
    num_nodes: int = _f(1, "nodes")
    strategy: str = _f("auto", "Lightning strategy: auto | ddp | ...")
    precision: str = _f("32-true", "Lightning precision: 32-true | bf16-mixed | 16-mixed")
    threads: int = _f(0, "torch CPU threads; 0 uses every core")
    num_workers: int = _f(0, "data-loader worker processes")

    def __post_init__(self):
        for name in ("batch_size", "max_steps", "val_every", "val_size", "devices", "num_nodes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name} must be at least 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ConfigError(f"train.lr must be positive, got {self.lr}")
        if self.optimizer not in ("adamw", "sgd"):
            raise ConfigError(f"train.optimizer must be adamw or sgd, got {self.optimizer!r}")
        if self.schedule not in ("cosine", "linear", "constant"):
            raise ConfigError(f"train.schedule must be cosine, linear or constant, got {self.schedule!r}")
        if min(self.warmup_steps, self.early_stop_patience, self.threads, self.num_workers, self.train_size) < 0:
            raise ConfigError("train.warmup_steps, early_stop_patience, threads, num_workers, train_size must be >= 0")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"train.betas must be two numbers in [0, 1), got {list(self.betas)}")


@dataclass(frozen=True)
class EvalConfig:
    k: tuple[int, ...] = _f((), "evaluate the test set at each of these k (CA); empty: the task's own k slices")
    test_size: int = _f(2048, "test examples (held-out rules), per k when k is given")
    batch_size: int = _f(512, "evaluation batch size")
    seed: int = _f(0, "seed of the validation and test sets, the same for every training seed")
    iterations: tuple[int, ...] = _f((), "weight-tied models: also score the test set after each of these iteration counts")

    def __post_init__(self):
        if self.test_size < 1 or self.batch_size < 1:
            raise ConfigError("eval.test_size and eval.batch_size must be at least 1")
        if any(r < 1 for r in self.iterations):
            raise ConfigError(f"eval.iterations must be at least 1, got {list(self.iterations)}")
        if any(k < 1 for k in self.k):
            raise ConfigError(f"eval.k values must be at least 1, got {list(self.k)}")


def load(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"spec file {str(path)!r} does not exist")
    try:
        spec = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"spec {str(path)!r} is not valid TOML: {e}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"spec {str(path)!r} is not a text file") from None
    check_keys(spec, TOP_LEVEL, "spec")
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
        whole_section = key in ("data", "model", "train", "eval") and isinstance(value, dict)
        if not eq or not key or ("." not in key and not whole_section):
            raise ConfigError(f"malformed --set {item!r}: expected section.key=value, e.g. model.n_layer=4, "
                              "or a whole section, e.g. model={name=\"lstm\", n_layer=4}")
        out[key] = value
    return out


def set_dotted(spec: dict, dotted: str, value: Any) -> None:
    """Set spec[a][b] for "a.b"; a bare section name with a table ("model" = {...}) replaces the whole section
    (how a sweep compares model families whose configs have different keys)."""
    if dotted in ("data", "model", "train", "eval") and isinstance(value, dict):
        spec[dotted] = copy.deepcopy(value)
        return
    *path, last = dotted.split(".")
    if not path:
        raise ConfigError(f"cannot set {dotted!r}: use section.key, or a whole section as a table")
    if path[0] not in ("data", "model", "train", "eval"):
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
    return merged


def resolve(spec: dict, overrides: dict[str, Any] | None = None, seed: int | None = None) -> dict:
    """Full config of one run: defaults filled in, every key validated. `overrides` use dotted keys."""
    spec = copy.deepcopy(spec)
    # whole sections first, so that a dotted key of the same point (model.d_model) applies to the new section
    for key, value in sorted((overrides or {}).items(), key=lambda kv: "." in kv[0]):
        set_dotted(spec, key, value)
    data = dict(spec.get("data", {}))
    model = dict(spec.get("model", {}))
    if "generator" not in data:
        raise ConfigError("spec has no data.generator; e.g. [data] generator = \"ca\"")
    if "name" not in model:
        raise ConfigError("spec has no model.name; e.g. [model] name = \"transformer\"")
    gen_name, model_name = data.pop("generator"), model.pop("name")
    run_seed = spec.get("seed", 0) if seed is None else seed
    generators.check_seed(run_seed)
    return {
        "name": spec.get("name", "run"),
        "preset": spec.get("preset"),
        "seed": run_seed,
        "data": {"generator": gen_name, **to_dict(generators.registry.GENERATORS.config(gen_name, data))},
        "model": {"name": model_name, **to_dict(MODELS.config(model_name, model))},
        "train": to_dict(build_config(TrainConfig, spec.get("train", {}), where="[train]")),
        "eval": to_dict(build_config(EvalConfig, spec.get("eval", {}), where="[eval]")),
    }


def run_id(resolved: dict) -> str:
    """12 hex digits of the hash of everything that determines the result (name and execution details excluded)."""
    hashed = {k: v for k, v in resolved.items() if k not in ("name", "preset")}
    hashed = copy.deepcopy(hashed)
    for section, key in NOT_HASHED:
        hashed[section].pop(key, None)
    for (section, key), default in HASHED_IF_SET.items():
        if hashed[section].get(key) == default:
            del hashed[section][key]
    return hashlib.sha256(json.dumps(hashed, sort_keys=True).encode()).hexdigest()[:12]


def component_config(resolved: dict, section: str) -> tuple[str, dict]:
    """(registered name, config dict) of the data or model section of a resolved config."""
    table = dict(resolved[section])
    return table.pop("generator" if section == "data" else "name"), table
