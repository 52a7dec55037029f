"""Linear probes of intermediate states: where inside a model is each step of a k-step answer computed?

    testbed probe RUN_DIR --k 2

A frozen model reads held-out examples asked k steps ahead; at the target positions (one per cell) its residual
stream after every layer (or loop) is collected, and a ridge read-out (closed form, shared by the cells) is fitted
to each intermediate state j = 1..k on one half of the examples and scored on the other (Alain & Bengio 2016).
Beside each accuracy: the majority bit, and a control probe fitted to labels shuffled across examples (Hewitt &
Liang 2019) — selectivity, accuracy minus control, is what the representation holds beyond what a probe can fit.
"""

from __future__ import annotations

import numpy as np
import torch

from generators.core import ConfigError


def ridge(x: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    """Weights (d + 1,) of the least-squares fit of ±1 labels with an L2 penalty lam (the bias not penalised)."""
    x1 = np.hstack([x, np.ones((len(x), 1))])
    gram = x1.T @ x1 + lam * len(x) * np.diag(np.r_[np.ones(x.shape[1]), 0.0])
    return np.linalg.solve(gram, x1.T @ (2.0 * y - 1.0))


def read_out(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    return (x @ w[:-1] + w[-1] > 0).astype(np.uint8)


def probe_rows(hidden: dict[str, np.ndarray], states: np.ndarray, lam: float = 1e-3, seed: int = 0) -> list[dict]:
    """Per (hidden state, step): accuracy, control, selectivity and majority of a ridge probe fitted on the first
    half of the examples and scored on the second. hidden: {name: (n, positions, d)} at the target positions;
    states: (n, k, cells) bits. The positions hold one state (every step's probe reads them) or the k states in
    order (the probe of state j reads the j-th block of cells: a task that predicts several states)."""
    n, k, cells = states.shape
    if n < 4:
        raise ConfigError(f"probes need at least 4 examples (two halves), got {n}")
    fit, score = slice(0, n // 2), slice(n // 2, n)
    shuffled = np.random.default_rng(seed).permutation(n)  # the control's labels: another example's state
    rows = []
    for name, h in hidden.items():
        d, blocks = h.shape[-1], h.shape[1] // cells
        standardised = {}  # per block of positions: one block serves every step of a single-state task
        for j in range(k):
            b = j if blocks > 1 else 0
            if b not in standardised:
                at = h[:, b * cells:(b + 1) * cells]
                x_fit, x_score = at[fit].reshape(-1, d).astype(np.float64), at[score].reshape(-1, d).astype(np.float64)
                mu, sd = x_fit.mean(0), x_fit.std(0) + 1e-6
                standardised[b] = (x_fit - mu) / sd, (x_score - mu) / sd
            x_fit, x_score = standardised[b]
            y = states[:, j]
            truth = y[score].reshape(-1)
            acc = float((read_out(x_score, ridge(x_fit, y[fit].reshape(-1), lam)) == truth).mean())
            control_y = y[shuffled]
            control = float((read_out(x_score, ridge(x_fit, control_y[fit].reshape(-1), lam))
                             == control_y[score].reshape(-1)).mean())
            majority = float(max(truth.mean(), 1 - truth.mean()))
            rows.append({"state": name, "step": j + 1, "accuracy": acc, "control": control,
                         "selectivity": acc - control, "majority": majority, "n": int(n - n // 2)})
    return rows


def hidden_at_targets(model, examples: dict, batch_size: int) -> dict[str, np.ndarray]:
    """{name: (n, positions, d)} of the model's hidden states at each example's scored positions."""
    mask = np.asarray(examples["loss_mask"])
    cells = mask.sum(1)
    if len(set(cells.tolist())) != 1:
        raise ConfigError("probes need the same number of target positions in every example")
    out: dict[str, list] = {}
    model.eval()
    with torch.no_grad():
        for lo in range(0, len(mask), batch_size):
            inputs = torch.as_tensor(examples["inputs"][lo:lo + batch_size])
            m = torch.as_tensor(mask[lo:lo + batch_size])
            for name, h in model.hidden_states(inputs):
                out.setdefault(name, []).append(h[m].reshape(len(inputs), int(cells[0]), -1).float().numpy())
    return {name: np.concatenate(parts) for name, parts in out.items()}


def probe(model, generator, k: int, n: int, seed: int, batch_size: int = 512, lam: float = 1e-3) -> list[dict]:
    """Probe rows of a model on n held-out test examples asked k steps ahead."""
    examples, states = generator.probe_states("test", seed, np.arange(n), k)
    return probe_rows(hidden_at_targets(model, examples, batch_size), states, lam)
