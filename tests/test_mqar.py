"""MQAR: only query positions are scored, labels are the paired values, the Zoology constraints are checked."""

import numpy as np
import pytest

import generators
from generators.core import ConfigError


def test_scores_only_query_positions_with_the_paired_value():
    gen = generators.make("mqar", {"vocab_size": 128, "seq_len": 64, "n_pairs": 8})
    s = gen.sample("train", 0, np.arange(300))
    for inputs, targets, mask in zip(s["inputs"], s["targets"], s["loss_mask"]):
        keys, values = inputs[0:16:2], inputs[1:16:2]
        assert len(set(keys)) == 8 and len(set(values)) == 8
        assert (keys >= 1).all() and (keys < 64).all() and (values >= 64).all() and (values < 128).all()
        pair = dict(zip(keys.tolist(), values.tolist()))
        scored = np.flatnonzero(mask)
        assert len(scored) == 8 and (scored >= 16).all() and (scored % 2 == 0).all()
        assert sorted(inputs[scored].tolist()) == sorted(keys.tolist())  # each key queried once
        assert all(targets[j] == pair[inputs[j]] for j in scored)
        assert (inputs[16:][~mask[16:]] == 0).all()  # filler elsewhere: the answer is never in the input
        assert np.array_equal(targets[~mask], inputs[~mask])


def test_queries_come_soon_after_the_context():
    gen = generators.make("mqar", {"vocab_size": 1024, "seq_len": 512, "n_pairs": 4})
    s = gen.sample("test", 1, np.arange(500))
    first_query = np.argmax(s["loss_mask"], axis=1) - 8
    # slot j has weight (j+1)^(a-1) with a = 0.01: the first slots dominate
    assert np.median(first_query) < 40


@pytest.mark.parametrize("config, message", [
    ({"seq_len": 63}, "must be even"),
    ({"vocab_size": 64, "seq_len": 64}, "V > L"),
    ({"seq_len": 64, "n_pairs": 17}, "4 D <= L"),
    ({"n_pairs": 0}, "1 <= D"),
    ({"power_a": 0.0}, "power_a must be positive"),
])
def test_constraints(config, message):
    with pytest.raises(ConfigError, match=message):
        generators.make("mqar", config)
