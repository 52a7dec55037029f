"""MAD tasks: exactly the intended positions are scored, answers are never visible in the input."""

import numpy as np
import pytest

import generators
from generators import ConfigError


@pytest.mark.parametrize("name, config", [("in_context_recall", {}), ("noisy_recall", {"noise_fraction": 0.3})])
def test_recall_scores_every_repeat_of_a_key(name, config):
    gen = generators.make(name, {"seq_len": 64, **config})
    c = gen.config
    s = gen.sample("train", 0, np.arange(200))
    mask_token = c.vocab_size + c.noise_vocab
    noise_seen = 0
    for inputs, targets, mask in zip(s["inputs"], s["targets"], s["loss_mask"]):
        first = {}
        for i in range(0, len(inputs), 2):
            key = inputs[i]
            if key >= c.vocab_size:  # a noise pair: never scored
                noise_seen += 1
                assert not mask[i + 1] and inputs[i + 1] >= c.vocab_size
                continue
            if key in first:
                assert mask[i + 1] and inputs[i + 1] == mask_token and targets[i + 1] == first[key]
            else:
                assert not mask[i + 1] and inputs[i + 1] == targets[i + 1]
                first[key] = inputs[i + 1]
        assert not mask[0::2].any()
    assert (noise_seen > 0) == (c.noise_fraction > 0)


def test_memorization_uses_one_map_for_every_sequence():
    gen = generators.make("memorization", {})
    s = gen.sample("train", 0, np.arange(100))
    t = gen.sample("test", 9, np.arange(100))
    pairs = {}
    for data in (s, t):
        for inputs, targets in zip(data["inputs"], data["targets"]):
            for k, v in zip(inputs[0::2], targets[1::2]):
                assert pairs.setdefault(k, v) == v
    assert s["loss_mask"][:, 1::2].all() and not s["loss_mask"][:, 0::2].any()
    assert (s["inputs"][:, 1::2] == 256).all()


def test_selective_copying_copies_the_scattered_tokens_in_order():
    gen = generators.make("selective_copying", {"seq_len": 64, "n_copy": 8})
    s = gen.sample("val", 1, np.arange(50))
    for inputs, targets, mask in zip(s["inputs"], s["targets"], s["loss_mask"]):
        region = inputs[: 64 - 9]
        assert inputs[64 - 9] == 16 and (inputs[-8:] == 17).all()
        assert np.array_equal(targets[mask], region[region > 0])
        assert mask.sum() == 8


def test_bad_input():
    with pytest.raises(ConfigError, match="seq_len must be even"):
        generators.make("in_context_recall", {"seq_len": 63})
    with pytest.raises(ConfigError, match="seq_len >= 2 n_copy"):
        generators.make("selective_copying", {"seq_len": 16, "n_copy": 16})
    with pytest.raises(ConfigError, match="noise_fraction"):
        generators.make("noisy_recall", {"noise_fraction": 1.5})
