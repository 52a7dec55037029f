"""`testbed list` and `testbed gen`: what is registered, and datasets written as interchange files."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

import generators
from generators.core import ConfigError
from generators.core import io as gio

from .. import __version__
from .common import friendly, parse_extra_options


def register(app: typer.Typer) -> None:
    app.command("list")(list_cmd)
    app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(gen)


@friendly
def list_cmd(
    what: str = typer.Argument("generators", help="generators | models | rules"),
    radius: int = typer.Option(1, help="rules: radius of the cellular automaton"),
    rule: Optional[str] = typer.Option(None, help="rules: print the split of this rule number"),
) -> None:
    """List registered generators or models (name, config fields, defaults, help), or the CA rule split."""
    if what != "rules" and (radius != 1 or rule is not None):
        raise ConfigError(f"{'--rule' if rule is not None else '--radius'} applies to `testbed list rules`")
    if what == "generators":
        lines = generators.core.registry.GENERATORS.listing(as_options=True)
    elif what == "models":
        from ..models import MODELS

        lines = MODELS.listing()
    elif what == "rules":
        from generators import ca_rules

        number = generators.core.registry.coerce(int, rule, "rule") if rule is not None else None
        lines = ca_rules.listing(radius, number)
    else:
        raise ConfigError(f"unknown listing {what!r}; valid: generators, models, rules")
    for line in lines:
        typer.echo(line)


@friendly
def gen(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="generator name (see `testbed list`)"),
    n: int = typer.Option(1000, "--n", help="number of examples"),
    split: str = typer.Option("train", help="train | val | test"),
    seed: int = typer.Option(0, help="dataset seed: same seed, same bytes"),
    out: Optional[Path] = typer.Option(None, help="write FILE.npz and its sidecar FILE.meta.json"),
    compress: bool = typer.Option(False, "--compress", help="deflate the .npz (smaller, slower: for small shared "
                                  "files)"),
    pack: bool = typer.Option(False, "--pack", help="bit-pack cellular-automata states (8x smaller, still fast)"),
    show: int = typer.Option(0, help="print the first K examples (orbits as space-time diagrams)"),
    format: str = typer.Option("npz", "--format", help="npz (arrays and a sidecar) | jsonl (text items for "
                               "language models: question, answer, metadata; one per line)"),
    style: str = typer.Option("symbolic", help="jsonl: symbolic | natural"),
    k: Optional[int] = typer.Option(None, "--depth", help="jsonl: every item at this look-ahead k (tasks with a depth "
                                    "axis; default: the task's own)"),
) -> None:
    """Generate a dataset; the generator's options follow as --field value.

    \b
    testbed gen ca --width 20 --radius 2 --steps 20 --n 1000 --split test --seed 0 --out test.npz --show 2
    testbed gen ca --task RO-S --radius 1 --width 12 --steps 4 --n-input 2 --depth 2 --split test --format jsonl
    """
    options = parse_extra_options(ctx.args)
    generator = generators.make(name, options)
    split = generators.check_split(split)
    generators.check_seed(seed)
    if n < 1:
        raise ConfigError(f"--n must be a positive number of examples, got {n}")
    if show < 0:
        raise ConfigError(f"--show must be >= 0, got {show}")
    if format not in ("npz", "jsonl"):
        raise ConfigError(f"unknown --format {format!r}; valid: npz, jsonl")
    if format == "jsonl":
        return _gen_jsonl(generator, split, seed, n, out, style, k, pack or compress or show)
    if k is not None or style != "symbolic":
        raise ConfigError("--depth and --style apply to --format jsonl")
    generator.check_export(set(options))
    if out is not None:
        gio.check_writable(out)
        gio.check_writable(gio.meta_path(out))
    from ..limits import check

    check(f"generating {n:,} examples", generator.export_bytes(n), "--n or the generator's sizes")
    arrays, wrote = gio.export(generator, name, split, seed, n, out, compress, pack, __version__)
    if wrote:
        typer.echo(wrote)
    if show or out is None:
        typer.echo(generator.show(arrays, show or 3))


def _gen_jsonl(generator, split: str, seed: int, n: int, out: Optional[Path], style: str, k: Optional[int],
               npz_only) -> None:
    """`gen --format jsonl`: the items of examples 0..n-1 of (split, seed), one JSON object a line."""
    import json

    import numpy as np

    from ..limits import check
    from ..llm.items import render_items
    from ..llm.render import rendering

    if npz_only:
        raise ConfigError("--pack, --compress and --show apply to --format npz")
    rendering(generator, style)
    if k is not None:
        generator.check_depth(k)
    if out is not None:
        gio.check_writable(out)
    check(f"generating {n:,} examples", 4 * generator.export_bytes(n), "--n or the generator's sizes")
    lines = "".join(json.dumps(item) + "\n" for item in render_items(generator, split, seed, np.arange(n), k,
                                                                       style)[0])
    if out is None:
        typer.echo(lines, nl=False)
        return
    gio.atomic_write(out, lambda f: f.write(lines.encode()))
    typer.echo(f"wrote {out} ({n:,} items, {style})")
