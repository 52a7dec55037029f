"""MAD tasks: exactly the intended positions are scored, answers are never visible in the input."""

import numpy as np
import pytest

import generators
from generators.core import ConfigError


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


def test_fuzzy_recall_against_a_brute_force_parse():
    gen = generators.make("fuzzy_recall", {"vocab_size": 16, "seq_len": 64, "max_motif": 3, "n_keys": 4})
    s = gen.sample("train", 3, range(50))
    half, pad, mask = 8, 16, 17
    lengths = set()
    for inp, tgt, scored in zip(s["inputs"], s["targets"], s["loss_mask"]):
        runs, i = [], 0  # maximal runs of key tokens, then value tokens, until the padding
        while i < len(tgt) and tgt[i] != pad:
            j = i
            kind = tgt[i] < half
            while j < len(tgt) and tgt[j] != pad and (tgt[j] < half) == kind:
                j += 1
            runs.append((kind, i, j))
            i = j
        assert (tgt[i:] == pad).all() and (inp[i:] == pad).all()
        assert [k for k, _, _ in runs] == [True, False] * (len(runs) // 2) and len(runs) % 2 == 0
        value_of, expected = {}, np.zeros_like(scored)
        for (_, a, b), (_, c, e) in zip(runs[0::2], runs[1::2]):
            key, value = tuple(tgt[a:b]), tuple(tgt[c:e])
            lengths.add(len(key))
            assert 1 <= len(key) <= 3 and 1 <= len(value) <= 3
            if key in value_of:
                assert value_of[key] == value  # one value motif per key within a sequence
                expected[c:e] = True
            value_of[key] = value
        assert len(value_of) <= 4
        assert np.array_equal(scored, expected)  # exactly the value motifs of repeated keys
        assert (inp[scored] == mask).all() and np.array_equal(inp[~scored], tgt[~scored])
    assert lengths == {1, 2, 3}
    assert np.array_equal(gen.sample("train", 3, range(10, 20))["inputs"], s["inputs"][10:20])


def test_fuzzy_recall_bad_input():
    with pytest.raises(ConfigError, match="some key repeats"):
        generators.make("fuzzy_recall", {"seq_len": 24, "n_keys": 4})
    with pytest.raises(ConfigError, match="distinct key motifs"):
        generators.make("fuzzy_recall", {"vocab_size": 4, "max_motif": 1, "n_keys": 3, "seq_len": 64})
