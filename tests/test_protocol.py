"""The measurement protocol: baselines against brute-force loops, trivial flags by hand, symmetry-disjoint splits,
the intervals against known answers, the locked test split, and targets that never reach the logits they score."""


import numpy as np
import pytest
import torch

import generators
from generators import ca_baselines, ca_rules
from generators.cellular_automata import CellularAutomata, rule_number, rule_table
from testbed import spec as specs
from testbed.models import MODELS, build_model


def step(state, table, r):
    """One update, cell by cell: neighbourhood x[i-r..i+r] read as binary, leftmost most significant."""
    w = len(state)
    return [table[int("".join(str(state[(i + j) % w]) for j in range(-r, r + 1)), 2)] for i in range(w)]


def brute_baseline(name, given, k, table, r):
    """Each baseline for one example, with plain loops."""
    given = [list(s) for s in given]
    if name == "copy_last":
        return given[-1]

    def period(orbit, ahead):
        for p in range(1, len(orbit)):  # the shortest period p with s_{T-1} = s_{T-1-p}
            if orbit[-1] == orbit[-1 - p]:
                return orbit[len(orbit) - 1 - p + ahead % p]
        return orbit[-1]

    if name == "period":
        return period(given, k)
    if name == "step_then_period":
        return period(given + [step(given[-1], table, r)], k - 1)
    seen = {}
    for t in range(len(given) - 1):
        for i in range(len(given[t])):
            v = int("".join(str(given[t][(i + j) % len(given[t])]) for j in range(-r, r + 1)), 2)
            seen[v] = given[t + 1][i]
    ones = sum(seen.values())
    majority = 1 if 2 * ones > len(seen) else 0
    inferred = [seen.get(v, majority) for v in range(2 ** (2 * r + 1))]
    state = given[-1]
    for _ in range(k):
        state = step(state, inferred, r)
    return state


@pytest.mark.parametrize("radius", [1, 2])
def test_baselines_match_brute_force_loops(radius):
    rng = np.random.default_rng(radius)
    n, t_len, w = 60, 4, 7
    # half of the orbits from rules that settle or cycle (so that periods are found), half from random rules
    tables = rng.integers(0, 2, (n, 2 ** (2 * radius + 1))).astype(np.uint8)
    identity = (np.arange(tables.shape[1]) >> radius) & 1  # the centre cell
    settling = [np.zeros(tables.shape[1]), identity, 1 - identity]  # rule 0, the identity, the complement
    tables[: n // 2] = np.stack([settling[i % 3] for i in range(n // 2)])
    init = rng.integers(0, 2, (n, w)).astype(np.uint8)
    given = ca_rules.evolve(init, tables, t_len)
    k = rng.integers(1, 5, (n, 3))
    for name in ("copy_last", "period", "step_then_period", "rule_lookup"):
        got = ca_baselines.predict(name, given, k, tables, tables.shape[1])
        for i in range(n):
            for j in range(3):
                want = brute_baseline(name, given[i], int(k[i, j]), tables[i].tolist(), radius)
                assert got[i, j].tolist() == want, (name, i, j)


def test_trivial_flags_by_hand():
    gen = generators.make("ca", {"radius": 1, "width": 5, "steps": 5, "n_input": 3, "task": "O-O", "m": 2})
    # orbit of the identity (204): every future state repeats the given ones; of rule 0: s1 = s2 = 0, so the targets
    # (0) repeat a given state too; of a hand-made orbit whose targets are new states: not trivial
    states = np.array([
        [[1, 0, 1, 1, 0]] * 5,
        [[1, 1, 0, 0, 1], [0] * 5, [0] * 5, [0] * 5, [0] * 5],
        [[1, 0, 0, 0, 0], [0, 1, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 1, 0], [1, 1, 1, 1, 1]],
    ], np.uint8)
    tables = np.stack([rule_table(204, 1), rule_table(0, 1), rule_table(0, 1)])
    ex = gen.format(states, tables)
    rows = ex["trivial"][:, ex["loss_mask"][0]].reshape(3, 2, 5)[:, :, 0]  # (example, predicted state)
    assert rows.tolist() == [[1, 1], [1, 1], [0, 0]]
    assert ca_baselines.trivial(states[:, :3], states[:, 3:]).tolist() == [[True, True], [True, True], [False, False]]
    assert ((ex["trivial"] == 1) <= ex["loss_mask"]).all()  # only scored positions are ever marked


@pytest.mark.parametrize("task, extra", [("RO-S", {"k": 6, "mixed_k": True}), ("O-S", {"k": 5}),
                                         ("O-O", {"m": 4}), ("RO-O", {"m": 3})])
def test_fresh_flags_against_a_brute_force_walk_of_each_orbit(task, extra):
    """A target is fresh when it equals no earlier state of its orbit (given or passed through); on a width-5 grid
    orbits cycle quickly, so all three cases occur: trivial, non-trivial but a repeat, and fresh."""
    gen = generators.make("ca", {"radius": 1, "width": 5, "steps": 12, "n_input": 2, "task": task, **extra})
    idx = np.arange(300)
    ex = gen.sample("test", 0, idx)
    states, _ = gen.orbits("test", 0, idx, steps=12)
    n_rows = extra.get("m", 1)
    fresh = ex["fresh"][:, ex["loss_mask"][0]].reshape(300, n_rows, 5)[:, :, 0]
    trivial = ex["trivial"][:, ex["loss_mask"][0]].reshape(300, n_rows, 5)[:, :, 0]
    for i in range(300):
        for j in range(n_rows):
            at = 2 + j if task in ("O-O", "RO-O") else 1 + int(ex["k"][i])
            want = all(states[i, at].tolist() != states[i, t].tolist() for t in range(at))
            assert bool(fresh[i, j]) == want, (i, j)
    assert not (fresh & trivial).any()  # fresh targets are non-trivial
    assert 0 < fresh.sum() < (1 - trivial).sum()  # some repeats are non-trivial: the strata differ


def test_class_ids_are_the_canonical_members():
    gen = generators.make("ca", {"radius": 1})
    tables = np.stack([rule_table(n, 1) for n in range(256)])
    smallest = {m: c for c, ms in ca_rules.radius1_classes() for m in ms}
    assert gen.class_ids(tables).tolist() == [smallest[n] for n in range(256)]
    assert gen.clusters_of_members(np.arange(256)).tolist() == [smallest[n] for n in range(256)]
    two = generators.make("ca", {"radius": 2})
    images = ca_rules.images(np.random.default_rng(0).integers(0, 2, (50, 32)).astype(np.uint8))  # (50, 4, 32)
    ids = two.class_ids(images.reshape(-1, 32)).reshape(50, 4)
    assert (ids == ids[:, :1]).all() and len(np.unique(ids[:, 0])) == 50
    assert (two.clusters_of_members(two.rule_ids(images.reshape(-1, 32))).reshape(50, 4) == ids).all()


def test_rows_are_over_classes_and_a_thin_stratum_gets_no_interval():
    """Units of three seeds on the same examples: rows count classes and rules, the interval's unit is the class
    (four rules of one class move together), and a stratum of fewer than MIN_CLASSES classes has no interval."""
    from testbed.results import aggregate

    n = 400
    member = np.arange(n) % 40  # 40 rules, 4 per class: 10 classes
    cluster = member // 4
    rng = np.random.default_rng(0)
    solved = rng.random(10) < 0.5
    units = [{"slice": np.full(n, "all"), "value": np.full(n, -1), "index": np.arange(n), "cluster": cluster,
              "member": member, "trivial": np.zeros(n, bool), "fresh": cluster < 3,
              "exact": solved[cluster] & (rng.random(n) < 0.9), "correct": np.ones(n, np.int32),
              "cells": np.ones(n, np.int32), "steps": np.full(n, np.nan)} for _ in range(3)]
    row = aggregate.stats(units)
    assert (row["n_classes"], row["n_rules"], row["n_fresh"], row["n_classes_fresh"]) == (10, 40, 120, 3)
    assert row["exact_match_lo"] < row["exact_match"] < row["exact_match_hi"]
    assert row["exact_match_fresh_lo"] == row["exact_match_fresh_hi"] == ""  # 3 classes: no interval
    as_rules = [{**u, "cluster": u["member"]} for u in units]  # rules taken as independent: too narrow
    wrong = aggregate.stats(as_rules)
    assert wrong["exact_match_hi"] - wrong["exact_match_lo"] < 0.8 * (row["exact_match_hi"] - row["exact_match_lo"])


def test_outcomes_recorded_with_rules_as_clusters_are_read_with_classes(tmp_path, tiny_spec):
    from testbed.results.collect import upgraded

    resolved = specs.resolve(tiny_spec(as_dict=True))
    rules = np.array([30, 86, 135, 149, 110, 124])
    old = {"cluster": rules, "exact": np.ones(6)}
    new = upgraded(old, resolved)
    assert new["member"].tolist() == rules.tolist() and new["cluster"].tolist() == [30] * 4 + [110] * 2
    assert upgraded(new, resolved) is new


def test_symmetry_classes_of_the_elementary_rules():
    def numbers(tables):
        return [rule_number(t) for t in tables]

    assert numbers(ca_rules.mirror(rule_table(110, 1)[None])) == [124]
    assert numbers(ca_rules.complement(rule_table(110, 1)[None])) == [137]
    assert sorted(numbers(ca_rules.images(rule_table(30, 1)))) == [30, 86, 135, 149]
    assert sorted(numbers(ca_rules.images(rule_table(110, 1)))) == [110, 124, 137, 193]
    classes = ca_rules.radius1_classes()
    assert len(classes) == 88 and sorted(m for _, ms in classes for m in ms) == list(range(256))
    assert all(c == min(ms) for c, ms in classes)  # named by the smallest rule number
    split = {int(r): s for s, pool in ca_rules.radius1_split().items() for r in pool}
    for _, members in classes:  # exhaustively: a class never straddles two splits
        assert len({split[m] for m in members}) == 1, members


def test_symmetric_rules_share_a_split_at_radius_two():
    rng = np.random.default_rng(0)
    tables = rng.integers(0, 2, (400, 32)).astype(np.uint8)
    for table in tables:
        imgs = ca_rules.images(table)
        assert len({ca_rules.split_of_rule(rule_number(t), 2) for t in imgs}) == 1
    gen = generators.make("ca", {"radius": 2, "n_input": 1, "steps": 2})
    classes = {}
    for split in ("train", "val", "test"):
        canon = ca_rules.canonical(gen.rules(split, 0, np.arange(3000, dtype=np.uint64)))
        classes[split] = {t.tobytes() for t in canon}
    assert not classes["train"] & classes["test"] and not classes["train"] & classes["val"]


@pytest.mark.slow
def test_training_and_selection_never_draw_a_test_example(tmp_path, monkeypatch, tiny_spec):
    """Checkpoints, early stopping and every score during training read the validation split; the test split is
    read once, after training, by the final evaluation."""
    from testbed import evaluation, training

    drawn, phase = [], {"testing": False}
    orbits = CellularAutomata.orbits

    def watched(self, split, *args, **kwargs):
        drawn.append((split, phase["testing"]))
        return orbits(self, split, *args, **kwargs)

    test_outcomes = evaluation.test_outcomes

    def final(*args, **kwargs):
        phase["testing"] = True
        return test_outcomes(*args, **kwargs)

    monkeypatch.setattr(CellularAutomata, "orbits", watched)
    monkeypatch.setattr(evaluation, "test_outcomes", final)
    resolved = specs.resolve(tiny_spec(as_dict=True, train={"max_steps": 6, "val_every": 2, "early_stop_patience": 1}))
    training.train(resolved, tmp_path, quiet=True)
    before = {split for split, testing in drawn if not testing}
    assert before == {"train", "val"}  # training batches and validation for checkpoints and early stopping
    assert {split for split, testing in drawn if testing} == {"test"}


FAMILIES = {
    "transformer": {}, "looped": {"loops": 2}, "recurrent_depth": {"n_prelude": 1, "n_coda": 1, "mean_iterations": 2,
                                                                   "bptt": 2},
    "act": {}, "memory_tokens": {"n_memory": 2}, "rmt": {"n_memory": 2}, "armt": {"n_memory": 2, "d_mem": 8, "nu": 1},
    "cot": {}, "lstm": {}, "fast_weights": {}, "torch_encoder": {}, "mamba": {"d_state": 4, "chunk": 4},
}


def family(name, causal=False, **extra):
    gen = generators.make("ca", {"radius": 1, "width": 5, "steps": 7, "n_input": 3, "task": "O-O", "m": 3})
    fields = {f for f in MODELS.get(name).Config.__dataclass_fields__}
    cfg = {k: v for k, v in {"n_layer": 1, "n_head": 2, "d_model": 16, "causal": causal}.items() if k in fields}
    torch.manual_seed(0)
    model = build_model(name, {**cfg, **FAMILIES[name], **extra}, gen.layout())
    if name == "armt":  # its memory starts silent; open it so that a leak through it could show
        for mem in model.memories:
            torch.nn.init.normal_(mem.value.weight, std=0.3)
    batch = {k: torch.as_tensor(v) for k, v in gen.sample("train", 0, range(6)).items()}
    return gen, model, batch


def logits_of(model, batch):
    """The logits the training loss is computed from (every pass of the head), with sampling fixed."""
    seen = []
    hook = model.head.register_forward_hook(lambda m, a, out: seen.append(out.detach().clone()))
    torch.manual_seed(1)
    model.train()
    model.training_loss(batch)
    hook.remove()
    return seen


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_a_target_never_reaches_the_logits_that_score_it(name):
    gen, model, batch = family(name)
    rows = torch.as_tensor(gen.layout().coords[:, 0])
    mask = batch["loss_mask"][0]
    target_rows = sorted(torch.unique(rows[mask]).tolist())
    for r in target_rows:  # flip the cells of one predicted state, keep every other target
        perturbed = dict(batch)
        here = batch["loss_mask"] & (rows == r)
        perturbed["targets"] = torch.where(here, 1 - batch["targets"].clamp(max=1), batch["targets"])
        before, after = logits_of(model, batch), logits_of(model, perturbed)
        assert len(before) == len(after)
        if name != "cot":  # one pass: the targets reach nothing but the loss
            for a, b in zip(before, after):
                torch.testing.assert_close(a, b)
            continue
        # chain of thought teacher-forces: its passes (stacked along the batch, one per predicted state) see the true
        # states before their own; the pass that scores state r never sees state r, the earlier passes never at all
        passes_a, passes_b = before[0].chunk(len(target_rows)), after[0].chunk(len(target_rows))
        for own, a, b in zip(target_rows, passes_a, passes_b):
            if own < r:
                torch.testing.assert_close(a, b)
            elif own == r:
                torch.testing.assert_close(a[:, mask & (rows == r)], b[:, mask & (rows == r)])


@pytest.mark.parametrize("feedback", [False, True])
def test_step_supervision_never_feeds_a_target_to_a_loop(feedback):
    """The step-supervised looped block trains loop j's read-out on the state j steps ahead (path_targets), and with
    feedback starts each loop from the embedding of the previous loop's read-out: its own prediction, never a target.
    Flipping one path state (or the final target) changes no logit of any loop's read-out, but does change the
    loss that scores them."""
    gen = generators.make("ca", {"radius": 1, "width": 5, "steps": 6, "n_input": 2, "task": "RO-S", "k": 3,
                                 "path": True})
    torch.manual_seed(0)
    model = build_model("looped", {"n_layer": 1, "n_head": 2, "d_model": 16, "loops": 3, "step_loss": True,
                                   "feedback": feedback}, gen.layout())
    batch = {k: torch.as_tensor(v) for k, v in gen.sample("train", 0, range(6)).items()}
    mask = batch["loss_mask"]
    assert batch["path_targets"].shape[1] == 3
    base = logits_of(model, batch)
    assert len(base) == 3 + 2 * feedback  # one read-out per loop, and with feedback each loop's re-embedded one
    torch.manual_seed(1)
    loss = model.training_loss(batch)[0].item()
    for j in range(3):
        path = batch["path_targets"].clone()
        path[:, j] = torch.where(mask, 1 - path[:, j].clamp(max=1), path[:, j])
        for perturbed in ({**batch, "path_targets": path},
                          {**batch, "path_targets": path, "targets": torch.where(mask, 1 - batch["targets"].clamp(
                              max=1), batch["targets"])}):
            for a, b in zip(base, logits_of(model, perturbed)):
                torch.testing.assert_close(a, b)
            torch.manual_seed(1)
            assert model.training_loss(perturbed)[0].item() != pytest.approx(loss)


CAUSAL = ["transformer", "looped", "recurrent_depth", "act", "memory_tokens", "rmt", "armt", "cot", "lstm",
          "fast_weights", "mamba"]


@pytest.mark.parametrize("name", CAUSAL)
def test_causal_families_never_read_the_future(name):
    gen, model, batch = family(name, causal=True)
    model.eval()
    x = batch["inputs"]
    for cut in (9, 17):
        y = x.clone()
        y[:, cut:] = 1 - y[:, cut:].clamp(max=1)  # change every position from `cut` on
        torch.manual_seed(0)
        a = model(x)
        torch.manual_seed(0)
        b = model(y)
        torch.testing.assert_close(a[:, :cut], b[:, :cut])
        assert not torch.allclose(a[:, cut:], b[:, cut:])


def test_every_depth_preset_measures_three_seeds_and_says_what_was_tuned():
    from testbed.cli import experiments_dir

    for path in sorted(experiments_dir().glob("*.toml")):
        spec = specs.load(path)
        tuning = spec.get("tuning")
        assert isinstance(tuning, dict) and tuning, f"{path.name}: no [tuning] table"
        for preset in spec.get("presets", {}) or [None]:
            note = tuning.get(preset or "base")
            assert isinstance(note, dict) and {"tuned", "split"} <= set(note), (path.name, preset)
            assert note["split"] in ("validation", "none"), (path.name, preset, note)
            if spec.get("data", {}).get("generator") == "ca" and preset in ("cpu", None):
                seeds = specs.with_preset(spec, preset).get("sweep", {}).get("seeds", [])
                assert len(seeds) >= 3, (path.name, preset)


def test_a_data_option_added_later_leaves_the_task_the_same(tiny_spec):
    """Runs written before an option existed (no key in config.json) pair with runs that hold its default."""
    from testbed.results.collect import task_id

    resolved = specs.resolve(tiny_spec(as_dict=True))
    plain = resolved.as_dict()
    older = {**plain, "data": {k: v for k, v in plain["data"].items() if k != "path"}}
    assert resolved.data.path is False and task_id(older) == task_id(resolved)
    assert specs.run_id(older) == specs.run_id(resolved)
    assert task_id(resolved.replace(data={"path": True})) != task_id(resolved)


def test_memory_errors_carry_the_interval_of_their_exact_match():
    from testbed.results.tables import memory_table

    def row(preset, d, em, lo, hi):
        return {"split": "test", "slice": "all", "d_model": str(d), "model": "linear_memory", "preset": preset,
                "exact_match": str(em), "exact_match_lo": str(lo), "exact_match_hi": str(hi)}

    rows = [row("adam", 10, 0.96, 0.95, 0.97), row("sgd", 10, 0.9, 0.8, 0.95), row("sgd", 10, 0.7, 0.6, 0.8)]
    assert memory_table(rows) == {"adam": {10: pytest.approx(0.04)}, "sgd": {10: pytest.approx(0.2)}}
    table = memory_table(rows, intervals=True)
    assert table["adam"][10] == pytest.approx((0.04, 0.03, 0.05))  # error = 1 - exact match, so the bounds swap
    assert table["sgd"][10][1:] == (None, None)  # two configurations at one point: their intervals do not combine
    rows[0]["exact_match_lo"] = ""  # a table without the interval keeps the mean alone
    assert memory_table(rows[:1], intervals=True)["adam"][10][1:] == (None, None)
