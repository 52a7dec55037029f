"""The `testbed` command line. Every command turns bad input into a one-line message and exit code 2."""

from __future__ import annotations

import functools
import json
import typing
from pathlib import Path
from typing import Optional

import typer

import generators
from generators import ConfigError
from generators import io as gio
from generators.registry import did_you_mean, field_help, fields, to_dict, type_name

from . import __version__

app = typer.Typer(
    help="A synthetic reasoning testbed: generate tasks, train small models, draw depth and capacity curves.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain click help: Rich markup would eat the "[sweep]" and "[cluster]" in our texts
)
bench_app = typer.Typer(help="Throughput benchmarks (ratios against references measured in the same run).")
app.add_typer(bench_app, name="bench")


def fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def friendly(fn):
    """Turn bad input (ConfigError, file-system errors) into `error: ...` and exit code 2, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ConfigError as e:
            fail(str(e))
        except OSError as e:
            fail(f"{e.strerror or e} ({e.filename})" if e.filename else str(e))

    return wrapper


def parse_extra_options(args: list[str]) -> dict[str, str]:
    """`--key value`, `--key=value` and bare `--flag` (true) into {key: value}; dashes become underscores."""
    out: dict[str, str] = {}
    i = 0
    while i < len(args):
        token = args[i]
        if not token.startswith("--") or len(token) == 2:
            raise ConfigError(f"unexpected argument {token!r}; generator options look like --width 20")
        key, eq, value = token[2:].partition("=")
        if not eq:
            if i + 1 < len(args) and not args[i + 1].startswith("--"):
                value, i = args[i + 1], i + 1
            else:
                value = "true"
        out[key.replace("-", "_")] = value
        i += 1
    return out


# ------------------------------------------------------------------------------------------------------------------
# list


@app.command("list")
@friendly
def list_cmd(
    what: str = typer.Argument("generators", help="generators | models | rules"),
    radius: int = typer.Option(1, help="rules: radius of the cellular automaton"),
    rule: Optional[str] = typer.Option(None, help="rules: print the split of this rule number"),
) -> None:
    """List registered generators or models (name, config fields, defaults, help), or the CA rule split."""
    if what in ("generators", "models"):
        from .models import MODELS

        registry = generators.registry.GENERATORS if what == "generators" else MODELS
        for name in registry.names():
            cls = registry.get(name)
            typer.echo(f"{name}  ({cls.__module__}.{cls.__qualname__})")
            doc = (cls.__doc__ or "").strip().splitlines()
            if doc:
                typer.echo(f"  {doc[0]}")
            defaults = to_dict(cls.Config())
            hints = typing.get_type_hints(cls.Config)
            for f in fields(cls.Config):
                option = "--" + f.name.replace("_", "-") if what == "generators" else f.name
                kind, default = type_name(hints[f.name]), json.dumps(defaults[f.name])
                typer.echo(f"  {option:<18} {kind:<12} {default:<16} {field_help(f)}")
            typer.echo("")
    elif what == "rules":
        from generators.cellular_automata import radius1_split, split_of_rule

        if not 1 <= radius <= 4:
            raise ConfigError(f"radius must be in 1..4, got {radius}")
        if rule is not None:
            number = generators.registry.coerce(int, rule, "rule")
            generators.make("ca", {"radius": radius, "rule": [number], "n_input": 1, "width": 2 * radius + 1})
            typer.echo(f"rule {number} (radius {radius}): {split_of_rule(number, radius)}")
        elif radius == 1:
            for split, pool in radius1_split().items():
                typer.echo(f"{split} ({len(pool)} rules): {' '.join(map(str, pool.tolist()))}")
        else:
            typer.echo(
                f"radius {radius}: 2^{1 << (2 * radius + 1)} rules; a rule's split is fixed by a hash of its truth "
                "table (train 0.8, val 0.1, test 0.1 of rule space). Ask for one with --rule N."
            )
    else:
        raise ConfigError(f"unknown listing {what!r}; valid: generators, models, rules")


# ------------------------------------------------------------------------------------------------------------------
# gen


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@friendly
def gen(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="generator name (see `testbed list`)"),
    n: int = typer.Option(1000, "--n", help="number of examples"),
    split: str = typer.Option("train", help="train | val | test"),
    seed: int = typer.Option(0, help="dataset seed: same seed, same bytes"),
    out: Optional[Path] = typer.Option(None, help="write FILE.npz and its sidecar FILE.meta.json"),
    show: int = typer.Option(0, help="print the first K examples (orbits as space-time diagrams)"),
) -> None:
    """Generate a dataset; the generator's options follow as --field value.

    \b
    testbed gen ca --width 20 --radius 2 --steps 20 --n 1000 --split test --seed 0 --out test.npz --show 2
    """
    options = parse_extra_options(ctx.args)
    generator = generators.make(name, options)
    split = generators.check_split(split)
    generators.check_seed(seed)
    if n < 1:
        raise ConfigError(f"--n must be a positive number of examples, got {n}")
    if out is not None:
        gio.check_writable(out)
    arrays = generator.export(split, seed, n)
    if out is not None:
        meta = {
            "format": "testbed-interchange/1",
            "generator": name,
            "version": generator.version,
            "config": to_dict(generator.config),
            "split": split,
            "seed": seed,
            "n": n,
            "arrays": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in arrays.items()},
            "testbed": __version__,
        }
        data_file, meta_file = gio.save(out, arrays, meta)
        shapes = ", ".join(f"{k} {tuple(v.shape)} {v.dtype}" for k, v in arrays.items())
        typer.echo(f"wrote {data_file} ({shapes}) and {meta_file}")
    if show or out is None:
        typer.echo(generator.show(arrays, show or 3))


# ------------------------------------------------------------------------------------------------------------------
# bench


def _bench_generators(radius: int, width: int, steps: int, n: int) -> dict:
    from .bench import bench_generators

    generators.make("ca", {"radius": radius, "width": width, "steps": steps, "n_input": 1})
    if n < 1:
        raise ConfigError(f"--n must be positive, got {n}")
    res = bench_generators(radius, width, steps, n)
    typer.echo(f"cellular automata r={radius} W={width} T={steps}, {n} orbits, one core")
    typer.echo(f"  testbed generator (rules + init + evolve) {res['cells_per_s'] / 1e6:10.1f} M cells/s")
    typer.echo(f"  testbed evolve only                       {res['evolve_cells_per_s'] / 1e6:10.1f} M cells/s")
    typer.echo(f"  straightforward numpy (np.roll + gather)  {res['reference_numpy_cells_per_s'] / 1e6:10.1f} M cells/s"
               f"   ratio {res['speedup_vs_numpy']:.1f}x")
    typer.echo(f"  per-example Python                        {res['reference_python_cells_per_s'] / 1e6:10.2f} M cells/s"
               f"   ratio {res['speedup_vs_python']:.0f}x")
    return res


def _bench_train(budget: float, target: float, skip_baseline: bool) -> dict:
    from .bench import BASELINE, OURS, time_to_accuracy, training_throughput

    if budget <= 0 or not 0 < target <= 1:
        raise ConfigError("--budget must be positive and --target in (0, 1]")
    out = {"throughput": training_throughput()}
    t = out["throughput"]
    typer.echo(f"training throughput, {t['shape']} ({t['params']} params), L={t['seq_len']}, batch {t['batch_size']},"
               f" {t['threads']} threads: {t['tokens_per_s']:,.0f} tokens/s, {t['flops_per_s'] / 1e9:.1f} GFLOP/s ="
               f" {100 * t['fraction_of_peak']:.0f}% of the measured matmul peak {t['matmul_peak_flops_per_s'] / 1e9:.1f}"
               " GFLOP/s")
    contenders = {"ours": OURS} if skip_baseline else {"baseline": BASELINE, "ours": OURS}
    for label, recipe in contenders.items():
        res = time_to_accuracy(**recipe, target=target, budget_s=budget)
        name = recipe["model"]
        out[label] = res
        reached = f"{res['seconds_to_target']:.0f} s" if res["seconds_to_target"] else f"not within {budget:.0f} s"
        best = max((h[2] for h in res["history"]), default=0.0)
        typer.echo(f"time to {target:.2f} exact match, {label:<8} ({name}, {res['params']} params): {reached}"
                   f" after {res['steps']} steps (best {best:.3f})")
    if "baseline" in out and out["ours"]["seconds_to_target"]:
        base = out["baseline"]["seconds_to_target"] or budget
        out["speedup"] = base / out["ours"]["seconds_to_target"]
        bound = "" if out["baseline"]["seconds_to_target"] else "at least "
        typer.echo(f"speed-up: {bound}{out['speedup']:.1f}x")
    return out


def _write_json(path: Optional[Path], obj: dict) -> None:
    if path:
        gio.atomic_write(gio.check_writable(path), lambda f: f.write(json.dumps(obj, indent=2).encode()))


@bench_app.command("generators")
@friendly
def bench_generators_cmd(
    radius: int = typer.Option(2, help="rule radius"),
    width: int = typer.Option(20, help="cells per state"),
    steps: int = typer.Option(20, help="orbit length"),
    n: int = typer.Option(100_000, "--n", help="orbits per timing"),
    json_out: Optional[Path] = typer.Option(None, "--json", help="also write the figures as JSON"),
) -> None:
    """Cellular-automata cells generated per second on one core, beside per-example Python and plain numpy."""
    _write_json(json_out, _bench_generators(radius, width, steps, n))


@bench_app.command("train")
@friendly
def bench_train_cmd(
    budget: float = typer.Option(600.0, help="wall-clock cap per contender, seconds"),
    target: float = typer.Option(0.80, help="validation exact match to reach (held-out rules)"),
    skip_baseline: bool = typer.Option(False, "--skip-baseline", help="time only our model"),
    json_out: Optional[Path] = typer.Option(None, "--json", help="also write the figures as JSON"),
) -> None:
    """Time to accuracy (torch's stock TransformerEncoder vs ours, same task and loop) and training throughput
    (tokens/s, achieved FLOP/s against the measured matmul peak) of the P1 model shape."""
    _write_json(json_out, _bench_train(budget, target, skip_baseline))


@bench_app.command("all")
@friendly
def bench_all_cmd(
    n: int = typer.Option(100_000, "--n", help="orbits per generator timing"),
    budget: float = typer.Option(600.0, help="wall-clock cap per time-to-accuracy contender, seconds"),
    target: float = typer.Option(0.80, help="validation exact match to reach"),
    skip_baseline: bool = typer.Option(False, "--skip-baseline", help="time only our model"),
    json_out: Optional[Path] = typer.Option(None, "--json", help="also write every figure as JSON"),
) -> None:
    """Every benchmark in one run, then one summary table: compare a change before and after with --json."""
    if json_out:
        gio.check_writable(json_out)
    gen = _bench_generators(2, 20, 20, n)
    tr = _bench_train(budget, target, skip_baseline)
    t = tr["throughput"]

    def secs(label):
        return f"{tr[label]['seconds_to_target']:.0f} s" if tr.get(label, {}).get("seconds_to_target") else "-"

    table = [
        ("CA generation, r=2 W=20 T=20, one core", f"{gen['cells_per_s'] / 1e6:.0f} M cells/s",
         f"{gen['speedup_vs_numpy']:.1f}x numpy, {gen['speedup_vs_python']:.0f}x Python"),
        (f"training throughput, {t['shape']}", f"{t['tokens_per_s']:,.0f} tokens/s",
         f"{100 * t['fraction_of_peak']:.0f}% of {t['matmul_peak_flops_per_s'] / 1e9:.0f} GFLOP/s peak"),
        (f"time to {target:.2f} exact match (held-out rules)", secs("ours"),
         f"baseline {secs('baseline')}" + (f", {tr['speedup']:.1f}x" if "speedup" in tr else "")),
    ]
    typer.echo("")
    for name, value, ref in table:
        typer.echo(f"{name:<48} {value:>18}   {ref}")
    _write_json(json_out, {"generators": gen, "train": tr})


# ------------------------------------------------------------------------------------------------------------------
# train / eval / sweep / collect / plot / quickstart

SetOption = typer.Option(None, "--set", help="override a spec value: section.key=value (repeatable)")


def quiet_lightning() -> None:
    from .runs import quiet_lightning as quiet  # imported lazily: `list` and `gen` never load torch

    quiet()


def _load_spec(path: Path, preset: Optional[str]) -> dict:
    from . import spec as specs

    return specs.with_preset(specs.load(path), preset)


def print_rows(rows: list[dict]) -> None:
    typer.echo(f"  {'split':<6} {'iters':>5} {'slice':<8} {'value':>8} {'cell acc':>9} {'exact':>7} {'n':>6} {'steps':>6}")
    for r in rows:
        value = "" if r["value"] is None else r["value"]
        steps = f"{r['mean_steps']:.2f}" if "mean_steps" in r else ""
        value = f"{value}@k={r['k']}" if "k" in r else value
        typer.echo(f"  {r['split']:<6} {r.get('iterations') or '':>5} {r['slice']:<8} {value!s:>8} "
                   f"{r['cell_accuracy']:>9.4f} {r['exact_match']:>7.4f} {r['n']:>6} {steps:>6}")


DevicesOption = typer.Option(None, "--devices", help="devices per run (Lightning DDP); same as --set train.devices=N")
NodesOption = typer.Option(None, "--num-nodes", help="nodes per run (Lightning DDP); same as --set train.num_nodes=N")
StrategyOption = typer.Option(None, "--strategy", help="Lightning strategy, e.g. ddp, ddp_spawn; --set train.strategy")


def scale_sets(sets, devices, num_nodes, strategy) -> list[str]:
    """--devices / --num-nodes / --strategy as the --set overrides they stand for."""
    extra = [f"train.{k}={v}" for k, v in (("devices", devices), ("num_nodes", num_nodes), ("strategy", strategy))
             if v is not None]
    return list(sets or []) + extra


JobsOption = typer.Option(1, help="runs at a time on a local process pool (threads are split between them)")
LauncherOption = typer.Option("local", help="local (a process pool of --jobs) | submitit (SLURM job arrays)")
MaxParallelOption = typer.Option(8, "--max-parallel", help="submitit: most runs running at once")
ClusterOption = typer.Option(None, help="submitit: slurm | local (real local subprocesses) | debug; default: "
                             "detect SLURM, else local")
PartitionOption = typer.Option(None, help="submitit: SLURM partition")
GpusOption = typer.Option(0, "--gpus-per-node", help="submitit: GPUs per run")
CpusOption = typer.Option(1, "--cpus-per-task", help="submitit: CPU cores (torch threads) per run")
TimeoutOption = typer.Option(240, "--timeout-min", help="submitit: time limit of each run in minutes")


def launcher_for(launcher: str, jobs: int, max_parallel: int, cluster, partition, gpus_per_node: int,
                 cpus_per_task: int, timeout_min: int):
    """A function (resolved configs, runs dir, force, echo) that runs them with the chosen launcher."""
    from functools import partial

    from .sweep import run_all, run_submitit

    launchers = ("local", "submitit")
    if launcher not in launchers:
        raise ConfigError(f"unknown launcher {launcher!r}{did_you_mean(launcher, launchers)}; valid: local, submitit")
    if jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {jobs}")
    if launcher == "local":
        return partial(run_all, jobs=jobs)
    try:
        import submitit  # noqa: F401
    except ImportError:
        raise ConfigError("--launcher submitit needs the submitit package: pip install 'testbed[cluster]'") from None
    return partial(run_submitit, max_parallel=max_parallel, cluster=cluster, partition=partition,
                   gpus_per_node=gpus_per_node, cpus_per_task=cpus_per_task, timeout_min=timeout_min)


@app.command()
@friendly
def train(
    spec_file: Path = typer.Argument(..., metavar="SPEC.toml", help="experiment spec"),
    sets: Optional[list[str]] = SetOption,
    seed: Optional[int] = typer.Option(None, help="override the spec's seed"),
    preset: Optional[str] = typer.Option(None, help="preset of the spec (default: cpu when it has one)"),
    out: Path = typer.Option(Path("runs"), help="runs directory; the run goes to OUT/<hash of its config>"),
    force: bool = typer.Option(False, "--force", help="discard an existing run of this config and train afresh"),
    devices: Optional[int] = DevicesOption,
    num_nodes: Optional[int] = NodesOption,
    strategy: Optional[str] = StrategyOption,
) -> None:
    """Train one run of a spec (its [sweep] is ignored: use `testbed sweep`). Finished runs are skipped,
    interrupted ones resume from their last checkpoint."""
    from . import spec as specs
    from .runs import Interrupted, train as train_run

    quiet_lightning()
    sets = scale_sets(sets, devices, num_nodes, strategy)
    resolved = specs.resolve(_load_spec(spec_file, preset), specs.parse_sets(sets), seed=seed)
    try:
        run_dir, result, status = train_run(resolved, out, force=force)
    except Interrupted as e:
        fail(str(e))
    typer.echo(f"{status}: {run_dir}  ({result['params']} parameters, {result['steps']} steps)")
    print_rows(result["test"])


@app.command("eval")
@friendly
def eval_cmd(
    run_dir: Path = typer.Argument(..., metavar="RUN_DIR", help="a run directory made by train or sweep"),
    k: Optional[str] = typer.Option(None, "--k", help="comma-separated k to evaluate, e.g. 1,2,3,4"),
    data: Optional[Path] = typer.Option(None, "--data", help="an interchange file (testbed gen --out) to evaluate on"),
    size: Optional[int] = typer.Option(None, "--size", help="test examples per k (default: the run's eval.test_size)"),
    iterations: Optional[str] = typer.Option(
        None, "--iterations", help="weight-tied models: comma-separated iteration counts, e.g. 1,2,4,8,16,32 "
        "(one pass at the largest, read out after every iteration)"),
    by: Optional[str] = typer.Option(None, "--by", help="slice by a per-example key instead, e.g. rule_id (which "
                                     "held-out rules are solved, per k)"),
    rollout: int = typer.Option(0, "--rollout", help="feed the model its own next-state predictions this many "
                                "times (P2's autoregressive rollout); accuracy per rollout step"),
) -> None:
    """Evaluate a trained run on held-out rules (per k), or on the orbits of an interchange file; weight-tied models
    also at other iteration counts than they were trained with."""
    from generators.registry import coerce

    from .runs import evaluate_file, open_run, rollout_rows, test_rows, write_json
    from .spec import EvalConfig, build_config

    ks = list(coerce(tuple[int, ...], k, "--k")) if k else None
    if ks and min(ks) < 1:
        raise ConfigError(f"--k values must be at least 1, got {ks}")
    iters = list(coerce(tuple[int, ...], iterations, "--iterations")) if iterations else []
    if iters and min(iters) < 1:
        raise ConfigError(f"--iterations must be at least 1, got {iters}")
    resolved, model, generator = open_run(run_dir)
    if iters and not getattr(model, "tied", False):
        raise ConfigError(f"model {resolved['model']['name']!r} is not weight-tied: --iterations needs looped or "
                          "recurrent_depth")
    if rollout:
        if iters or by or data is not None or k:
            raise ConfigError("--rollout is scored on the held-out test split alone (no --k, --iterations, --by, --data)")
        ecfg = build_config(EvalConfig, {**resolved["eval"], "test_size": size or resolved["eval"]["test_size"]},
                            where="[eval]")
        rows, name = rollout_rows(model, generator, ecfg, rollout), "eval-rollout.json"
    elif data is not None:
        if iters or by:
            raise ConfigError("--iterations and --by apply to the held-out test split, not to --data files")
        rows = evaluate_file(model, generator, data, ks)
        name = f"eval-{data.name.removesuffix('.npz')}.json"
    else:
        n = size or resolved["eval"]["test_size"]
        if n < 1:
            raise ConfigError(f"--size must be positive, got {n}")
        ecfg = build_config(EvalConfig, {**resolved["eval"], "test_size": n, "k": ks or resolved["eval"]["k"],
                                         "iterations": iters}, where="[eval]")
        rows = test_rows(model, generator, ecfg, by=by)
        rows = [r for r in rows if r.get("iterations")] if iters else rows
        name = "eval-iterations.json" if iters else f"eval-by-{by}.json" if by else "eval-test.json"
    write_json(run_dir / name, {"data": str(data) if data else "test split", "rows": rows})
    print_rows(rows)
    typer.echo(f"wrote {run_dir / name}")


@app.command()
@friendly
def sweep(
    spec_file: Path = typer.Argument(..., metavar="SPEC.toml", help="experiment spec with a [sweep] table"),
    sets: Optional[list[str]] = SetOption,
    preset: Optional[str] = typer.Option(None, help="preset of the spec (default: cpu when it has one)"),
    out: Path = typer.Option(Path("runs"), help="runs directory"),
    jobs: int = JobsOption,
    dry_run: bool = typer.Option(False, "--dry-run", help="list the runs without training"),
    force: bool = typer.Option(False, "--force", help="retrain runs that are already finished"),
    launcher: str = LauncherOption,
    max_parallel: int = MaxParallelOption,
    cluster: Optional[str] = ClusterOption,
    partition: Optional[str] = PartitionOption,
    gpus_per_node: int = GpusOption,
    cpus_per_task: int = CpusOption,
    timeout_min: int = TimeoutOption,
    devices: Optional[int] = DevicesOption,
    num_nodes: Optional[int] = NodesOption,
    strategy: Optional[str] = StrategyOption,
) -> None:
    """Expand a spec's sweep (grid / zip / one_factor axes, seeds) and run every point; finished runs are skipped.
    `--launcher submitit` submits the runs as a SLURM job array instead (pip install 'testbed[cluster]')."""
    from . import spec as specs
    from .sweep import resolve_all

    quiet_lightning()
    launch = launcher_for(launcher, jobs, max_parallel, cluster, partition, gpus_per_node, cpus_per_task, timeout_min)
    resolved = resolve_all(_load_spec(spec_file, preset), specs.parse_sets(scale_sets(sets, devices, num_nodes, strategy)))
    if dry_run:
        for r in resolved:
            rid = specs.run_id(r)
            done = (out / rid / "result.json").is_file()
            m = r["model"]
            typer.echo(f"{rid}  {'done' if done else 'todo'}  seed={r['seed']}  {m['name']} "
                       f"layers={m.get('n_layer', '-')} task={r['data'].get('task', '-')}")
        typer.echo(f"{len(resolved)} runs")
        return
    launch(resolved, out, force=force, echo=typer.echo)


@app.command()
@friendly
def collect(
    runs_dir: Path = typer.Argument(..., metavar="RUNS_DIR", help="directory holding run directories"),
    out: Path = typer.Option(Path("results.csv"), help="CSV to write"),
) -> None:
    """One tidy CSV row per run x split x slice (run_id, model, params, layers, k, cell_accuracy, exact_match, ...)."""
    from .collect import collect as collect_runs, write_csv

    columns, rows = collect_runs(runs_dir)
    gio.check_writable(out)
    write_csv(out, columns, rows)
    typer.echo(f"wrote {out} ({len(rows)} rows from {len({r['run_id'] for r in rows})} runs)")


@app.command()
@friendly
def plot(
    view: str = typer.Argument(..., help="depth | iterations | heatmap | capacity | memory"),
    results: Path = typer.Argument(..., metavar="RESULTS.csv", help="table from `testbed collect`"),
    out: Path = typer.Option(Path("figure.png"), help="image to write (png, pdf, svg)"),
    title: str = typer.Option("", help="figure title"),
    paper: Optional[Path] = typer.Option(None, help="a spec whose [paper] table is drawn beside our curves"),
    by: str = typer.Option("layers", help="heatmap rows: layers | loops | iterations"),
) -> None:
    """Draw a figure from a results table.

    depth: accuracy vs k (one line per model) and vs layers (one per k).
    iterations: exact match vs test-time iterations of weight-tied models (one line per k).
    heatmap: exact match over (layers, loops or iterations) x k.
    capacity: recall vs stored pairs and width, and the capacity curve (most pairs recalled at >= 90 % vs state size).
    memory: population error of linear memories vs d, one line per preset (with --paper: the published rows)."""
    from . import spec as specs
    from .collect import read_csv
    from . import plots

    views = ("depth", "iterations", "heatmap", "capacity", "memory")
    if view not in views:
        raise ConfigError(f"unknown view {view!r}{did_you_mean(view, views)}; valid: {', '.join(views)}")
    rows = read_csv(results)
    gio.check_writable(out)
    published = specs.load(paper).get("paper") if paper else None
    if view == "depth":
        plots.plot_depth(rows, out, title, published)
        typer.echo(plots.format_table(rows))
    elif view == "iterations":
        plots.plot_iterations(rows, out, title)
        typer.echo(plots.format_iterations(rows))
    elif view == "heatmap":
        plots.plot_heatmap(rows, out, title, by)
        typer.echo(plots.format_heatmap(rows, by))
    elif view == "capacity":
        plots.plot_capacity(rows, out, title)
        typer.echo(plots.format_capacity(rows))
    else:
        plots.plot_memory(rows, out, title, published)
        typer.echo(plots.format_memory(rows, published))
    typer.echo(f"wrote {out}")


@app.command("capacity")
@friendly
def capacity_cmd(
    families: str = typer.Option("attention,sum,delta,armt", help="memory mechanisms: attention, sum, delta, armt"),
    d: str = typer.Option("8,16,32,64", "--d", help="key widths"),
    pairs: str = typer.Option("1,2,4,8,16,32,64,128,256", help="numbers of stored key-value pairs"),
    trials: int = typer.Option(20, help="random memories per point"),
    rewrite: bool = typer.Option(False, "--rewrite", help="write every key twice; the newer value must come back"),
    seed: int = typer.Option(0, help="seed of the random keys and values"),
    out: Path = typer.Option(Path("capacity.csv"), help="results table (the format of `testbed collect`)"),
    plot_out: Optional[Path] = typer.Option(None, "--plot", help="also draw `plot capacity` to this image"),
) -> None:
    """Retrieval capacity of the memory mechanisms at each state size: store random pairs, read them back."""
    from generators.registry import coerce

    from . import plots
    from .capacity import capacity_rows
    from .collect import BASE_COLUMNS, write_csv

    ds = list(coerce(tuple[int, ...], d, "--d"))
    ps = list(coerce(tuple[int, ...], pairs, "--pairs"))
    gio.check_writable(out)
    if plot_out is not None:
        gio.check_writable(plot_out)
    rows = capacity_rows([f.strip() for f in families.split(",")], ds, ps, trials, seed, rewrite)
    write_csv(out, BASE_COLUMNS, rows)
    typer.echo(plots.format_capacity(rows))
    if plot_out is not None:
        setting = "rewrite: every key written twice, the newer value asked" if rewrite else "each key written once"
        plots.plot_capacity(rows, plot_out, f"Retrieval capacity of memory mechanisms ({setting})")
    typer.echo(f"wrote {out}" + (f" and {plot_out}" if plot_out else ""))


@app.command("memory-law")
@friendly
def memory_law_cmd(
    figure: str = typer.Argument(..., help="error-vs-d | joint"),
    d: str = typer.Option("10,20,50,100,200,500,1000", "--d", help="memory sizes"),
    samples: str = typer.Option("10,100,1000,10000", "--samples", help="joint: numbers of samples T"),
    n: int = typer.Option(1000, "--n", help="number of inputs N"),
    m: int = typer.Option(5, "--m", help="number of outputs M"),
    alpha: float = typer.Option(2.0, help="Zipf exponent"),
    trials: int = typer.Option(0, help="random embeddings per point (default: 100 for error-vs-d, 20 for joint)"),
    out: Path = typer.Option(Path("memory_law.csv"), help="table of errors"),
    plot_out: Optional[Path] = typer.Option(None, "--plot", help="also draw the figure to this image"),
) -> None:
    """Cabannes et al.'s scaling laws of linear associative memories, in closed form, beside the published values."""
    from generators.registry import coerce

    from . import memory_law, plots
    from . import spec as specs
    from .collect import write_csv

    figures = ("error-vs-d", "joint")
    if figure not in figures:
        raise ConfigError(f"unknown figure {figure!r}{did_you_mean(figure, figures)}; valid: {', '.join(figures)}")
    ds = list(coerce(tuple[int, ...], d, "--d"))
    if n < m or m < 1 or alpha <= 0 or trials < 0:
        raise ConfigError(f"need N >= M >= 1, alpha > 0 and trials >= 0, got N = {n}, M = {m}, alpha = {alpha}")
    gio.check_writable(out)
    if plot_out is not None:
        gio.check_writable(plot_out)
    if figure == "error-vs-d":
        rows = memory_law.error_vs_d_rows(ds, n, m, alpha, trials or 100)
    else:
        ts = list(coerce(tuple[int, ...], samples, "--samples"))
        rows = memory_law.joint_rows(ds, ts, n, m, alpha, trials or 20)
    write_csv(out, list(rows[0]), rows)
    published = specs.load(experiments_dir() / "cabannes_scaling.toml")["paper"] if (n, m, alpha) == (1000, 5, 2.0) else None
    key = (lambda r: f"T={r['T']}") if figure == "joint" else (lambda r: r["scheme"])
    for r in rows:
        pub = dict(zip(published["d"], published.get(key(r), []))).get(r["d"]) if published else None
        extra = f"   published {pub:<7}  ratio {r['error'] / pub:.2f}" if pub else ""
        typer.echo(f"{key(r):<10} d={r['d']:<5} error {r['error']:.4f} ± {r['std']:.4f}{extra}")
    if figure == "error-vs-d":
        for scheme in ("frequency", "threshold"):
            typer.echo(f"fitted log-log slope, {scheme}: {memory_law.fitted_slope(rows, scheme):.3f}")
    if plot_out is not None:
        plots.plot_memory_law(rows, plot_out, published, f"Linear associative memories, N = {n}, M = {m}, α = {alpha}")
    typer.echo(f"wrote {out}" + (f" and {plot_out}" if plot_out else ""))


def experiments_dir() -> Path:
    path = Path(__file__).resolve().parents[1] / "experiments"
    if not path.is_dir():
        raise ConfigError(f"experiments directory not found at {path}; install testbed from a clone (pip install -e .)")
    return path


@app.command()
@friendly
def reproduce(
    figure: Optional[str] = typer.Argument(None, help="figure name (see --list)"),
    list_figures: bool = typer.Option(False, "--list", help="list the figures: paper, what they show, runs, time"),
    preset: str = typer.Option("cpu", help="cpu (2 CPU cores, minutes) | paper (the published recipe, GPU)"),
    out: Path = typer.Option(Path("reproductions"), help="directory for each figure's results, plot and comparison"),
    runs: Optional[Path] = typer.Option(None, help="runs directory (default OUT/runs; shared by every figure)"),
    jobs: int = typer.Option(2, help="runs at a time on the local process pool"),
    launcher: str = LauncherOption,
    max_parallel: int = MaxParallelOption,
    cluster: Optional[str] = ClusterOption,
    partition: Optional[str] = PartitionOption,
    gpus_per_node: int = GpusOption,
    cpus_per_task: int = CpusOption,
    timeout_min: int = TimeoutOption,
) -> None:
    """Reproduce a published figure: run its sweep (finished runs are skipped), collect, draw ours beside the
    published numbers and write the comparison table (per point: ours, published, difference)."""
    from . import reproduce as rp

    quiet_lightning()
    if list_figures:
        typer.echo(f"{'figure':<22}{'paper':<28}{'runs cpu/paper':<16}{'cpu time':<10}  what it shows; paper-preset time")
        for fig in rp.FIGURES.values():
            counts = ("/".join(str(len(rp.resolved_runs(fig, p, experiments_dir()))) for p in ("cpu", "paper"))
                      if fig.kind == "sweep" else "closed form")
            typer.echo(f"{fig.name:<22}{fig.paper:<28}{counts:<16}{rp.estimate(fig, 'cpu'):<10}  {fig.shows}; "
                       f"{rp.estimate(fig, 'paper')}")
        typer.echo("cpu time: wall minutes on 2 CPU cores with --jobs 2 (measured); paper: the published recipe")
        return
    if figure is None:
        raise ConfigError("name a figure (testbed reproduce --list shows them)")
    fig = rp.figure(figure)
    launch = launcher_for(launcher, jobs, max_parallel, cluster, partition, gpus_per_node, cpus_per_task, timeout_min)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"cannot create the output directory {str(out)!r}: {e.strerror}") from None
    points, failure = rp.reproduce(fig, preset, out, runs or out / "runs", launch, experiments_dir(), echo=typer.echo)
    typer.echo(rp.comparison_markdown(fig, preset, points))
    typer.echo(rp.summary(points))
    typer.echo(f"wrote {out / fig.name}/results.csv, figure.png, comparison.csv, comparison.md")
    if failure:
        raise ConfigError(f"{failure} (the figure is drawn from the runs that finished)")


@app.command()
@friendly
def quickstart(
    out: Path = typer.Option(Path("quickstart"), help="directory for runs, results.csv and depth_curve.png"),
    jobs: int = typer.Option(2, help="runs at a time (one core each on a 2-core machine)"),
    sets: Optional[list[str]] = SetOption,
) -> None:
    """Train small transformers of a few depths on held-out-rule CA and draw the reasoning-depth curve."""
    from . import spec as specs
    from .collect import collect as collect_runs, write_csv
    from .plots import format_table, plot_depth
    from .sweep import resolve_all, run_all

    quiet_lightning()
    spec_file = experiments_dir() / "quickstart.toml"
    out.mkdir(parents=True, exist_ok=True)
    resolved = resolve_all(_load_spec(spec_file, None), specs.parse_sets(sets))
    resolved.sort(key=lambda r: -r["model"].get("n_layer", 0))  # deepest first: the pool finishes sooner
    typer.echo(f"quickstart: {len(resolved)} runs from {spec_file.name} into {out / 'runs'}")
    run_all(resolved, out / "runs", jobs=jobs, echo=typer.echo)
    columns, rows = collect_runs(out / "runs", run_ids={specs.run_id(r) for r in resolved})
    write_csv(out / "results.csv", columns, rows)
    plot_depth(rows, out / "depth_curve.png", "Reasoning depth: held-out CA rules (given as input), r=1, W=12")
    typer.echo(format_table(rows))
    typer.echo(f"wrote {out / 'results.csv'} and {out / 'depth_curve.png'}")


@app.callback(invoke_without_command=True)
@friendly
def _root(version: bool = typer.Option(False, "--version", help="print the version and exit")) -> None:
    generators.registry.load_plugins()
    if version:
        typer.echo(f"testbed {__version__}")
        raise typer.Exit()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
