"""The CA generator against an independent brute-force reference, known Wolfram rows, and its split guarantees."""

import collections
import itertools

import numpy as np
import pytest

import generators
from generators.cellular_automata import (
    MASK,
    SEP,
    evolve,
    radius1_split,
    rule_number,
    rule_table,
    split_of_rule,
)
from generators.core import ConfigError


def brute_force_step(state, table, r):
    """Textbook update, one cell at a time: neighbourhood x[i-r..i+r] read as binary, leftmost most significant."""
    w = len(state)
    nxt = []
    for i in range(w):
        bits = [state[(i + j) % w] for j in range(-r, r + 1)]
        v = int("".join(map(str, bits)), 2)
        nxt.append(table[v])
    return nxt


@pytest.mark.parametrize("radius", [1, 2, 3, 4])
def test_orbits_match_brute_force(radius):
    gen = generators.make("ca", {"radius": radius, "width": 2 * radius + 7, "steps": 12, "n_input": 3})
    states, tables = gen.orbits("train", 7, np.arange(40))
    assert states.shape == (40, 12, 2 * radius + 7) and tables.shape == (40, 2 ** (2 * radius + 1))
    assert states.dtype == np.uint8 and tables.dtype == np.uint8
    for orbit, table in zip(states, tables):
        for t in range(11):
            assert list(orbit[t + 1]) == brute_force_step(list(orbit[t]), list(table), radius)


def test_evolve_matches_brute_force_on_random_rules_directly():
    rng = np.random.default_rng(0)
    for r in (1, 2, 3, 4):
        init = rng.integers(0, 2, (5, 11), dtype=np.uint8)
        tables = rng.integers(0, 2, (5, 2 ** (2 * r + 1)), dtype=np.uint8)
        out = evolve(init, tables, 6)
        for i in range(5):
            x = list(init[i])
            for t in range(1, 6):
                x = brute_force_step(x, list(tables[i]), r)
                assert list(out[i, t]) == x


def test_bit_sliced_evolution_equals_the_table_lookup():
    """64 examples a word: batch sizes around a word boundary, every radius the bit-sliced path serves."""
    from generators.ca_rules import evolve_gather

    rng = np.random.default_rng(1)
    for r in (1, 2, 3):
        for n in (1, 63, 64, 65, 300):
            init = rng.integers(0, 2, (n, 2 * r + 4), dtype=np.uint8)
            tables = rng.integers(0, 2, (n, 2 ** (2 * r + 1)), dtype=np.uint8)
            assert np.array_equal(evolve(init, tables, 7), evolve_gather(init, tables, 7)), (r, n)


def centre_rows(number, rows, width=31):
    gen = generators.make("ca", {"radius": 1, "rule": [number], "init": "single", "width": width,
                                 "steps": rows, "n_input": 1})
    states, _ = gen.orbits("test", 0, [0])
    return ["".join(map(str, s)).strip("0") for s in states[0]]


def test_wolfram_rules_from_a_single_cell():
    # Published first rows (Wolfram, A New Kind of Science; OEIS A070950 / A047999 / A070887).
    assert centre_rows(30, 6) == ["1", "111", "11001", "1101111", "110010001", "11011110111"]
    assert centre_rows(90, 6) == ["1", "101", "10001", "1010101", "100000001", "10100000101"]
    assert centre_rows(110, 8) == ["1", "11", "111", "1101", "11111", "110001", "1110011", "11010111"]


def test_single_cell_sits_at_width_over_two():
    gen = generators.make("ca", {"radius": 1, "rule": [0], "init": "single", "width": 9, "steps": 2, "n_input": 1})
    states, _ = gen.orbits("train", 0, [0])
    assert states[0, 0].tolist() == [0, 0, 0, 0, 1, 0, 0, 0, 0]


def test_rule_numbers_round_trip_and_follow_bit_order():
    assert rule_table(30, 1).tolist() == [0, 1, 1, 1, 1, 0, 0, 0]  # v = 0b100 (only left live) -> 1
    for r, n in [(1, 110), (2, 2**32 - 5), (3, 2**127 + 12345), (4, 2**511 + 1)]:
        assert rule_number(rule_table(n, r)) == n


@pytest.mark.parametrize("radius", [1, 2, 3])
@pytest.mark.parametrize("seed", [0, 1, 123])
def test_splits_are_rule_disjoint(radius, seed):
    gen = generators.make("ca", {"radius": radius, "n_input": 1, "steps": 2})
    seen = {}
    for split, n in (("train", 3000), ("val", 500), ("test", 700)):
        tables = gen.rules(split, seed, np.arange(n, dtype=np.uint64))
        seen[split] = {t.tobytes() for t in tables}
        for t in tables[:50]:  # the recorded split of a rule is its hash split
            assert split_of_rule(rule_number(t), radius) == split
    assert not seen["train"] & seen["val"] and not seen["train"] & seen["test"] and not seen["val"] & seen["test"]


def test_radius1_split_is_an_explicit_partition():
    parts = radius1_split()
    allrules = np.concatenate(list(parts.values()))
    assert sorted(allrules.tolist()) == list(range(256))
    # whole symmetry classes (of 1, 2 or 4 rules) go to each split, cut where the rules reach 80 % and 90 %
    assert [len(p) for p in parts.values()] == [208, 22, 26]
    assert 128 <= radius1_split((0.5, 0.25, 0.25))["train"].size < 128 + 4


@pytest.mark.parametrize("fractions", [(0.8, 0.1, 0.1), (0.5, 0.1, 0.4), (0.45, 0.15, 0.4)])
def test_a_larger_held_out_share_keeps_classes_whole_and_splits_disjoint(fractions):
    """The held-out share as a data option (radius 1): each class in exactly one split, the splits' drawn rules
    disjoint, and the test split's classes as many as the share promises (>= 30 at 0.4)."""
    gen = generators.make("ca", {"radius": 1, "n_input": 1, "steps": 2, "split_fractions": fractions})
    classes = {}
    for split in ("train", "val", "test"):
        tables = gen.rules(split, 0, np.arange(4000, dtype=np.uint64))
        classes[split] = set(gen.class_ids(tables).tolist())
        members = set(gen.rule_ids(tables).tolist())
        assert members == set(radius1_split(fractions)[split].tolist())  # every rule of the split is drawn
    assert not classes["train"] & classes["val"] and not classes["train"] & classes["test"]
    assert not classes["val"] & classes["test"]
    assert sum(map(len, classes.values())) == 88
    if fractions[2] >= 0.4:
        assert len(classes["test"]) >= 30


@pytest.mark.parametrize("radius,fractions,message", [
    (1, (0.9, 0.05, 0.05), "leave the test split 3 of the 88"),
    (1, (0.95, 0.01, 0.04), "leave the val split"),
    (2, (0.9, 0.095, 0.005), "less than 0.01 of the rules"),
])
def test_a_split_too_thin_for_an_interval_is_refused(radius, fractions, message):
    with pytest.raises(ConfigError, match=message):
        generators.make("ca", {"radius": radius, "split_fractions": fractions})


def test_split_fractions_are_respected_for_large_radius():
    gen = generators.make("ca", {"radius": 2, "n_input": 1, "steps": 2})
    from generators.ca_rules import class_hash, split_of_hash
    from generators.core.rng import hash64, unpack_bits

    tables = unpack_bits(hash64(99, np.arange(20000, dtype=np.uint64))[:, None], 32)  # uniform radius-2 rules
    share = np.bincount(split_of_hash(class_hash(tables), gen.config.split_fractions), minlength=3) / 20000
    assert np.allclose(share, [0.8, 0.1, 0.1], atol=0.015)


def test_same_seed_same_bytes_different_seed_different_data():
    gen = generators.make("ca", {})
    a = gen.sample("train", 5, np.arange(64))
    b = gen.sample("train", 5, np.arange(64))
    c = gen.sample("train", 6, np.arange(64))
    for key in a:
        assert a[key].tobytes() == b[key].tobytes()
    assert not np.array_equal(a["inputs"], c["inputs"])
    assert not np.array_equal(gen.sample("val", 5, np.arange(64))["inputs"], a["inputs"])


def test_per_index_equals_batch_in_any_order():
    gen = generators.make("ca", {"radius": 3, "mixed_k": True, "k": 4, "steps": 16})
    batch = gen.sample("test", 3, np.arange(100))
    order = np.random.default_rng(0).permutation(100)
    shuffled = gen.sample("test", 3, order)
    for i in (0, 17, 99):
        single = gen.sample("test", 3, [i])
        pos = int(np.where(order == i)[0][0])
        for key in batch:
            assert np.array_equal(single[key][0], batch[key][i])
            assert np.array_equal(shuffled[key][pos], batch[key][i])


def test_init_modes():
    dense = generators.make("ca", {"init": "density=0.9", "n_input": 1, "steps": 2}).orbits("train", 0, range(500))[0]
    sparse = generators.make("ca", {"init": "density=0.1", "n_input": 1, "steps": 2}).orbits("train", 0, range(500))[0]
    uniform = generators.make("ca", {"n_input": 1, "steps": 2}).orbits("train", 0, range(500))[0]
    assert abs(dense[:, 0].mean() - 0.9) < 0.02 and abs(sparse[:, 0].mean() - 0.1) < 0.02
    assert abs(uniform[:, 0].mean() - 0.5) < 0.02


def task_sample(**config):
    gen = generators.make("ca", {"radius": 1, "width": 6, "steps": 12, "n_input": 3, **config})
    idx = np.arange(20)
    states, tables = gen.orbits("train", 1, idx)
    return gen, gen.sample("train", 1, idx), states, tables


def test_task_o_s_targets_k_steps_ahead_and_inputs_hide_them():
    gen, s, states, _ = task_sample(task="O-S", k=3)
    w = 6
    # layout: s0 | s1 | s2 | ??????
    assert s["inputs"].shape == (20, 3 * (w + 1) + w)
    assert np.array_equal(s["inputs"][:, : w], states[:, 0])
    assert (s["inputs"][:, w] == SEP).all()
    target = s["loss_mask"]
    assert (s["inputs"][target] == MASK).all()
    assert np.array_equal(s["targets"][target].reshape(20, w), states[:, 2 + 3])
    assert (s["step"][target] == 3).all() and (s["k"] == 3).all()


def test_task_mixed_k_signals_k_with_a_token():
    gen, s, states, _ = task_sample(task="O-S", k=4, mixed_k=True)
    assert set(s["k"].tolist()) <= {1, 2, 3, 4} and len(set(s["k"].tolist())) > 1
    assert np.array_equal(s["inputs"][:, 0], 5 + s["k"] - 1)
    rows = s["targets"][s["loss_mask"]].reshape(20, 6)
    assert np.array_equal(rows, states[np.arange(20), 2 + s["k"]])


def test_task_o_o_o_sr_ro_s():
    _, s, states, tables = task_sample(task="O-O", m=4)
    tgt = s["targets"][s["loss_mask"]].reshape(20, 4, 6)
    assert np.array_equal(tgt, states[:, 3:7])
    assert s["step"][s["loss_mask"]].reshape(20, 4, 6)[:, :, 0].tolist() == [[1, 2, 3, 4]] * 20
    _, s, states, tables = task_sample(task="O-SR")
    tgt = s["targets"][s["loss_mask"]].reshape(20, 6 + 8)
    assert np.array_equal(tgt[:, :6], states[:, 3]) and np.array_equal(tgt[:, 6:], tables)
    _, s, states, tables = task_sample(task="RO-S")
    assert np.array_equal(s["inputs"][:, 1:9], tables)  # R marker, then the rule bits
    assert np.array_equal(s["targets"][s["loss_mask"]].reshape(20, 6), states[:, 3])
    _, s, states, tables = task_sample(task="RO-O", m=3)  # the rule given, the next m states asked
    assert np.array_equal(s["inputs"][:, 1:9], tables)
    assert np.array_equal(s["targets"][s["loss_mask"]].reshape(20, 3, 6), states[:, 3:6])
    assert s["step"][s["loss_mask"]].reshape(20, 3, 6)[:, :, 0].tolist() == [[1, 2, 3]] * 20


def test_format_rejects_orbits_of_another_shape():
    gen = generators.make("ca", {"radius": 1, "width": 6, "steps": 12, "n_input": 3})
    other = generators.make("ca", {"radius": 2, "width": 8, "steps": 12, "n_input": 3})
    states, tables = other.orbits("test", 0, range(4))
    with pytest.raises(ConfigError, match="do not fit"):
        gen.format(states, tables)


def test_layout_coords_cover_every_position():
    """Every position has its own (row, column) on the grid, inside it, in every task and with the k-token (but
    one documented pair)."""
    for task, mixed in itertools.product(("O-S", "O-O", "O-SR", "RO-S", "RO-O"), (False, True)):
        if mixed and task in ("O-O", "RO-O"):
            continue  # mixed_k does not apply to the next-m-states tasks
        gen = generators.make("ca", {"task": task, "mixed_k": mixed})
        lay = gen.layout()
        assert lay.coords.shape == (lay.seq_len, 2)
        assert (lay.coords >= 0).all()
        assert (lay.coords[:, 0] < lay.n_rows).all() and (lay.coords[:, 1] < lay.n_cols).all()
        counts = collections.Counter(map(tuple, lay.coords.tolist()))
        shared = {c for c, n in counts.items() if n > 1}
        plan = gen._plan()
        # one known exception, kept so that stored checkpoints keep their positions: with the rule given and a k-token
        # both special tokens sit in the extra row's separator column, told apart by their tokens
        both = {tuple(lay.coords[plan["k_token"]])} if mixed and task in ("RO-S",) else set()
        assert shared == both and max(counts.values()) <= 2, (task, mixed, shared)
        if both:
            assert tuple(lay.coords[plan["rule_marker"]]) in both


@pytest.mark.parametrize(
    "config, message",
    [
        ({"radius": 0}, "radius must be in 1..4"),
        ({"radius": 5}, "radius must be in 1..4"),
        ({"radius": 2, "width": 4}, "width must be at least 2r\\+1 = 5"),
        ({"radius": 1, "rule": [256]}, "out of range"),
        ({"radius": 2, "rule": [2**32]}, "out of range"),
        ({"rule": [-1]}, "out of range"),
        ({"steps": 5}, "do not fit in steps = 5"),
        ({"k": 11}, "do not fit"),
        ({"k": 0}, "k must be in 1..16"),
        ({"n_input": 0}, "n_input must be at least 1"),
        ({"width": 0}, "width must be at least"),
        ({"task": "O-X"}, "unknown task"),
        ({"split_fractions": [0.5, 0.5]}, "split_fractions"),
        ({"init": "density=1.5"}, "density"),
        ({"widht": 20}, "did you mean 'width'"),
        ({"width": "wide"}, "must be an integer"),
        ({"width": True}, "must be an integer"),
    ],
)
def test_bad_config_is_rejected_with_the_valid_range(config, message):
    with pytest.raises(ConfigError, match=message):
        generators.make("ca", config).layout()  # the task as a whole is checked where examples are formatted


def test_bad_split_and_seed():
    gen = generators.make("ca", {})
    with pytest.raises(ConfigError, match="unknown split 'tset'; valid: train, val, test"):
        gen.sample("tset", 0, [0])
    with pytest.raises(ConfigError, match="seed"):
        gen.sample("train", -1, [0])


@pytest.mark.parametrize("spec,preset", [("depth_staircase.toml", "radius2"), ("depth_staircase.toml", "radius2-gpu"),
                                         ("depth_extrapolation.toml", "radius2")])
def test_the_radius_2_presets_hold_a_world_of_fresh_held_out_rules(spec, preset):
    """The radius-2 depth regime: every held-out example its own symmetry class (almost surely), disjoint from the
    training rules; the extrapolation preset's orbits reach k = 32 and refuse k = 33 in one line."""
    from testbed import spec as specs

    cfg = specs.resolve(specs.with_preset(specs.load(f"experiments/{spec}"), preset))
    gen = cfg.task()
    assert gen.config.radius == 2 and gen.config.width >= 16
    test = gen.sample("test", 0, np.arange(512))
    assert np.unique(test["class_id"]).size >= 500
    train_classes = set(gen.class_ids(gen.rules("train", 0, np.arange(4000, dtype=np.uint64))).tolist())
    assert not train_classes & set(test["class_id"].tolist())
    if spec == "depth_extrapolation.toml":
        gen.check_depth(32)
        with pytest.raises(ConfigError, match="valid k are 1..32"):
            gen.check_depth(33)
        far = gen.sample_at_depth("test", 0, np.arange(512), 32)
        assert (far["fresh"].astype(bool) | ~far["loss_mask"]).all(1).mean() > 0.4  # most targets never seen before
