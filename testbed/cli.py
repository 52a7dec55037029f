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
from generators.registry import field_help, fields, to_dict, type_name

from . import __version__

app = typer.Typer(
    help="A synthetic reasoning testbed: generate tasks, train small models, draw depth and capacity curves.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
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
    what: str = typer.Argument("generators", help="generators | rules"),
    radius: int = typer.Option(1, help="rules: radius of the cellular automaton"),
    rule: Optional[str] = typer.Option(None, help="rules: print the split of this rule number"),
) -> None:
    """List registered generators (name, config fields, defaults, help) or the train/val/test rule split."""
    if what == "generators":
        for name in generators.names():
            cls = generators.get(name)
            typer.echo(f"{name}  ({cls.__module__}.{cls.__qualname__}, version {cls.version})")
            doc = (cls.__doc__ or "").strip().splitlines()
            if doc:
                typer.echo(f"  {doc[0]}")
            defaults = to_dict(cls.Config())
            hints = typing.get_type_hints(cls.Config)
            for f in fields(cls.Config):
                option = "--" + f.name.replace("_", "-")
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
        raise ConfigError(f"unknown listing {what!r}; valid: generators, rules")


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
    """Generate a dataset. Generator options follow as --field value, e.g.

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
    if json_out:
        gio.atomic_write(gio.check_writable(json_out), lambda f: f.write(json.dumps(res, indent=2).encode()))


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
