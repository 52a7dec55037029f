"""`testbed capacity` and `testbed memory-law`: memories computed without training."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from generators.core import ConfigError
from generators.core import io as gio
from generators.core.registry import coerce

from .common import check_image, experiments_dir, friendly


def register(app: typer.Typer) -> None:
    app.command("capacity")(capacity_cmd)
    app.command("memory-law")(memory_law_cmd)


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
    floor: float = typer.Option(0.9, help="a number of pairs counts as stored when at least this share is recalled"),
) -> None:
    """Retrieval capacity of the memory mechanisms at each state size: store random pairs, read them back; each
    capacity (the most pairs recalled at >= --floor) with its 95 % interval over the random memories."""
    from ..limits import check
    from ..memory.capacity import capacity_rows
    from ..results import plots_memory, tables
    from ..results.collect import BASE_COLUMNS
    from ..results.io import write_csv

    ds = list(coerce(tuple[int, ...], d, "--d"))
    ps = list(coerce(tuple[int, ...], pairs, "--pairs"))
    if not ds or not ps or min(ds + ps) < 1 or trials < 1:
        raise ConfigError("--d, --pairs and --trials must be at least 1")
    if not 0 < floor <= 1:
        raise ConfigError(f"--floor must be a share in (0, 1], got {floor}")
    big_d, big_s = max(ds), max(ps)  # keys, values and reads of every trial, the largest DPFP-3 matrix
    floats = trials * (6 * big_s * big_d + 2 * (6 * big_d) ** 2 + big_s * big_s)
    check("the memories", 4 * floats, "--d, --pairs or --trials")
    gio.check_writable(out)
    check_image(plot_out, "--plot")
    per_trial: dict = {}
    rows = capacity_rows([f.strip() for f in families.split(",")], ds, ps, trials, seed, rewrite, per_trial)
    write_csv(out, BASE_COLUMNS, rows)
    typer.echo(tables.format_capacity(rows, floor, per_trial))
    if plot_out is not None:
        setting = "rewrite: every key written twice, the newer value asked" if rewrite else "each key written once"
        plots_memory.plot_capacity(rows, plot_out, f"Retrieval capacity of memory mechanisms ({setting})")
    typer.echo(f"wrote {out}" + (f" and {plot_out}" if plot_out else ""))


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
    from ..figures.cabannes import memory_law

    ds = list(coerce(tuple[int, ...], d, "--d"))
    ts = list(coerce(tuple[int, ...], samples, "--samples")) if figure == "joint" else []
    check_image(plot_out, "--plot")
    for line in memory_law(figure, ds, ts, n, m, alpha, trials, out, plot_out, experiments_dir()):
        typer.echo(line)
