"""A published figure: what it runs, how our numbers are set beside the published ones, how it is drawn.

Reproducing a figure runs what is missing (finished runs are skipped, so a second call only redraws), collects,
draws ours beside the paper and writes the comparison: per point, ours, published, difference.

    OUT/<figure>/results.csv     our numbers (the table of `testbed collect`)
                 results.curves.csv  per validation step, for figures drawn from training curves
                 figure.png      ours beside the published values
                 comparison.csv  per point: series, x, ours, published, difference (ours - published)
                 comparison.md   the same as a Markdown table, with the figure's note
                 meta.json       preset, wall time, machine and commit of the reproduction
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from generators.core import ConfigError
from generators.core.io import atomic_write

from .. import spec as specs


@dataclass
class Context:
    """Where and how a reproduction runs: the preset, the shared runs directory, the launcher, the specs, the seeds
    (None: the spec's own) and where progress lines go."""

    preset: str
    runs_dir: Path
    launch: object
    experiments: Path
    echo: object = print
    seeds: list | None = None
    sets: dict = field(default_factory=dict)  # --set overrides applied to every run

    def runs(self, fig: "Figure") -> list:
        return fig.runs(self.preset, self.experiments, self.seeds, self.sets)


@dataclass
class Results:
    """Our numbers for a figure: the table over seeds (what is compared and drawn), the table per seed, and the
    error of runs that failed (the figure is drawn from those that finished)."""

    columns: list
    rows: list
    seed_columns: list = field(default_factory=list)
    seed_rows: list = field(default_factory=list)
    failure: str | None = None
    paired: list = field(default_factory=list)  # paired differences against a reference configuration
    runs: int = 0  # runs the figure needs
    reused: int = 0  # of those, finished before this call (their training is not in its wall time)
    curves: list = field(default_factory=list)  # per-step rows of figures drawn from training curves
    configs: list = field(default_factory=list)  # the RunConfig of every run the figure needs
    extra: dict = field(default_factory=dict)  # what a figure computed for its own comparison (not written out)


@dataclass(frozen=True)
class Figure:
    name: str
    paper: str
    shows: str
    spec: str  # file under experiments/ that holds the runs and the [paper] table
    estimate: dict  # preset -> expected wall minutes on a 2-core CPU with --jobs 2, or a GPU estimate (str)
    presets: dict = field(default_factory=lambda: {"cpu": ("cpu",), "paper": ("paper",)})
    note: str = ""  # an honest word on what differs from the paper and why
    trains = True  # False: computed in closed form, no runs
    collected = True  # its intervals are collect's (intervals.py over seeds and clusters); False: its own
    reference = ""  # COLUMN=VALUE: the configuration every other is paired against (res.paired), e.g. a family
    intervals = "over seeds and held-out rules (over rules alone where one seed was run)"  # what a page's [lo, hi] is
    # over, in the figure's own words (pages of CA figures reproduced with today's method count seeds and classes)

    def check_preset(self, preset: str) -> None:
        if preset not in self.presets:
            raise ConfigError(f"figure {self.name} has no preset {preset!r}; valid: {', '.join(self.presets)}")

    def runs(self, preset: str, experiments: Path, seeds: list[int] | None = None,
             sets: dict | None = None) -> list:
        """The RunConfigs of every run the figure trains at this preset (`seeds`: instead of the spec's; `sets`:
        overrides of every run)."""
        from ..sweep import resolve_all

        self.check_preset(preset)
        spec = specs.load(experiments / self.spec)
        out: dict = {}  # run id -> config: presets may share a run (the start of the others)
        for p in self.presets[preset]:
            out.update({r.run_id(): r for r in resolve_all(specs.with_preset(spec, p), sets or {}, seeds)})
        return list(out.values())

    def check(self, ctx: Context) -> list:
        """Every run's resolved config, checked before anything is written or started: sizes against the memory cap,
        and a start named by its path (a start named run:ID is trained first, in an earlier wave)."""
        from ..limits import check_run
        from ..store import check_init, start_dir

        resolved = ctx.runs(self)
        for r in resolved:
            check_run(r)
            init = r.train.init_from
            if init and not init.startswith(specs.RUN_START):
                check_init(start_dir(init, ctx.runs_dir), r)
        return resolved

    def results(self, ctx: Context) -> Results:
        """Train what is missing, collect: our numbers over seeds and per seed."""
        from ..results.collect import collect
        from ..sweep import launch_waves

        resolved = self.check(ctx)
        ctx.echo(f"{self.name}: {len(resolved)} runs ({ctx.preset} preset) in {ctx.runs_dir}")
        reused = sum((Path(ctx.runs_dir) / r.run_id() / "result.json").is_file() for r in resolved)
        failure = None
        try:
            launch_waves(ctx.launch, resolved, ctx.runs_dir, force=False, echo=ctx.echo)
        except ConfigError as e:  # some runs failed (diverged, a cluster job died): draw what finished
            failure = str(e)
        ids = {r.run_id() for r in resolved}
        if failure and not any((Path(ctx.runs_dir) / i / "result.json").is_file() for i in ids):
            raise ConfigError(failure)  # nothing finished: the runs' own error, not an empty collection's
        res = Results(*collect(ctx.runs_dir, run_ids=ids), failure=failure, runs=len(resolved), reused=reused,
                      configs=resolved)
        if self.reference:
            from ..results.collect import paired

            res.paired = paired(ctx.runs_dir, self.reference, run_ids=ids)[1]
        return res

    def compare(self, res: Results, paper: dict) -> list[dict]:
        """Comparison points: per point, series, x, ours, published, difference."""
        raise NotImplementedError

    def draw(self, rows: list[dict], points: list[dict], out: Path, title: str, paper: dict) -> None:
        raise NotImplementedError

    def draw_results(self, res: Results, points: list[dict], out: Path, title: str, paper: dict) -> None:
        """The figure from everything measured (figures drawn from training curves read res.curves)."""
        self.draw(res.rows, points, out, title, paper)

    def reproduce(self, ctx: Context, out: Path):
        """Run (or skip) everything the figure needs, draw it, write the comparison into `out`. Returns (comparison
        points, the error of the runs that failed or None): the figure is drawn from the runs that finished either
        way."""
        from ..results.io import write_csv

        preset = ctx.preset
        self.check_preset(preset)
        t0 = time.time()
        paper = specs.load(ctx.experiments / self.spec).get("paper", {})
        out.mkdir(parents=True, exist_ok=True)
        res = self.results(ctx)
        write_csv(out / "results.csv", res.columns, res.rows)
        if res.seed_rows:
            write_csv(out / "results.seeds.csv", res.seed_columns, res.seed_rows)
        if res.paired:
            from ..results.collect import PAIRED_COLUMNS

            write_csv(out / "results.paired.csv", PAIRED_COLUMNS, res.paired)
        if res.curves:
            write_csv(out / "results.curves.csv", list(res.curves[0]), res.curves)
        points = self.compare(res, paper)
        self.draw_results(res, points, out / "figure.png", f"{self.shows} ({self.paper}; ours: {preset} preset)",
                          paper)
        write_comparison(out, self, preset, points)
        write_meta(out, self, preset, time.time() - t0, res.runs, res.reused, ctx.sets)
        return points, res.failure


def compare_series(ours: dict, paper: dict, axis: str) -> list[dict]:
    """One row per published point (and per point of ours the paper lacks): series, x, ours (with its interval when
    ours holds (mean, lo, hi) triples), published, difference, ratio."""
    xs = paper.get(axis, [])  # a [paper] table without this axis has nothing to pair with
    published = {(name, x): y for name, ys in paper.items() if isinstance(ys, list) and name != axis
                 and len(ys) == len(xs) for x, y in zip(xs, ys)}
    keys = sorted(set(published) | set(ours), key=lambda t: (t[0], t[1]))
    triples = any(isinstance(v, tuple) for v in ours.values())
    out = []
    for key in keys:
        a, b = ours.get(key), published.get(key)
        lo = hi = None
        if isinstance(a, tuple):
            a, lo, hi = a
        both = a is not None and b is not None
        row = {"series": key[0], axis: key[1], "ours": a}
        if triples:
            row.update(ours_lo=lo, ours_hi=hi)
        out.append({**row, "published": b, "difference": a - b if both else None,
                    "ratio": a / b if both and b else None})
    return out


def _cell(v) -> str:
    if v is None or v == "" or (isinstance(v, float) and math.isnan(v)):  # nan: an empty stratum
        return "-"
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 1 or v != int(v) else f"{v:g}"
    return str(v)


def comparison_markdown(fig: Figure, preset: str, points: list[dict]) -> str:
    columns = list(dict.fromkeys(c for p in points for c in p)) or ["series", "x", "ours", "published", "difference"]
    lines = [f"# {fig.name} ({fig.paper}), preset {preset}", "", fig.shows + ".", "", fig.note, "",
             "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for p in points:
        cells = [f"{p.get(c):+.4f}" if c == "difference" and isinstance(p.get(c), float)
                 else f"{p[c]:.2f}" if c == "ratio" and p.get(c) is not None else _cell(p.get(c)) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_comparison(out: Path, fig: Figure, preset: str, points: list[dict]) -> None:
    from ..results.io import write_csv

    if points:
        write_csv(out / "comparison.csv", list(dict.fromkeys(c for p in points for c in p)), points)
    text = comparison_markdown(fig, preset, points)
    atomic_write(out / "comparison.md", lambda f: f.write(text.encode()))


def output_name(fig: Figure, preset: str) -> str:
    """The directory of a reproduction under OUT: FIGURE for the cpu preset, FIGURE+PRESET for another (the results
    pages' variants), so that one preset's results never overwrite another's."""
    return fig.name if preset == "cpu" else f"{fig.name}+{preset}"


def write_meta(out: Path, fig: Figure, preset: str, seconds: float, runs: int = 0, reused: int = 0,
               sets: dict | None = None) -> None:
    """What the reproduction cost: wall minutes of this call, and how many of its runs were reused (finished
    before it, so their training is not in the time); the --set overrides it ran with (then not the preset's).
    A call that reused every run only collected and drew again: it keeps the time an earlier call measured for
    the same runs and says when it recollected (and with which interval method)."""
    from ..environment import environment, usable_cores
    from ..results.intervals import METHOD
    from ..store import read_json, write_json
    from . import page_fields

    env = environment(0)
    meta = {"figure": fig.name, "preset": preset, "wall_minutes": round(seconds / 60, 2), "runs": runs,
            "runs_reused": reused, "cores": usable_cores(), "cpu": env["cpu"], "git_commit": env["git_commit"],
            "torch": env["torch"], "finished": env["started"], "sets": sets or {}, "intervals": METHOD,
            "page": page_fields(fig)}
    try:
        earlier = read_json(out / "meta.json") if (out / "meta.json").is_file() else {}
    except ConfigError:  # a damaged file from an earlier call: nothing to keep
        earlier = {}
    same = all(earlier.get(k) == meta[k] for k in ("figure", "preset", "runs", "sets"))
    if runs and reused == runs and same and earlier.get("runs_reused", runs) < runs:
        meta = {**earlier, "page": meta["page"], "intervals": METHOD,  # the time is the runs'; numbers are today's
                "recollected": {"git_commit": env["git_commit"], "finished": env["started"]}}
    write_json(out / "meta.json", meta)


def summary(points: list[dict]) -> str:
    """One line: how many points have a published number, and how far ours are from them."""
    diffs = [abs(p["difference"]) for p in points if isinstance(p.get("difference"), (int, float))
             and not isinstance(p.get("difference"), bool) and math.isfinite(p["difference"])]
    if not diffs:
        return f"{len(points)} points (published values are qualitative here)"
    return (f"{len(points)} points, {len(diffs)} with a published number: mean |ours - published| "
            f"{np.mean(diffs):.4f}, largest {max(diffs):.4f}")
