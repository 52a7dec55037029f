"""Facts and the memories that store them in their weights: facts are deterministic and their bits are right;
the product-key top-k is the brute-force top-k over all keys; a hash layer sends each query to exactly one expert;
every family overfits a tiny world; bad input is one line."""

import csv
import math

import numpy as np
import pytest
import torch
from helpers import one_line_error, run

import generators
from testbed.models import build_model
from testbed.models.parametric import PKMConfig, ProductKeyMemory, expert_of


def test_facts_are_fixed_by_the_world_and_every_split_asks_them_all():
    gen = generators.make("facts", {"n_entities": 50, "n_attributes": 3, "n_values": 8})
    a = gen.sample("train", 0, np.arange(150))
    again = generators.make("facts", {"n_entities": 50, "n_attributes": 3, "n_values": 8}).sample("train", 0,
                                                                                                  np.arange(150))
    assert all((a[k] == again[k]).all() for k in a)
    facts = (a["inputs"][:, 0] - gen.entity0) * 3 + (a["inputs"][:, 1] - gen.attribute0)
    assert sorted(facts.tolist()) == list(range(150))  # one pass: every fact exactly once
    test = gen.sample("test", 5, np.arange(150))
    answer = dict(zip(map(tuple, a["inputs"][:, :2].tolist()), a["targets"][:, 2].tolist()))
    assert all(answer[tuple(q)] == t for q, t in zip(test["inputs"][:, :2].tolist(), test["targets"][:, 2].tolist()))
    other = generators.make("facts", {"n_entities": 50, "n_attributes": 3, "n_values": 8, "world": 1})
    assert (other.values(np.arange(150)) != gen.values(np.arange(150))).any()


def test_the_bits_of_a_world():
    uniform = generators.make("facts", {"n_entities": 100, "n_attributes": 4, "n_values": 16})
    assert uniform.info_bits == pytest.approx(100 * 4 * 4.0)
    zipf = generators.make("facts", {"n_entities": 100, "n_attributes": 4, "n_values": 16, "law": "zipf"})
    p = 1 / np.arange(1, 17)
    p /= p.sum()
    assert zipf.info_bits == pytest.approx(400 * -(p * np.log2(p)).sum())
    counts = np.bincount(zipf.values(np.arange(20000)), minlength=16) / 20000
    assert np.abs(counts - p).max() < 0.01  # values follow the law


def test_product_key_top_k_is_the_brute_force_top_k():
    torch.manual_seed(0)
    c = PKMConfig(n_keys=6, topk=4, heads=2, d_key=8, d_value=3)
    pkm = ProductKeyMemory(5, c)
    q = torch.randn(7, 2, 8)
    scores, slots = pkm.select(q)
    halves = q.view(7, 2, 2, 4)
    s1 = torch.einsum("bhd,hkd->bhk", halves[:, :, 0], pkm.subkeys[:, 0])
    s2 = torch.einsum("bhd,hkd->bhk", halves[:, :, 1], pkm.subkeys[:, 1])
    every = (s1[..., :, None] + s2[..., None, :]).flatten(2)  # all 36 keys, slot i * 6 + j
    best, where = every.topk(4, dim=-1)
    torch.testing.assert_close(scores, best)
    assert (slots == where).all()


def test_a_hash_layer_routes_each_query_to_exactly_one_expert():
    gen = generators.make("facts", {"n_entities": 40, "n_attributes": 2, "n_values": 4})
    torch.manual_seed(0)
    model = build_model("hash_memory", {"experts": 5, "hidden": 8, "d_model": 8}, gen.layout())
    batch = torch.as_tensor(gen.sample("train", 0, np.arange(80))["inputs"])
    route = expert_of(batch[:, 0], 5)
    assert route.shape == (80,) and set(route.tolist()) <= set(range(5)) and len(set(route.tolist())) > 1
    assert (expert_of(batch[:, 0], 5) == route).all()  # fixed, no learned router
    before = model(batch).detach()
    with torch.no_grad():
        model.w[2] += 1.0  # change one expert: only its queries move
    moved = (model(batch).detach() - before).abs().amax((1, 2)) > 0
    assert (moved == (route == 2)).all()


@pytest.mark.parametrize("name, cfg", [
    ("mlp_memory", {"hidden": 128}),
    ("pkm_memory", {"n_keys": 16, "topk": 4}),
    ("hash_memory", {"experts": 4, "hidden": 32}),
    ("pkm_transformer", {"n_layer": 2, "n_head": 2, "d_model": 16, "n_keys": 8, "topk": 4, "d_key": 8}),
])
@pytest.mark.slow
@pytest.mark.parametrize("name_tokens", [1, 2])
def test_every_family_overfits_a_tiny_world(name, cfg, name_tokens):
    """With a token per entity, and with names of two digit tokens (the entity a combination of shared tokens)."""
    gen = generators.make("facts", {"n_entities": 16, "n_attributes": 2, "n_values": 4, "name_tokens": name_tokens})
    torch.manual_seed(0)
    model = build_model(name, cfg, gen.layout())
    batch = {k: torch.as_tensor(v) for k, v in gen.sample("train", 0, np.arange(32)).items()}
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(300):
        loss, _ = model.training_loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()  # the product-key query's batch norm reads its running statistics
    answer = gen.layout().answer_positions[0]
    pred = model(batch["inputs"]).argmax(-1)[:, answer]
    assert (pred == batch["targets"][:, answer]).float().mean() == 1.0, name
    assert 0 < model.active_params() <= model.num_params() and 0 < model.memory_params() <= model.num_params()


def test_a_product_key_query_reads_only_topk_rows():
    gen = generators.make("facts", {"n_entities": 16, "n_attributes": 2, "n_values": 4})
    model = build_model("pkm_memory", {"n_keys": 32, "topk": 2, "heads": 1}, gen.layout())
    batch = {k: torch.as_tensor(v) for k, v in gen.sample("train", 0, np.arange(2)).items()}
    model.training_loss(batch)[0].backward()
    touched = (model.pkm.values.weight.grad.abs().sum(1) > 0).sum().item()
    assert 0 < touched <= 2 * 2 and model.active_params() < model.num_params() / 2  # two queries, two rows each
    assert math.isclose(model.memory_params(), 32**2 * 32 + model.pkm.subkeys.numel())


@pytest.mark.parametrize("args, message", [
    (["--n-entities", "0"], "n_entities must be at least 1"),
    (["--n-attributes", "0"], "n_attributes must be at least 1"),
    (["--n-values", "1"], "n_values must be at least 2"),
    (["--law", "pareto"], "unknown law 'pareto'"),
    (["--zipf-alpha", "nan"], "zipf_alpha must be a finite number"),
    (["--zipf-alpha", "-1"], "zipf_alpha must be a positive number"),
    (["--name-tokens", "0"], "name_tokens must be in 1..8"),
])
def test_bad_worlds_are_one_line_errors(args, message, tmp_path):
    one_line_error(run("gen", "facts", *args, "--n", 2, "--out", tmp_path / "f.npz"), message)


def test_bad_memories_are_one_line_errors(tmp_path, tiny_spec):
    spec = tiny_spec(data={"generator": "facts", "n_entities": 8, "n_attributes": 2, "n_values": 4},
                     model={"name": "pkm_memory", "n_keys": 4, "topk": 8}, eval={"k": []})
    one_line_error(run("train", spec, "--out", tmp_path), "topk (8) must not exceed the sub-keys per half")
    one_line_error(run("train", spec, "--out", tmp_path, "--set", 'model={name="hash_memory",experts=0}'),
                   "experts must be at least 1")


def test_bits_stored_are_zero_at_chance_and_the_world_when_perfect():
    from generators.facts import recalled_bits

    assert recalled_bits(1.0, 100, 16) == pytest.approx(400.0)
    assert recalled_bits(1 / 16, 100, 16) == pytest.approx(0.0, abs=1e-9) and recalled_bits(0.01, 100, 16) == 0.0
    assert recalled_bits(0.5, 10, 2) == pytest.approx(0.0, abs=1e-9)  # a coin on two values: nothing
    assert 0 < recalled_bits(0.8, 100, 16) < 400
    world = generators.make("facts", {"n_entities": 10, "n_attributes": 2, "n_values": 4})
    assert world.recall_bits(1.0) == pytest.approx(world.info_bits) == pytest.approx(40.0)
    assert generators.make("facts", {"n_entities": 10, "law": "zipf"}).recall_bits(1.0) is None  # errors not uniform
    assert generators.make("ca", {}).recall_bits(1.0) is None
    assert world.exposures(200) == pytest.approx(10.0) and generators.make("ca", {}).exposures(200) is None


def test_bits_at_an_exposure_budget_read_the_first_validation_that_had_seen_it(tmp_path):
    from types import SimpleNamespace

    from testbed.results.collect import bits_at_exposures

    world = generators.make("facts", {"n_entities": 10, "n_attributes": 2, "n_values": 4})  # 20 facts
    (tmp_path / "metrics.csv").write_text("step,val/exact_match\n9,0.25\n19,0.5\n29,0.75\n")
    config = SimpleNamespace(train=SimpleNamespace(batch_size=20, devices=1, num_nodes=1))  # one exposure a step

    def at(budget, stopped="cap", best=0.75):
        run = {"run_dir": tmp_path, "config": config, "result": {"stopped": stopped, "best_val_exact_match": best}}
        return bits_at_exposures(run, world, budget)

    assert at(10) == pytest.approx(world.recall_bits(0.25))  # 10 steps of 20 facts: 10 exposures each
    assert at(11) == pytest.approx(world.recall_bits(0.5))  # not yet at step 10: the next validation
    assert at(100) is None  # ran to its cap at 30 exposures: what it would hold at 100 is unknown
    assert at(100, stopped="plateau") == pytest.approx(world.recall_bits(0.75))  # it had stopped storing more
    assert bits_at_exposures({"run_dir": tmp_path, "config": config, "result": {}}, generators.make("ca", {}),
                             10) is None


@pytest.mark.slow
def test_collect_counts_the_bits_and_plot_capacity_draws_them_per_parameter(tmp_path, tiny_spec):
    from testbed.results.tables import facts_capacity

    spec = tiny_spec(data={"generator": "facts", "n_entities": 8, "n_attributes": 2, "n_values": 4},
                     model={"name": "mlp_memory", "d_model": 4, "hidden": 16}, eval={"k": [], "test_size": 16},
                     sweep={"grid": {"data.n_entities": [4, 8]}})
    assert run("sweep", spec, "--out", tmp_path / "runs").exit_code == 0
    assert run("collect", tmp_path / "runs", "--out", tmp_path / "r.csv").exit_code == 0
    rows = list(csv.DictReader(open(tmp_path / "r.csv")))
    tested = [r for r in rows if r["split"] == "test" and r["slice"] == "all" and not r["model"].startswith("b")]
    for r in tested:  # the bits its exact match recalls of its world's 2 n facts
        n = int(r["cfg.data.n_entities"])
        want = generators.make("facts", {"n_entities": n, "n_attributes": 2, "n_values": 4}).recall_bits(
            float(r["exact_match"]))
        assert float(r["bits_stored"]) == pytest.approx(want)
        assert float(r["world_bits"]) == pytest.approx(2 * n * 2)  # 2 n facts of 2 bits each
        # exposures per fact: the steps taken x batch over the 2 n facts (the tiny spec: 4 steps of 16)
        assert float(r["exposures"]) == pytest.approx(float(r["steps"]) * 16 / (2 * n)) and float(r["steps"]) > 0
    assert all(r["bits_stored"] == "" for r in rows if r["slice"] != "all")
    assert sorted(next(iter(facts_capacity(rows).values()))) == [4, 8]
    res = run("plot", "capacity", tmp_path / "r.csv", "--out", tmp_path / "bits.png", "--paper",
              "experiments/facts_capacity.toml")
    assert res.exit_code == 0, res.output
    assert "bits/param" in res.output and (tmp_path / "bits.png").stat().st_size > 1000
    assert all(int(r["active_params"]) < int(r["params"]) for r in tested)  # a query reads 3 embedding rows


@pytest.mark.parametrize("name", ["mlp_memory", "pkm_memory", "hash_memory"])
def test_active_params_bound_what_one_query_touches(name):
    """One query's gradient reaches no more entries than active_params counts, and none of the rows of the
    embedding table it does not read."""
    gen = generators.make("facts", {"n_entities": 64, "n_attributes": 2, "n_values": 4})
    model = build_model(name, {"d_model": 4, "readout": "answers"}, gen.layout())
    model.eval()  # one query: the product-key batch norm reads its running statistics
    batch = {k: torch.as_tensor(v) for k, v in gen.sample("train", 0, np.arange(1)).items()}
    model.training_loss(batch)[0].backward()
    touched = sum(int((p.grad != 0).sum()) for p in model.parameters() if p.grad is not None)
    rows = (model.tok_emb.weight.grad.abs().sum(1) > 0).sum().item()
    assert 0 < touched <= model.active_params() < model.num_params() and rows <= gen.layout().seq_len


def test_a_held_out_template_asks_the_stored_facts_in_a_phrasing_training_never_shows():
    world = {"n_entities": 20, "n_attributes": 2, "n_values": 8}
    plain = generators.make("facts", world)
    gen = generators.make("facts", {**world, "templates": 3, "held_out_template": True})
    train, test = gen.sample("train", 0, np.arange(400)), gen.sample("test", 0, np.arange(40))
    assert train["inputs"].shape == (400, 4) and len(gen.layout().vocab) == len(plain.layout().vocab) + 3
    assert set(train["inputs"][:, 2] - gen.template0) == {0, 1} and set(test["inputs"][:, 2] - gen.template0) == {2}
    same = plain.sample("train", 0, np.arange(400))  # the same facts in the same order, only phrased
    assert (train["inputs"][:, :2] == same["inputs"][:, :2]).all()
    assert (train["targets"][:, -1] == same["targets"][:, -1]).all() and train["loss_mask"][:, -1].all()
    mixed = generators.make("facts", {**world, "templates": 3}).sample("test", 0, np.arange(300))
    assert set(mixed["inputs"][:, 2] - gen.template0) == {0, 1, 2}  # without held_out_template: every phrasing
    with pytest.raises(generators.ConfigError, match="templates must be at least 1"):
        generators.make("facts", {**world, "templates": 1, "held_out_template": True})


def test_a_memory_layer_takes_the_place_of_a_blocks_feed_forward_layer():
    gen = generators.make("facts", {"n_entities": 16, "n_attributes": 2, "n_values": 4})
    base = {"n_layer": 3, "n_head": 2, "d_model": 16}
    plain = build_model("transformer", base, gen.layout())
    memory = build_model("pkm_transformer", {**base, "n_keys": 8, "topk": 2, "d_key": 8}, gen.layout())
    pkm = memory.memory_layer
    mlp = sum(p.numel() for p in plain.blocks[1].mlp.parameters())  # the middle block's, replaced
    pkm_params = sum(p.numel() for p in memory.blocks[1].mlp.parameters())
    assert memory.num_params() == plain.num_params() - mlp + pkm_params
    assert pkm.values.weight.shape == (64, 16) and memory.memory_params() == 64 * 16 + pkm.subkeys.numel()
    assert memory.active_params() == memory.num_params() - 64 * 16 + 2 * 16  # two rows read per position
    beside = build_model("pkm_transformer", {**base, "n_keys": 8, "topk": 2, "d_key": 8, "beside": True,
                                             "pkm_layer": 0}, gen.layout())
    assert beside.num_params() == plain.num_params() + pkm_params and beside.memory_layer is beside.blocks[0].mlp.pkm
    inputs = torch.as_tensor(gen.sample("train", 0, np.arange(5))["inputs"])
    memory.eval()
    table, slots = memory.memory_slots(inputs)
    assert table is pkm.values.weight and slots.shape == (5, 3 * 2) and int(slots.max()) < 64
    with pytest.raises(generators.ConfigError, match="pkm_layer must name one of the 3 blocks"):
        build_model("pkm_transformer", {**base, "pkm_layer": 3}, gen.layout())


def test_values_written_with_several_tokens_are_their_digits_and_need_a_sequence_model():
    world = {"n_entities": 30, "n_attributes": 2, "n_values": 100}
    one, three = (generators.make("facts", {**world, "value_tokens": t}) for t in (1, 3))
    assert three.base == 5 and 5**3 >= 100 > 4**3  # the fewest digits per token that still write every value
    a, b = one.sample("train", 0, np.arange(60)), three.sample("train", 0, np.arange(60))
    assert b["inputs"].shape == (60, 5) and b["loss_mask"][:, 2:].all() and not b["loss_mask"][:, :2].any()
    digits = b["targets"][:, 2:] - three.value0
    assert (digits @ np.array([25, 5, 1]) == a["targets"][:, 2] - one.value0).all()  # the same values, in base 5
    assert three.layout().answer_positions == (2, 3, 4) and len(three.layout().vocab) == 1 + 30 + 2 + 5
    base = three.baselines(b)["most_frequent"][:, 2:]
    assert (base == base[0]).all()
    torch.manual_seed(0)
    model = build_model("transformer", {"n_layer": 1, "n_head": 2, "d_model": 16, "pos": "learned"}, three.layout())
    assert model(torch.as_tensor(b["inputs"])).shape == (60, 5, len(three.layout().vocab))
    with pytest.raises(generators.ConfigError, match="needs a sequence model"):
        build_model("mlp_memory", {}, three.layout())


def test_the_world_a_memory_stores_most_of_is_chosen_by_validation_bits_not_recall():
    from testbed.results.tables import facts_points

    def row(n, bits, val_bits):
        return {"split": "test", "slice": "all", "model": "mlp_memory", "config_id": f"c{n}", "task": "",
                "n_layer": "1", "cfg.data.n_entities": str(n), "bits_stored": str(bits), "bits_stored_lo": str(bits),
                "bits_stored_hi": str(bits), "val_bits_stored": str(val_bits), "params": "1000",
                "active_params": "500", "world_bits": str(16 * n)}
    # the small world recalled whole (the best validation exact match) holds fewer bits than the larger one
    points = facts_points([row(250, 4000, 4000), row(1000, 12000, 11900)], per_param=2.0)
    best = next(p for p in points if p["n_entities"] == "best on validation")
    assert best["ours"] == 12000 and best["bits per parameter"] == 12 and best["bits per active parameter"] == 24
    assert best["published"] == 2.0
    # the world recalled whole bounds the memory's capacity from below; 75 % of the larger one is a measurement
    assert [(p["n_entities"], p["capacity"]) for p in points] == [(250, "lower bound"), (1000, ""),
                                                                  ("best on validation", "")]


@pytest.mark.parametrize("name, cfg", [("mlp_memory", {"hidden": 16}), ("pkm_memory", {"n_keys": 8, "topk": 2}),
                                       ("hash_memory", {"experts": 2, "hidden": 8})])
def test_an_answers_only_readout_spends_no_rows_on_tokens_no_query_asks(name, cfg):
    gen = generators.make("facts", {"n_entities": 50, "n_attributes": 2, "n_values": 4})
    lay = gen.layout()
    assert lay.answer_tokens == tuple(range(gen.value0, gen.value0 + 4))
    torch.manual_seed(0)
    full = build_model(name, cfg, lay)
    torch.manual_seed(0)
    small = build_model(name, {**cfg, "readout": "answers"}, lay)
    d_out = full.head.in_features
    assert full.num_params() - small.num_params() == (d_out + 1) * (len(lay.vocab) - 4)
    small.eval()
    logits = small(torch.as_tensor(gen.sample("train", 0, np.arange(6))["inputs"]))
    assert logits.shape == (6, 3, len(lay.vocab)) and torch.isinf(logits[..., : gen.value0]).all()
    assert set(logits[:, -1].argmax(-1).tolist()) <= set(lay.answer_tokens)
    with pytest.raises(generators.ConfigError, match="unknown readout"):
        build_model(name, {**cfg, "readout": "some"}, lay)
    with pytest.raises(generators.ConfigError, match="names its answer tokens"):
        build_model(name, {**cfg, "readout": "answers"}, generators.make("ca", {}).layout())


@pytest.mark.parametrize("readout", ["vocab", "answers"])
@pytest.mark.parametrize("name", ["mlp_memory", "pkm_memory", "hash_memory"])
def test_the_read_out_loss_equals_the_vocabulary_wide_one(name, readout):
    from testbed.models.base import masked_loss

    gen = generators.make("facts", {"n_entities": 32, "n_attributes": 2, "n_values": 4})
    model = build_model(name, {"d_model": 4, "readout": readout}, gen.layout())
    model.eval()  # the same batch-norm statistics in both passes
    batch = {k: torch.as_tensor(v) for k, v in gen.sample("train", 0, np.arange(16)).items()}
    fast = model.training_loss(batch)[0]
    full = masked_loss(model(batch["inputs"]), batch)
    assert fast.item() == pytest.approx(full.item(), rel=1e-6)
    grad_fast = torch.autograd.grad(fast, model.head.weight)[0]
    grad_full = torch.autograd.grad(full, model.head.weight)[0]
    assert torch.allclose(grad_fast, grad_full, atol=1e-6)


def test_names_of_several_tokens_ask_the_same_facts_in_a_vocabulary_that_does_not_grow_with_the_world():
    one = generators.make("facts", {"n_entities": 1000, "n_attributes": 3, "n_values": 8})
    two = generators.make("facts", {"n_entities": 1000, "n_attributes": 3, "n_values": 8, "name_tokens": 2})
    a, b = one.sample("train", 3, np.arange(3000)), two.sample("train", 3, np.arange(3000))
    assert two.name_base == 32 and len(two.layout().vocab) == 1 + 32 + 3 + 8 < len(one.layout().vocab)
    assert two.layout().key_positions == (0, 1) and two.layout().answer_positions == (3,)
    entity = (b["inputs"][:, 0] - two.entity0) * 32 + (b["inputs"][:, 1] - two.entity0)  # read the name back
    assert (entity == a["inputs"][:, 0] - one.entity0).all()
    assert (b["inputs"][:, 2] - two.attribute0 == a["inputs"][:, 1] - one.attribute0).all()
    assert (b["targets"][:, 3] - two.value0 == a["targets"][:, 2] - one.value0).all()
    assert two.info_bits == one.info_bits
    names = {tuple(q) for q in b["inputs"][:, :2].tolist()}
    assert len(names) == 1000 and max(max(q) for q in names) < two.attribute0  # a distinct name per entity


def test_a_hash_layer_routes_a_name_of_several_tokens_as_one_key():
    gen = generators.make("facts", {"n_entities": 400, "n_attributes": 1, "n_values": 4, "name_tokens": 2})
    model = build_model("hash_memory", {"experts": 7, "hidden": 16, "d_model": 4}, gen.layout())
    inputs = torch.as_tensor(gen.sample("train", 0, np.arange(400))["inputs"])
    route = expert_of(inputs[:, :2], 7, len(gen.layout().vocab))
    first = inputs[:, 0] == inputs[0, 0]  # the names that share the first digit still spread over the experts
    assert len(set(route[first].tolist())) > 1
    before = model(inputs).detach()
    with torch.no_grad():
        model.w[3] += 1.0
    moved = (model(inputs).detach() - before).abs().amax((1, 2)) > 0
    assert not moved[route != 3].any() and moved[route == 3].float().mean() > 0.9  # (a few dead ReLUs stay put)
