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
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from generators.core import ConfigError

from . import spec as specs

SWEEP_KEYS = ("seeds", "grid", "zip", "one_factor", "extra")


def parse_seeds(text: str | None) -> list[int] | None:
    """`--seeds 0,1,2`: distinct non-negative integers (None: the spec's own)."""
    if text is None:
        return None
    from generators.core.registry import coerce

    seeds = list(coerce(tuple[int, ...], text, "--seeds"))
    if not seeds:
        raise ConfigError("--seeds is empty; give seeds such as --seeds 0,1,2")
    if min(seeds) < 0:
        raise ConfigError(f"--seeds must be non-negative integers, got {text!r}")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds lists a seed twice: {text!r}")
    return seeds


def points(spec: dict, seeds: list[int] | None = None) -> list[tuple[dict, int]]:
    """(overrides, seed) of every run of a spec (the base spec alone when it has no [sweep]); `seeds` replaces the
    spec's seeds."""
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
    seeds = seeds if seeds is not None else sweep.get("seeds", [spec.get("seed", 0)])
    if not isinstance(seeds, list) or not seeds:
        raise ConfigError("[sweep] seeds must be a non-empty list of integers")
    return [(c, s) for c in combos for s in seeds]


def resolve_all(spec: dict, sets: dict, seeds: list[int] | None = None) -> list[specs.RunConfig]:
    """The RunConfigs of every sweep point (command-line --set applied last), validated before any training."""
    resolved, seen = [], set()
    for overrides, seed in points(spec, seeds):
        r, starts = specs.resolve_start(spec, specs.resolve(spec, {**overrides, **sets}, seed=seed), sets)
        for c in (*starts, r):  # a preset:NAME start is trained before the runs that start from it
            rid = c.run_id()
            if rid not in seen:
                seen.add(rid)
                resolved.append(c)
    return resolved


def waves(resolved: list) -> list[list]:
    """The configs in the order they can train: first those that start from no run of the list, then those whose
    start (train.init_from = run:ID) is in an earlier wave."""
    ids = {r.run_id(): r for r in resolved}
    level: dict = {}

    def depth(r) -> int:
        rid = r.run_id()
        if rid not in level:
            start = r.train.init_from.removeprefix(specs.RUN_START)
            level[rid] = 1 + depth(ids[start]) if start in ids and start != rid else 0
        return level[rid]

    out: dict = {}
    for r in resolved:
        out.setdefault(depth(r), []).append(r)
    return [out[k] for k in sorted(out)]


def launch_waves(launch, resolved: list, runs_root, **kwargs) -> None:
    """`launch` (run_all, run_submitit) one wave at a time; the failures of a wave are reported after the later
    waves ran (their runs that need a failed start fail with the reason); an interruption stops them all."""
    from .training import Interrupted

    errors = []
    for wave in waves(resolved):
        try:
            launch(wave, runs_root, **kwargs)
        except Interrupted:
            raise
        except ConfigError as e:
            errors.append(str(e))
    if errors:
        raise ConfigError(errors[0] if len(errors) == 1 else f"{errors[0]} (and failures in {len(errors) - 1} "
                          "later waves)")


_BUSY: list = []  # a pool worker's run in progress (orphan_guard waits for it to save before the worker leaves)
_ORPHANED: list = []  # set once the sweep is gone: the worker starts no further run


def orphan_guard(stop=None, poll_s: float = 2.0, grace_s: float = 120.0, leave=None) -> None:
    """A pool worker's watch on the sweep that started it: once that process is gone (killed), or has set `stop`
    (an Event: it was interrupted by a signal that reached it alone, e.g. `kill -INT`), the worker interrupts
    itself as Ctrl-C would, so that its run saves a resumable checkpoint and stops, and then leaves (`leave`,
    os._exit by default) instead of training on, unseen, beside whatever runs next."""
    import os
    import signal
    import threading
    import time

    parent, leave = os.getppid(), leave or (lambda: os._exit(130))

    def watch():
        while os.getppid() == parent and not (stop is not None and stop.is_set()):
            time.sleep(poll_s)
        _ORPHANED.append(parent)
        os.kill(os.getpid(), signal.SIGINT)
        deadline = time.monotonic() + grace_s  # the run stops at the end of its step and saves its checkpoint
        while _BUSY and time.monotonic() < deadline:
            time.sleep(poll_s)
        leave()

    threading.Thread(target=watch, daemon=True, name="orphan-guard").start()


def _run_one(cfg, runs_root: str, force: bool, threads: int = 0, share: int = 1):
    import generators

    from .training import Interrupted, quiet_lightning, train

    generators.core.registry.load_plugins()  # a fresh worker process: installed plugins register again
    quiet_lightning(level=40)
    if threads:
        cfg = cfg.replace(train={"threads": threads})

    if _ORPHANED:  # the sweep that queued this run is gone: leave it to the next call
        raise Interrupted(f"run {cfg.run_id()} not started: its sweep was stopped")
    _BUSY.append(cfg)
    try:
        run_dir, result, status = train(cfg, runs_root, force=force, quiet=True, share=share)
    finally:
        _BUSY.clear()
    return str(run_dir), result, status


def run_all(resolved: list, runs_root: str | Path, jobs: int = 1, force: bool = False, echo=print) -> list:
    """Run every config (finished runs are skipped, runs another process is training are reported and left to
    it); a progress line per run. Each of `jobs` parallel runs takes its share of the free cores.
    Returns [(run_dir, result, status)]."""
    from .store import RunLocked
    from .training import DivergedRun, Interrupted

    total, out, failed = len(resolved), [], []

    def finish(i, r, get, catch):
        try:
            res = get()
        except Interrupted:
            raise
        except RunLocked as e:  # another process trains it: not ours to report as a failure
            echo(f"[{i}/{total}] locked  {r.run_id()}: {str(e).split('; ')[0]}")
            return
        except catch as e:  # keep the other runs going; report this one
            _report_failure(echo, i, total, r, str(e), isinstance(e, DivergedRun), failed)
            return
        out.append(res)
        _report(echo, i, total, r, res)

    if jobs > 1 and not force:  # finished runs are skipped here: a pool's workers cost seconds of imports each
        done = [r for r in resolved if (Path(runs_root) / r.run_id() / "result.json").is_file()]
        for i, r in enumerate(done, 1):
            finish(i, r, lambda r=r: _run_one(r, str(runs_root), force), ConfigError)
        resolved = [r for r in resolved if not (Path(runs_root) / r.run_id() / "result.json").is_file()]
        offset = len(done)
    else:
        offset = 0
    if jobs <= 1:
        for i, r in enumerate(resolved, 1):
            finish(i, r, lambda r=r: _run_one(r, str(runs_root), force), ConfigError)
    elif resolved:
        import multiprocessing as mp

        from .limits import cost

        # the longest runs first, so that the pool's jobs finish together
        ordered = sorted(resolved, key=cost, reverse=True)
        context = mp.get_context("spawn")
        stop = context.Event()
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=orphan_guard,
                                 initargs=(stop,)) as pool:
            futures = {pool.submit(_run_one, r, str(runs_root), force, 0, jobs): r for r in ordered}
            try:
                for i, fut in enumerate(as_completed(futures), offset + 1):
                    finish(i, futures[fut], fut.result, Exception)
            except (Interrupted, KeyboardInterrupt):
                stop.set()  # the workers save their runs and leave (a Ctrl-C reached them too; a `kill -INT` did not)
                for fut in futures:
                    fut.cancel()
                raise Interrupted(f"sweep interrupted after {len(out)} of {total} runs; finished runs are kept and "
                                  "interrupted ones resume from their last checkpoint: run the same command "
                                  "again") from None
    if failed:
        raise ConfigError(f"{len(failed)} of {total} runs failed; first: {failed[0].splitlines()[0]}")
    return out


def _report(echo, i: int, total: int, r, res) -> None:
    run_dir, result, status = res
    overall = [row for row in result["test"] if row["slice"] == "all"] or result["test"]
    em = sum(row["exact_match"] for row in overall) / max(1, len(overall))
    echo(f"[{i}/{total}] {status:<7} {Path(run_dir).name}  {r.model_name}  "
         f"test exact match {em:.3f}  ({result.get('fit_seconds', 0):.0f} s)")


def _report_failure(echo, i: int, total: int, r, message: str, diverged: bool, failed: list, where: str = ""):
    """A run that did not finish: a divergence is its recorded outcome, anything else a failure (collected)."""
    line = message.splitlines()[0] if message else ""
    if not diverged:
        failed.append(line)
    echo(f"[{i}/{total}] {'diverged' if diverged else 'failed':<7} {r.run_id()}: {line}{where}")


def _last_line(error: BaseException) -> str:
    """The informative line of a job's error (submitit wraps the remote traceback in its message)."""
    text = str(error).split("You can check full logs")[0]
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith((" ", "---"))]
    return lines[-1] if lines else type(error).__name__


def run_submitit(resolved: list[dict], runs_root: str | Path, max_parallel: int = 8, cluster: str | None = None,
                 partition: str | None = None, gpus_per_node: int = 0, cpus_per_task: int = 1,
                 timeout_min: int = 240, force: bool = False, echo=print) -> list:
    """Run every config as a submitit job: a SLURM job array capped at `max_parallel` running tasks, or, with
    cluster = "local", real local subprocesses in waves of `max_parallel`. Finished runs are skipped before
    submission; a job (or a submission) that fails is reported and the others go on. Returns the results."""
    try:
        import submitit
    except ImportError:
        raise ConfigError("the submitit launcher needs the submitit package: pip install 'testbed[cluster]'") from None
    if max_parallel < 1 or cpus_per_task < 1 or gpus_per_node < 0 or timeout_min < 1:
        raise ConfigError("--max-parallel, --cpus-per-task and --timeout-min must be at least 1, --gpus-per-node >= 0")
    runs_root = Path(runs_root)
    runs_root.mkdir(parents=True, exist_ok=True)
    try:
        executor = submitit.AutoExecutor(folder=runs_root / ".submitit" / "%j", cluster=cluster)
    except ValueError as e:
        raise ConfigError(f"submitit cannot use cluster {cluster!r}: {e}") from None
    # A multi-device run is one job of num_nodes x devices tasks: Lightning reads SLURM's variables and makes each
    # task a DDP rank. One array shares its resources, so every run of a sweep must ask for the same.
    shapes = {(r.train.num_nodes, r.train.devices) for r in resolved}
    if len(shapes) > 1:
        raise ConfigError(f"runs of one submitit sweep must share train.num_nodes and train.devices, "
                          f"got {sorted(shapes)}")
    nodes, devices = shapes.pop() if shapes else (1, 1)
    if executor.cluster != "slurm" and nodes > 1:
        raise ConfigError(f"train.num_nodes = {nodes} needs SLURM; the {executor.cluster} executor runs on one node")
    params = {"name": "testbed", "timeout_min": timeout_min, "cpus_per_task": cpus_per_task,
              "gpus_per_node": gpus_per_node, "nodes": nodes, "tasks_per_node": devices if nodes * devices > 1 else 1}
    if executor.cluster == "slurm":
        params["slurm_array_parallelism"] = max_parallel
        if partition:
            params["slurm_partition"] = partition
    executor.update_parameters(**params)
    total, out, failed, done = len(resolved), [], [], 0
    todo = []
    from .training import DivergedRun

    for r in resolved:
        if not force and (runs_root / r.run_id() / "result.json").is_file():
            done += 1
            try:
                _report(echo, done, total, r, _run_one(r, str(runs_root), False, 0))  # reads the finished result
            except DivergedRun as e:  # a recorded divergence: reported, not resubmitted
                _report_failure(echo, done, total, r, str(e), True, failed)
        else:
            todo.append(r)
    # SLURM caps the running tasks of one array itself; other executors get waves of max_parallel jobs
    waves = ([todo] if executor.cluster == "slurm"
             else [todo[i:i + max_parallel] for i in range(0, len(todo), max_parallel)])
    for wave in waves:
        if not wave:
            continue
        n = len(wave)
        try:
            jobs = executor.map_array(_run_one, wave, [str(runs_root)] * n, [force] * n, [cpus_per_task] * n)
        except Exception as e:  # sbatch missing or refusing: report, keep what already ran
            failed += [f"submission failed: {_last_line(e)}"] * n
            done += n
            echo(f"[{done}/{total}] submission of {n} runs failed: {_last_line(e)}")
            continue
        echo(f"submitted {n} runs ({executor.cluster}; job {jobs[0].job_id.split('_')[0]})")
        by_job = {job.job_id: r for job, r in zip(jobs, wave)}
        for job in submitit.helpers.as_completed(jobs, poll_frequency=1):
            done += 1
            r = by_job[job.job_id]
            try:
                res = job.results()[0]  # task 0 is rank zero, which tests and writes the result
            except Exception as e:  # the remote DivergedRun arrives as text in submitit's error
                diverged = "DivergedRun" in str(e)
                _report_failure(echo, done, total, r, _last_line(e), diverged, failed,
                                "" if diverged else f" (log: {job.paths.stderr})")
                continue
            out.append(res)
            _report(echo, done, total, r, res)
    if failed:
        raise ConfigError(f"{len(failed)} of {total} runs failed; first: {failed[0]}")
    return out
