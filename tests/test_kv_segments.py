"""Key-value segments: the answer is the (latest) value of the queried key; only the value slots are scored."""

import numpy as np
import pytest

import generators
from generators.core import ConfigError


def decode(gen, inputs, targets):
    c, s = gen.config, gen.segment
    segs = inputs.reshape(c.n_pairs + 1, s)
    pairs = [(tuple(seg[: c.key_len]), tuple(seg[c.key_len :])) for seg in segs[:-1]]
    query = tuple(segs[-1][: c.key_len])
    return pairs, query, tuple(targets[-c.value_len :])


@pytest.mark.parametrize("mode", ["remember", "rewrite"])
def test_answer_is_the_latest_value_of_the_queried_key(mode):
    gen = generators.make("kv_segments", {"n_pairs": 6, "mode": mode, "value_len": 2})
    s = gen.sample("val", 2, np.arange(400))
    repeats = 0
    for inputs, targets, mask, writes in zip(s["inputs"], s["targets"], s["loss_mask"], s["writes"]):
        pairs, query, answer = decode(gen, inputs, targets)
        written = [v for k, v in pairs if k == query]
        assert written and answer == written[-1] and writes == len(written)
        assert mask.sum() == 2 and mask[-2:].all() and (inputs[-2:] == 16).all()  # masked value slots, scored
        keys = [k for k, _ in pairs]
        if mode == "remember":
            assert len(set(keys)) == len(keys)
        repeats += len(set(keys)) < len(keys)
    if mode == "rewrite":
        assert repeats == 400  # a pool of D // 2 keys for D segments always repeats


def test_bad_input():
    with pytest.raises(ConfigError, match="distinct keys"):
        generators.make("kv_segments", {"n_symbols": 2, "key_len": 2, "n_pairs": 5})
    with pytest.raises(ConfigError, match="unknown mode"):
        generators.make("kv_segments", {"mode": "forget"})
