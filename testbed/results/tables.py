"""Aggregation of results tables (the CSV of `testbed collect`) into the numbers figures and comparisons need:
depth curves, iteration read-outs, heat maps, capacity and memory tables, and their plain-text renderings.
No drawing here (plots.py draws), so `reproduce` and the CLI can compare numbers without matplotlib.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from generators.core import ConfigError

HEADLINE = "exact_match_nontrivial"  # what depth figures lead with: exact match where a rule-free guess fails
PROTOCOL_COLUMNS = ("exact_match_nontrivial", "exact_match_lo", "exact_match_hi", "n_seeds")
STRATA = {"all": "exact_match", "nontrivial": "exact_match_nontrivial", "fresh": "exact_match_fresh"}
STRATUM_TITLES = {"exact_match": "exact match, every example", "exact_match_nontrivial": "exact match, non-trivial "
                  "stratum", "exact_match_fresh": "exact match, fresh targets"}


def stratum_metric(stratum: str) -> str:
    """The exact-match column of a stratum named as options name it: all, nontrivial (the default) or fresh."""
    if stratum not in STRATA:
        raise ConfigError(f"unknown stratum {stratum!r}; valid: {', '.join(STRATA)}")
    return STRATA[stratum]


def require_stratum(rows: list[dict], metric: str) -> None:
    """A fresh stratum exists only for tasks with a depth axis (and runs collected since it was measured)."""
    if metric.endswith("_fresh") and not any(r.get("n_fresh") not in ("", None) for r in rows):
        raise ConfigError("--stratum fresh: the results table has no fresh stratum (fresh targets are measured on "
                          "tasks with a depth axis, cellular automata and group words; collect their runs again if "
                          "they were collected before it existed)")


def require_protocol(rows: list[dict]) -> None:
    """Depth views read intervals and the non-trivial stratum; a table collected before they existed cannot."""
    missing = [c for c in PROTOCOL_COLUMNS if rows and c not in rows[0]]
    if missing:
        raise ConfigError(f"this results table predates intervals and the non-trivial stratum (no {missing[0]} "
                          "column); collect the runs again: testbed collect RUNS_DIR --out results.csv")


THIN = "too few"  # what a comparison point's interval cells say where its stratum was too thin for an interval


def published_point(row: dict, metric: str) -> tuple:
    """point() for a comparison table: where the row holds a value but its stratum was too thin for an interval
    (aggregate.MIN_UNITS, MIN_CLASSES), the bounds say THIN instead of nan, so that the page says so."""
    mean, lo, hi = point(row, metric)
    if not np.isnan(mean) and row.get(f"{metric}_lo", "") in ("", None) and f"{metric}_lo" in row:
        return mean, THIN, THIN
    return mean, lo, hi


def point(row: dict, metric: str) -> tuple[float, float, float]:
    """(mean, lo, hi) of a metric in a row; nan where the table has no value (no interval, an empty stratum)."""
    def num(key):
        v = row.get(key, "")
        return float(v) if v not in ("", None) else float("nan")
    return num(metric), num(f"{metric}_lo"), num(f"{metric}_hi")


def is_baseline(row: dict) -> bool:
    return str(row.get("model", "")).startswith("baseline:")


def labels(rows: list[dict]) -> dict[str, str]:
    """config_id -> a label: the model (its layers), the task where tasks differ, and the settings that tell apart
    configurations that would otherwise share a label."""
    by_config = {r["config_id"]: r for r in rows if not is_baseline(r)}
    vary_task = len({r["task"] for r in by_config.values()}) > 1
    base = {cid: (f"{r['task']} " if vary_task else "") + (f"{r['model']} L={r['n_layer']}" if r.get("n_layer")
                                                              else r["model"]) for cid, r in by_config.items()}
    out = {}
    for cid, label in base.items():
        twins = [c for c, other in base.items() if other == label]
        if len({by_config[t].get("preset") for t in twins}) > 1:  # presets first (a figure's stages), then what
            label += f" preset={by_config[cid].get('preset')}"  # tells the twins within one preset apart
            twins = [t for t in twins if by_config[t].get("preset") == by_config[cid].get("preset")]
        if len(twins) > 1:
            keys = sorted(k for k in by_config[cid] if k.startswith("cfg.") and k not in ("cfg.eval.iterations",
                                                                                         "cfg.preset")
                          and len({by_config[t].get(k) for t in twins}) > 1)
            label += " " + " ".join(f"{k.split('.')[-1]}={by_config[cid][k]}" for k in keys)
        out[cid] = label
    return out


def _k_rows(rows: list[dict], iterations: bool = False) -> list[dict]:
    """Test rows of the k slice (k = 0, O-SR's rule bits, is not a look-ahead), at the model's own iteration count
    or at the others."""
    return [r for r in rows if r["slice"] == "k" and r["split"] == "test" and r["k"] not in ("", None)
            and int(r["k"]) > 0 and bool(r.get("iterations")) == iterations]


def depth_table(rows: list[dict], metric: str = HEADLINE) -> tuple[dict, dict]:
    """({label: {k: (mean, lo, hi)}} of the models, {baseline: {k: (mean, lo, hi)}}) on the test rows."""
    require_protocol(rows)
    rows = _k_rows(rows)
    if not rows:
        raise ConfigError("the results table has no per-k test rows to plot")
    names = labels(rows)
    models, baselines = defaultdict(dict), defaultdict(dict)
    for r in rows:
        target = baselines[r["model"]] if is_baseline(r) else models[names[r["config_id"]]]
        target[int(r["k"])] = point(r, metric)
    return ({lab: dict(sorted(ks.items())) for lab, ks in models.items()},
            {lab: dict(sorted(ks.items())) for lab, ks in baselines.items()})


def extrapolation_table(rows: list[dict], metric: str = HEADLINE) -> tuple[dict, dict]:
    """depth_table with every weight-tied model read out after as many iterations as steps ahead (iterations = k),
    where it was scored there; other models at their own depth."""
    models, baselines = depth_table(rows, metric)
    names = labels(_k_rows(rows))
    stepped = defaultdict(dict)
    for r in _k_rows(rows, iterations=True):
        if not is_baseline(r) and int(r["iterations"]) == int(r["k"]):
            stepped[names[r["config_id"]]][int(r["k"])] = point(r, metric)
    out = {(f"{lab} (iterations = k)" if lab in stepped else lab): dict(sorted(stepped.get(lab, ks).items()))
           for lab, ks in models.items()}
    return out, baselines


def by_layers(rows: list[dict], metric: str) -> dict:
    """{(layers, k): (mean, lo, hi)} of one model family's per-k test rows."""
    return {(int(r["n_layer"]), int(r["k"])): point(r, metric) for r in _k_rows(rows)
            if not is_baseline(r) and r.get("n_layer") not in ("", None)}


def fmt(p: tuple[float, float, float]) -> str:
    """mean ± half-width of the interval (or the mean alone)."""
    mean, lo, hi = p
    if np.isnan(mean):
        return "-"
    return f"{mean:.3f}" if np.isnan(lo) else f"{mean:.3f} ± {(hi - lo) / 2:.3f}"


def counts(rows: list[dict], column: str) -> str:
    """The distinct values of a count column over the per-k rows, e.g. '9' or '6, 9' ('-' where none)."""
    got = sorted({int(float(r[column])) for r in _k_rows(rows) if r.get(column) not in ("", None)})
    return ", ".join(map(str, got)) or "-"


def format_table(rows: list[dict], metric: str = HEADLINE) -> str:
    """Plain-text table: one line per model and baseline, exact match on the chosen stratum and overall per k
    (mean ± half-width of the 95 % interval over seeds and held-out classes; the mean alone where the stratum is
    too thin for one)."""
    require_stratum(rows, metric)
    lines = []
    for view in dict.fromkeys((metric, "exact_match")):
        models, baselines = depth_table(rows, view)
        ks = sorted({k for c in [*models.values(), *baselines.values()] for k in c})
        width = max(len(lab) for lab in [*models, *baselines]) + 2
        lines += [f"{STRATUM_TITLES[view]} (mean ± 95 % half-width over seeds and held-out classes)",
                  "model".ljust(width) + "".join(f"k={k:<16}" for k in ks)]
        for label, c in [*sorted(models.items()), *sorted(baselines.items())]:
            lines.append(label.ljust(width) + "".join(f"{fmt(c[k]) if k in c else '':<18}" for k in ks))
    seeds = sorted({int(r["n_seeds"]) for r in _k_rows(rows) if not is_baseline(r)})
    stratum = metric.removeprefix("exact_match")
    lines.append(f"seeds per model: {', '.join(map(str, seeds))}; held-out classes per point: "
                 f"{counts(rows, 'n_classes')} ({counts(rows, 'n_rules')} rules)"
                 + (f", in the {stratum.lstrip('_')} stratum: {counts(rows, 'n_classes' + stratum)}" if stratum else "")
                 + (f"; fresh examples per point: {counts(rows, 'n_fresh')}" if stratum == "_fresh" else "")
                 + "; a mean without ± rests on too few examples or classes for an interval")
    return "\n".join(lines)


def published_series(paper: dict | None) -> tuple[str | None, dict]:
    """(x axis 'k' or 'layers', {series: {x: value}}) of a spec's [paper] table, or (None, {})."""
    if not paper:
        return None, {}
    axis = "layers" if "layers" in paper else "k" if "k" in paper else None
    if axis is None:
        return None, {}
    xs = paper[axis]
    series = {name: dict(zip(xs, ys)) for name, ys in paper.items()
              if isinstance(ys, list) and name != axis and len(ys) == len(xs)}
    return axis, series


def iterations_table(rows: list[dict], metric: str = HEADLINE) -> dict:
    """{label: {k: {iterations: (mean, lo, hi)}}} of the rows scored at several iteration counts."""
    require_protocol(rows)
    rows = [r for r in _k_rows(rows, iterations=True) if not is_baseline(r)]
    if not rows:
        raise ConfigError("the results table has no rows at several iteration counts (train or eval with iterations)")
    names = labels(rows)
    table = defaultdict(lambda: defaultdict(dict))
    for r in rows:
        label = names[r["config_id"]] + (f" (trained at {float(r['loops']):g})" if r.get("loops") else "")
        table[label][int(r["k"])][int(r["iterations"])] = point(r, metric)
    return {lab: {k: dict(sorted(its.items())) for k, its in sorted(ks.items())} for lab, ks in table.items()}


def format_iterations(rows: list[dict], metric: str = HEADLINE) -> str:
    require_stratum(rows, metric)
    table = iterations_table(rows, metric)
    lines = []
    for label, ks in sorted(table.items()):
        its = sorted({i for v in ks.values() for i in v})
        lines.append(f"{label}: {STRATUM_TITLES[metric]} per iteration count (± 95 % half-width)")
        lines.append("  k    " + "".join(f"{i:>16}" for i in its))
        for k, v in ks.items():
            lines.append(f"  k={k:<3}" + "".join(f"{fmt(v[i]) if i in v else '':>16}" for i in its))
    return "\n".join(lines)


HEATMAP_AXES = ("n_layer", "loops", "iterations")
AXIS_NAMES = {"n_layer": "layers"}  # how figures label a depth axis


def heatmap_cells(rows: list[dict], by: str, metric: str = HEADLINE) -> dict[tuple[int, int], tuple]:
    """{(depth value, k): (mean, lo, hi)} of the models' test rows."""
    if by not in HEATMAP_AXES:
        raise ConfigError(f"unknown heat-map axis {by!r}; valid: {', '.join(HEATMAP_AXES)}")
    require_protocol(rows)
    rows = [r for r in _k_rows(rows, iterations=by == "iterations")
            if r.get(by) not in ("", None) and not is_baseline(r)]
    if not rows:
        raise ConfigError(f"the results table has no test rows with a {by!r} value")
    return {(int(float(r[by])), int(r["k"])): point(r, metric) for r in rows}


def heatmap_table(rows: list[dict], by: str, metric: str = HEADLINE) -> tuple[list, list, np.ndarray, np.ndarray]:
    """(depth values, k values, mean [depth, k], half-width [depth, k]) of the models' test rows."""
    cells = heatmap_cells(rows, by, metric)
    depths, ks = sorted({d for d, _ in cells}), sorted({k for _, k in cells})
    mean, half = np.full((len(depths), len(ks)), np.nan), np.full((len(depths), len(ks)), np.nan)
    for (d, k), (m, lo, hi) in cells.items():
        mean[depths.index(d), ks.index(k)], half[depths.index(d), ks.index(k)] = m, (hi - lo) / 2
    return depths, ks, mean, half


SOLVED_MEAN, SOLVED_LO = 0.90, 0.85  # a (depth, k) cell is solved: mean and the 95 % lower bound at least these


def staircase(rows: list[dict], by: str = "n_layer", metric: str = HEADLINE) -> dict[int, int | None]:
    """{k: the smallest depth (or loop count) that solves k} (None: no tested depth does): solved means the mean
    exact match on the non-trivial stratum is >= SOLVED_MEAN and its 95 % lower bound >= SOLVED_LO, so one lucky
    seed does not make a step."""
    cells = heatmap_cells(rows, by, metric)
    out = {}
    for k in sorted({k for _, k in cells}):
        solved = [d for (d, kk), (m, lo, _) in cells.items() if kk == k and m >= SOLVED_MEAN and lo >= SOLVED_LO]
        out[k] = min(solved) if solved else None
    return out


def format_heatmap(rows: list[dict], by: str = "n_layer", metric: str = HEADLINE) -> str:
    require_stratum(rows, metric)
    depths, ks, mean, half = heatmap_table(rows, by, metric)
    lines = [f"{by:<10}" + "".join(f"k={k:<14}" for k in ks)]
    for i, d in enumerate(depths):
        lines.append(f"{d:<10}" + "".join(f"{fmt((mean[i, j], mean[i, j] - half[i, j], mean[i, j] + half[i, j])):<16}"
                                           for j in range(len(ks))))
    lines.append(f"{STRATUM_TITLES[metric]}, held-out rules (± 95 % half-width over seeds and classes)")
    return "\n".join(lines)


RECALL_FLOOR = 0.9  # a number of pairs counts as stored when at least this share of queries is recalled


def _family(row: dict) -> str:
    name = {"transformer": "attention"}.get(row["model"], row["model"])
    rule = row.get("cfg.model.rule")
    return f"{name} ({rule} rule)" if rule and row["model"] == "fast_weights" else name


def _validation_score(row: dict) -> tuple[float, float]:
    """What a choice between configurations reads: mean best validation exact match, then cell accuracy."""
    return tuple(float(row[k]) if row.get(k) not in ("", None) else -1.0
                 for k in ("val_exact_match", "val_cell_accuracy"))


def capacity_table(rows: list[dict], intervals: bool = False) -> dict:
    """{family: {d_model: {pairs: (recall accuracy, state size)}}} over the test rows sliced by n_pairs (mean over
    seeds). Where a sweep varies the learning rate, each point keeps the one with the best validation score
    (Zoology reports a sweep's best learning rate; choosing it on the test rows would flatter every family). With
    `intervals`, each value is (recall, state size, lo, hi): its row's 95 % interval (over seeds and examples)."""
    rows = [r for r in rows if r["split"] == "test" and r["slice"] == "n_pairs" and r.get("value") not in ("", None)
            and not is_baseline(r)]
    if not rows:
        raise ConfigError("the results table has no test rows sliced by n_pairs (train MQAR or kv_segments models)")
    chosen: dict = {}
    for r in rows:
        key = (_family(r), int(float(r["d_model"] or 0)), int(r["value"]))
        if key not in chosen or _validation_score(r) > _validation_score(chosen[key]):
            chosen[key] = r
    table: dict = defaultdict(lambda: defaultdict(dict))
    for (fam, d, pairs), r in sorted(chosen.items()):
        size = float(r["state_size"]) if r.get("state_size") not in ("", None) else 0.0
        table[fam][d][pairs] = (float(r["cell_accuracy"]), size)
        if intervals:
            bounds = (r.get(f"cell_accuracy_{b}") for b in ("lo", "hi"))
            table[fam][d][pairs] += tuple(float(b) if b not in ("", None) else float("nan") for b in bounds)
    return {fam: dict(ds) for fam, ds in table.items()}


def capacity(points: dict[int, float], floor: float = RECALL_FLOOR) -> int:
    """The largest number of pairs recalled at >= floor, all smaller tested numbers included (0 if none)."""
    best = 0
    for pairs, value in sorted(points.items()):
        if value < floor:
            break
        best = pairs
    return best


def format_capacity(rows: list[dict], floor: float = RECALL_FLOOR, per_trial: dict | None = None) -> str:
    """Recall per stored pairs and the capacity at `floor`; with `per_trial` ({(family, d): {pairs: each trial's
    share}}), each capacity's 95 % interval over the trials (intervals.threshold_interval)."""
    from .intervals import threshold_interval

    table = capacity_table(rows)
    lines = [f"{'family':<24}{'d':>5}  recall per stored pairs (capacity at >= {floor:.0%} [95 % interval over "
             "trials], state floats)"]
    for fam, ds in sorted(table.items()):
        for d, pts in ds.items():
            cells = " ".join(f"{p}:{v[0]:.2f}" for p, v in pts.items())
            c = capacity({p: v[0] for p, v in pts.items()}, floor)
            trials = (per_trial or {}).get((fam, d))
            bounds = " [{1}, {2}]".format(*threshold_interval(trials, floor)) if trials else ""
            lines.append(f"{fam:<24}{d:>5}  {cells}  (capacity {c}{bounds}, state {int(pts[c][1]) if c else '-'})")
    return "\n".join(lines)


def memory_table(rows: list[dict], intervals: bool = False) -> dict:
    """{preset: {d: mean population error}} of linear-memory runs (error = 1 - exact match on the test split).
    With `intervals`, each value is (error, lo, hi): the 95 % interval of its configuration's exact match (over seeds
    and examples) turned into one of the error; (error, None, None) where several configurations share a point."""
    rows = [r for r in rows if r["split"] == "test" and r["slice"] == "all" and r.get("d_model") not in ("", None)
            and r.get("model") == "linear_memory"]
    if not rows:
        raise ConfigError("the results table has no linear-memory rows (overall, on the test split, with a memory size "
                          "d): `plot memory` draws linear associative memories (linear_memory runs)")
    acc = defaultdict(lambda: defaultdict(list))
    for r in rows:
        acc[r.get("preset") or r["model"]][int(float(r["d_model"]))].append(r)

    def error(group: list[dict]):
        err = float(np.mean([1 - float(r["exact_match"]) for r in group]))
        if not intervals:
            return err
        _, lo, hi = point(group[0], "exact_match")
        if len(group) > 1 or np.isnan(lo) or np.isnan(hi):
            return err, None, None
        return err, 1 - hi, 1 - lo

    return {p: {d: error(group) for d, group in sorted(ds.items())} for p, ds in sorted(acc.items())}


def published_by_d(paper: dict | None) -> dict[str, dict]:
    """{row name: {d: value}} of a [paper] table with a `d` list; {} without one."""
    if not paper or "d" not in paper:
        return {}
    return {k: dict(zip(paper["d"], v)) for k, v in paper.items() if isinstance(v, list) and k != "d"}


def format_memory(rows: list[dict], paper: dict | None = None) -> str:
    table = memory_table(rows)
    published = published_by_d(paper)
    lines = []
    for preset, ds in table.items():
        lines.append(f"{preset}: d, ours, published, ours/published")
        for d, err in ds.items():
            pub = published.get(preset, {}).get(d)
            ratio = f"{err / pub:.2f}" if pub else "-"
            lines.append(f"  {d:>5}  {err:.4f}  {pub if pub is not None else '-':>7}  {ratio}")
    return "\n".join(lines)


# what a facts sweep varies with the world size (its test set and the budget that follows it), not the memory
WORLD_AXES = ("n_entities=", "test_size=", "max_steps=", "plateau_steps=", "val_every=")


def facts_capacity(rows: list[dict]) -> dict:
    """{label: {n_entities: (bits, lo, hi, params, validation bits, active params, world bits, validation bits at
    100 exposures, at 1,000)}} of facts runs: the bits stored that collect counts from the test exact match
    (bits_stored, with its interval), per world size."""
    table = defaultdict(dict)
    models = [r for r in rows if r["split"] == "test" and r["slice"] == "all" and not is_baseline(r)
              and r.get("bits_stored") not in ("", None)]
    if not models:
        raise ConfigError("the results table has no bits_stored: it holds no runs of a memorisation task (facts)")
    names = labels(models)
    for r in models:
        n = int(r.get("n_entities") or r.get("cfg.data.n_entities") or 0)
        bits = [float(r[c]) if r.get(c) not in ("", None) else float("nan")
                for c in ("bits_stored", "bits_stored_lo", "bits_stored_hi")]
        label = " ".join(w for w in names[r["config_id"]].split() if not w.startswith(WORLD_AXES))
        table[label][n] = (*bits, float(r["params"]), float(r.get("val_bits_stored") or "nan"),
                           float(r.get("active_params") or r["params"]), float(r.get("world_bits") or "nan"),
                           *(float(r.get(f"val_bits_at_{e}_exposures") or "nan") for e in (100, 1000)))
    return {lab: dict(sorted(v.items())) for lab, v in sorted(table.items())}


def facts_points(rows: list[dict], per_param: float | None = None) -> list[dict]:
    """Per family and size and world: bits stored and bits per parameter; and per family and size the world it
    stores most of on validation, beside the published bits per parameter."""
    def point(label, n, bits, lo, hi, params, _, active, world, at_100, at_1000, published=None):
        share = bits / world if world > 0 else float("nan")
        return {"series": label, "n_entities": n, "ours": bits, "ours_lo": lo, "ours_hi": hi, "params": params,
                "bits per parameter": bits / params, "active params": active, "bits per active parameter":
                bits / active, "share of world": share, "capacity": "lower bound" if share >= SATURATED else "",
                "bits per parameter at 100 exposures": at_100 / params,
                "bits per parameter at 1000 exposures": at_1000 / params, "published": published}

    out = []
    for label, by_n in facts_capacity(rows).items():
        out += [point(label, n, *t) for n, t in by_n.items()]
        best = max(by_n.values(), key=lambda t: -1.0 if np.isnan(t[4]) else t[4])  # the world it stores most
        # bits of, on validation (not the one it recalls best: a small world recalled whole holds fewer bits)
        out.append(point(label, "best on validation", *best, published=per_param))
    return out


SATURATED = 0.9  # a memory that stores this share of its world may hold more: its bits bound capacity from below


def format_facts(points: list[dict]) -> str:
    lines = [f"{'memory':<40} {'world':>18} {'params':>9} {'active':>9} {'bits stored':>26} {'bits/param':>10} "
             f"{'bits/active':>11} {'at 100 exp.':>11} {'at 1000 exp.':>12}"]
    for p in points:
        lines.append(f"{p['series']:<40} {str(p['n_entities']):>18} {p['params']:>9.0f} {p['active params']:>9.0f} "
                     f"{fmt((p['ours'], p['ours_lo'], p['ours_hi'])):>26} {p['bits per parameter']:>10.3f} "
                     f"{p['bits per active parameter']:>11.3f} {p['bits per parameter at 100 exposures']:>11.3f} "
                     f"{p['bits per parameter at 1000 exposures']:>12.3f} {p['capacity']}")
    return "\n".join(lines)
