"""Budgets and recipes: the curriculum over k, Muon for the hidden matrices."""

import lightning as L
import numpy as np
import pytest
import torch
from helpers import TINY, merged, one_line_error, run

import generators
from generators.core import ConfigError
from testbed import spec as specs
from testbed.budgets import Curriculum
from testbed.models import build_model, masked_loss
from testbed.system import MuonAdamW, hidden_matrices, make_optimizer
from testbed.training import train


class Data:  # what the curriculum sets: the stage the next batches are made at
    k_max = None


def test_a_curriculum_adds_the_next_k_only_after_its_stage_plateaus_or_reaches_the_bar():
    data = Data()
    rule = Curriculum(data, k_final=3, window=1000, delta=0.01, at=0.95)
    assert data.k_max == 1 and not rule.final
    rising = [(500, 0.2), (1000, 0.4), (1500, 0.6)]  # still climbing: k = 1 alone
    assert not any(rule.observe(step, v) for step, v in rising) and data.k_max == 1
    assert not rule.observe(2000, 0.605)  # +0.205 since step 1,000
    assert rule.observe(2500, 0.603) and data.k_max == 2  # best 0.605 against 0.6 at 1,500: a plateau
    assert rule.stages == [(0, 1), (2500, 2)]
    assert not rule.observe(3000, 0.1)  # the new stage's window starts afresh
    resumed = Curriculum(Data(), k_final=3, window=1000, delta=0.01, at=0.95)
    resumed.load_state_dict(rule.state_dict())  # a resumed run decides as an uninterrupted one
    assert resumed.data.k_max == 2 and resumed.stages == rule.stages
    assert resumed.observe(3500, 0.96) and resumed.final and resumed.data.k_max == 3  # the bar, before a plateau
    assert not resumed.observe(4000, 0.2) and resumed.k_max == 3  # every k is in: nothing more to add


def test_a_stage_draws_k_from_one_to_its_largest_alone():
    gen = generators.make("ca", {k: v for k, v in merged(TINY, {"data": {"k": 4, "steps": 8}})["data"].items()
                                 if k != "generator"})
    idx = np.arange(4000)
    for k_max in (1, 2, 3):
        ks = gen.sample("train", 0, idx, k_max=k_max)["k"]
        assert set(ks.tolist()) == set(range(1, k_max + 1))
    whole = gen.sample("train", 0, idx)
    for key, value in gen.sample("train", 0, idx, k_max=4).items():  # the last stage is the task itself
        assert np.array_equal(value, whole[key])
    with pytest.raises(ConfigError, match="k_max must be in 1..4"):
        gen.sample("train", 0, idx, k_max=5)


def test_a_stage_of_a_several_states_task_scores_its_first_states_alone():
    gen = generators.make("ca", {"radius": 1, "width": 6, "steps": 5, "n_input": 1, "task": "RO-O", "m": 4})
    whole = gen.sample("train", 0, np.arange(50))
    for k_max in (1, 3):
        stage = gen.sample("train", 0, np.arange(50), k_max=k_max)
        assert np.array_equal(stage["loss_mask"], whole["loss_mask"] & (whole["step"] <= k_max))
        assert stage["loss_mask"].sum() == whole["loss_mask"].sum() * k_max // 4
        assert all(np.array_equal(stage[key], whole[key]) for key in whole if key != "loss_mask")
    assert gen.curriculum_k() == 4


@pytest.mark.slow
def test_a_curriculum_run_trains_on_k_1_until_its_stage_ends_and_stops_only_in_the_last(tmp_path):
    seen = []

    class Record(L.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            seen.append((trainer.global_step, set(batch["inputs"][:, 0].tolist())))

    cfg = specs.resolve(TINY, {"train.max_steps": 20, "train.val_every": 2, "train.plateau_steps": 4,
                               "train.plateau_delta": 1.0, "train.curriculum": "k", "train.batch_size": 64})
    _, result, _ = train(cfg, tmp_path, callbacks=[Record()], quiet=True)
    assert result["curriculum"] == [[0, 1], [6, 2]]  # validations at 2, 4, 6: a window of 4 first closes at 6
    # the stage's plateau (a rise of 1.0 never comes) moved k on; the run's own budget, which starts its window at
    # the last stage's first progress, never saw one, so the run trained to its cap
    assert result["stopped"] == "cap" and result["steps"] == 20
    k_tokens = {step: tokens for step, tokens in seen}  # the k-token leads each sequence
    assert all(len(k_tokens[s]) == 1 for s in range(6)) and all(len(k_tokens[s]) == 2 for s in range(6, 20))


def test_muon_takes_the_hidden_matrices_and_adamw_the_rest():
    gen = generators.make("ca", {k: v for k, v in TINY["data"].items() if k != "generator"})
    model = build_model("transformer", {"n_layer": 2, "n_head": 2, "d_model": 16}, gen.layout())
    hidden = {id(p) for p in hidden_matrices(model)}
    assert id(model.head.weight) not in hidden and id(model.embed.tok_emb.weight) not in hidden
    assert all(p.dim() == 2 for p in hidden_matrices(model)) and len(hidden) == 2 * 4  # qkv, proj, up, down a layer
    opt = make_optimizer(model, "muon", 3e-3, 0.01)
    assert isinstance(opt, MuonAdamW)
    owned = [p for g in opt.param_groups for p in g["params"]]
    assert len(owned) == len(list(model.parameters())) == len({id(p) for p in owned})  # each once
    batch = {k: torch.from_numpy(v) for k, v in gen.sample("train", 0, np.arange(64)).items()}
    losses = []
    for _ in range(30):
        loss = masked_loss(model(batch["inputs"]), batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]  # it learns the batch
    for group in opt.param_groups:  # a schedule's learning rate reaches both parts
        group["lr"] = 0.0
    before = [p.detach().clone() for p in model.parameters()]
    fresh = make_optimizer(model, "muon", 3e-3, 0.0)
    fresh.load_state_dict(opt.state_dict())  # Muon's momentum and Adam's moments come back from a checkpoint
    assert all(torch.equal(a["momentum_buffer"], b["momentum_buffer"])
               for a, b in zip(opt.parts[0].state.values(), fresh.parts[0].state.values(), strict=True))
    loss = masked_loss(model(batch["inputs"]), batch)
    opt.zero_grad()
    loss.backward()
    opt.step()
    assert all(torch.equal(a, p) for a, p in zip(before, model.parameters(), strict=True))  # lr 0: no change


def test_muon_needs_hidden_matrices():
    gen = generators.make("ca", {k: v for k, v in TINY["data"].items() if k != "generator"})
    model = build_model("lstm", {"n_layer": 1, "d_model": 16}, gen.layout())
    with pytest.raises(ConfigError, match="muon needs hidden matrices"):
        make_optimizer(model, "muon", 3e-3, 0.01)


@pytest.mark.parametrize("sets, message", [
    (["train.curriculum=k"], "needs train.plateau_steps"),
    (["train.curriculum=depth"], "unknown train.curriculum 'depth'"),
    (["train.curriculum=k", "train.plateau_steps=4", "data.mixed_k=false"], "needs a task with a depth axis to grow"),
    (["train.curriculum=k", "train.plateau_steps=4", "train.train_size=100"], "cannot use a fixed training set"),
    (["train.curriculum=k", "train.plateau_steps=4", "train.curriculum_at=0"], "curriculum_at must be in (0, 1]"),
    (["train.optimizer=muom"], "did you mean 'muon'"),
    (["train.cooldown_steps=4"], "set train.schedule = constant"),
    (["train.cooldown_steps=3", "train.schedule=constant", "train.val_every=2"], "a multiple of train.val_every"),
    (["train.cooldown_steps=4000", "train.schedule=constant"], "must fit after the warm-up"),
    (['model={name="lstm", n_layer=1, d_model=16}', "train.optimizer=muon"], "muon needs hidden matrices"),
])
def test_bad_recipes_are_one_line_errors_before_anything_is_written(tmp_path, tiny_spec, sets, message):
    args = [a for s in sets for a in ("--set", s)]
    one_line_error(run("train", tiny_spec(), "--out", tmp_path / "runs", *args), message)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_curriculum_on_a_task_without_a_depth_axis_is_refused():
    with pytest.raises(ConfigError, match="task 'mqar' has none"):
        specs.resolve({"data": {"generator": "mqar"}, "model": {"name": "transformer"},
                       "train": {"curriculum": "k", "plateau_steps": 200}})


def test_the_recipe_search_times_each_recipe_beside_the_stock_encoder(monkeypatch):
    from testbed import bench
    from testbed.bench_report import recipe_page, recipe_search

    def fake(**kw):  # the stock encoder 60 s; Muon twice as fast per update as AdamW; lr 0.01 misses
        if kw["model"] == "torch_encoder":
            return {"seconds_to_target": 60.0, "steps_to_target": 600, "params": 7}
        if kw["lr"] == 0.01:
            return {"seconds_to_target": None, "steps_to_target": None, "params": 7}
        updates = 200 if kw["optimizer"] == "muon" else 400
        return {"seconds_to_target": updates / 20, "steps_to_target": updates, "params": 7}

    monkeypatch.setattr(bench, "time_to_accuracy", fake)
    search = recipe_search("adamw,muon", "0.003,0.01", "32", "0,1,2", 100.0, 0.8, echo=lambda *_: None)
    rows = {(r["contender"], r["optimizer"], r["lr"]): r for r in search["recipes"]}
    assert len(rows) == 5 and rows[("ours", "muon", 0.003)]["median_updates_to_target"] == 200
    assert rows[("ours", "adamw", 0.01)]["median_seconds_to_target"] is None
    page = recipe_page(search, "testbed bench recipes")
    assert "| ours | muon | 0.003 | 32 | 10 | 200 | 10 / 200, 10 / 200, 10 / 200 | 6.0x |" in page
    assert "| ours | adamw | 0.01 | 32 | missed | - | missed, missed, missed | - |" in page


@pytest.mark.parametrize("args, message", [
    (["--optimizers", "adam"], "--optimizers must name some of adamw, muon, sgd"),
    (["--lrs", "0"], "--lrs must be learning rates in (0, 10)"),
    (["--batch-sizes", "0"], "--batch-sizes must be in 1..4096"),
    (["--budget", "nan"], "--budget must be a finite positive number"),
    (["--markdown", "/nonexistent/page.md"], "directory '/nonexistent' does not exist"),
])
def test_bad_recipe_searches_are_one_line_errors(args, message):
    one_line_error(run("bench", "recipes", *args), message)


def test_packed_runs_train_each_run_as_it_would_train_alone():
    """Stacked weights, one vmapped loss per run, per-run clipping: the losses follow the separate runs' to float
    rounding (the batched kernels sum in another order)."""
    from testbed.bench import packed_throughput

    r = packed_throughput(n_runs=2, batch_size=8, steps=3, threads=1)
    assert r["max_loss_difference"] < 1e-4 and r["packed_tokens_per_s"] > 0 and r["n_runs"] == 2


def test_bad_pack_benchmarks_are_one_line_errors():
    one_line_error(run("bench", "pack", "--runs", "0"), "--runs must be counts in 1..64")
    one_line_error(run("bench", "pack", "--steps", "0"), "--steps must be in 1..10000")
