"""`testbed list` and `testbed gen`: what is registered, and datasets written as interchange files."""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Optional

import typer

import generators
from generators import ConfigError
from generators import io as gio
from generators.registry import field_help, fields, to_dict, type_name

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
    if what in ("generators", "models"):
        from ..models import MODELS

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
        from generators import ca_rules

        if not 1 <= radius <= 4:
            raise ConfigError(f"radius must be in 1..4, got {radius}")
        if rule is not None:
            number = generators.registry.coerce(int, rule, "rule")
            generators.make("ca", {"radius": radius, "rule": [number], "n_input": 1, "width": 2 * radius + 1})
            table = ca_rules.rule_table(number, radius)
            members = sorted({ca_rules.rule_number(t) for t in ca_rules.images(table)})
            typer.echo(f"rule {number} (radius {radius}): {ca_rules.split_of_rule(number, radius)}; its class "
                       f"(mirror, complement, both): {' '.join(map(str, members))}")
        elif radius == 1:
            split = {int(n): s for s, pool in ca_rules.radius1_split().items() for n in pool}
            classes = ca_rules.radius1_classes()
            for name in ("train", "val", "test"):
                mine = [members for _, members in classes if split[members[0]] == name]
                typer.echo(f"{name} ({len(mine)} classes, {sum(map(len, mine))} rules): "
                           + " ".join("{" + " ".join(map(str, m)) + "}" for m in mine))
        else:
            typer.echo(
                f"radius {radius}: 2^{1 << (2 * radius + 1)} rules; a rule's split is fixed by a hash of its symmetry "
                "class (the rule, its mirror, its complement and both: the smallest of their numbers; train 0.8, val "
                "0.1, test 0.1 of rule space). Ask for one with --rule N."
            )
    else:
        raise ConfigError(f"unknown listing {what!r}; valid: generators, models, rules")


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
) -> None:
    """Generate a dataset; the generator's options follow as --field value.

    \b
    testbed gen ca --width 20 --radius 2 --steps 20 --n 1000 --split test --seed 0 --out test.npz --show 2
    """
    options = parse_extra_options(ctx.args)
    generator = generators.make(name, options)
    generator.check_export(set(options))
    split = generators.check_split(split)
    generators.check_seed(seed)
    if n < 1:
        raise ConfigError(f"--n must be a positive number of examples, got {n}")
    if show < 0:
        raise ConfigError(f"--show must be >= 0, got {show}")
    if out is not None:
        gio.check_writable(out)
        gio.check_writable(gio.meta_path(out))
    from ..limits import check

    check(f"generating {n:,} examples", generator.export_bytes(n), "--n or the generator's sizes")
    arrays = generator.export(split, seed, n)
    if out is not None:
        meta = {
            "format": gio.FORMAT,
            "generator": name,
            "version": generator.version,
            "config": to_dict(generator.config),
            "split": split,
            "seed": seed,
            "n": n,
            "arrays": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in arrays.items()},
            "testbed": __version__,
        }
        data_file, meta_file = gio.save(out, arrays, meta, compress=compress, pack=pack)
        shapes = ", ".join(f"{k} {tuple(v.shape)} {v.dtype}" for k, v in arrays.items())
        typer.echo(f"wrote {data_file} ({shapes}{', bit-packed' if pack else ''}) and {meta_file}")
    if show or out is None:
        typer.echo(generator.show(arrays, show or 3))
