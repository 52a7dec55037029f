"""`testbed bench`: throughput benchmarks, reported as ratios against references measured in the same run
(bench_report.py says them, bench.py measures)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from generators.core import io as gio

from .common import friendly

bench_app = typer.Typer(help="Throughput benchmarks (ratios against references measured in the same run).")


def register(app: typer.Typer) -> None:
    app.add_typer(bench_app, name="bench")


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
    """Cellular-automata cells generated per second on one core, beside per-example Python and plain numpy, and
    `testbed gen` end to end."""
    from ..bench_report import generators_report

    if json_out:
        gio.check_writable(json_out)
    _write_json(json_out, generators_report(radius, width, steps, n, typer.echo))


@bench_app.command("train")
@friendly
def bench_train_cmd(
    budget: float = typer.Option(600.0, help="wall-clock cap per contender and seed, seconds"),
    target: float = typer.Option(0.80, help="validation exact match to reach (held-out rules)"),
    skip_baseline: bool = typer.Option(False, "--skip-baseline", help="time only our model"),
    threads: int = typer.Option(0, help="torch threads; 0: the cores free now, as a run chooses them"),
    seeds: str = typer.Option("0,1,2", help="training seeds of the time-to-accuracy runs (the median is reported)"),
    json_out: Optional[Path] = typer.Option(None, "--json", help="also write the figures as JSON"),
) -> None:
    """Time to accuracy (torch's stock TransformerEncoder vs ours, same task and loop, median over seeds) and
    training throughput (tokens/s, achieved FLOP/s against the measured matmul peak, float32 and bf16-mixed) of the
    P1 model shape."""
    from ..bench_report import train_report

    if json_out:
        gio.check_writable(json_out)
    _write_json(json_out, train_report(budget, target, skip_baseline, threads, seeds, typer.echo))


@bench_app.command("recipes")
@friendly
def bench_recipes_cmd(
    optimizers: str = typer.Option("adamw,muon", help="optimizers to try, comma-separated (adamw, muon, sgd)"),
    lrs: str = typer.Option("0.003", help="peak learning rates to try, comma-separated"),
    batch_sizes: str = typer.Option("32", help="batch sizes to try, comma-separated"),
    budget: float = typer.Option(600.0, help="wall-clock cap per recipe and seed, seconds"),
    target: float = typer.Option(0.80, help="validation exact match to reach (held-out rules)"),
    threads: int = typer.Option(0, help="torch threads; 0: the cores free now, as a run chooses them"),
    seeds: str = typer.Option("0,1,2", help="training seeds (the median is reported)"),
    skip_baseline: bool = typer.Option(False, "--skip-baseline", help="do not time the stock encoder's recipe"),
    json_out: Optional[Path] = typer.Option(None, "--json", help="also write the results as JSON"),
    markdown: Optional[Path] = typer.Option(None, "--markdown", help="also write the search as a Markdown page"),
) -> None:
    """A recipe search on validation: time and updates to --target for each optimizer x learning rate x batch size
    of `bench train`'s model and task (median over seeds), beside the stock encoder's recipe timed in the same run."""
    from ..bench_report import recipe_page, recipe_search

    for path in (json_out, markdown):
        if path:
            gio.check_writable(path)
    search = recipe_search(optimizers, lrs, batch_sizes, seeds, budget, target, threads, skip_baseline, typer.echo)
    _write_json(json_out, search)
    if markdown:
        command = (f"testbed bench recipes --optimizers {optimizers} --lrs {lrs} --batch-sizes {batch_sizes} --budget "
                   f"{budget:g} --target {target:g} --seeds {seeds}{f' --threads {threads}' * bool(threads)}"
                   f"{' --skip-baseline' * skip_baseline} --markdown "
                   f"{markdown.as_posix()}")
        gio.atomic_write(markdown, lambda f: f.write(recipe_page(search, command).encode()))


@bench_app.command("pack")
@friendly
def bench_pack_cmd(
    runs: str = typer.Option("1,3,6", help="runs packed into one model, comma-separated counts to time"),
    steps: int = typer.Option(30, help="timed training steps"),
    threads: int = typer.Option(0, help="torch threads; 0: the cores free now, as a run chooses them"),
    json_out: Optional[Path] = typer.Option(None, "--json", help="also write the results as JSON"),
) -> None:
    """Several runs of the quickstart's shape trained as one batched model (stacked weights, vmap) against the same
    runs stepped one after another on the same threads: tokens/s of both, and how far their losses drift apart."""
    from ..bench_report import pack_report

    if json_out:
        gio.check_writable(json_out)
    _write_json(json_out, pack_report(runs, steps, threads, typer.echo))


@bench_app.command("all")
@friendly
def bench_all_cmd(
    n: int = typer.Option(100_000, "--n", help="orbits per generator timing"),
    budget: float = typer.Option(600.0, help="wall-clock cap per time-to-accuracy contender and seed, seconds"),
    target: float = typer.Option(0.80, help="validation exact match to reach"),
    skip_baseline: bool = typer.Option(False, "--skip-baseline", help="time only our model"),
    seeds: str = typer.Option("0,1,2", help="training seeds of the time-to-accuracy runs (the median is reported)"),
    json_out: Optional[Path] = typer.Option(None, "--json", help="also write every figure as JSON"),
    markdown: Optional[Path] = typer.Option(None, "--markdown", help="also write the summary as a Markdown page "
                                            "(the README's docs/bench*.md, one per machine)"),
) -> None:
    """Every benchmark in one run, then one summary table: compare a change before and after with --json."""
    from ..bench_report import everything, page

    for path in (json_out, markdown):
        if path:
            gio.check_writable(path)
    gen, tr, table = everything(n, budget, target, skip_baseline, seeds, typer.echo)
    typer.echo("")
    for name, value, ref in table:
        typer.echo(f"{name:<48} {value:>18}   {ref}")
    _write_json(json_out, {"generators": gen, "train": tr})
    if markdown:
        gio.atomic_write(markdown, lambda f: f.write(page(table, n, budget, target, seeds, markdown).encode()))
