"""The measurement protocol: baselines against brute-force loops, trivial flags by hand, symmetry-disjoint splits,
the intervals against known answers, the locked test split, and targets that never reach the logits they score."""


import numpy as np
import pytest
import torch

import generators
from generators import ca_baselines, ca_rules
from generators.cellular_automata import CellularAutomata, rule_number, rule_table
from testbed import intervals
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


def test_bootstrap_interval_of_a_known_mean():
    rng = np.random.default_rng(0)
    scores = (rng.random(2000) < 0.3).astype(float)[None]
    est, lo, hi = intervals.bootstrap(scores, np.ones_like(scores))
    half = 1.96 * np.sqrt(0.3 * 0.7 / 2000)  # the normal approximation of a binomial proportion
    assert est == pytest.approx(scores.mean())
    assert (hi - lo) / 2 == pytest.approx(half, rel=0.15) and lo < est < hi
    from scipy import stats

    ref = stats.bootstrap((scores[0],), np.mean, method="percentile", n_resamples=2000, random_state=0)
    assert lo == pytest.approx(ref.confidence_interval.low, abs=0.006)
    assert hi == pytest.approx(ref.confidence_interval.high, abs=0.006)


def test_many_clusters_are_pooled_into_groups_with_the_same_interval(monkeypatch):
    """50,000 i.i.d. examples as clusters: pooled into MAX_CLUSTERS groups (bounded memory), the interval matches
    the unpooled bootstrap's."""
    rng = np.random.default_rng(2)
    n = 50_000
    units = [{"cluster": np.arange(n), "exact": (rng.random(n) < 0.9).astype(float)} for _ in range(2)]
    num, den = intervals.cell_sums(units, "exact", None)
    assert num.shape == (2, intervals.MAX_CLUSTERS) and den.sum() == 2 * n and num.sum() == sum(u["exact"].sum()
                                                                                                   for u in units)
    est, lo, hi = intervals.bootstrap(num, den)
    monkeypatch.setattr(intervals, "MAX_CLUSTERS", 2 * n)  # no pooling
    _, lo_full, hi_full = intervals.bootstrap(*intervals.cell_sums(units, "exact", None), replicates=200)
    assert (hi - lo) == pytest.approx(hi_full - lo_full, rel=0.25)
    assert lo < est < hi


def test_seed_variation_widens_the_interval_and_pairing_narrows_a_difference():
    rng = np.random.default_rng(1)
    rules = rng.random(500) < 0.5  # per rule: solved by a good model or not
    same = np.stack([rules, rules, rules]).astype(float)  # three seeds that agree: no seed variation
    shifted = np.stack([rules & (rng.random(500) < f) for f in (0.5, 0.8, 1.0)]).astype(float)  # seeds that differ
    ones = np.ones((3, 500))
    _, lo_s, hi_s = intervals.bootstrap(same, ones)
    _, lo_d, hi_d = intervals.bootstrap(shifted, ones)
    assert hi_d - lo_d > hi_s - lo_s
    # b is a, less a few rules: the difference is small and certain when paired, invisible from two intervals
    b = same * (rng.random((1, 500)) > 0.05)
    diff, lo, hi = intervals.paired((same, ones), (b, ones))
    _, lo_b, hi_b = intervals.bootstrap(b, ones)
    assert 0 < lo <= diff <= hi and hi - lo < 0.5 * (hi_s - lo_s)
    assert lo_s < hi_b  # the two intervals overlap
    assert intervals.paired((same, ones), (same, ones))[1:] == (0.0, 0.0)


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
    from testbed.collect import task_id

    resolved = specs.resolve(tiny_spec(as_dict=True))
    older = {**resolved, "data": {k: v for k, v in resolved["data"].items() if k != "path"}}
    assert resolved["data"]["path"] is False and task_id(older) == task_id(resolved)
    assert specs.run_id(older) == specs.run_id(resolved)
    assert task_id({**resolved, "data": {**resolved["data"], "path": True}}) != task_id(resolved)


def test_bootstrap_many_equals_one_at_a_time():
    """A row's columns are resampled together, with the draws each would get alone."""
    rng = np.random.default_rng(3)
    pairs = [(rng.integers(0, 5, (3, 40)).astype(float), np.full((3, 40), 5.0)) for _ in range(4)]
    pairs.append((np.zeros((3, 40)), np.zeros((3, 40))))  # an empty stratum: no estimate, no interval
    together = intervals.bootstrap_many(pairs)
    for (num, den), got in zip(pairs[:4], together):
        np.testing.assert_allclose(got, intervals.bootstrap(num, den), rtol=1e-5)
    assert all(np.isnan(v) for v in together[4])


def test_memory_errors_carry_the_interval_of_their_exact_match():
    from testbed.tables import memory_table

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
