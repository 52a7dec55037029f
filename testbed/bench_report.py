"""What `testbed bench` reports: the measurements of bench.py run in order, and said as ratios against references
timed in the same run: lines as they are measured, a summary table, and the benchmark page (docs/bench*.md)."""

from __future__ import annotations

import math
from pathlib import Path

import generators
from generators.core import ConfigError

NO_BF16 = "not measured: a bf16 matmul is slower than a float32 one on this CPU (no bf16 matrix units)"


def generators_report(radius: int, width: int, steps: int, n: int, echo=print) -> dict:
    from .bench import bench_generators
    from .limits import check

    gen = generators.make("ca", {"radius": radius, "width": width, "steps": steps, "n_input": 1})
    if n < 1:
        raise ConfigError(f"--n must be positive, got {n}")
    check("the benchmark's orbits", 4 * gen.export_bytes(n), "--n, --width or --steps")  # ours and the references
    res = bench_generators(radius, width, steps, n)
    echo(f"cellular automata r={radius} W={width} T={steps}, {n} orbits, one core")
    echo(f"  testbed generator (rules + init + evolve) {res['cells_per_s'] / 1e6:10.1f} M cells/s")
    echo(f"  testbed evolve only                       {res['evolve_cells_per_s'] / 1e6:10.1f} M cells/s")
    echo(f"  straightforward numpy (np.roll + gather)  {res['reference_numpy_cells_per_s'] / 1e6:10.1f} M cells/s"
               f"   ratio {res['speedup_vs_numpy']:.1f}x")
    python = res["reference_python_cells_per_s"] / 1e6
    echo(f"  per-example Python                        {python:10.2f} M cells/s"
               f"   ratio {res['speedup_vs_python']:.0f}x")
    echo(f"  `testbed gen ca --out` end to end         {res['gen_command_cells_per_s'] / 1e6:10.1f} M cells/s"
               f"   ratio {res['gen_command_vs_numpy']:.2f}x straightforward numpy (a new process, file written)")
    return res


def breakdown(spent: dict) -> str:
    return ", ".join(f"{name} {100 * fraction:.0f}%" for name, fraction in spent.items())


def check_timing(budget: float | None, target: float | None, threads: int) -> None:
    """The options the timed benchmarks share: --budget and --target (where a command has them), --threads."""
    if budget is not None and (not (math.isfinite(budget) and budget > 0) or not 0 < target <= 1):
        raise ConfigError(f"--budget must be a finite positive number of seconds and --target in (0, 1]; got "
                          f"{budget} and {target}")
    if threads < 0:
        raise ConfigError(f"--threads must be 0 (the free cores) or more, got {threads}")


def train_report(budget: float, target: float, skip_baseline: bool, threads: int = 0, seeds: str = "0,1,2",
                 echo=print) -> dict:
    from .bench import BASELINE, OURS, has_bf16_matmul_units, time_to_accuracy_seeds, training_throughput
    from .sweep import parse_seeds

    check_timing(budget, target, threads)
    seed_list = parse_seeds(seeds)
    out = {"throughput": training_throughput(threads=threads)}
    # bf16 on the same threads as float32 (choosing again could see the first measurement's load and take fewer)
    same = out["throughput"]["threads"]
    out["throughput_bf16"] = (training_throughput(threads=same, precision="bf16-mixed")
                              if has_bf16_matmul_units(same) else None)
    for t in filter(None, (out["throughput"], out["throughput_bf16"])):
        peak = t["matmul_peak_flops_per_s"] / 1e9
        echo(f"training throughput, {t['shape']} ({t['params']} params), L={t['seq_len']}, batch"
                   f" {t['batch_size']}, precision {t['precision']}, {t['threads']} threads ({t['threads_chosen']}):"
                   f" {t['tokens_per_s']:,.0f} tokens/s, {t['flops_per_s'] / 1e9:.1f} GFLOP/s ="
                   f" {100 * t['fraction_of_peak']:.0f}% of the measured {t['matmul_dtype']} matmul peak"
                   f" {peak:.1f} GFLOP/s")
        echo(f"  where a step's time goes (profiler, operator self time): {breakdown(t['step_breakdown'])}")
    if out["throughput_bf16"]:
        out["bf16_speedup"] = out["throughput_bf16"]["tokens_per_s"] / out["throughput"]["tokens_per_s"]
        echo(f"bf16-mixed against float32, tokens/s: {out['bf16_speedup']:.2f}x")
    else:
        echo(f"bf16-mixed: {NO_BF16}")
    contenders = {"ours": OURS} if skip_baseline else {"baseline": BASELINE, "ours": OURS}
    for label, recipe in contenders.items():
        res = time_to_accuracy_seeds(recipe, seed_list, target=target, budget_s=budget, threads=threads)
        out[label] = res
        each = ", ".join(f"{r['seconds_to_target']:.0f} s" if r["seconds_to_target"] else f"> {budget:.0f} s"
                         for r in res["per_seed"])
        median, updates = res["median_seconds_to_target"], res["median_updates_to_target"]
        reached = f"{median:.0f} s, {updates:,.0f} updates" if median else f"not within {budget:.0f} s"
        echo(f"time to {target:.2f} exact match, {label:<8} ({recipe['model']}, {res['params']} params):"
                   f" median {reached} over seeds {seeds} ({each})")
    if "baseline" in out and out["ours"]["median_seconds_to_target"]:
        base = out["baseline"]["median_seconds_to_target"] or budget
        out["speedup"] = base / out["ours"]["median_seconds_to_target"]
        bound = "" if out["baseline"]["median_seconds_to_target"] else "at least "
        echo(f"speed-up (ratio of the medians): {bound}{out['speedup']:.1f}x")
    return out


def recipe_search(optimizers: str, lrs: str, batch_sizes: str, seeds: str, budget: float, target: float,
                  threads: int = 0, skip_baseline: bool = False, echo=print) -> dict:
    """`testbed bench recipes`: our bench model's time and updates to `target` validation exact match (held-out
    rules; validation only) for every recipe of the grid optimizer x learning rate x batch size (comma-separated
    lists), the rest of the recipe as `bench train` has it. Each recipe's median over the seeds counts a seed that
    missed as the budget. The stock encoder's recipe (`bench train`'s baseline) is timed first, in the same run,
    unless skipped."""
    from generators.core.registry import coerce

    from .bench import BASELINE, OURS, time_to_accuracy_seeds
    from .spec import OPTIMIZERS
    from .sweep import parse_seeds

    check_timing(budget, target, threads)
    optimizers = [o.strip() for o in optimizers.split(",")]
    lrs, batch_sizes = coerce(tuple[float, ...], lrs, "--lrs"), coerce(tuple[int, ...], batch_sizes, "--batch-sizes")
    bad = [o for o in optimizers if o not in OPTIMIZERS]
    if bad or not optimizers:
        raise ConfigError(f"--optimizers must name some of {', '.join(OPTIMIZERS)}, got {','.join(optimizers)}")
    if not lrs or not all(math.isfinite(lr) and 0 < lr < 10 for lr in lrs):
        raise ConfigError(f"--lrs must be learning rates in (0, 10), got {list(lrs)}")
    if not batch_sizes or not all(1 <= b <= 4096 for b in batch_sizes):
        raise ConfigError(f"--batch-sizes must be in 1..4096, got {list(batch_sizes)}")
    seed_list = parse_seeds(seeds)
    grid = [("ours", {**OURS, "optimizer": o, "lr": lr, "batch_size": b})
            for o in optimizers for lr in lrs for b in batch_sizes]
    rows = []
    for label, recipe in ([] if skip_baseline else [("baseline", BASELINE)]) + grid:
        optimizer, lr, batch = recipe.get("optimizer", "adamw"), recipe["lr"], recipe["batch_size"]
        res = time_to_accuracy_seeds(recipe, seed_list, target=target, budget_s=budget, threads=threads)
        row = {"contender": label, "optimizer": optimizer, "lr": lr, "batch_size": batch, **res}
        rows.append(row)
        each = ", ".join(f"{r['seconds_to_target']:.0f} s/{r['steps_to_target']}" if r["seconds_to_target"]
                         else f"> {budget:.0f} s" for r in res["per_seed"])
        median, updates = res["median_seconds_to_target"], res["median_updates_to_target"]
        echo(f"{label:<8} {optimizer:<6} lr {lr:<8g} batch {batch:<5} median "
             + (f"{median:.0f} s, {updates:,.0f} updates" if median else f"not within {budget:.0f} s")
             + f"  (seconds/updates per seed: {each})")
    return {"target": target, "budget_s": budget, "seeds": seed_list, "recipes": rows}


def pack_report(runs: str, steps: int, threads: int = 0, echo=print) -> dict:
    """`testbed bench pack`: packed against separate training steps for each count of runs."""
    from generators.core.registry import coerce

    from .bench import packed_throughput

    counts = coerce(tuple[int, ...], runs, "--runs")
    if not counts or not all(1 <= n <= 64 for n in counts):
        raise ConfigError(f"--runs must be counts in 1..64, got {runs!r}")
    if not 1 <= steps <= 10_000:
        raise ConfigError(f"--steps must be in 1..10000, got {steps}")
    check_timing(None, None, threads)
    out = []
    for n in counts:
        r = packed_throughput(n, steps=steps, threads=threads)
        out.append(r)
        echo(f"{n} run{'s' * (n > 1)} of the quickstart shape, {r['threads']} thread{'s' * (r['threads'] > 1)}: "
             f"packed {r['packed_tokens_per_s']:,.0f} tokens/s, separate {r['separate_tokens_per_s']:,.0f} = "
             f"{r['ratio']:.2f}x; losses after {steps} steps differ by at most {r['max_loss_difference']:.1e}")
    return {"steps": steps, "results": out}


def recipe_page(search: dict, command: str) -> str:
    """`bench recipes --markdown`: the search as a page (the command, the machine, one row per recipe, and each
    recipe's median time against the stock encoder's, measured in the same run)."""
    from .environment import environment

    env = environment(0)
    rows = search["recipes"]
    base = next((r for r in rows if r["contender"] == "baseline"), None)
    lines = ["# Recipe search: time to accuracy", "", f"`{command}` — generated by that command, on validation only "
             f"(held-out rules of `bench train`'s task; the test split is not read). Target: validation exact match "
             f"{search['target']:g}; a seed that missed counts as the budget ({search['budget_s']:g} s) in the median.",
             "", f"Machine: {env['cpu_count']} CPU cores of {env['cpu']}, torch {env['torch']}, commit "
             f"{str(env['git_commit'])[:10]}, {env['started'][:10]}.", "",
             "| contender | optimizer | lr | batch | median s | median updates | per seed (s / updates) | vs stock |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        med, upd = r["median_seconds_to_target"], r["median_updates_to_target"]
        each = ", ".join(f"{p['seconds_to_target']:.0f} / {p['steps_to_target']}" if p["seconds_to_target"]
                         else "missed" for p in r["per_seed"])
        ratio = "-"
        if base is not None and med and r is not base:
            bound = "" if base["median_seconds_to_target"] else ">= "
            ratio = f"{bound}{(base['median_seconds_to_target'] or search['budget_s']) / med:.1f}x"
        lines.append(f"| {r['contender']} | {r['optimizer']} | {r['lr']:g} | {r['batch_size']} | "
                     f"{f'{med:.0f}' if med else 'missed'} | {f'{upd:,.0f}' if upd else '-'} | {each} | {ratio} |")
    return "\n".join(lines) + "\n"


def everything(n: int, budget: float, target: float, skip_baseline: bool, seeds: str, echo=print) -> tuple:
    """`testbed bench all`: the generator and the training benchmarks, then one summary table. Returns (the
    generators' figures, the training figures, the table's rows (name, ours, against))."""
    from .environment import choose_threads

    # the training threads are chosen before the generator benchmark, whose own core would read as load
    threads, _ = choose_threads(0)
    gen = generators_report(2, 20, 20, n, echo)
    tr = train_report(budget, target, skip_baseline, threads=threads, seeds=seeds, echo=echo)
    t, tb = tr["throughput"], tr["throughput_bf16"]

    def secs(label):
        res = tr.get(label, {})
        median, updates = res.get("median_seconds_to_target"), res.get("median_updates_to_target")
        return (f"{median:.0f} s" + (f", {updates:,.0f} updates" if updates else "")) if median else "-"

    table = [
        ("CA generation, r=2 W=20 T=20, one core", f"{gen['cells_per_s'] / 1e6:.0f} M cells/s",
         f"{gen['speedup_vs_numpy']:.1f}x numpy, {gen['speedup_vs_python']:.0f}x Python"),
        ("`testbed gen ca --out`, end to end", f"{gen['gen_command_cells_per_s'] / 1e6:.0f} M cells/s",
         f"{gen['gen_command_vs_numpy']:.2f}x numpy"),
        (f"training throughput, {t['shape']}, {t['threads']} thread{'s' * (t['threads'] > 1)}",
         f"{t['tokens_per_s']:,.0f} tokens/s",
         f"{100 * t['fraction_of_peak']:.0f}% of {t['matmul_peak_flops_per_s'] / 1e9:.0f} GFLOP/s peak"),
        ("where a training step's time goes", "", breakdown(t["step_breakdown"])),
        (f"training throughput, {t['shape']}, bf16-mixed", f"{tb['tokens_per_s']:,.0f} tokens/s",
         f"{tr['bf16_speedup']:.2f}x float32; {100 * tb['fraction_of_peak']:.0f}% of "
         f"{tb['matmul_peak_flops_per_s'] / 1e9:.0f} GFLOP/s bf16 peak") if tb else
        (f"training throughput, {t['shape']}, bf16-mixed", "-", NO_BF16),
        (f"time to {target:.2f} exact match (held-out rules), median of seeds {seeds}", secs("ours"),
         f"baseline {secs('baseline')}" + (f", {tr['speedup']:.1f}x" if "speedup" in tr else "")),
    ]
    return gen, tr, table


def page(table: list[tuple[str, str, str]], n: int, budget: float, target: float, seeds: str, path: Path) -> str:
    """The summary as the benchmark page: the command, the machine, the table (ratios measured in this run)."""
    from .environment import environment

    env = environment(0)
    lines = ["# Benchmarks", "", f"`testbed bench all --n {n} --budget {budget:g} --target {target:g} --seeds {seeds} "
             f"--markdown {path.as_posix()}` — generated by that command; ratios are against references timed in the "
             "same run (absolute numbers move with the machine).", "",
             f"Machine: {env['cpu_count']} CPU cores of {env['cpu']}, torch {env['torch']}, commit "
             f"{str(env['git_commit'])[:10]}, {env['started'][:10]}.", "",
             "| benchmark | ours | against |", "|---|---|---|"]
    lines += [f"| {name} | {value} | {ref} |" for name, value, ref in table]
    return "\n".join(lines) + "\n"
