"""What every command shares: the one-line error contract, the options several commands take, the spec loader."""

from __future__ import annotations

import functools
import inspect
from pathlib import Path
from typing import Optional

import typer

from generators.core import ConfigError
from generators.core import io as gio
from generators.core.registry import did_you_mean


def fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def friendly(fn):
    """Bad input (ConfigError, file-system errors, memory that cannot be had) becomes `error: ...` and exit code 2,
    never a traceback; Ctrl-C becomes one line and exit code 130."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except KeyboardInterrupt:
            fail("interrupted; nothing half-written was kept (finished files and runs are)", 130)
        except ConfigError as e:
            fail(str(e), getattr(e, "exit_code", 2))
        except BrokenPipeError:  # `testbed list | head`: the reader has gone; say nothing more
            import os
            import sys

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(141) from None
        except MemoryError:
            fail("out of memory: the sizes asked for do not fit this machine; lower them or raise --max-memory")
        except OSError as e:
            what = {21: "is a directory", 20: "is not a directory"}.get(e.errno, e.strerror or str(e))
            fail(f"{e.filename}: {what}" if e.filename else str(e))

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


def positive(value: int, name: str, most: int | None = None) -> int:
    if value < 1:
        raise ConfigError(f"{name} must be at least 1, got {value}")
    if most is not None and value > most:
        raise ConfigError(f"{name} must be at most {most:,}, got {value:,}")
    return value


def experiments_dir() -> Path:
    """The specs of the published figures: $TESTBED_EXPERIMENTS, else experiments/ of this clone."""
    import os

    path = Path(os.environ.get("TESTBED_EXPERIMENTS") or Path(__file__).resolve().parents[2] / "experiments")
    if not path.is_dir():
        raise ConfigError(f"experiments directory not found at {path}; install testbed from a clone (pip install -e .)"
                          " or set $TESTBED_EXPERIMENTS")
    return path


def quiet_lightning() -> None:
    from ..training import quiet_lightning as quiet  # imported lazily: `list` and `gen` never load torch

    quiet()


def load_spec(path: Path, preset: Optional[str]) -> dict:
    from .. import spec as specs

    return specs.with_preset(specs.load(path), preset)


IMAGE_FORMATS = ("png", "pdf", "svg")


def check_image(path: Optional[Path], option: str = "--out") -> Optional[Path]:
    """An image a command will draw: its suffix one matplotlib writes here and its directory writable, checked
    before any work (None: no image asked)."""
    if path is None:
        return None
    if path.suffix.lstrip(".").lower() not in IMAGE_FORMATS:
        raise ConfigError(f"cannot draw {str(path)!r} ({option}): the image must end in .png, .pdf or .svg")
    return gio.check_writable(path)


def print_rows(rows: list[dict]) -> None:
    """Rows of rates as a table; the non-trivial stratum (the examples a rule-free predictor misses) beside, and
    the fresh one (targets no earlier state of their orbit) where the task has a depth axis."""
    fresh = any("n_fresh" in r for r in rows)
    typer.echo(f"  {'split':<6} {'iters':>5} {'slice':<8} {'value':>8} {'cell acc':>9} {'exact':>7} {'n':>6} "
               f"{'exact (non-trivial)':>20}" + (f" {'exact (fresh)':>20}" if fresh else "") + f" {'steps':>6}")

    def stratum(r, name):
        v = r.get(f"exact_match_{name}")
        return f"{v:.4f} of {r[f'n_{name}']}" if v is not None else "-"

    for r in rows:
        value = "" if r["value"] is None else r["value"]
        steps = f"{r['mean_steps']:.2f}" if r.get("mean_steps") is not None else ""
        value = f"{value}@k={r['k']}" if "k" in r else value
        typer.echo(f"  {r['split']:<6} {r.get('iterations') or '':>5} {r['slice']:<8} {value!s:>8} "
                   f"{r['cell_accuracy']:>9.4f} {r['exact_match']:>7.4f} {r['n']:>6} {stratum(r, 'nontrivial'):>20}"
                   + (f" {stratum(r, 'fresh'):>20}" if fresh else "") + f" {steps:>6}")


SetOption = typer.Option(None, "--set", help="override a spec value: section.key=value (repeatable)")
PresetOption = typer.Option(None, help="preset of the spec (default: cpu when it has one)")
SeedsOption = typer.Option(None, "--seeds", help="training seeds, e.g. 0,1,2 (instead of the spec's [sweep] seeds)")
LoggerOption = typer.Option(None, "--logger", help="csv | tensorboard | wandb (also [train] logger; metrics.csv is "
                            "always written)")


def run_sets(sets, devices=None, num_nodes=None, strategy=None, logger=None) -> list[str]:
    """--devices / --num-nodes / --strategy / --logger as the --set overrides they stand for."""
    extra = [f"train.{k}={v}" for k, v in (("devices", devices), ("num_nodes", num_nodes), ("strategy", strategy),
                                            ("logger", logger)) if v is not None]
    return list(sets or []) + extra


# --- launching many runs: one set of options, shared by sweep, reproduce and quickstart --------------------------

def launcher_for(launcher: str, jobs: int, max_parallel: int, cluster, partition, gpus_per_node: int,
                 cpus_per_task: int, timeout_min: int):
    """A function (resolved configs, runs dir, force, echo) that runs them with the chosen launcher."""
    from ..sweep import run_all, run_submitit

    launchers = ("local", "submitit")
    if launcher not in launchers:
        raise ConfigError(f"unknown launcher {launcher!r}{did_you_mean(launcher, launchers)}; valid: local, submitit")
    positive(jobs, "--jobs", most=1024)  # processes of one machine's pool
    positive(max_parallel, "--max-parallel")
    positive(cpus_per_task, "--cpus-per-task")
    positive(timeout_min, "--timeout-min")
    if gpus_per_node < 0:
        raise ConfigError(f"--gpus-per-node must be >= 0, got {gpus_per_node}")
    if launcher == "local":
        given = [name for name, value, default in (
            ("--max-parallel", max_parallel, 8), ("--cluster", cluster, None), ("--partition", partition, None),
            ("--gpus-per-node", gpus_per_node, 0), ("--cpus-per-task", cpus_per_task, 1),
            ("--timeout-min", timeout_min, 240)) if value != default]
        if given:  # a user who meant SLURM would otherwise train here, silently
            raise ConfigError(f"{given[0]} applies to --launcher submitit; the local launcher takes --jobs")
        return functools.partial(run_all, jobs=jobs)
    try:
        import submitit  # noqa: F401
    except ImportError:
        raise ConfigError("--launcher submitit needs the submitit package: pip install 'testbed[cluster]'") from None
    return functools.partial(run_submitit, max_parallel=max_parallel, cluster=cluster, partition=partition,
                             gpus_per_node=gpus_per_node, cpus_per_task=cpus_per_task, timeout_min=timeout_min)


def launcher_options(jobs: int = 1):
    """Decorator: the command gains the launcher options (--jobs, --launcher and submitit's) and receives them as
    one `launch` argument, a function (resolved configs, runs dir, force, echo)."""
    options = [
        ("jobs", int, typer.Option(jobs, help="runs at a time on a local process pool (the cores are shared)")),
        ("launcher", str, typer.Option("local", help="local (a process pool of --jobs) | submitit (SLURM job arrays)")),
        ("max_parallel", int, typer.Option(8, "--max-parallel", help="submitit: most runs running at once")),
        ("cluster", Optional[str], typer.Option(None, help="submitit: slurm | local (real local subprocesses) | "
                                                "debug; default: detect SLURM, else local")),
        ("partition", Optional[str], typer.Option(None, help="submitit: SLURM partition")),
        ("gpus_per_node", int, typer.Option(0, "--gpus-per-node", help="submitit: GPUs per run")),
        ("cpus_per_task", int, typer.Option(1, "--cpus-per-task", help="submitit: CPU cores (torch threads) per run")),
        ("timeout_min", int, typer.Option(240, "--timeout-min", help="submitit: time limit of each run in minutes")),
    ]

    def wrap(fn):
        sig = inspect.signature(fn)
        params = [p for p in sig.parameters.values() if p.name != "launch"]
        params += [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=tp)
                   for name, tp, default in options]

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            values = {name: kwargs.pop(name) for name, _, _ in options}
            return fn(*args, **kwargs, launch=launcher_for(**values))

        wrapper.__signature__ = sig.replace(parameters=params)
        return wrapper

    return wrap
