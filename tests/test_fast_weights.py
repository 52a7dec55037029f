"""Fast-weight memories: the delta rule stores and overwrites exactly where the sum rule interferes."""

import pytest
import torch

import generators
from testbed.models import build_model
from testbed.models.fast_weights import fast_weight_scan, feature_map


def fast_weight_recurrence(k, v, q, beta=None):
    """The memory written as the recurrence itself, one position at a time: the reference fast_weight_scan's
    chunkwise form is tested against."""
    b, h, t, d_phi = k.shape
    w = k.new_zeros(b, h, v.shape[-1], d_phi)
    reads = []
    for i in range(t):
        ki, vi = k[:, :, i], v[:, :, i]
        if beta is None:
            w = w + vi[..., :, None] * ki[..., None, :]
        else:
            old = torch.einsum("bhvp,bhp->bhv", w, ki)
            w = w + beta[:, :, i, None, None] * (vi - old)[..., :, None] * ki[..., None, :]
        reads.append(torch.einsum("bhvp,bhp->bhv", w, q[:, :, i]))
    return torch.stack(reads, dim=2), w


def orthonormal_keys(s, d):
    return torch.linalg.qr(torch.randn(d, d))[0][:s]


def test_delta_rule_stores_orthogonal_keys_exactly_and_overwrites():
    torch.manual_seed(0)
    d, s = 8, 8  # S = d keys, the most an orthogonal set can hold
    keys = orthonormal_keys(s, d)
    values = torch.randn(s, 3)
    new_value = torch.randn(3)
    k = torch.cat([keys, keys[:1]])[None, None]          # write every key, then key 0 again
    v = torch.cat([values, new_value[None]])[None, None]
    q = torch.cat([keys, keys[:1]])[None, None]
    ones = torch.ones(1, 1, s + 1)
    reads, w = fast_weight_scan(k, v, q, beta=ones)
    torch.testing.assert_close(w[0, 0] @ keys.T, torch.cat([new_value[:, None], values[1:].T], 1))
    # the sum rule stores orthogonal keys too, but an overwrite adds to the old value instead of replacing it
    _, w_sum = fast_weight_scan(k, v, q, beta=None)
    assert not torch.allclose(w_sum[0, 0] @ keys[0], new_value, atol=1e-3)
    torch.testing.assert_close(w_sum[0, 0] @ keys[0], values[0] + new_value)


@pytest.mark.parametrize("rule", ["sum", "delta"])
@pytest.mark.parametrize("t,chunk", [(40, 64), (40, 16), (33, 8)])
def test_chunkwise_scan_is_the_recurrence(rule, t, chunk):
    # the parallel form (one triangular solve per chunk, the memory carried across chunks) against the recurrence
    # written step by step, for the reads, the final memory and the gradients
    torch.manual_seed(1)
    k = torch.nn.functional.normalize(torch.randn(2, 3, t, 6), dim=-1).requires_grad_()
    v, q = torch.randn(2, 3, t, 5, requires_grad=True), torch.randn(2, 3, t, 6)
    beta = torch.rand(2, 3, t) if rule == "delta" else None
    reads, w = fast_weight_scan(k, v, q, beta, chunk=chunk)
    ref_reads, ref_w = fast_weight_recurrence(k, v, q, beta)
    torch.testing.assert_close(reads, ref_reads, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(w, ref_w, atol=1e-5, rtol=1e-5)
    grads = torch.autograd.grad(reads.square().sum(), (k, v))
    ref_grads = torch.autograd.grad(ref_reads.square().sum(), (k, v))
    for g, ref in zip(grads, ref_grads):
        torch.testing.assert_close(g, ref, atol=1e-4, rtol=1e-4)


def test_sum_rule_interferes_beyond_capacity():
    torch.manual_seed(0)
    d, s = 8, 32
    keys = torch.nn.functional.normalize(torch.randn(s, d), dim=-1)
    values = torch.randn(s, 4)
    _, w = fast_weight_scan(keys[None, None], values[None, None], keys[None, None])
    error = (w[0, 0] @ keys.T - values.T).abs().mean()
    assert error > 0.5  # S >> d random keys: retrieval is mostly crosstalk


def test_dpfp_dimension_and_causality():
    x = torch.randn(2, 5)
    assert feature_map(x, "dpfp", nu=3).shape == (2, 2 * 3 * 5)
    assert (feature_map(x, "elu") > 0).all()
    gen = generators.make("mqar", {"vocab_size": 64, "seq_len": 32, "n_pairs": 4})
    for rule, conv in (("sum", 0), ("delta", 0), ("delta", 4)):  # the short convolution is causal too
        config = {"d_model": 16, "n_head": 2, "rule": rule, "short_conv": conv}
        model = build_model("fast_weights", config, gen.layout()).eval()
        x = torch.as_tensor(gen.sample("train", 0, range(2))["inputs"])
        y = x.clone()
        y[:, 20:] = (y[:, 20:] + 1) % 64
        torch.testing.assert_close(model(x)[:, :20], model(y)[:, :20])
        assert not torch.allclose(model(x)[:, 20:], model(y)[:, 20:])


def test_mechanism_capacity_orders_the_memories():
    from testbed.memory.capacity import recall, state_floats

    # few pairs in a wide memory: everything comes back
    for family in ("attention", "sum", "delta", "armt"):
        assert recall(family, 32, 4, trials=10)[0] >= 0.95
    # far more pairs than key dimensions: the d x d matrices fail, the growing key-value cache does not
    assert recall("sum", 16, 128, trials=10)[0] < 0.3 and recall("delta", 16, 128, trials=10)[0] < 0.3
    assert recall("attention", 32, 128, trials=10)[0] > 0.95
    # rewriting a key: the delta rule replaces the value, the sum rule and attention return a blend of both
    assert recall("delta", 32, 8, trials=10, rewrite=True)[0] > 0.95
    assert recall("armt", 32, 8, trials=10, rewrite=True)[0] > 0.95
    assert recall("sum", 32, 8, trials=10, rewrite=True)[0] < 0.7
    assert recall("attention", 32, 8, trials=10, rewrite=True)[0] < 0.7
    assert state_floats("attention", 16, 10) == 320 and state_floats("delta", 16, 10) == 256


@pytest.mark.slow
def test_capacity_command_writes_a_table_and_a_plot(tmp_path):
    import csv

    from helpers import one_line_error, run

    res = run("capacity", "--families", "sum,delta", "--d", "8,16", "--pairs", "2,8,32", "--trials", 4,
              "--out", tmp_path / "cap.csv", "--plot", tmp_path / "cap.png")
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader((tmp_path / "cap.csv").open()))
    assert len(rows) == 2 * 2 * 3 and {r["model"] for r in rows} == {"sum", "delta"}
    assert (tmp_path / "cap.png").read_bytes()[:4] == b"\x89PNG"
    assert run("plot", "capacity", tmp_path / "cap.csv", "--out", tmp_path / "again.png").exit_code == 0
    one_line_error(run("capacity", "--families", "hopfield", "--out", tmp_path / "x.csv"), "unknown memory family")
    one_line_error(run("capacity", "--d", "0", "--out", tmp_path / "x.csv"), "must be at least 1")
