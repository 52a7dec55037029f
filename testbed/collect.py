"""Turn run directories into one tidy CSV: one row per run x split x slice."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from generators import ConfigError
from generators.io import atomic_write

from .store import read_config, read_result

BASE_COLUMNS = ["run_id", "name", "preset", "model", "params", "state_size", "layers", "loops", "d_model", "task",
                "seed", "split", "iterations", "slice", "value", "k", "cell_accuracy", "exact_match", "n", "mean_steps",
                "fit_seconds"]


def described(config: dict, result: dict) -> dict:
    """The model's own description (layers, width, training iterations), as its run recorded it; runs recorded
    before descriptions existed get it from their model, built on the meta device (no memory allocated)."""
    if isinstance(result.get("model"), dict):
        return result["model"]
    import torch

    from .store import build

    with torch.device("meta"):
        return build(config)[1].describe()


def flatten(config: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = json.dumps(value) if isinstance(value, list) else value
    return out


def collect(runs_root: str | Path, run_ids=None) -> tuple[list[str], list[dict]]:
    """Rows of every finished run under runs_root (only those in `run_ids`, when given)."""
    runs_root = Path(runs_root)
    if not runs_root.is_dir():
        raise ConfigError(f"runs directory {str(runs_root)!r} does not exist")
    runs = []
    for result_file in sorted(runs_root.rglob("result.json")):
        if run_ids is not None and result_file.parent.name not in run_ids:
            continue
        try:
            result, config = read_result(result_file.parent), read_config(result_file.parent)
            if result.get("status") == "diverged":
                continue  # an outcome without test rows
            info = described(config, result)
        except ConfigError as e:  # a damaged run is reported; the others are collected
            warn(f"skipped {result_file.parent}: {e}")
            continue
        runs.append((config, result, info, result_file.parent.name))
    if not runs:
        raise ConfigError(f"no finished runs (result.json) under {str(runs_root)!r}")
    flat = [flatten(c) for c, *_ in runs]
    varying = sorted(k for k in set().union(*flat) if len({json.dumps(f.get(k)) for f in flat}) > 1)
    rows = []
    for (config, result, info, name), f in zip(runs, flat):
        base = {
            "run_id": result.get("run_id", name), "name": config["name"], "preset": config.get("preset") or "",
            "model": config["model"]["name"],
            "params": result.get("params", ""), "state_size": result.get("state_size") or "",
            "layers": info.get("layers"), "loops": info.get("loops"), "d_model": info.get("width"),
            "task": config["data"].get("task"), "seed": config["seed"],
            "fit_seconds": round(result.get("fit_seconds") or 0.0, 1),
        }
        for row in result["test"]:
            rows.append({
                **base, "split": row["split"], "iterations": row.get("iterations") or "", "slice": row["slice"],
                "value": "" if row["value"] is None else row["value"],
                "k": row["value"] if row["slice"] == "k" else "",
                "cell_accuracy": row["cell_accuracy"], "exact_match": row["exact_match"], "n": row["n"],
                "mean_steps": row.get("mean_steps", ""),
                **{f"cfg.{k}": f.get(k) for k in varying},
            })
    columns = BASE_COLUMNS + [f"cfg.{k}" for k in varying]
    return columns, rows


def warn(message: str) -> None:
    import sys

    print(f"warning: {message}", file=sys.stderr)


def write_csv(path: str | Path, columns: list[str], rows: list[dict]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(Path(path), lambda f: f.write(buf.getvalue().encode()))


def read_csv(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"results file {str(path)!r} does not exist; make one with `testbed collect`")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"k", "exact_match", "cell_accuracy"} <= set(rows[0]):
        raise ConfigError(f"{str(path)!r} is not a results table from `testbed collect`")
    return rows
