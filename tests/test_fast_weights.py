"""Fast-weight memories: the delta rule stores and overwrites exactly where the sum rule interferes."""

import torch

import generators
from testbed.models import build_model
from testbed.models.fast_weights import fast_weight_scan, feature_map


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
    for rule in ("sum", "delta"):
        model = build_model("fast_weights", {"d_model": 16, "n_head": 2, "rule": rule}, gen.layout()).eval()
        x = torch.as_tensor(gen.sample("train", 0, range(2))["inputs"])
        y = x.clone()
        y[:, 20:] = (y[:, 20:] + 1) % 64
        torch.testing.assert_close(model(x)[:, :20], model(y)[:, :20])
