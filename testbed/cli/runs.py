"""`testbed train`, `eval`, `sweep` and `collect`: runs from specs, scored, and gathered into one table."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from generators.core import ConfigError
from generators.core import io as gio
from generators.core.registry import coerce

from .common import (
    LoggerOption,
    PresetOption,
    SeedsOption,
    SetOption,
    check_image,
    friendly,
    launcher_options,
    load_spec,
    print_rows,
    quiet_lightning,
    run_sets,
)

DevicesOption = typer.Option(None, "--devices", help="devices per run (Lightning DDP); same as --set train.devices=N")
NodesOption = typer.Option(None, "--num-nodes", help="nodes per run (Lightning DDP); same as --set train.num_nodes=N")
StrategyOption = typer.Option(None, "--strategy", help="Lightning strategy, e.g. ddp, ddp_spawn; --set train.strategy")


def register(app: typer.Typer) -> None:
    app.command()(train)
    app.command("eval")(eval_cmd)
    app.command()(probe)
    app.command()(sweep)
    app.command()(collect)


@friendly
def train(
    spec_file: Path = typer.Argument(..., metavar="SPEC.toml", help="experiment spec"),
    sets: Optional[list[str]] = SetOption,
    seed: Optional[int] = typer.Option(None, help="override the spec's seed"),
    preset: Optional[str] = PresetOption,
    out: Path = typer.Option(Path("runs"), help="runs directory; the run goes to OUT/<hash of its config>"),
    force: bool = typer.Option(False, "--force", help="discard an existing run of this config and train afresh"),
    devices: Optional[int] = DevicesOption,
    num_nodes: Optional[int] = NodesOption,
    strategy: Optional[str] = StrategyOption,
    logger: Optional[str] = LoggerOption,
) -> None:
    """Train one run of a spec (its [sweep] is ignored: use `testbed sweep`). Finished runs are skipped,
    interrupted ones resume from their last checkpoint."""
    from .. import spec as specs
    from ..training import train as train_run

    quiet_lightning()
    sets = run_sets(sets, devices, num_nodes, strategy, logger)
    spec, overrides = load_spec(spec_file, preset), specs.parse_sets(sets)
    cfg, starts = specs.resolve_start(spec, specs.resolve(spec, overrides, seed=seed), overrides)
    for start in starts:  # a preset:NAME start first (skipped when it is finished)
        start_dir, _, start_status = train_run(start, out)
        typer.echo(f"start {start_status}: {start_dir}")
    run_dir, result, status = train_run(cfg, out, force=force)
    typer.echo(f"{status}: {run_dir}  ({result['params']} parameters, {result['steps']} steps)")
    print_rows(result["test"])


@friendly
def eval_cmd(
    run_dir: Path = typer.Argument(..., metavar="RUN_DIR", help="a run directory made by train or sweep"),
    k: Optional[str] = typer.Option(None, "--k", help="comma-separated k to evaluate, e.g. 1,2,3,4"),
    data: Optional[Path] = typer.Option(None, "--data", help="an interchange file (testbed gen --out) to evaluate on"),
    size: Optional[int] = typer.Option(None, "--size", help="test examples per k (default: the run's eval.test_size)"),
    iterations: Optional[str] = typer.Option(
        None, "--iterations", help="weight-tied models: comma-separated iteration counts, e.g. 1,2,4,8,16,32 "
        "(one pass at the largest, read out after every iteration); also on a --data file"),
    by: Optional[str] = typer.Option(None, "--by", help="slice by a per-example key instead, e.g. rule_id (which "
                                     "held-out rules are solved, per k)"),
    rollout: int = typer.Option(0, "--rollout", help="feed the model its own next-state predictions this many "
                                "times (P2's autoregressive rollout); accuracy per rollout step"),
    baseline: Optional[list[str]] = typer.Option(None, "--baseline", help="print only these baselines of the task "
                                                 "(repeatable; default: every one)"),
    split: str = typer.Option("test", "--split", help="held-out split: test, or val for choices made after "
                              "training (how far to iterate, which k), so that the test split stays unread"),
) -> None:
    """Evaluate a trained run on held-out rules (per k), or on the orbits of an interchange file; weight-tied models
    also at other iteration counts than they were trained with."""
    from ..run_eval import EvalRequest, evaluate_run

    req = EvalRequest(k=coerce(tuple[int, ...], k, "--k") if k else (), data=data, size=size,
                      iterations=coerce(tuple[int, ...], iterations, "--iterations") if iterations else (), by=by,
                      rollout=rollout, baselines=tuple(baseline or ()), split=split)
    got = evaluate_run(run_dir, req)
    typer.echo(f"{got.model}:")
    print_rows(got.rows)
    for source, rows in got.baselines.items():
        typer.echo(f"{source} (the same examples):")
        print_rows(rows)
    typer.echo(f"wrote {got.path}")


@friendly
def probe(
    run_dir: Path = typer.Argument(..., metavar="RUN_DIR", help="a finished run of a transformer, looped or cot model"),
    k: int = typer.Option(2, "--k", help="probe examples asked this many steps ahead for the states 1..k"),
    size: int = typer.Option(2000, "--size", help="held-out test examples (half fit the probes, half score them)"),
    ridge: float = typer.Option(1e-3, "--ridge", help="L2 penalty of the ridge read-out, per example"),
    out: Optional[Path] = typer.Option(None, "--out", help="also draw the accuracy map (a .png)"),
) -> None:
    """Where inside a trained model is each intermediate state computed? Linear probes of every layer's (or loop's)
    hidden states at the target cells, one per state 1..k steps ahead, with a shuffled-label control."""
    from .. import probe as probes
    from ..limits import check, examples_bytes
    from ..store import open_run, write_json

    if size < 4:
        raise ConfigError(f"--size must be at least 4 (two halves), got {size}")
    if not 0 < ridge < float("inf"):
        raise ConfigError(f"--ridge must be a positive finite number, got {ridge}")
    if k < 1:
        raise ConfigError(f"--k must be at least 1, got {k}")
    check_image(out)  # before the probes are fitted and their JSON written
    cfg, model, generator = open_run(run_dir)
    check("the probe set", examples_bytes(generator, size) * (k + 1), "--k or --size")
    rows = probes.probe(model, generator, k, size, cfg.eval.seed, cfg.eval.batch_size, ridge)
    write_json(run_dir / f"probe-k{k}.json", {"k": k, "size": size, "ridge": ridge, "rows": rows})
    typer.echo(f"{cfg.model_name}: per-cell accuracy of a linear probe for the state j steps ahead "
               f"({size - size // 2} scored examples; control: shuffled labels)")
    typer.echo(f"  {'hidden state':<14}{'step':>5}{'accuracy':>10}{'control':>9}{'selectivity':>13}{'majority':>10}")
    for r in rows:
        typer.echo(f"  {r['state']:<14}{r['step']:>5}{r['accuracy']:>10.4f}{r['control']:>9.4f}"
                   f"{r['selectivity']:>13.4f}{r['majority']:>10.4f}")
    if out is not None:
        from ..results.plots import plot_probe

        plot_probe(rows, out, f"linear probes of {cfg.model_name} (k = {k})")
        typer.echo(f"wrote {out}")
    typer.echo(f"wrote {run_dir / f'probe-k{k}.json'}")


@friendly
@launcher_options(jobs=1)
def sweep(
    spec_file: Path = typer.Argument(..., metavar="SPEC.toml", help="experiment spec with a [sweep] table"),
    sets: Optional[list[str]] = SetOption,
    preset: Optional[str] = PresetOption,
    out: Path = typer.Option(Path("runs"), help="runs directory"),
    dry_run: bool = typer.Option(False, "--dry-run", help="list the runs without training"),
    force: bool = typer.Option(False, "--force", help="retrain runs that are already finished"),
    devices: Optional[int] = DevicesOption,
    num_nodes: Optional[int] = NodesOption,
    strategy: Optional[str] = StrategyOption,
    logger: Optional[str] = LoggerOption,
    seeds: Optional[str] = SeedsOption,
    launch=None,
) -> None:
    """Expand a spec's sweep (grid / zip / one_factor axes, seeds) and run every point; finished runs are skipped.
    `--launcher submitit` submits the runs as a SLURM job array instead (pip install 'testbed[cluster]')."""
    from .. import spec as specs
    from ..sweep import launch_waves, parse_seeds, resolve_all

    quiet_lightning()
    spec = load_spec(spec_file, preset)
    resolved = resolve_all(spec, specs.parse_sets(run_sets(sets, devices, num_nodes, strategy, logger)),
                           parse_seeds(seeds))
    if dry_run:
        for r in resolved:
            rid = r.run_id()
            done = (out / rid / "result.json").is_file()
            typer.echo(f"{rid}  {'done' if done else 'todo'}  seed={r.seed}  {r.model_name} "
                       f"n_layer={getattr(r.model, 'n_layer', '-')} task={getattr(r.data, 'task', '-')}")
        typer.echo(f"{len(resolved)} runs")
        return
    from ..limits import check_run

    for r in resolved:  # every run's sizes, before the first one starts
        check_run(r)
    launch_waves(launch, resolved, out, force=force, echo=typer.echo)


@friendly
def collect(
    runs_dir: Path = typer.Argument(..., metavar="RUNS_DIR", help="directory holding run directories"),
    out: Path = typer.Option(Path("results.csv"), help="CSV to write (and OUT.seeds.csv, per seed, beside it)"),
    against: Optional[str] = typer.Option(None, "--against", help="also write OUT.paired.csv: every configuration "
                                          "minus the one of its task with COLUMN=VALUE (e.g. model=transformer, "
                                          "n_layer=2), paired on the same seeds and examples"),
    stratum: str = typer.Option("nontrivial", help="with --against: the examples the paired exact match is read "
                                "on: nontrivial, fresh (tasks with a depth axis) or all"),
) -> None:
    """Results over seeds (mean and 95 % interval over seeds and held-out symmetry classes, overall and on the
    non-trivial and fresh strata; baselines as rows model = baseline:NAME) in OUT, one row per configuration x slice;
    per seed in OUT.seeds.csv; with --against, paired differences in OUT.paired.csv."""
    from ..results.collect import collect as collect_runs
    from ..results.collect import paired
    from ..results.io import paired_path, seeds_path, write_csv
    from ..results.tables import stratum_metric

    metric = stratum_metric(stratum)
    gio.check_writable(out)
    paired_rows = None
    if against is not None:  # first: a bad --against is an error before anything is written
        paired_columns, paired_rows = paired(runs_dir, against, metric=metric, warn=lambda m: None)
    warn = lambda message: typer.echo(f"warning: {message}", err=True)  # noqa: E731
    columns, rows, seed_columns, seed_rows = collect_runs(runs_dir, warn=warn)
    write_csv(out, columns, rows)
    write_csv(seeds_path(out), seed_columns, seed_rows)
    runs = len({r["run_id"] for r in seed_rows if r["run_id"]})
    typer.echo(f"wrote {out} ({len(rows)} rows over seeds, baselines included) and {seeds_path(out)} "
               f"({len(seed_rows)} rows per seed) from {runs} runs")
    if paired_rows is not None:
        write_csv(paired_path(out), paired_columns, paired_rows)
        for r in paired_rows:
            typer.echo(f"  {r['model']:<16} L={r['n_layer'] or '-':<3} {r['slice']}={r['value']:<3} "
                       f"{r['metric']}: {r['difference']:+.3f} [{r['difference_lo']:+.3f}, {r['difference_hi']:+.3f}]"
                       f" against {r['against']}, {r['n_seeds']} seeds")
        typer.echo(f"wrote {paired_path(out)} ({len(paired_rows)} paired differences)")
