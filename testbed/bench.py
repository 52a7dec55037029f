"""Benchmarks: throughput figures reported as ratios against references measured in the same run."""

from __future__ import annotations

import os
import random
import time
from contextlib import contextmanager

import numpy as np

import generators
from generators.cellular_automata import evolve
from generators.core import ConfigError


@contextmanager
def one_core():
    """Pin this process to a single core while benchmarking (where the OS allows it)."""
    if not hasattr(os, "sched_getaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(before)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


@contextmanager
def stderr_silenced():
    """Send file descriptor 2 to /dev/null (the profiler's C++ side announces its start and stop there)."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _best_rate(fn, cells: int, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return cells / best


def reference_python(n: int, radius: int, width: int, steps: int, seed: int = 0) -> list:
    """Plain per-example, per-cell Python: random rule and state, then the textbook update."""
    rnd = random.Random(seed)
    size = 1 << (2 * radius + 1)
    orbits = []
    for _ in range(n):
        rule = [rnd.getrandbits(1) for _ in range(size)]
        x = [rnd.getrandbits(1) for _ in range(width)]
        orbit = [x]
        for _ in range(steps - 1):
            nxt = []
            for i in range(width):
                v = 0
                for j in range(-radius, radius + 1):
                    v = 2 * v + x[(i + j) % width]
                nxt.append(rule[v])
            x = nxt
            orbit.append(x)
        orbits.append(orbit)
    return orbits


def reference_numpy(init: np.ndarray, tables: np.ndarray, steps: int) -> np.ndarray:
    """Straightforward numpy: np.roll neighbourhoods and take_along_axis lookups, vectorised over examples."""
    r = (tables.shape[1].bit_length() - 2) // 2
    out = [init]
    x = init
    for _ in range(steps - 1):
        v = np.zeros(x.shape, np.int64)
        for j in range(-r, r + 1):
            v = 2 * v + np.roll(x, -j, axis=1)
        x = np.take_along_axis(tables, v, axis=1)
        out.append(x)
    return np.stack(out, 1)


def bench_generators(radius: int = 2, width: int = 20, steps: int = 20, n: int = 100_000, repeats: int = 3) -> dict:
    """Cells per second of the CA generator on one core, beside per-example Python and straightforward numpy."""
    gen = generators.make("ca", {"radius": radius, "width": width, "steps": steps, "n_input": 1})
    idx = np.arange(n)
    with one_core():
        states, tables = gen.orbits("train", 0, idx[:1000])
        ours = _best_rate(lambda: gen.orbits("train", 0, idx), n * steps * width, repeats)
        init = gen.initial_states("train", 0, idx.astype(np.uint64))
        tables = gen.rules("train", 0, idx.astype(np.uint64))
        evolve_only = _best_rate(lambda: evolve(init, tables, steps), n * steps * width, repeats)
        ref_np = _best_rate(lambda: reference_numpy(init, tables, steps), n * steps * width, repeats)
        n_py = max(1, n // 500)
        ref_py = _best_rate(lambda: reference_python(n_py, radius, width, steps), n_py * steps * width, 1)
        command = gen_command_rate(radius, width, steps, n, repeats)
    return {
        "radius": radius, "width": width, "steps": steps, "examples": n,
        "cells_per_s": ours, "evolve_cells_per_s": evolve_only,
        "reference_numpy_cells_per_s": ref_np, "reference_python_cells_per_s": ref_py,
        "speedup_vs_numpy": ours / ref_np, "speedup_vs_python": ours / ref_py,
        "gen_command_cells_per_s": command, "gen_command_vs_numpy": command / ref_np,
    }


def gen_command_rate(radius: int, width: int, steps: int, n: int, repeats: int = 3) -> float:
    """Cells per second of `testbed gen ca ... --out FILE` end to end: a new process (imports included) that
    generates the orbits and writes the interchange file and its sidecar (best of `repeats`)."""
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "testbed", "gen", "ca", "--radius", str(radius), "--width", str(width),
               "--steps", str(steps), "--n", str(n), "--out", f"{tmp}/orbits.npz"]

        def run():
            subprocess.run(cmd, check=True, capture_output=True)

        return _best_rate(run, n * steps * width, repeats)


# ------------------------------------------------------------------------------------------------------------------
# training: time to accuracy and throughput

# The depth-staircase regime's first step (experiments/README.md): a held-out radius-1 rule given as input, one given
# state of width 12, the next state to predict.
BASELINE_TASK = {"radius": 1, "width": 12, "steps": 2, "n_input": 1, "task": "RO-S", "k": 1}
# Recipes timed by `testbed bench train`. The baseline is the plain recipe: torch's stock encoder with learned
# absolute positions, constant AdamW 3e-3, batch 128. Ours: the same size, with the 2-D grid encoding, 8 heads,
# linear biases (so heads can attend by position alone), a wider initialisation, warm-up and cosine decay, smaller
# batches (more updates per second of compute) and Muon for the hidden matrices. Tuned on validation only: earlier
# pilots over learning rate, batch, warm-up, depth and width kept the AdamW recipe; `testbed bench recipes` over
# optimizer x learning rate x batch (docs/recipes.md) then found Muon at 3e-3 and batch 32 the fastest to the target
# in seconds, with the fewest updates at its batch size.
BASELINE = {"model": "torch_encoder", "config": {"n_layer": 2, "d_model": 64, "n_head": 4},
            "lr": 3e-3, "warmup": 0, "decay_steps": 0, "batch_size": 128}
OURS = {"model": "transformer",
        "config": {"n_layer": 2, "d_model": 64, "n_head": 8, "pos": "grid", "init_std": 0.1, "bias": True},
        "lr": 3e-3, "warmup": 100, "decay_steps": 3000, "batch_size": 32, "optimizer": "muon"}


def time_to_accuracy(model: str, config: dict, lr: float, warmup: int = 0, decay_steps: int = 0,
                     batch_size: int = 128, optimizer: str = "adamw", target: float = 0.80, budget_s: float = 600.0,
                     check_every: int = 50, val_size: int = 512, seed: int = 0, threads: int = 0) -> dict:
    """Train on the regime's first step (BASELINE_TASK: a held-out rule given, the next state of one given state)
    until validation exact match reaches `target`.

    One plain loop for every contender (forward, masked loss, backward, clip 1.0, optimizer step: AdamW unless the
    recipe names another, weight decay 0.01 on matrices), so the comparison is of models and recipes only. The
    learning rate warms up linearly, then stays constant or (decay_steps > 0) follows a cosine to a tenth at
    decay_steps. Validation time counts: it is what a user waits for."""
    import torch

    from .data import held_out, to_tensors
    from .environment import choose_threads
    from .evaluation import evaluate
    from .models import build_model, masked_loss
    from .system import lr_factor, make_optimizer

    torch.set_num_threads(choose_threads(threads)[0])
    torch.manual_seed(seed)
    gen = generators.make("ca", BASELINE_TASK)
    model_name, model = model, build_model(model, config, gen.layout())
    opt = make_optimizer(model, optimizer, lr, 0.01, (0.9, 0.999))
    val = held_out(gen, "val", 0, val_size)
    history, reached, t0, step = [], None, time.perf_counter(), 0
    while time.perf_counter() - t0 < budget_s:
        model.train()
        batch = to_tensors(gen.sample("train", seed, np.arange(step * batch_size, (step + 1) * batch_size)))
        for group in opt.param_groups:
            schedule = "cosine" if decay_steps else "constant"
            group["lr"] = lr * lr_factor(min(step, decay_steps or step), warmup, decay_steps, schedule, 0.1)
        loss = masked_loss(model(batch["inputs"]), batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        if step % check_every == 0:
            em = [r for r in evaluate(model, val, val_size, "val") if r["slice"] == "all"][0]["exact_match"]
            history.append((step, time.perf_counter() - t0, em))
            if em >= target:
                reached = time.perf_counter() - t0
                break
    return {"model": model_name, "params": model.num_params(), "seconds_to_target": reached, "steps": step,
            "steps_to_target": step if reached is not None else None,
            "target": target, "history": history, "budget_s": budget_s}


def time_to_accuracy_seeds(recipe: dict, seeds: list[int], **kw) -> dict:
    """time_to_accuracy of one recipe over several seeds (the time to leave a plateau varies by seed: a single seed's
    ratio is noise). The median counts a seed that did not reach the target as the budget (so the median is
    None when fewer than half reached it)."""
    per_seed = [time_to_accuracy(**recipe, seed=seed, **kw) for seed in seeds]
    median = float(np.median([r["seconds_to_target"] or np.inf for r in per_seed]))
    updates = float(np.median([r["steps_to_target"] or np.inf for r in per_seed]))
    return {"model": recipe["model"], "params": per_seed[0]["params"], "seeds": list(seeds), "per_seed": per_seed,
            "median_seconds_to_target": None if np.isinf(median) else median,
            "median_updates_to_target": None if np.isinf(updates) else updates,
            "reached": sum(r["seconds_to_target"] is not None for r in per_seed)}


def matmul_peak(threads: int, size: int = 1024, repeats: int = 20, dtype: str = "float32") -> float:
    """Measured matmul FLOP/s of this machine in `dtype` (float32 or bfloat16; best of a few timings)."""
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(size, size, dtype=getattr(torch, dtype)), torch.randn(size, size, dtype=getattr(torch, dtype))
    torch.mm(a, b)
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(repeats):
            torch.mm(a, b)
        best = min(best, (time.perf_counter() - t0) / repeats)
    return 2 * size**3 / best


def has_bf16_matmul_units(threads: int) -> bool:
    """Whether a bfloat16 matmul is faster than a float32 one here (bf16 matrix units such as AMX, or AVX512-BF16).
    Where it is not, bf16 is emulated (tens of times slower) and bf16-mixed training is no speed option: measured
    at a small size, since an emulated 1024^3 product takes seconds."""
    return (matmul_peak(threads, size=256, repeats=5, dtype="bfloat16")
            > matmul_peak(threads, size=256, repeats=5, dtype="float32"))


def training_throughput(n_layer: int = 4, d_model: int = 128, n_head: int = 4, batch_size: int = 64,
                        steps: int = 10, threads: int = 0, precision: str = "32") -> dict:
    """Tokens/s and achieved FLOP/s of training steps of the P1 model shape on r=2, W=20, n=10 orbits, on the
    threads a run would take (environment.choose_threads: the free cores, unless `threads` is given), against the
    matmul peak of the precision's matmuls. precision "bf16-mixed" runs the forward pass under bfloat16 autocast,
    as Lightning's train.precision = bf16-mixed does (fast where the cores have bf16 matrix units)."""
    import torch

    from .data import to_tensors
    from .environment import choose_threads
    from .models import build_model, masked_loss

    if precision not in ("32", "bf16-mixed"):
        raise ConfigError(f"precision must be 32 or bf16-mixed, got {precision!r}")
    threads, why = choose_threads(threads)
    torch.set_num_threads(threads)
    gen = generators.make("ca", {"radius": 2, "width": 20, "steps": 20, "n_input": 10})
    layout = gen.layout()
    model = build_model("transformer", {"n_layer": n_layer, "d_model": d_model, "n_head": n_head}, layout)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    batch = to_tensors(gen.sample("train", 0, np.arange(batch_size)))

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16-mixed"):
            loss = masked_loss(model(batch["inputs"]), batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = (time.perf_counter() - t0) / steps
    spent = step_breakdown(step)
    length = layout.seq_len
    # forward FLOPs per token: 2 per weight of every matmul (embeddings are lookups), plus attention scores and
    # weighted values (2 * 2 * L * d per layer); training = forward + backward = 3x forward.
    matmul_params = sum(p.numel() for n, p in model.named_parameters() if p.dim() == 2 and "emb" not in n)
    flops_per_token = 3 * (2 * matmul_params + 4 * length * d_model * n_layer)
    tokens = batch_size * length
    dtype = "bfloat16" if precision == "bf16-mixed" else "float32"
    peak = matmul_peak(threads, dtype=dtype)
    return {"shape": f"{n_layer} layers, d={d_model}", "precision": precision, "matmul_dtype": dtype,
            "params": model.num_params(),
            "seq_len": length, "batch_size": batch_size, "threads": threads, "threads_chosen": why,
            "tokens_per_s": tokens / seconds, "flops_per_s": flops_per_token * tokens / seconds,
            "matmul_peak_flops_per_s": peak, "fraction_of_peak": flops_per_token * tokens / seconds / peak,
            "step_breakdown": spent}


# Where a training step's time goes, by the aten operators' names (self time, so no operator counts twice).
OP_GROUPS = (("matmul", ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::matmul")),
             ("attention", ("aten::_scaled_dot_product", "aten::_softmax", "aten::_softmax_backward")),
             ("optimizer", ("aten::_foreach", "aten::lerp", "aten::addcdiv", "aten::addcmul", "aten::sqrt")))


def step_breakdown(step, steps: int = 3) -> dict:
    """Fractions of a training step's operator self time in matmuls, attention, the optimizer's updates and
    everything else (elementwise ops, norms, copies), measured with torch.profiler over `steps` steps."""
    from torch.profiler import ProfilerActivity, profile

    with stderr_silenced(), profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    spent = {name: 0.0 for name, _ in OP_GROUPS} | {"other": 0.0}
    for event in prof.key_averages():
        group = next((name for name, prefixes in OP_GROUPS if event.key.startswith(prefixes)), "other")
        if event.key.startswith("aten::"):
            spent[group] += event.self_cpu_time_total
    total = sum(spent.values()) or 1.0
    return {name: t / total for name, t in spent.items()}


# Packing: several runs of one shape as one batched model (torch.func), against the same runs stepped one by one.
QUICKSTART_TASK = {"radius": 1, "width": 12, "steps": 4, "n_input": 2, "task": "RO-S", "k": 2, "mixed_k": True}
QUICKSTART_MODEL = {"n_layer": 3, "n_head": 8, "d_model": 64, "pos": "grid", "bias": True, "init_std": 0.1}


class PackedRuns:
    """`n` runs of one model shape trained as one: their weights stacked along a leading axis
    (torch.func.stack_module_state), every run's loss from its own batch by vmap over functional_call, one AdamW over
    the stacked tensors (elementwise, so each run's slice gets the update it would get alone) and gradient clipping
    per run (each run's own norm). Each run keeps its own data; what differs from separate runs is only the order of
    floating-point operations in the batched kernels."""

    def __init__(self, models: list, lr: float, clip: float = 1.0):
        import copy

        import torch
        from torch.func import functional_call, stack_module_state, vmap

        params, self.buffers = stack_module_state(models)
        self.params = {k: v.detach().requires_grad_() for k, v in params.items()}
        self.clip = clip
        self.opt = torch.optim.AdamW(list(self.params.values()), lr=lr, weight_decay=0.0)
        shape = copy.deepcopy(models[0]).to("meta")

        def one_loss(p, b, inputs, targets, mask):
            logits = functional_call(shape, (p, b), (inputs,)).float().flatten(0, 1)
            ce = torch.nn.functional.cross_entropy(logits, targets.flatten(), reduction="none")
            m = mask.flatten().float()
            return (ce * m).sum() / m.sum()  # masked_loss, written without boolean indexing (vmap needs shapes)

        self.losses = vmap(one_loss)

    def step(self, batches: list[dict]) -> "list[float]":
        import torch

        stacked = [torch.stack([b[k] for b in batches]) for k in ("inputs", "targets", "loss_mask")]
        losses = self.losses(self.params, self.buffers, *stacked)
        self.opt.zero_grad(set_to_none=True)
        losses.sum().backward()  # runs share no weights: each slice's gradient is its own run's
        grads = [p.grad for p in self.params.values()]
        norms = torch.stack([g.flatten(1).pow(2).sum(1) for g in grads]).sum(0).sqrt()  # (n,) one per run
        scale = (self.clip / (norms + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(scale.view(-1, *[1] * (g.dim() - 1)))
        self.opt.step()
        return losses.tolist()


def packed_throughput(n_runs: int = 3, batch_size: int = 32, steps: int = 20, threads: int = 0) -> dict:
    """Tokens/s of `n_runs` quickstart-shaped runs trained as one PackedRuns against the same runs stepped one after
    another on the same threads (what a sweep's job does), and the largest difference between the two ways' losses
    after `steps` steps from the same weights and data (floating-point order only)."""
    import warnings

    import torch

    from .data import to_tensors
    from .environment import choose_threads
    from .models import build_model, masked_loss

    threads, why = choose_threads(threads)
    torch.set_num_threads(threads)
    gen = generators.make("ca", QUICKSTART_TASK)

    def models():
        out = []
        for seed in range(n_runs):
            torch.manual_seed(seed)
            out.append(build_model("transformer", QUICKSTART_MODEL, gen.layout()))
        return out

    data = [[to_tensors(gen.sample("train", seed, np.arange(s * batch_size, (s + 1) * batch_size)))
             for s in range(steps + 2)] for seed in range(n_runs)]
    separate = models()
    opts = [torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=0.0) for m in separate]

    def separate_step(s):
        out = []
        for m, opt, run in zip(separate, opts, data):
            loss = masked_loss(m(run[s]["inputs"]), run[s])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
            opt.step()
            out.append(loss.item())
        return out

    packed = PackedRuns(models(), lr=1e-3)
    timings, last = {}, {}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*batching rule.*")  # attention falls back to a loop over the runs
        for name, step in (("separate", separate_step), ("packed", lambda s: packed.step([r[s] for r in data]))):
            step(0)  # warm-up (and vmap's tracing)
            t0 = time.perf_counter()
            for s in range(1, steps + 1):
                last[name] = step(s)
            timings[name] = (time.perf_counter() - t0) / steps
    tokens = n_runs * batch_size * gen.layout().seq_len
    return {"n_runs": n_runs, "batch_size": batch_size, "threads": threads, "threads_chosen": why,
            "seq_len": gen.layout().seq_len, "separate_tokens_per_s": tokens / timings["separate"],
            "packed_tokens_per_s": tokens / timings["packed"], "ratio": timings["separate"] / timings["packed"],
            "max_loss_difference": float(np.max(np.abs(np.subtract(last["packed"], last["separate"]))))}
