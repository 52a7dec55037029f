"""What a run records about where it ran (env.json), and how many CPU threads it takes.

Threads: torch's intra-op pool defaults to every core, and two such pools on the same cores slow each other down
far more than their share (each thread spins waiting for the others). A run asked for `threads = 0` therefore takes
the cores that are free now (the cores this process may use, less the load already on them), and each of a sweep's
parallel runs its share of the cores.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import torch

from generators.core import ConfigError

from . import __version__


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def busy_cores() -> float:
    """Cores already kept busy by other processes: the 1-minute load average, capped by the core count."""
    try:
        return min(os.getloadavg()[0], usable_cores())
    except (AttributeError, OSError):
        return 0.0


def choose_threads(asked: int, share: int = 1) -> tuple[int, str]:
    """(threads, why): `asked` if set; in a sweep of `share` parallel jobs, each job's share of the cores (the
    sweep's own jobs make the load there); for a single run, the cores free now."""
    if not 0 <= asked <= 1024:  # torch takes a C int; more threads than any machine has is a typo
        raise ConfigError(f"threads must be in 0..1024 (0: the cores free now), got {asked:,}")
    cores = usable_cores()
    if asked:
        return asked, f"asked for {asked}"
    if share > 1:
        return max(1, cores // share), f"{cores} cores shared by {share} parallel runs"
    busy = busy_cores()
    free = max(1, round(cores - busy))
    return free, f"{cores} cores, load {busy:.1f}: {free} free"


def cpu_name() -> str:
    """The processor's model name and the widest vector instructions torch uses on it (e.g. "AMD EPYC (AVX2)"):
    wall times and matmul peaks differ several-fold between CPUs of the same core count, so records name it."""
    name = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            name = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), name)
    except OSError:
        pass
    return f"{name} ({torch.backends.cpu.get_cpu_capability()})"


def git(*args) -> str | None:
    repo = Path(__file__).resolve().parents[1]
    try:
        out = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=5)
        return out.stdout.strip() if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def environment(threads: int, why: str = "") -> dict:
    import lightning

    return {
        "testbed": __version__,
        "git_commit": git("rev-parse", "HEAD"),
        "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": threads,
        "threads_chosen": why,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
