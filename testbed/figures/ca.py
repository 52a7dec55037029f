"""The cellular-automata figures: P2's look-ahead, input length, rollout and depth sweep; P1's family comparison;
Geiping et al.'s test-time compute; depth extrapolation."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from .. import plots, tables
from .. import spec as specs
from .base import Figure, Results, compare_series


def _test_rows(rows: list[dict], baselines: bool = False) -> list[dict]:
    """Test rows at the model's own iteration count: the models', or the baselines'."""
    return [r for r in rows if r["split"] == "test" and not r.get("iterations") and tables.is_baseline(r) == baselines]


def _k(r) -> int | None:
    return int(r["k"]) if r["slice"] == "k" and r["k"] not in ("", None) and int(r["k"]) > 0 else None


def ours_by_task_k(rows, metric, baselines=False):
    """{(series, k): (mean, lo, hi)}: a model's series is its task; a baseline's, 'TASK baseline:NAME'."""
    return {((f"{r['task']} {r['model']}" if baselines else r["task"]), _k(r)): tables.point(r, metric)
            for r in _test_rows(rows, baselines) if _k(r)}


def ours_by_layers(rows, metric, baselines=False):
    """{(k=K, layers): point}; a baseline has no layers, so its row is 'k=K baseline:NAME' at layers 0."""
    if baselines:
        return {(f"k={_k(r)} {r['model']}", 0): tables.point(r, metric) for r in _test_rows(rows, True) if _k(r)}
    return {(f"k={_k(r)}", int(r["n_layer"])): tables.point(r, metric) for r in _test_rows(rows) if _k(r)}


def ours_by_input_length(rows, metric, baselines=False):
    return {((f"{r['task']} {r['model']}" if baselines else r["task"]), int(r["n_input"])): tables.point(r, metric)
            for r in _test_rows(rows, baselines) if r["slice"] == "all" and r.get("n_input") not in ("", None)}


def ours_by_rollout(rows, metric, baselines=False):
    return {((f"{r['task']} {r['model']}" if baselines else r["task"]), int(r["k"])): tables.point(r, metric)
            for r in rows if r["split"] == "rollout" and tables.is_baseline(r) == baselines}


class SeriesFigure(Figure):
    """Ours keyed like the published points, {(series, x): (mean, lo, hi)}, compared point by point in the
    published metric (P2: per-bit accuracy over every example), with the non-trivial stratum and the baselines on
    the same examples beside."""

    axis = "k"
    xlabel = ""

    def ours(self, rows, metric, baselines=False) -> dict:
        raise NotImplementedError

    def compare(self, res, paper):
        metric = paper.get("metric", "cell_accuracy")
        points = compare_series(self.ours(res.rows, metric), paper, self.axis)
        nontrivial = self.ours(res.rows, f"{metric}_nontrivial")
        for p in points:  # the same point on the examples a rule-free predictor misses
            mean, lo, hi = nontrivial.get((p["series"], p[self.axis]), (None, None, None))
            p.update(ours_nontrivial=mean, ours_nontrivial_lo=lo, ours_nontrivial_hi=hi)
        base = compare_series(self.ours(res.rows, metric, baselines=True), {}, self.axis)
        nt = self.ours(res.rows, f"{metric}_nontrivial", baselines=True)
        for p in base:
            mean, lo, hi = nt.get((p["series"], p[self.axis]), (None, None, None))
            p.update(ours_nontrivial=mean, ours_nontrivial_lo=lo, ours_nontrivial_hi=hi)
        return points + base

    def draw(self, rows, points, out, title, paper):
        plots.plot_series(points, self.axis, out, title, self.xlabel)


class Lookahead(SeriesFigure):
    def ours(self, rows, metric, baselines=False):
        return ours_by_task_k(rows, metric, baselines)

    def draw(self, rows, points, out, title, paper):
        plots.plot_depth(rows, out, title, paper, metrics=("cell_accuracy", "exact_match_nontrivial"))


class DepthSweep(SeriesFigure):
    axis = "layers"

    def ours(self, rows, metric, baselines=False):
        return ours_by_layers(rows, metric, baselines)

    def draw(self, rows, points, out, title, paper):
        plots.plot_depth(rows, out, title, paper, metrics=("cell_accuracy", "exact_match_nontrivial"))


class InputLength(SeriesFigure):
    axis, xlabel = "n_input", "input states"

    def results(self, ctx):
        from ..collect import task_id

        res = super().results(ctx)
        n_input = {}
        for r in ctx.runs(self):  # configurations by id, baselines by the task they were scored on
            n_input[r.config_id()] = n_input[task_id(r)] = r.data.n_input
        res.rows = [{**r, "n_input": n_input.get(r["config_id"].rsplit("@", 1)[-1], "")} for r in res.rows]
        res.columns = res.columns + ["n_input"]
        return res

    def ours(self, rows, metric, baselines=False):
        return ours_by_input_length(rows, metric, baselines)


class Rollout(SeriesFigure):
    """Models trained for the next state, fed their own predictions: outcomes per rollout step (cached per run in
    RUN/rollout.npz), over seeds and rules like every other result, the baselines beside."""

    axis, xlabel = "step", "rollout step"

    def results(self, ctx):
        res = super().results(ctx)
        steps = len(specs.load(ctx.experiments / self.spec)["paper"]["step"])  # as many steps as the paper shows
        ids = [r.run_id() for r in ctx.runs(self)]
        done = [ctx.runs_dir / rid for rid in ids if (ctx.runs_dir / rid / "model.pt").is_file()]
        return Results(res.columns, rollout_results(done, steps, ctx.echo), failure=res.failure,
                       runs=res.runs, reused=res.reused)

    def ours(self, rows, metric, baselines=False):
        return ours_by_rollout(rows, metric, baselines)


def rollout_results(run_dirs: list[Path], steps: int, echo) -> list[dict]:
    """Rollout rows over the seeds of each configuration (and of the baselines), the format of `testbed collect`."""
    from generators.io import load

    from .. import aggregate
    from ..collect import task_id
    from ..evaluation import MODEL, rollout_outcomes
    from ..store import open_run, read_config, write_outcomes

    groups, baselines = {}, {}
    for run_dir in run_dirs:
        cached, config = run_dir / "rollout.npz", read_config(run_dir)
        units = load(cached)[0] if cached.is_file() else None
        if units is None or int(units["value"].max()) < steps or "fresh" not in units:  # (or from before fresh)
            echo(f"rolling out {run_dir.name} ({config.data.task}), {steps} steps")
            _, model, generator = open_run(run_dir)
            units = rollout_outcomes(model, generator, config.eval, steps)
            write_outcomes(run_dir, units, "rollout.npz")
        units = {k: v[units["value"] <= steps] for k, v in units.items()}
        model_units = {k: v[units["source"] == MODEL] for k, v in units.items()}
        groups.setdefault(config.config_id(), (config, [], []))[1].append(model_units)
        groups[config.config_id()][2].append(config.seed)
        baselines.setdefault(task_id(config), (config, {k: v[units["source"] != MODEL] for k, v in units.items()}))
    rows = []
    for cid, (config, units, seeds) in groups.items():
        meta = {"config_id": cid, "name": config.name, "model": config.model_name, "task": config.data.task,
                "seeds": ",".join(map(str, seeds))}
        rows += [{**meta, **row} for row in aggregate.rows(units, "rollout")]
    for tid, (config, units) in baselines.items():
        for source in dict.fromkeys(units["source"].tolist()):
            keep = {k: v[units["source"] == source] for k, v in units.items()}
            rows += [{"config_id": f"{source}@{tid}", "name": config.name, "model": source,
                      "task": config.data.task, **row, "n_seeds": 0, "seeds": "-"}
                     for row in aggregate.rows([keep], "rollout")]
    return rows


class FamilyComparison(Figure):
    """Exact match on the non-trivial stratum per family and k, each family's paired difference against the
    same-size transformer (the same seeds and examples), and the largest k solved (the interval's lower bound at or
    above 0.9 for it and every smaller k) against P1's qualitative verdict."""

    reference = "model=transformer"

    def compare(self, res, paper):
        metric = tables.HEADLINE
        table = defaultdict(dict)
        for (model, k), p in ours_by_task_k([{**r, "task": r["model"]} for r in res.rows], metric).items():
            table[model][k] = p
        diffs = {(d["model"], int(d["k"])): d for d in res.paired if d["slice"] == "k" and not d["iterations"]}
        out = []
        for model, ks in sorted(table.items()):
            solved = 0
            for k in sorted(ks):
                if ks[k][1] < 0.9 or solved != k - 1:
                    break
                solved = k
            out.append({"series": model, "x": "largest k solved (lower bound >= 0.9)", "ours": solved,
                        "published": paper.get(model, "-"), "difference": None})  # P1's verdicts are qualitative
            for k, (mean, lo, hi) in sorted(ks.items()):
                d = diffs.get((model, k), {})
                out.append({"series": model, "x": f"exact match (non-trivial) k={k}", "ours": mean, "ours_lo": lo,
                            "ours_hi": hi, "vs transformer": d.get("difference"), "vs_lo": d.get("difference_lo"),
                            "vs_hi": d.get("difference_hi")})
        for (series, k), (mean, lo, hi) in sorted(ours_by_task_k(res.rows, metric, baselines=True).items()):
            out.append({"series": series, "x": f"exact match (non-trivial) k={k}", "ours": mean, "ours_lo": lo,
                        "ours_hi": hi})
        return out

    def draw(self, rows, points, out, title, paper):
        plots.plot_depth(rows, out, title, paper)


class DepthCurve(Figure):
    """The quickstart: exact match on the non-trivial stratum against k, one line per depth, baselines in grey; the
    table beside it also on fresh targets (no earlier state of the orbit) and overall, with the examples and held-out
    classes each stratum rests on."""

    title = "Reasoning depth on held-out rules: each step ahead needs another rule application"
    xlabel = "steps ahead k"

    def compare(self, res, paper):
        names = tables.labels(res.rows)
        out = []
        for r in _test_rows(res.rows) + _test_rows(res.rows, baselines=True):
            if not _k(r):
                continue
            point = {"series": r["model"] if tables.is_baseline(r) else names[r["config_id"]], "k": _k(r)}
            for title, metric, classes in (("exact match (non-trivial)", tables.HEADLINE, "n_classes_nontrivial"),
                                           ("exact match (fresh)", "exact_match_fresh", "n_classes_fresh"),
                                           ("exact match", "exact_match", "n_classes")):
                point[title], point[f"{title}_lo"], point[f"{title}_hi"] = tables.published_point(r, metric)
                point[f"classes ({title.removeprefix('exact match').strip(' ()') or 'all'})"] = r.get(classes, "")
            out.append({**point, "non-trivial share": r["nontrivial_fraction"], "fresh": r.get("n_fresh", ""),
                        "seeds": r["n_seeds"], "rules": r["n_rules"]})
        return out

    def draw(self, rows, points, out, title, paper):
        plots.plot_depth(rows, out, self.title, metrics=(tables.HEADLINE,), xlabel=self.xlabel)


class Quickstart(DepthCurve):
    """The quickstart's curve, and each depth's paired difference against the one-layer model (the same seeds and
    examples): whether a deeper model is better is a paired question."""

    reference = "n_layer=1"


class WordLength(DepthCurve):
    """Group words: accuracy of the prefix product against the prefix length, per group and family."""

    title = "State tracking: the prefix product of a word, against its length"
    intervals = "over seeds and test words (each word its own cluster)"
    xlabel = "prefix length (compositions in sequence)"


class DepthStaircase(Figure):
    """Every (depth, k) cell with its interval, and the smallest depth that solves each k (tables.staircase)
    against the published staircase; `by` is the depth axis of the preset (layers, or loops of a tied block)."""

    def by(self, rows) -> str:
        return "loops" if any(r.get("model") == "looped" for r in rows) else "n_layer"

    def compare(self, res, paper):
        by = self.by(res.rows)
        name = tables.AXIS_NAMES.get(by, by)  # "layers", as the papers say it
        steps = tables.staircase(res.rows, by)
        published = dict(zip(paper.get("k", []), paper.get("smallest_depth", [])))
        out = [{"series": f"smallest {name} solving k", "x": f"k={k}",
                "ours": "-" if steps.get(k) is None else steps[k], "published": published.get(k, "-"),
                "difference": None}
               for k in sorted(set(steps) | set(published))]
        for (d, k), (mean, lo, hi) in sorted(tables.heatmap_cells(res.rows, by).items()):
            out.append({"series": f"{name}={d}", "x": f"exact match (non-trivial) k={k}", "ours": mean, "ours_lo": lo,
                        "ours_hi": hi})
        for (series, k), (mean, lo, hi) in sorted(ours_by_task_k(res.rows, tables.HEADLINE, baselines=True).items()):
            out.append({"series": series, "x": f"exact match (non-trivial) k={k}", "ours": mean, "ours_lo": lo,
                        "ours_hi": hi})
        return out

    def draw(self, rows, points, out, title, paper):
        plots.plot_staircase(rows, out, title, paper, self.by(rows))


class TestTimeCompute(Figure):
    """Exact match on the non-trivial stratum per iteration count of weight-tied models, against the published
    shape (rises to the training count, flat beyond)."""

    def compare(self, res, paper):
        out = []
        for label, ks in tables.iterations_table(res.rows).items():
            for k, its in ks.items():
                counts = sorted(its)
                best = max(counts, key=lambda i: its[i][0])
                out.append({"series": label, "x": f"k={k}", "ours": " / ".join(f"{i}: {tables.fmt(its[i])}"
                                                                                 for i in counts),
                            "published": "non-decreasing up to the training mean, flat beyond",
                            "difference": f"best at {best}; last minus best {its[counts[-1]][0] - its[best][0]:+.3f}"})
        _, baselines = tables.depth_table(res.rows)  # trivial predictors on the same examples: no iterations to vary
        for label, ks in sorted(baselines.items()):
            for k, p in ks.items():
                out.append({"series": label, "x": f"k={k}", "ours": tables.fmt(p), "published": None,
                            "difference": None})
        return out

    def draw(self, rows, points, out, title, paper):
        plots.plot_iterations(rows, out, title)


class DepthExtrapolation(Figure):
    """Exact match on fresh targets (none an earlier state of its orbit: on a periodic grid a far target can repeat a
    near one, and then measures the period, not the depth) against k, weight-tied models iterated k times, beyond the
    largest k of training; the non-trivial stratum beside it, and the examples and held-out classes each point rests
    on. No paper has this on CA: the spec's [paper] table holds our targets, not published numbers."""

    metric = "exact_match_fresh"

    def compare(self, res, paper):
        targets = dict(zip(paper.get("k", []), paper.get("target", [])))
        out = []
        for label, k, r in sorted(self._rows(res.rows), key=lambda t: (tables.is_baseline({"model": t[0]}), t[:2])):
            mean, lo, hi = tables.published_point(r, self.metric)
            goal = targets.get(k) if label.endswith("(iterations = k)") else None
            nt, nt_lo, nt_hi = tables.published_point(r, tables.HEADLINE)
            out.append({"series": label, "k": k, "ours": mean, "ours_lo": lo, "ours_hi": hi,
                        "fresh": r.get("n_fresh", ""), "fresh classes": r.get("n_classes_fresh", ""),
                        "non-trivial": nt, "non-trivial_lo": nt_lo, "non-trivial_hi": nt_hi,
                        "published": f"target >= {goal:.2f}" if goal else None,
                        "difference": (("met" if isinstance(lo, float) and lo >= goal else "missed") if goal
                                       else None)})
        return out

    @staticmethod
    def _rows(rows):
        """(label, k, row) of the test rows per k: a weight-tied model's read out after k iterations (labelled as
        tables.extrapolation_table labels it), every other model's and baseline's at their own depth."""
        names = tables.labels([r for r in rows if not tables.is_baseline(r)] or rows)
        tied = {names[r["config_id"]] for r in rows if not tables.is_baseline(r) and r.get("iterations")}
        for r in rows:
            if r["split"] != "test" or r["slice"] != "k" or not _k(r):
                continue
            if tables.is_baseline(r):
                yield r["model"], _k(r), r
            elif names[r["config_id"]] in tied:
                if r.get("iterations") and int(r["iterations"]) == _k(r):
                    yield f"{names[r['config_id']]} (iterations = k)", _k(r), r
            elif not r.get("iterations"):
                yield names[r["config_id"]], _k(r), r

    def draw(self, rows, points, out, title, paper):
        plots.plot_extrapolation(rows, out, title, trained_k=int(paper.get("trained_k", 0)),
                                 metrics=(self.metric, tables.HEADLINE))


FIGURES = [
    Quickstart("quickstart", "-", "exact match on held-out rules vs steps ahead k, one line per depth",
               "quickstart.toml", {"cpu": 5.0}, presets={"cpu": ("cpu",)},
               note="The first curve: small transformers of a few depths execute an unseen rule (given as input) k "
                    "steps ahead; three seeds, the baselines on the same examples."),
    Lookahead("p2-lookahead", "P2 (Burtsev 2024)", "per-bit accuracy vs steps ahead k for O-S, O-O, O-SR, RO-S",
              "p2_lookahead.toml", {"cpu": 30.0, "paper": "13 runs of 25k-105k steps, d = 512: ~1 GPU-day"},
              note="cpu: radius 1, width 12, d = 64, 2,000 steps, one mixed-k model per task; P2: radius 2, width 20, "
                   "d = 512, one model per task and k."),
    InputLength("p2-input-length", "P2 (Burtsev 2024)", "O-S (k = 1) per-bit accuracy vs number of input states",
                "p2_input_length.toml", {"cpu": 18.0, "paper": "9 runs of 25k steps, d = 512: ~15 GPU-hours"},
                note="cpu: 1..6 input states of radius-1 orbits (the paper: 2..18 of radius 2); points at 2, 4, 6 "
                     "compare."),
    Rollout("p2-rollout", "P2 (Burtsev 2024)", "per-bit accuracy per autoregressive rollout step (fed own predictions)",
            "p2_rollout.toml", {"cpu": 24.0, "paper": "the 4 k = 1 runs of p2-lookahead (shared): ~8 GPU-hours"},
            note="rollout of 10 steps from models trained for k = 1 (O-O: its first predicted state is fed back)."),
    DepthSweep("p2-depth-sweep", "P2 (Burtsev 2024)", "O-O per-step accuracy vs number of layers",
               "p2_depth_sweep.toml", {"cpu": 31.0, "paper": "11 runs of 105k steps, d = 512: ~2 GPU-days"},
               note="cpu: layers 1, 2, 3, 4, 6 at radius 1 and 2,000 steps; the paper: 1..11 at radius 2, 105k steps."),
    FamilyComparison("p1-comparison", "P1 (Rodkin et al. 2025)", "exact match vs k of every depth-extending family",
                     "p1_comparison.toml",
                     {"cpu": 100.0, "cpu-mamba": 60.0,
                      "paper": "30 runs (10 families x 3 seeds) of 40k steps, d = 128: ~3 GPU-days"},
                     presets={"cpu": ("cpu",), "cpu-mamba": ("cpu-mamba",), "cpu-os": ("cpu-os",),
                              "paper": ("paper",)},
                     note="P1 gives the largest k each family solves (qualitative); cpu: the depth-staircase regime "
                          "(RO-O at r = 1: the rule given, one given state, the next four states supervised), every "
                          "family at the two-layer transformer's parameter count; cpu-mamba: Mamba beside the "
                          "transformer on the same regime."),
    DepthStaircase("depth-staircase", "P2 (Burtsev 2024)", "exact match per (depth, k) and the smallest depth that "
                   "solves each k", "depth_staircase.toml",
                   {"cpu": 70.0, "paper": "33 runs of 40k steps, d = 128: ~2 GPU-days", "loops": 70.0, "long": 82.0},
                   presets={"cpu": ("cpu",), "paper": ("paper",), "loops": ("loops",), "long": ("long",)},
                   note=f"cpu: RO-O at r = 1 (the rule given, one given state, the next four states each "
                        f"supervised), depths 1-8, three seeds; "
                        f"solved: mean >= {tables.SOLVED_MEAN:.2f} and 95 % lower bound >= {tables.SOLVED_LO:.2f} "
                        "on the non-trivial stratum. P2's staircase is per-bit accuracy >= 0.9 on O-O at radius 2 with "
                        "the rule inferred, a looser criterion on a harder task: compare the shape, not the depths. "
                        "long: depths 6 and 8 only, at 8,000 steps (twice cpu's), so its smallest depth is the "
                        "smaller of those two; read it beside the cpu map."),
    DepthExtrapolation("depth-extrapolation", "-", "exact match vs k beyond training, weight-tied models iterated k "
                       "times", "depth_extrapolation.toml", {"cpu": 150.0},
                       presets={"cpu": ("cpu",)},
                       note="Trained on k = 4 only, radius-1 rules on a grid of 20 cells with 40 % of the rule space "
                            "held out (32 test classes); a looped block whose read-out after loop j is trained on the "
                            "state j steps ahead, the same with each loop fed the embedding of the previous loop's "
                            "read-out (feedback), the same model trained on the final state alone, and a fixed-depth "
                            "transformer. The headline is exact match on fresh targets, none an earlier state of its "
                            "orbit (the non-trivial stratum beside it); targets (ours, no paper has this on CA): a "
                            "weight-tied model's 95 % lower bound >= 0.90 at k = 16 and 32."),
    WordLength("group-words", "Merrill et al. 2024; P1 v3", "prefix-product accuracy vs word length, Z_5 against "
               "S_5, per family", "group_words.toml", {"cpu": 15.0}, presets={"cpu": ("cpu",)},
               note="No published numbers to match: the claim is the shape (on S_5 the fixed-depth transformer "
                    "falls with length, the LSTM does not; Z_5 has shallow shortcuts: over its unit rotation the "
                    "product is a count mod 5, and a count of at most 16 is in reach of every family, Mamba's "
                    "diagonal recurrence included; its limit, no counting mod m beyond a bounded length in finite "
                    "precision, is Sarrof et al. 2024 and Grazzi et al. 2024, arXiv 2411.12537). Mamba is in TC^0 "
                    "like the transformer, so it too should lose S_5 with length. Words of 16 elements over a "
                    "generating set and the identity (Z_5: the unit rotation; S_5: the swaps), three seeds."),
    TestTimeCompute("test-time-compute", "Geiping et al. 2025", "exact match vs test-time iterations of weight-tied "
                    "models", "test_time_compute.toml", {"cpu": 40.0, "paper": "3 runs of 40k steps: ~6 GPU-hours"},
                    note="published: a curve that rises to the training mean and stays flat beyond it (no numbers to "
                         "match)."),
]
