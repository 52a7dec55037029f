"""Sweeps: expand a spec's [sweep] table into runs and execute them serially or on a local process pool.

    [sweep]
    seeds = [0, 1]                                   every point is run with each seed
    grid = { "model.n_layer" = [1, 2], "data.k" = [1, 2] }   the Cartesian product
    zip = { "model.d_model" = [64, 128], "model.n_head" = [2, 4] }   lists advanced together
    one_factor = { "train.lr" = [1e-3, 1e-2] }       each value varied alone around the base spec
    extra = [ { "data.task" = "O-O", "eval.k" = [] } ]   further points, added as they are (not crossed)
"""

from __future__ import annotations

import itertools
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from generators import ConfigError

from . import spec as specs

SWEEP_KEYS = ("seeds", "grid", "zip", "one_factor", "extra")


def points(spec: dict) -> list[tuple[dict, int]]:
    """(overrides, seed) of every run of a spec (the base spec alone when it has no [sweep])."""
    sweep = spec.get("sweep", {})
    specs.check_keys(sweep, SWEEP_KEYS, "[sweep]")
    grid, zipped, one = sweep.get("grid", {}), sweep.get("zip", {}), sweep.get("one_factor", {})
    for name, table in (("grid", grid), ("zip", zipped), ("one_factor", one)):
        if not isinstance(table, dict) or not all(isinstance(v, list) and v for v in table.values()):
            raise ConfigError(f"[sweep] {name} must map dotted keys to non-empty lists of values")
    lengths = {len(v) for v in zipped.values()}
    if len(lengths) > 1:
        raise ConfigError(f"[sweep] zip lists must have equal lengths, got {sorted(lengths)}")
    combos = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
    if zipped:
        rows = [dict(zip(zipped, values)) for values in zip(*zipped.values())]
        combos = [{**c, **r} for c in combos for r in rows]
    if one:
        combos = [{**c, **v} for c in combos for v in [{}] + [{k: x} for k, xs in one.items() for x in xs]]
    extra = sweep.get("extra", [])
    if not isinstance(extra, list) or not all(isinstance(p, dict) for p in extra):
        raise ConfigError("[sweep] extra must be a list of tables of dotted keys, e.g. [{ \"data.task\" = \"O-O\" }]")
    combos += extra
    seeds = sweep.get("seeds", [spec.get("seed", 0)])
    if not isinstance(seeds, list) or not seeds:
        raise ConfigError("[sweep] seeds must be a non-empty list of integers")
    return [(c, s) for c in combos for s in seeds]


def resolve_all(spec: dict, sets: dict) -> list[dict]:
    """Resolved configs of every sweep point (command-line --set applied last), validated before any training."""
    resolved, seen = [], set()
    for overrides, seed in points(spec):
        r = specs.resolve(spec, {**overrides, **sets}, seed=seed)
        rid = specs.run_id(r)
        if rid not in seen:
            seen.add(rid)
            resolved.append(r)
    return resolved


def _run_one(resolved: dict, runs_root: str, force: bool, threads: int):
    import generators

    from .runs import quiet_lightning, train

    generators.registry.load_plugins()  # a fresh worker process: installed plugins register again
    quiet_lightning(level=40)
    if threads:
        resolved = {**resolved, "train": {**resolved["train"], "threads": threads}}

    run_dir, result, status = train(resolved, runs_root, force=force, quiet=True)
    return str(run_dir), result, status


def run_all(resolved: list[dict], runs_root: str | Path, jobs: int = 1, force: bool = False, echo=print) -> list:
    """Run every config (finished runs are skipped); a progress line per run. Returns [(run_dir, result, status)]."""
    total, out, failed = len(resolved), [], []
    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else 0

    def report(i, r, res):
        run_dir, result, status = res
        overall = [row for row in result["test"] if row["slice"] == "all"] or result["test"]
        em = sum(row["exact_match"] for row in overall) / max(1, len(overall))
        echo(f"[{i}/{total}] {status:<7} {Path(run_dir).name}  {r['model']['name']}  "
             f"test exact match {em:.3f}  ({result.get('fit_seconds', 0):.0f} s)")

    if jobs <= 1:
        for i, r in enumerate(resolved, 1):
            res = _run_one(r, str(runs_root), force, 0)
            out.append(res)
            report(i, r, res)
        return out
    import multiprocessing as mp

    with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn")) as pool:
        futures = {pool.submit(_run_one, r, str(runs_root), force, threads): r for r in resolved}
        for i, fut in enumerate(as_completed(futures), 1):
            try:
                res = fut.result()
            except Exception as e:  # keep the other runs going; report this one
                failed.append(str(e))
                echo(f"[{i}/{total}] failed  {specs.run_id(futures[fut])}: {str(e).splitlines()[0]}")
                continue
            out.append(res)
            report(i, futures[fut], res)
    if failed:
        raise ConfigError(f"{len(failed)} of {total} runs failed; first: {failed[0].splitlines()[0]}")
    return out
