"""Closed-form linear associative memories against a brute-force loop, their limits, and the published numbers."""

import numpy as np
import pytest

from generators.core import ConfigError
from testbed.memory.associative import error_vs_d, memory_weights, zipf


def brute_force_error(q, d, n_out, alpha, seed, d_max):
    """Build W = sum_x q(x) u_f(x) e_x^T explicitly and recall every x by argmax (same random draws)."""
    n = len(q)
    rng = np.random.default_rng(seed)
    e = rng.standard_normal((n, d_max))[:, :d]
    u = rng.standard_normal((n_out, d_max))[:, :d]
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    f = np.arange(1, n + 1) % n_out
    w = sum(q[x] * np.outer(u[f[x]], e[x]) for x in range(n))
    p = zipf(n, alpha)
    err = 0.0
    for x in range(n):
        scores = u @ w @ e[x]
        best = np.flatnonzero(scores == scores.max())
        if len(best) > 1 or best[0] != f[x]:
            err += p[x]
    return err


@pytest.mark.parametrize("scheme", ["fill", "frequency", "threshold"])
def test_closed_form_matches_brute_force(scheme):
    n, m, alpha, ds = 40, 5, 1.5, [3, 8, 20]
    q = lambda d: memory_weights(scheme, n, alpha, d, samples=60, per=2)  # noqa: E731
    fast = error_vs_d(q, ds, m, alpha, trials=1, seed=3)[0]
    for j, d in enumerate(ds):
        assert fast[j] == pytest.approx(brute_force_error(q(d), d, m, alpha, 3, max(ds)), abs=1e-12)


def test_limits():
    n = 30
    p = zipf(n, 2.0)
    # orthogonal embeddings with d >= N store every association exactly (d is the largest, untruncated dimension)
    for d in (n, 2 * n):
        assert error_vs_d(np.ones(n), [d], trials=3, embeddings="orthogonal").max() == 0.0
    assert error_vs_d(np.ones(n), [n // 3], trials=3, embeddings="orthogonal").min() > 0.0
    # storing nothing recalls nothing (ties are errors)
    assert error_vs_d(np.zeros(n), [5, 40], trials=2) == pytest.approx(np.ones((2, 2)))
    # infinite data: every token seen, frequency = p
    assert np.array_equal(memory_weights("frequency", n, 2.0, 10), p)
    assert memory_weights("threshold", n, 2.0, 16, per=8).tolist() == [1.0, 1.0] + [0.0] * (n - 2)


def test_bad_parameters():
    with pytest.raises(ConfigError, match="alpha must be positive"):
        error_vs_d(np.ones(10), [5], alpha=0.0)
    with pytest.raises(ConfigError, match="at least M"):
        error_vs_d(np.ones(3), [5], n_out=5)
    with pytest.raises(ConfigError, match="must be positive"):
        error_vs_d(np.ones(10), [0])
    with pytest.raises(ConfigError, match="2 alpha rho > 1"):
        memory_weights("power", 10, 2.0, 5, rho=0.2)
    with pytest.raises(ConfigError, match="only N = 10"):
        memory_weights("threshold", 10, 2.0, 200, per=8)
    with pytest.raises(ConfigError, match="unknown memory scheme"):
        memory_weights("lru", 10, 2.0, 5)


# Published means of 20 trials (N = 1000, M = 5, alpha = 2, infinite data): Cabannes et al., reference table.
DS = [10, 20, 50, 100, 200, 500, 1000]
PUBLISHED = {
    "frequency": [0.210, 0.168, 0.128, 0.114, 0.097, 0.067, 0.061],
    "threshold": [0.315, 0.203, 0.072, 0.037, 0.0187, 0.0073, 0.0034],
}


@pytest.mark.slow
def test_reproduces_published_scaling_laws():
    n, alpha = 1000, 2.0
    ours = {
        "frequency": error_vs_d(zipf(n, alpha), DS, trials=20).mean(0),
        "threshold": error_vs_d(lambda d: memory_weights("threshold", n, alpha, d, per=8), DS, trials=20).mean(0),
    }
    for scheme, published in PUBLISHED.items():
        for got, want in zip(ours[scheme], published):
            assert abs(got - want) <= max(0.15 * want, 0.003), (scheme, got, want)
    slope = lambda e: np.polyfit(np.log(DS), np.log(e), 1)[0]  # noqa: E731
    assert slope(ours["frequency"]) == pytest.approx(-0.25, abs=0.05)
    assert slope(ours["threshold"]) == pytest.approx(-1.0, abs=0.05)


def test_schemes_share_embeddings():
    n = 50
    qs = [np.ones(n), zipf(n, 2.0), lambda d: memory_weights("threshold", n, 2.0, d, per=4)]
    together = error_vs_d(qs, [8, 16, 32], trials=2, seed=5)
    assert together.shape == (2, 3, 3)
    for i, q in enumerate(qs):
        assert np.array_equal(together[:, i], error_vs_d(q, [8, 16, 32], trials=2, seed=5))


JOINT = {  # thresholded, P = d // 12, rows T, columns d (published means of 20 trials)
    10: [0.361, 0.355, 0.158, 0.167, 0.163, 0.161, 0.157],
    100: [0.361, 0.332, 0.124, 0.067, 0.057, 0.056, 0.055],
    1000: [0.361, 0.332, 0.109, 0.057, 0.032, 0.016, 0.016],
    10000: [0.361, 0.332, 0.109, 0.056, 0.029, 0.0117, 0.0058],
}


@pytest.mark.slow
def test_reproduces_published_joint_d_t_grid():
    for samples, published in JOINT.items():
        runs = [error_vs_d(lambda d, s=s, t=samples: memory_weights("threshold", 1000, 2.0, d, samples=t, per=12,
                                                                    seed=s),
                           DS, trials=1, seed=100 + s)[0] for s in range(20)]
        for got, want in zip(np.mean(runs, axis=0), published):
            assert abs(got - want) <= max(0.15 * want, 0.003), (samples, got, want)


def test_linear_memory_first_sgd_step_is_the_frequency_weighted_outer_product():
    import torch

    import generators
    from testbed.models import build_model, masked_loss

    gen = generators.make("zipf_memory", {"n_tokens": 50, "n_classes": 5, "alpha": 2.0})
    model = build_model("linear_memory", {"d": 16, "n_classes": 5}, gen.layout())
    batch = {k: torch.as_tensor(v) for k, v in gen.sample("train", 0, range(4096)).items()}
    masked_loss(model(batch["inputs"]), batch).backward()
    # at W = 0 the softmax is uniform, so -dL/dW = mean over samples of (u_f(x) - mean_y u_y) e_x^T
    x, y = batch["token"], batch["targets"][:, 0]
    expected = ((model.U[y] - model.U.mean(0)).T @ model.E[x]) / len(x)
    torch.testing.assert_close(-model.W.grad, expected, atol=1e-6, rtol=1e-4)
    assert model.state_size() == 16 * 16


def test_linear_memory_reference_options():
    """w_init = random starts W at N(0, 1/d) entries; norm = l2 makes the read-out blind to the scale of W e_x."""
    import pytest
    import torch

    import generators
    from generators.core import ConfigError
    from testbed.models import build_model

    gen = generators.make("zipf_memory", {"n_tokens": 50, "n_classes": 5, "alpha": 2.0})
    x = torch.arange(50)[:, None]
    model = build_model("linear_memory", {"d": 64, "n_classes": 5, "w_init": "random", "layernorm": True,
                                          "norm": "l2"}, gen.layout())
    assert abs(model.W.std().item() - 64 ** -0.5) < 0.01
    before = model(x)[..., :5]
    with torch.no_grad():
        model.W.mul_(10.0)
    torch.testing.assert_close(model(x)[..., :5], before)  # x / |x|: only the direction of W e_x counts
    plain = build_model("linear_memory", {"d": 64, "n_classes": 5, "w_init": "random"}, gen.layout())
    before = plain(x)[..., :5]
    with torch.no_grad():
        plain.W.mul_(10.0)
    torch.testing.assert_close(plain(x)[..., :5], 10 * before)  # without it the scores scale with W
    for bad in ({"norm": "batch"}, {"w_init": "ones"}):
        with pytest.raises(ConfigError, match="must be"):
            build_model("linear_memory", {"d": 8, "n_classes": 5, **bad}, gen.layout())


@pytest.mark.slow
def test_linear_memory_trains_through_the_cli(tmp_path):
    import json

    from helpers import run

    spec = tmp_path / "mem.toml"
    spec.write_text("""
name = "mem"
[data]
generator = "zipf_memory"
n_tokens = 100
n_classes = 5
[model]
name = "linear_memory"
d = 50
[train]
optimizer = "adamw"
betas = [0.0, 0.0]
lr = 0.02
weight_decay = 0.0
warmup_steps = 0
schedule = "constant"
grad_clip = 0.0
batch_size = 256
train_size = 10240
max_steps = 40
val_every = 40
val_size = 2048
threads = 1
[eval]
test_size = 20000
""")
    res = run("train", spec, "--out", tmp_path / "runs")
    assert res.exit_code == 0, res.output
    run_dir = tmp_path / "runs" / res.output.split()[1].rsplit("/", 1)[-1]
    result = json.loads((run_dir / "result.json").read_text())
    error = 1 - result["test"][0]["exact_match"]
    assert error < 0.05  # one pass of sign-Adam stores the frequent tokens (published: 0.0062 at d = 50)
    res = run("train", spec, "--out", tmp_path / "runs", "--set", "train.optimizer=lbfgs")
    assert res.exit_code == 2 and "unknown train.optimizer 'lbfgs'; valid: adamw, muon, sgd" in res.output
    res = run("train", spec, "--out", tmp_path / "runs", "--set", "model.d=10")
    assert res.exit_code == 0, res.output
    assert run("collect", tmp_path / "runs", "--out", tmp_path / "r.csv").exit_code == 0
    paper = tmp_path / "paper.toml"
    paper.write_text('[paper]\nd = [10, 50]\nmem = [0.04, 0.006]\n')
    res = run("plot", "memory", tmp_path / "r.csv", "--paper", paper, "--out", tmp_path / "m.png")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "m.png").read_bytes()[:4] == b"\x89PNG"
    errors = [float(line.split()[1]) for line in res.output.splitlines() if line.startswith("  ")]
    assert len(errors) == 2 and errors[0] > errors[1]  # a larger memory recalls more


def test_memory_law_command(tmp_path):
    import csv

    from helpers import one_line_error, run

    res = run("memory-law", "error-vs-d", "--n", 60, "--d", "5,10,40", "--trials", 3, "--out", tmp_path / "e.csv",
              "--plot", tmp_path / "e.png")
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader((tmp_path / "e.csv").open()))
    assert {r["scheme"] for r in rows} == {"fill", "frequency", "threshold"} and len(rows) == 9
    # every error with its 95 % interval over the trials (random embeddings), printed as it is written
    assert all(float(r["error_lo"]) <= float(r["error"]) <= float(r["error_hi"]) for r in rows)
    r = rows[-1]
    assert f"error {float(r['error']):.4f} [{float(r['error_lo']):.4f}, {float(r['error_hi']):.4f}]" in res.output
    assert "fitted log-log slope, threshold" in res.output and (tmp_path / "e.png").stat().st_size > 5000
    res = run("memory-law", "joint", "--n", 60, "--d", "12,24", "--samples", "10,1000", "--trials", 2,
              "--out", tmp_path / "j.csv")
    assert res.exit_code == 0, res.output
    joint = list(csv.DictReader((tmp_path / "j.csv").open()))
    assert {(r["T"], r["d"]) for r in joint} == {(t, d) for t in ("10", "1000") for d in ("12", "24")}
    one_line_error(run("memory-law", "error-vs-t", "--out", tmp_path / "x.csv"), "unknown figure")
    one_line_error(run("memory-law", "joint", "--n", 3, "--out", tmp_path / "x.csv"), "need N >= M")
    one_line_error(run("memory-law", "joint", "--alpha", 0, "--out", tmp_path / "x.csv"), "alpha > 0")
