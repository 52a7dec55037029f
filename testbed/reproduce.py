"""`testbed reproduce FIGURE`: every published figure we cover, one command away.

A figure names its spec under experiments/ (which holds the published numbers in its [paper] table), what to run
(a sweep of trained runs, or a closed-form computation), how to draw it and how to set our numbers beside the
published ones. Reproducing runs what is missing (finished runs are skipped, so a second call only redraws),
collects, draws ours beside the paper and writes the comparison table: per point, ours, published, difference.

    OUT/<figure>/results.csv     our numbers (the table of `testbed collect`)
                 figure.png      ours beside the published values
                 comparison.csv  per point: series, x, ours, published, difference (ours - published)
                 comparison.md   the same as a Markdown table, with the figure's note
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from generators import ConfigError

from . import plots
from . import spec as specs


@dataclass(frozen=True)
class Figure:
    name: str
    paper: str
    shows: str
    spec: str  # file under experiments/ that holds the runs and the [paper] table
    kind: str  # sweep: trained runs; memory-law / capacity: computed in closed form
    minutes: dict  # preset -> wall minutes on a 2-core CPU with --jobs 2 (cpu: measured), or a GPU estimate (str)
    presets: dict = field(default_factory=lambda: {"cpu": ("cpu",), "paper": ("paper",)})
    note: str = ""  # an honest word on what differs from the paper and why


FIGURES = {f.name: f for f in [
    Figure("p2-lookahead", "P2 (Burtsev 2024)", "per-bit accuracy vs steps ahead k for O-S, O-O, O-SR, RO-S",
           "p2_lookahead.toml", "sweep", {"cpu": 7.9, "paper": "13 runs of 25k-105k steps, d = 512: ~1 GPU-day"},
           note="cpu: radius 1, width 12, d = 64, 2,000 steps, one mixed-k model per task; P2: radius 2, width 20, "
                "d = 512, one model per task and k."),
    Figure("p2-input-length", "P2 (Burtsev 2024)", "O-S (k = 1) per-bit accuracy vs number of input states",
           "p2_input_length.toml", "sweep", {"cpu": 7.5, "paper": "9 runs of 25k steps, d = 512: ~15 GPU-hours"},
           note="cpu: 1..6 input states of radius-1 orbits (the paper: 2..18 of radius 2); points at 2, 4, 6 compare."),
    Figure("p2-rollout", "P2 (Burtsev 2024)", "per-bit accuracy per autoregressive rollout step (fed own predictions)",
           "p2_rollout.toml", "sweep", {"cpu": 9.3, "paper": "the 4 k = 1 runs of p2-lookahead (shared): ~8 GPU-hours"},
           note="rollout of 10 steps from models trained for k = 1 (O-O: its first predicted state is fed back)."),
    Figure("p2-depth-sweep", "P2 (Burtsev 2024)", "O-O per-step accuracy vs number of layers",
           "p2_depth_sweep.toml", "sweep", {"cpu": 12.6, "paper": "11 runs of 105k steps, d = 512: ~2 GPU-days"},
           note="cpu: layers 1, 2, 3, 4, 6 at radius 1 and 2,000 steps; the paper: 1..11 at radius 2, 105k steps."),
    Figure("p1-comparison", "P1 (Rodkin et al. 2025)", "exact match vs k of every depth-extending family",
           "p1_comparison.toml", "sweep", {"cpu": 49.0, "paper": "9 families x 40k steps, d = 128: ~1 GPU-day"},
           note="P1 gives the largest k each family solves (qualitative); cpu: the rule is given (RO-S), see README."),
    Figure("test-time-compute", "Geiping et al. 2025", "exact match vs test-time iterations of weight-tied models",
           "test_time_compute.toml", "sweep", {"cpu": 14.5, "paper": "3 runs of 40k steps: ~6 GPU-hours"},
           note="published: a curve that rises to the training mean and stays flat beyond it (no numbers to match)."),
    Figure("cabannes-error-vs-d", "Cabannes et al. 2024", "closed-form memory error vs d, three schemes",
           "cabannes_scaling.toml", "memory-law", {"cpu": 0.7, "paper": 0.7},
           presets={"cpu": ("error-vs-d",), "paper": ("error-vs-d",)},
           note="100 random embeddings per point (the paper: 20); fitted slopes against -1/4 and -1 in results.csv."),
    Figure("cabannes-joint", "Cabannes et al. 2024", "thresholded memory error over d x T", "cabannes_scaling.toml",
           "memory-law", {"cpu": 0.5, "paper": 0.5}, presets={"cpu": ("joint",), "paper": ("joint",)},
           note="20 random embeddings and sample sets per point, as the paper."),
    Figure("cabannes-optimizers", "Cabannes et al. 2024", "optimizer-trained memories: error vs d per setting",
           "cabannes_optimizers.toml", "sweep", {"cpu": 1.5, "paper": 1.5},
           presets={p: ("adam", "sgd", "sgd-b1024", "adam-ln-b1024", "sgd-learned-b16") for p in ("cpu", "paper")},
           note="3 seeds per point; W starts random and the normalisation is x / |x|, as the reference code."),
    Figure("mqar-width", "Zoology (Arora et al. 2024)", "MQAR recall vs width and stored pairs, per family",
           "mqar_capacity.toml", "sweep", {"cpu": 60.0, "paper": "320 runs, up to 64 epochs of 100k: ~5 GPU-days"},
           note="cpu: L = 64, V = 128, widths 16-64, 3,000 steps, one learning rate (ARMT's diverging points also at 1e-3; "
                "Zoology: best of 4); published: attention ~1.00 at every width. Diverged runs are reported, not drawn."),
    Figure("retrieval-capacity", "Schlag et al. 2021; ARMT", "most pairs recalled at >= 90 % vs state size",
           "mqar_capacity.toml", "capacity", {"cpu": 0.7, "paper": 4.0},
           note="mechanism-level (no training), pairs tested at powers of two; published: retrieval breaks at S ~ "
                "dim phi(k) = d pairs (sum rule: signal-to-noise sqrt(d/S); delta rule: exact up to d orthogonal keys)."),
]}


def figure(name: str) -> Figure:
    if name not in FIGURES:
        from generators.registry import did_you_mean

        raise ConfigError(f"unknown figure {name!r}{did_you_mean(name, FIGURES)}; `testbed reproduce --list` lists them")
    return FIGURES[name]


def estimate(fig: Figure, preset: str) -> str:
    value = fig.minutes.get(preset, "")
    return f"{value:g} min" if isinstance(value, (int, float)) else value


def resolved_runs(fig: Figure, preset: str, experiments: Path) -> list[dict]:
    from .sweep import resolve_all

    if preset not in fig.presets:
        raise ConfigError(f"figure {fig.name} has no preset {preset!r}; valid: {', '.join(fig.presets)}")
    spec = specs.load(experiments / fig.spec)
    out = []
    for p in fig.presets[preset]:
        out += resolve_all(specs.with_preset(spec, p), {})
    return out


# --- our numbers keyed like the published ones: {(series, x): value} ---------------------------------------------

def _test_rows(rows: list[dict]) -> list[dict]:
    return [r for r in rows if r["split"] == "test" and not r.get("iterations")]


def _mean(points: dict) -> dict:
    return {key: float(np.mean(v)) for key, v in points.items()}


def ours_by_task_k(rows, metric):
    pts = defaultdict(list)
    for r in _test_rows(rows):
        if r["slice"] == "k" and r["k"] not in ("", None) and int(r["k"]) > 0:
            pts[(r["task"], int(r["k"]))].append(float(r[metric]))
    return _mean(pts)


def ours_by_layers(rows, metric):
    pts = defaultdict(list)
    for r in _test_rows(rows):
        if r["slice"] == "k" and r["k"] not in ("", None):
            pts[(f"k={int(r['k'])}", int(r["layers"]))].append(float(r[metric]))
    return _mean(pts)


def ours_by_input_length(rows, metric):
    pts = defaultdict(list)
    for r in _test_rows(rows):
        if r["slice"] == "all":
            pts[(r["task"], int(r["n_input"]))].append(float(r[metric]))
    return _mean(pts)


def ours_by_rollout(rows, metric):
    pts = defaultdict(list)
    for r in rows:
        if r["split"] == "rollout":
            pts[(r["task"], int(r["k"]))].append(float(r[metric]))
    return _mean(pts)


def compare_series(ours: dict, paper: dict, axis: str) -> list[dict]:
    """One row per published point (and per point of ours the paper lacks): series, x, ours, published, diff."""
    xs = paper.get(axis, [])  # a [paper] table without this axis has nothing to pair with
    published = {(name, x): y for name, ys in paper.items() if isinstance(ys, list) and name != axis
                 and len(ys) == len(xs) for x, y in zip(xs, ys)}
    keys = sorted(set(published) | set(ours), key=lambda t: (t[0], t[1]))
    out = []
    for key in keys:
        a, b = ours.get(key), published.get(key)
        both = a is not None and b is not None
        out.append({"series": key[0], axis: key[1], "ours": a, "published": b, "difference": a - b if both else None,
                    "ratio": a / b if both and b else None})
    return out


# --- per-figure comparisons --------------------------------------------------------------------------------------

def _series_comparison(extract, axis):
    def compare(rows, paper):
        metric = paper.get("metric", "cell_accuracy")
        return compare_series(extract(rows, metric), paper, axis)
    return compare


def compare_p1(rows, paper):
    """Exact match per family and k, and the largest k solved (>= 0.9 exact) against P1's qualitative verdict."""
    table = defaultdict(dict)
    for (label, k), v in ours_by_task_k([{**r, "task": r["model"]} for r in rows], "exact_match").items():
        table[label][k] = v
    out = []
    for model, ks in sorted(table.items()):
        solved = max([0] + [k for k, v in ks.items() if v >= 0.9 and all(ks.get(j, 0) >= 0.9 for j in range(1, k))])
        out.append({"series": model, "x": "largest k solved (exact >= 0.9)", "ours": solved,
                    "published": paper.get(model, "-"), "difference": None})
        out += [{"series": model, "x": f"exact match k={k}", "ours": v, "published": None, "difference": None}
                for k, v in sorted(ks.items())]
    return out


def compare_iterations(rows, paper):
    out = []
    for label, ks in plots.iterations_table(rows).items():
        for k, its in ks.items():
            counts = sorted(its)
            values = [its[i][1] for i in counts]
            out.append({"series": label, "x": f"k={k}: exact at {'/'.join(map(str, counts))} iterations",
                        "ours": " ".join(f"{v:.2f}" for v in values),
                        "published": "non-decreasing up to the training mean, flat beyond",
                        "difference": f"drop beyond best {max(values) - values[-1]:.2f}"})
    return out


def compare_memory(rows, paper):
    ours = {(preset, d): err for preset, ds in plots.memory_table(rows).items() for d, err in ds.items()}
    return compare_series(ours, paper, "d")


def compare_mqar(rows, paper):
    out = []
    for fam, ds in sorted(plots.capacity_table(rows).items()):
        for d, pts in ds.items():
            for pairs, (acc, _) in pts.items():
                pub = 1.0 if fam == "attention" else None  # Zoology: attention ~100 % at every width and length
                out.append({"series": fam, "x": f"d={d} pairs={pairs}", "ours": acc, "published": pub,
                            "difference": acc - pub if pub is not None else None})
    return out


def compare_capacity(rows, paper):
    out = []
    for fam, ds in sorted(plots.capacity_table(rows).items()):
        for d, pts in ds.items():
            theory = {"sum": d, "delta": d}.get(fam)  # at most dim phi(k) = d keys without interference
            c = plots.capacity({p: v[0] for p, v in pts.items()})
            out.append({"series": fam, "x": f"d={d}", "ours": c, "published": theory,
                        "difference": c - theory if theory is not None else None,
                        "ratio": c / theory if theory else None})
    return out


def compare_law(rows, paper):
    joint = any(r.get("T") not in ("", None) for r in rows)
    ours = {((f"T={r['T']}" if joint else r["scheme"]), int(r["d"])): float(r["error"]) for r in rows}
    return compare_series(ours, {k: v for k, v in paper.items() if k in ("d",) or (k.startswith("T=") == joint)},
                          "d")


COMPARE: dict[str, Callable] = {
    "p2-lookahead": _series_comparison(ours_by_task_k, "k"),
    "p2-input-length": _series_comparison(ours_by_input_length, "n_input"),
    "p2-rollout": _series_comparison(ours_by_rollout, "step"),
    "p2-depth-sweep": _series_comparison(ours_by_layers, "layers"),
    "p1-comparison": compare_p1,
    "test-time-compute": compare_iterations,
    "cabannes-error-vs-d": compare_law,
    "cabannes-joint": compare_law,
    "cabannes-optimizers": compare_memory,
    "mqar-width": compare_mqar,
    "retrieval-capacity": compare_capacity,
}


# drawing: (rows, comparison points, image path, title, [paper] table) -> the figure
def _depth(rows, points, out, title, paper):
    plots.plot_depth(rows, out, title, paper)


def _law(rows, points, out, title, paper):
    plots.plot_memory_law(rows, out, paper, title)


def _capacity(rows, points, out, title, paper):
    plots.plot_capacity(rows, out, title)


def _series(axis: str, xlabel: str) -> Callable:
    return lambda rows, points, out, title, paper: plots.plot_series(points, axis, out, title, xlabel)


DRAW: dict[str, Callable] = {
    "p2-lookahead": _depth,
    "p2-input-length": _series("n_input", "input states"),
    "p2-rollout": _series("step", "rollout step"),
    "p2-depth-sweep": _depth,
    "p1-comparison": _depth,
    "test-time-compute": lambda rows, points, out, title, paper: plots.plot_iterations(rows, out, title),
    "cabannes-error-vs-d": _law,
    "cabannes-joint": _law,
    "cabannes-optimizers": lambda rows, points, out, title, paper: plots.plot_memory(rows, out, title, paper),
    "mqar-width": _capacity,
    "retrieval-capacity": _capacity,
}


# --- writing -------------------------------------------------------------------------------------------------

def _cell(v) -> str:
    if v is None or v == "":
        return "-"
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 1 or v != int(v) else f"{v:g}"
    return str(v)


def comparison_markdown(fig: Figure, preset: str, points: list[dict]) -> str:
    columns = list(points[0]) if points else ["series", "x", "ours", "published", "difference"]
    lines = [f"# {fig.name} ({fig.paper}), preset {preset}", "", fig.shows + ".", "", fig.note, "",
             "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for p in points:
        cells = [f"{p[c]:+.4f}" if c == "difference" and isinstance(p[c], float)
                 else f"{p[c]:.2f}" if c == "ratio" and p[c] is not None else _cell(p[c]) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_comparison(out: Path, fig: Figure, preset: str, points: list[dict]) -> None:
    from generators.io import atomic_write

    from .collect import write_csv

    if points:
        columns = list(points[0])
        write_csv(out / "comparison.csv", columns, points)
    text = comparison_markdown(fig, preset, points)
    atomic_write(out / "comparison.md", lambda f: f.write(text.encode()))


def summary(points: list[dict]) -> str:
    """One line: how many points have a published number, and how far ours are from them."""
    diffs = [abs(p["difference"]) for p in points if isinstance(p.get("difference"), (int, float))
             and not isinstance(p.get("difference"), bool) and math.isfinite(p["difference"])]
    if not diffs:
        return f"{len(points)} points (published values are qualitative here)"
    return (f"{len(points)} points, {len(diffs)} with a published number: mean |ours - published| "
            f"{np.mean(diffs):.4f}, largest {max(diffs):.4f}")


# --- running a figure ------------------------------------------------------------------------------------------

CAPACITY = {"cpu": dict(ds=[8, 16, 32, 64], trials=20), "paper": dict(ds=[8, 16, 32, 64, 128], trials=50)}
CAPACITY_PAIRS = [1, 2, 4, 8, 16, 32, 64, 128, 256]


def rollout_results(run_dirs: list[Path], steps: int, echo) -> list[dict]:
    """Rollout rows of every run (cached in RUN/eval-rollout.json), in the format of `testbed collect`."""
    from .runs import open_run, read_json, rollout_rows, write_json
    from .spec import EvalConfig, build_config

    rows = []
    for run_dir in run_dirs:
        cached = run_dir / "eval-rollout.json"
        config = read_json(run_dir / "config.json")
        got = read_json(cached)["rows"] if cached.is_file() else []
        if len(got) < steps:
            echo(f"rolling out {run_dir.name} ({config['data']['task']}), {steps} steps")
            resolved, model, generator = open_run(run_dir)
            got = rollout_rows(model, generator, build_config(EvalConfig, resolved["eval"], where="[eval]"), steps)
            write_json(cached, {"data": "test split", "rows": got})
        result = read_json(run_dir / "result.json")
        rows += [{"run_id": run_dir.name, "name": config["name"], "preset": config.get("preset") or "",
                  "model": config["model"]["name"], "params": result["params"], "layers": config["model"].get("n_layer"),
                  "task": config["data"]["task"], "seed": config["seed"], **r, "k": r["value"]} for r in got[:steps]]
    return rows


def reproduce(fig: Figure, preset: str, out_root: Path, runs_dir: Path, launch, experiments: Path, echo=print):
    """Run (or skip) everything the figure needs, draw it, write the comparison. Returns (comparison points, the
    error of the runs that failed or None): the figure is drawn from the runs that finished either way."""
    from . import memory_law
    from .capacity import capacity_rows
    from .collect import BASE_COLUMNS, collect, write_csv

    if preset not in fig.presets:
        raise ConfigError(f"figure {fig.name} has no preset {preset!r}; valid: {', '.join(fig.presets)}")
    spec = specs.load(experiments / fig.spec)
    paper = spec.get("paper", {})
    out = out_root / fig.name
    out.mkdir(parents=True, exist_ok=True)
    title = f"{fig.shows} ({fig.paper}; ours: {preset} preset)"
    failure = None
    if fig.kind == "memory-law":
        ds, (n, m, alpha) = paper["d"], (1000, 5, 2.0)
        if fig.presets[preset] == ("joint",):
            rows = memory_law.joint_rows(ds, paper["T"], n, m, alpha, 20)
        else:
            rows = memory_law.error_vs_d_rows(ds, n, m, alpha, 100)
        write_csv(out / "results.csv", list(rows[0]), rows)
    elif fig.kind == "capacity":
        setting = CAPACITY[preset]
        rows = capacity_rows(["attention", "sum", "delta", "armt"], setting["ds"], CAPACITY_PAIRS, setting["trials"])
        write_csv(out / "results.csv", BASE_COLUMNS, rows)
    else:
        resolved = resolved_runs(fig, preset, experiments)
        echo(f"{fig.name}: {len(resolved)} runs ({preset} preset) in {runs_dir}")
        try:
            launch(resolved, runs_dir, force=False, echo=echo)
        except ConfigError as e:  # some runs failed (diverged, a cluster job died): draw what finished
            failure = str(e)
        by_id = {specs.run_id(r): r for r in resolved}
        columns, rows = collect(runs_dir, run_ids=set(by_id))
        for r in rows:
            r["n_input"] = by_id[r["run_id"]]["data"].get("n_input", "")
        columns += ["n_input"]
        if fig.name == "p2-rollout":
            rows = rollout_results([runs_dir / rid for rid in by_id], len(paper["step"]), echo)
            columns = BASE_COLUMNS
        write_csv(out / "results.csv", columns, rows)
    points = COMPARE[fig.name](rows, paper)
    DRAW[fig.name](rows, points, out / "figure.png", title, paper)
    write_comparison(out, fig, preset, points)
    return points, failure
