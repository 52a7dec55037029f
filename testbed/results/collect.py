"""Run directories into two tidy tables (aggregate.py computes the rows):

    results.csv        one row per configuration x split x iteration count x slice, over its seeds: mean and 95 %
                       interval over seeds and rules (config_id names the configuration, seeds lists its seeds),
                       and one row per baseline of each task (model = "baseline:NAME", the same columns)
    results.seeds.csv  one row per run (one seed) x split x iteration count x slice, intervals over rules only

Both carry the overall and the non-trivial columns. A damaged run is reported and left out; the others are kept.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from generators.core import ConfigError

from ..metrics import MODEL
from ..spec import config_id, hashed_view
from ..store import read_config, read_outcomes, read_result, start_dir, validation_curves
from . import aggregate

META_COLUMNS = ["config_id", "name", "preset", "model", "params", "active_params", "state_size", "n_layer", "loops",
                "d_model", "task", "val_exact_match", "val_cell_accuracy", "val_late_rise", "steps", "stopped",
                "exposures", "val_bits_at_100_exposures", "val_bits_at_1000_exposures"]
EXPOSURE_POINTS = (100, 1000)  # Allen-Zhu & Li's budgets: about 1 bit per parameter at 100 exposures, 2 at 1,000
ROW_COLUMNS = ["split", "iterations", "slice", "value", "k"]
# memorisation tasks (Generator.recall_bits): bits the test exact match recalls, and the validation one (what
# choices, e.g. the world a memory stores most of, read); world_bits: what recalling every answer would hold (a
# memory that stores most of its world may hold more: its bits are a lower bound of its capacity)
BITS_COLUMNS = ["bits_stored", "bits_stored_lo", "bits_stored_hi", "val_bits_stored", "world_bits"]
COLUMNS = META_COLUMNS + ROW_COLUMNS + aggregate.METRIC_COLUMNS + aggregate.COUNT_COLUMNS + ["fit_seconds"] + \
    BITS_COLUMNS
SEED_COLUMNS = ["run_id", *META_COLUMNS, "seed", *ROW_COLUMNS, *aggregate.METRIC_COLUMNS,
                *aggregate.COUNT_COLUMNS, "fit_seconds", *BITS_COLUMNS]
BASE_COLUMNS = COLUMNS  # closed-form figures (capacity, memory law) write rows with these columns too


def described(config, result: dict) -> dict:
    """The model's own description (layers, width, training iterations) as its run recorded it, and the parameters
    a query reads as the model's code counts them now (a count, not a measurement: a run recorded under an older
    count reads the current one); both from the model built on the meta device (no memory allocated)."""
    import torch

    from ..store import build

    with torch.device("meta"):
        model = build(config)[1]
    recorded = result.get("model") if isinstance(result.get("model"), dict) else model.describe()
    renamed = {OLD_NAMES.get(k, k): v for k, v in recorded.items()}  # runs recorded before the spec's names
    return {**renamed, "active_params": model.active_params()}


OLD_NAMES = {"layers": "n_layer", "width": "d_model"}  # how result.json named these before they kept the spec's names


def flatten(config: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = json.dumps(value) if isinstance(value, list) else value
    return out


def task_id(config) -> str:
    """What the baselines depend on: the data and evaluation settings (as ids see them: a data option added later
    at its default leaves the task the same)."""
    view = hashed_view(config)
    key = json.dumps({"data": view["data"], "eval": {k: v for k, v in view["eval"].items() if k != "iterations"}},
                     sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def _by_source(units: dict) -> dict[str, dict]:
    """{source: its units, without the source column} (strings of 32 characters a unit: dropped, not carried)."""
    out = {}
    sources, first = np.unique(units["source"], return_index=True)
    for source in sources[np.argsort(first)].tolist():  # in order of appearance
        keep = units["source"] == source
        out[source] = {k: v[keep] for k, v in units.items() if k != "source"}
    return out


def scan(runs_root: Path, run_ids=None, warn=None) -> list[dict]:
    """Every finished run under runs_root: {config, result, info, run_id, run_dir}. Outcomes are read later, a
    configuration at a time (load_units), so collecting holds one configuration's outcomes in memory."""
    runs = []
    for result_file in sorted(runs_root.rglob("result.json")):
        run_dir = result_file.parent
        if run_ids is not None and run_dir.name not in run_ids:
            continue
        try:
            result, config = read_result(run_dir), read_config(run_dir)
            if result.get("status") == "diverged":
                continue  # an outcome without test rows
            runs.append({"config": config, "result": result, "info": described(config, result),
                         "run_id": run_dir.name, "run_dir": run_dir})
        except ConfigError as e:  # a damaged run is reported; the others are collected
            (warn or _warn)(f"skipped {run_dir}: {e}")
    return runs


def upgraded(units: dict, config) -> dict:
    """Outcomes recorded before clusters were symmetry classes (and members were kept) read with today's unit: their
    clusters were the members (CA: rules), whose classes the task's generator computes."""
    if "member" in units:
        return units
    gen = config.task()
    if gen.member_key is None:
        return {**units, "member": np.full(len(units["cluster"]), -1, np.int64)}
    return {**units, "member": units["cluster"], "cluster": gen.clusters_of_members(units["cluster"])}


def load_units(run: dict) -> tuple[dict | None, dict[str, dict]]:
    """(the model's units, {baseline: units}) of a run's outcomes.npz, without the source column (32 characters a
    unit); (None, {}) for a run recorded before outcomes existed."""
    units = read_outcomes(run["run_dir"])
    if units is None:
        return None, {}
    units = upgraded(units, run["config"])
    out = {}
    sources, first = np.unique(units["source"], return_index=True)
    for source in sources[np.argsort(first)].tolist():  # in order of appearance
        keep = units["source"] == source
        out[source] = {k: v[keep] for k, v in units.items() if k != "source"}
    model = out.pop(MODEL, None)
    return model, out


def _loaded(group: list[dict], warn) -> list[tuple[dict, dict | None, dict]]:
    """[(run, model units, baseline units)] of the runs of a group whose outcomes read (a damaged one is reported
    and left out)."""
    out = []
    for run in group:
        try:
            out.append((run, *load_units(run)))
        except ConfigError as e:
            (warn or _warn)(f"skipped {run['run_dir']}: {e}")
    return out


def with_bits(row: dict, gen) -> dict:
    """The row with the bits its exact match recalls of the task's answers (test, all examples; empty elsewhere,
    and where the task's generator could not be built)."""
    bits = {c: "" for c in BITS_COLUMNS}
    if gen is not None and row.get("split") == "test" and row.get("slice") == "all":
        for column, metric in zip(BITS_COLUMNS, ("exact_match", "exact_match_lo", "exact_match_hi", "val_exact_match")):
            value = gen.recall_bits(float(row[metric])) if row.get(metric) not in ("", None) else None
            bits[column] = "" if value is None else value
        world = gen.recall_bits(1.0)
        bits["world_bits"] = "" if world is None else world
    return {**row, **bits}


def _task_or_none(config, warn):
    try:
        return config.task()
    except ConfigError as e:  # a config of an older generator: collected all the same, without bits
        (warn or _warn)(f"no bits counted for {config.name}: {e}")
        return None


def _meta(run: dict, cfg_id: str) -> dict:
    config, result, info = run["config"], run["result"], run["info"]
    return {"config_id": cfg_id, "name": config.name, "preset": config.preset or "",
            "model": config.model_name, "params": result.get("params", ""),
            "active_params": info.get("active_params", ""),
            "state_size": result.get("state_size") or "", "n_layer": info.get("n_layer"), "loops": info.get("loops"),
            "d_model": info.get("d_model"), "task": getattr(config.data, "task", None), "val_exact_match": "",
            "val_cell_accuracy": "", "val_late_rise": ""}


LATE = 0.3  # the share of training whose validation gain says whether a run had stopped improving


def late_rise(history: list[tuple[int, float]]) -> float | None:
    """How much the best validation score rose in the last 30 % of training: the best of the validations in that
    part minus the best before it (<= 0: it had stopped rising). None with no validation on either side."""
    if not history:
        return None
    cut = (1 - LATE) * (max(s for s, _ in history) + 1)
    early, late = [v for s, v in history if s + 1 <= cut], [v for s, v in history if s + 1 > cut]
    return max(late) - max(early) if early and late else None


def curves_late_rise(curves: dict) -> float | None:
    """The largest late rise of a run's validation curves (whole examples and each k): a run is still learning
    while any of them climbs. None where the whole-example curve has none."""
    rises = {name: late_rise(history) for name, history in curves.items()}
    if rises.get("val/exact_match") is None:
        return None
    return max(r for r in rises.values() if r is not None)


def _validation(group: list[dict]) -> dict:
    """The best validation scores of a configuration, mean over its seeds: what choices between configurations
    (a learning rate, a preset) read, never the test rows; and whether validation had stopped rising (the largest
    late rise over its seeds)."""
    out = {}
    for key in ("exact_match", "cell_accuracy"):
        got = [r["result"].get(f"best_val_{key}") for r in group]
        out[f"val_{key}"] = round(sum(got) / len(got), 6) if got and None not in got else ""
    curves = [validation_curves(r["run_dir"]) for r in group]  # each run's metrics.csv, read once
    rises = [curves_late_rise(c) for c in curves]  # the worst seed: still rising?
    out["val_late_rise"] = round(max(rises), 6) if rises and None not in rises else ""
    steps = [r["result"].get("steps") for r in group]
    out["steps"] = round(sum(steps) / len(steps)) if steps and None not in steps else ""
    out["stopped"] = stopped(r["result"].get("stopped", "") for r in group)
    try:
        gen = group[0]["config"].task()  # the seeds of a configuration share its task, built once
    except ConfigError:
        gen = None
    seen = exposures(group, gen)
    out["exposures"] = round(sum(seen) / len(seen), 1) if seen and None not in seen else ""
    for budget in EXPOSURE_POINTS:
        bits = [bits_at_exposures(run, gen, budget, c.get("val/exact_match", [])) for run, c in zip(group, curves)]
        out[f"val_bits_at_{budget}_exposures"] = round(sum(bits) / len(bits), 3) if bits and None not in bits else ""
    return out


def _examples_per_step(run: dict) -> int:
    t = run["config"].train
    return t.batch_size * t.devices * t.num_nodes


def exposures(group: list[dict], gen) -> list[float | None]:
    """How often each seed's training showed every item of its task on average (facts: steps x batch / facts), from
    the steps it took; None for tasks without a fixed set of items, or a run recorded without its steps."""
    if gen is None:
        return [None]
    out = []
    for run in group:
        steps = run["result"].get("steps")
        out.append(None if steps is None else gen.exposures(steps * _examples_per_step(run)))
    return out


def bits_at_exposures(run: dict, gen, budget: float, history: list | None = None) -> float | None:
    """The bits a memorisation run recalled after `budget` exposures per item: its validation exact match (the
    same items as test: memorisation is the task) at the first validation that had seen that many, counted as bits.
    A run that stopped on a plateau before the budget had stopped storing more: its best counts. None for tasks
    without items or bits, or a run that ran to its cap before the budget. `history`: the run's validation exact
    match curve where the caller has read it already."""
    if gen is None or gen.exposures(1) is None or gen.recall_bits(1.0) is None:
        return None
    if history is None:
        history = validation_curves(run["run_dir"]).get("val/exact_match", [])
    for step, value in history:  # a validation logged at step s has trained s + 1 steps
        if gen.exposures((step + 1) * _examples_per_step(run)) >= budget:
            return gen.recall_bits(value)
    best = run["result"].get("best_val_exact_match")
    if run["result"].get("stopped") in ("plateau", "early_stop") and best is not None:
        return gen.recall_bits(best)
    return None


def stopped(reasons) -> str:
    """Why a configuration's runs ended: 'plateau' (every seed's validation curve stopped rising), 'cap' (each ran
    to max_steps), or a count of each ('plateau 2 of 3, cap 1 of 3'); '' for runs recorded before it was kept."""
    reasons = [{"max_steps": "cap"}.get(r, r) for r in reasons]  # runs recorded before the cap had its name
    if not reasons or "" in reasons:
        return ""
    counts = {r: reasons.count(r) for r in dict.fromkeys(reasons)}
    return reasons[0] if len(counts) == 1 else ", ".join(f"{r} {n} of {len(reasons)}" for r, n in counts.items())


def _recorded_rows(run: dict) -> list[dict]:
    """Rows of a run recorded before outcomes were kept: its result.json rows, without intervals."""
    return [{"split": r["split"], "iterations": r.get("iterations") or "", "slice": r["slice"],
             "value": "" if r["value"] is None else r["value"], "k": r["value"] if r["slice"] == "k" else "",
             "cell_accuracy": r["cell_accuracy"], "exact_match": r["exact_match"], "n": r["n"],
             "mean_steps": r.get("mean_steps", ""), "n_seeds": 1} for r in run["result"]["test"]]


def _without_start(run: dict) -> dict:
    """A fine-tuning run's config with its start (train.init_from, one run directory per seed) named by the start's
    configuration instead: the seeds of one fine-tuning recipe, each started from its own seed of one supervised
    configuration, are one configuration."""
    config = run["config"]
    start = config.train.init_from
    if not start:
        return config
    try:
        start = f"configuration {config_id(read_config(start_dir(start, Path(run['run_dir']).parent)))}"
    except ConfigError:
        pass  # the start is gone: its path is all there is to group by
    return config.replace(train={"init_from": start})


def configurations(runs: list[dict]) -> dict[str, dict]:
    """config_id -> {runs (sorted by seed), meta (the row columns that describe it, cfg.* among them)}."""
    configs: dict = {}
    grouped: dict = {}  # config_id -> the config it was grouped by (a start read from disk once per run)
    for run in runs:
        key = _without_start(run)
        cid = config_id(key)
        configs.setdefault(cid, []).append(run)
        grouped.setdefault(cid, key)
    flat = {cid: flatten({k: v for k, v in key.as_dict().items() if k != "seed"}) for cid, key in grouped.items()}
    varying = sorted(k for k in set().union(*flat.values()) if len({json.dumps(f.get(k)) for f in flat.values()}) > 1)
    out = {}
    for cid, group in configs.items():
        group.sort(key=lambda r: r["config"].seed)
        out[cid] = {"runs": group, "meta": {**_meta(group[0], cid), **_validation(group),
                                            **{f"cfg.{k}": flat[cid].get(k) for k in varying}},
                    "varying": [f"cfg.{k}" for k in varying]}
    return out


def _runs(runs_root: str | Path, run_ids, warn) -> list[dict]:
    runs_root = Path(runs_root)
    if not runs_root.is_dir():
        raise ConfigError(f"runs directory {str(runs_root)!r} does not exist")
    runs = scan(runs_root, run_ids, warn)
    if not runs:
        raise ConfigError(f"no finished runs (result.json) under {str(runs_root)!r}")
    return runs


def collect(runs_root: str | Path, run_ids=None, warn=None) -> tuple[list[str], list[dict], list[str], list[dict]]:
    """(columns, rows over seeds, seed columns, rows per seed) of every finished run under runs_root (only those in
    `run_ids`, when given). Damaged runs are left out with a warning each, given once the collection succeeded;
    when none could be collected the error says why."""
    notes: list[str] = []
    given, warn = warn or _warn, notes.append
    configs = configurations(_runs(runs_root, run_ids, warn))
    varying = next(iter(configs.values()))["varying"]
    rows, seed_rows, tasks, collected = [], [], set(), 0
    for c in configs.values():
        loaded, meta = _loaded(c["runs"], warn), c["meta"]
        if not loaded:
            continue
        collected += len(loaded)
        group = [run for run, _, _ in loaded]
        fit = round(sum(r["result"].get("fit_seconds") or 0.0 for r in group) / len(group), 1)
        seeds = ",".join(str(r["config"].seed) for r in group)
        units = [u for _, u, _ in loaded]
        gen = _task_or_none(group[0]["config"], warn)
        if all(u is not None for u in units):
            rows += [with_bits({**meta, **row, "seeds": seeds, "fit_seconds": fit}, gen)
                     for row in aggregate.rows(units)]
            for run, u in zip(group, units):
                seed_rows += [with_bits({"run_id": run["run_id"], **meta, **_validation([run]),
                                         "seed": run["config"].seed, **row, "seeds": run["config"].seed,
                                         "fit_seconds": round(run["result"].get("fit_seconds") or 0.0, 1)}, gen)
                              for row in aggregate.rows([u])]
        else:
            for run in group:
                seed_rows += [with_bits({"run_id": run["run_id"], **meta, "seed": run["config"].seed, **row}, gen)
                              for row in _recorded_rows(run)]
            rows += [with_bits({**meta, **row, "seeds": seeds, "fit_seconds": fit}, gen)
                     for row in _recorded_rows(group[0])]
        for run, _, baselines in loaded:  # the baselines: deterministic, one "seed" per task
            tid = task_id(run["config"])
            if not baselines or tid in tasks:
                continue
            tasks.add(tid)
            for source, b in baselines.items():
                bmeta = {**_meta(run, f"{source}@{tid}"), "model": source, "params": "", "active_params": "",
                         "state_size": "", "n_layer": "", "loops": "", "d_model": "", **{k: "" for k in varying}}
                got = aggregate.rows([b])
                rows += [{**bmeta, **row, "n_seeds": 0, "seeds": "-"} for row in got]
                seed_rows += [{"run_id": "", **bmeta, "seed": "", **row, "n_seeds": 0, "seeds": "-"} for row in got]
    if not collected:
        more = f" (and {len(notes) - 1} more)" if len(notes) > 1 else ""
        raise ConfigError(f"no run could be collected under {str(runs_root)!r}: {notes[0] if notes else 'none'}{more}")
    for note in notes:
        given(note)
    return COLUMNS + varying, rows, SEED_COLUMNS + varying, seed_rows


PAIRED_COLUMNS = ["config_id", "model", "n_layer", "loops", "task", "against", "split", "iterations", "slice", "value",
                  "k", "metric", "difference", "difference_lo", "difference_hi", "n_seeds", "seeds"]


def parse_against(text: str) -> tuple[str, str]:
    column, eq, value = text.partition("=")
    if not eq or not column or not value:
        raise ConfigError(f"--against takes COLUMN=VALUE, e.g. model=transformer or n_layer=2; got {text!r}")
    return column.strip(), value.strip()


def paired(runs_root: str | Path, against: str, run_ids=None, metric: str = "exact_match_nontrivial",
           warn=None) -> tuple[list[str], list[dict]]:
    """Every configuration minus the one of the same task whose `COLUMN=VALUE` (e.g. model=transformer), on the
    same seeds and test examples: paired differences with their 95 % intervals (aggregate.paired_difference)."""
    column, value = parse_against(against)
    stratum = next((s for s in aggregate.STRATA if s and metric.endswith(s)), "")
    base_metric = metric.removesuffix(stratum)
    if base_metric not in aggregate.METRICS:
        valid = ", ".join(m + s for m in aggregate.METRICS for s in aggregate.STRATA)
        raise ConfigError(f"unknown metric {metric!r}; valid: {valid}")
    configs = configurations(_runs(runs_root, run_ids, warn))
    if stratum == "_fresh":  # before any work: a task without a depth axis has no fresh targets to pair on
        for cid, c in configs.items():
            units = load_units(c["runs"][0])[0]
            if units is not None and "fresh" not in units:
                raise ConfigError(f"{metric}: the runs of {cid} ({c['meta']['task'] or c['meta']['name']}) have no "
                                  "fresh stratum (a task without a depth axis, or outcomes recorded before fresh "
                                  "targets were)")
    if column not in next(iter(configs.values()))["meta"]:
        raise ConfigError(f"unknown column {column!r} for --against; e.g. model, n_layer, loops, task or a cfg.* "
                          "column")
    bases = {}
    for cid, c in configs.items():
        if str(c["meta"].get(column, "")) == value:
            tid = task_id(c["runs"][0]["config"])
            if tid in bases:
                raise ConfigError(f"--against {against} matches more than one configuration of the same task; narrow "
                                  "it (e.g. add the runs of one sweep only)")
            bases[tid] = cid
    if not bases:
        raise ConfigError(f"no configuration has {column} = {value!r}; nothing to compare against")
    rows = []
    for cid, c in configs.items():
        tid = task_id(c["runs"][0]["config"])
        if cid in bases.values() or tid not in bases:
            continue
        base = configs[bases[tid]]
        seeds = sorted({r["config"].seed for r in c["runs"]} & {r["config"].seed for r in base["runs"]})
        try:
            a = [load_units(r)[0] for r in c["runs"] if r["config"].seed in seeds]
            b = [load_units(r)[0] for r in base["runs"] if r["config"].seed in seeds]
        except ConfigError as e:  # a damaged run: reported, its configuration left out of the comparison
            (warn or _warn)(f"skipped the paired difference of {cid}: {e}")
            continue
        if not seeds or any(u is None for u in a + b):
            continue
        for key in aggregate.keys(a[0]):
            r, k, name, v = key
            partner = (0, k, name, v)  # against the base at its own iteration count
            if name == "all" or not all(aggregate.of_key(u, partner).any() for u in b):
                continue
            diff = aggregate.paired_difference(a, b, key, partner, base_metric, stratum)
            rows.append({"config_id": cid, "model": c["meta"]["model"], "n_layer": c["meta"]["n_layer"],
                         "loops": c["meta"]["loops"], "task": c["meta"]["task"],
                         "against": f"{column}={value} ({bases[tid]})", "split": "test", "iterations": r or "",
                         "slice": name, "value": v, "k": v if name == "k" else (k or ""), "metric": metric,
                         "difference": diff["difference"], "difference_lo": diff["lo"], "difference_hi": diff["hi"],
                         "n_seeds": diff["n_seeds"], "seeds": ",".join(map(str, seeds))})
    return PAIRED_COLUMNS, rows


def _warn(message: str) -> None:
    import sys

    print(f"warning: {message}", file=sys.stderr)
