"""Writing new facts over stored ones: the facts subsets, runs that start from a preset's run, tracked validation
sets, training only the memory or only the selected slots (sparse memory finetuning), and the comparison at equal
learning."""

import csv
import json

import numpy as np
import pytest
import torch
from helpers import one_line_error, run

import generators
from testbed import spec as specs
from testbed.figures import facts_forgetting as forgetting
from testbed.results import intervals
from testbed.sweep import launch_waves, resolve_all, waves
from testbed.training import Interrupted

WORLD = {"n_entities": 8, "n_attributes": 2, "n_values": 4}
PKM = {"name": "pkm_memory", "d_model": 4, "n_keys": 8, "topk": 2, "d_key": 4, "d_value": 4}


def facts_of(gen, arrays):
    return (arrays["inputs"][:, 0] - gen.entity0) * gen.config.n_attributes + arrays["inputs"][:, 1] - gen.attribute0


def test_the_subsets_split_the_world_and_a_rewrite_redraws_only_its_facts():
    world = {**WORLD, "n_entities": 10, "n_attributes": 3, "n_values": 16}
    gens = {s: generators.make("facts", {**world, "subset": s}) for s in ("all", "stored", "new", "rewritten", "kept")}
    asked = {s: set(facts_of(g, g.sample("train", 0, np.arange(g.n_facts))).tolist()) for s, g in gens.items()}
    assert asked["all"] == set(range(30)) and asked["stored"] | asked["new"] == asked["all"]
    assert asked["stored"] == set(range(15)) and not asked["stored"] & asked["new"]  # entities 0-4 against 5-9
    assert asked["rewritten"] == {0, 3, 6, 9, 12} and asked["kept"] == asked["stored"] - asked["rewritten"]
    assert all(len(gens[s].layout().vocab) == len(gens["all"].layout().vocab) for s in gens)  # one vocabulary
    stored, rewritten = gens["stored"], gens["rewritten"]
    same = stored.values(np.arange(15)) == rewritten.values(np.arange(15))
    assert same.mean() < 0.5  # redrawn (16 values: ~1/16 agree by chance)
    assert (gens["kept"].values(np.arange(15)) == stored.values(np.arange(15))).all()  # what a rewrite leaves
    assert gens["rewritten"].needs_start and not gens["stored"].needs_start


def test_a_preset_start_is_the_base_of_that_preset_at_the_same_seed_and_trains_first(tiny_spec):
    spec = tiny_spec(as_dict=True, data={"generator": "facts", **WORLD, "subset": "stored"}, model=PKM, eval={"k": []},
                     sweep={"seeds": [0, 1]},
                     presets={"store": {}, "new": {"data": {"subset": "new"}, "train": {"init_from": "preset:store"},
                                                   "sweep": {"seeds": [0, 1], "grid": {"train.update": ["all",
                                                                                                        "memory"]}}}})
    runs = resolve_all(specs.with_preset(spec, "new"), {"train.max_steps": 3})
    stores = {r.seed: r for r in runs if not r.train.init_from}
    assert len(runs) == 6 and sorted(stores) == [0, 1]
    assert stores[0] == specs.resolve(specs.with_preset(spec, "store"), {"train.max_steps": 3}, seed=0)
    for r in runs:
        if r.train.init_from:
            assert r.train.init_from == "run:" + stores[r.seed].run_id()
    first, second = waves(runs)
    assert {specs.run_id(r) for r in first} == {specs.run_id(r) for r in stores.values()} and len(second) == 4

    launched = []

    def interrupted_launch(wave, runs_root):
        launched.append(len(wave))
        raise Interrupted("sweep interrupted")

    with pytest.raises(Interrupted):  # Ctrl-C in the first wave starts no later wave (nor becomes a plain failure)
        launch_waves(interrupted_launch, runs, "unused")
    assert launched == [2]

    looped = {**spec, "presets": {"a": {"train": {"init_from": "preset:b"}}, "b": {"train": {"init_from": "preset:a"}}}}
    with pytest.raises(specs.ConfigError, match="starts from itself"):
        resolve_all(specs.with_preset(looped, "a"), {})
    swept = {**spec, "presets": {**spec["presets"], "store": {"sweep": {"grid": {"model.topk": [1, 2]}}}}}
    with pytest.raises(specs.ConfigError, match="one run per seed"):
        resolve_all(specs.with_preset(swept, "new"), {})


def _fine_tune(tmp_path, tiny_spec, update, **train):
    path = tiny_spec(data={"generator": "facts", **WORLD, "subset": "stored"}, model=PKM,
                     eval={"k": [], "track": ["subset=stored"]},
                     train={"lr": 3e-2, "max_steps": 40, "val_every": 20, "warmup_steps": 0, "batch_size": 16,
                            "weight_decay": 0.0},
                     presets={"store": {"eval": {"track": []}},
                              "new": {"data": {"subset": "new"}, "train": {"init_from": "preset:store",
                                                                           "update": update, **train}}})
    res = run("train", path, "--preset", "new", "--out", tmp_path / "runs")
    assert res.exit_code == 0, res.output
    assert res.output.startswith("start trained")
    dirs = {json.loads((d / "config.json").read_text())["data"]["subset"]: d for d in (tmp_path / "runs").iterdir()}
    return [torch.load(dirs[s] / "model.pt", weights_only=True) for s in ("stored", "new")], dirs["new"]


@pytest.mark.slow
def test_memory_finetuning_changes_the_memory_alone_and_the_tracked_set_is_logged(tmp_path, tiny_spec):
    (start, tuned), run_dir = _fine_tune(tmp_path, tiny_spec, "memory")
    memory = {"pkm.values.weight", "pkm.subkeys"}
    for name in start:
        if name in memory:
            assert not torch.equal(start[name], tuned[name]), name
        else:  # the embeddings, query network, its normalisation statistics and the read-out stay as stored
            assert torch.equal(start[name], tuned[name]), name
    with open(run_dir / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("val[subset=stored]/exact_match")]
    assert len(rows) == 2 and all(r["val/exact_match"] for r in rows)


@pytest.mark.parametrize("memory", [PKM, {"name": "pkm_transformer", "n_layer": 2, "n_head": 2, "d_model": 8,
                                     "n_keys": 8, "topk": 2, "d_key": 4}])
def test_sparse_finetuning_changes_only_the_slots_it_selects(memory, tiny_spec, tmp_path):
    import lightning as L
    from torch.utils.data import DataLoader

    from testbed import store
    from testbed.data import fixed_batches
    from testbed.system import TaskSystem

    facts = {"generator": "facts", **WORLD}
    resolved = specs.resolve(tiny_spec(as_dict=True, data=facts, model=memory, eval={"k": []}),
                             {"train.update": "sparse", "train.sparse_slots": 3, "train.max_steps": 3,
                              "train.warmup_steps": 0})
    L.seed_everything(0, verbose=False)
    gen, model = store.build(resolved)
    system = TaskSystem(model, resolved.train, background=fixed_batches(gen, "train", 1, 64, 16))
    table = system._slot_table[0]
    name = next(k for k, v in model.named_parameters() if v is table)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    steps, step = [], system.optimizer_step

    def watched(*args, **kwargs):  # each step's table before and after, and the slots it selected
        before = table.detach().clone()
        step(*args, **kwargs)
        steps.append((before, table.detach().clone(), system.slot_mask.clone()))

    system.optimizer_step = watched
    batches = [{k: torch.from_numpy(v) for k, v in gen.sample("train", 0, np.arange(i, i + 16)).items()}
               for i in (0, 16, 32)]
    trainer = L.Trainer(max_steps=3, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, limit_val_batches=0)
    trainer.fit(system, train_dataloaders=DataLoader(batches, batch_size=None))
    assert len(steps) == 3
    for (before, after, mask), batch in zip(steps, batches):
        changed = (after != before).any(1)
        assert int(mask.sum()) == 3 and changed.any()
        assert not (changed & ~mask).any()  # every other row bit-identical, Adam's moments notwithstanding
        assert set(mask.nonzero().flatten().tolist()) <= set(model.memory_slots(batch["inputs"])[1].unique().tolist())
    assert all(torch.equal(model.state_dict()[k], start[k]) for k in start if k != name)


def test_the_comparison_is_at_the_learning_every_method_reaches():
    rows = [{"phase": "new", "update": u, "seed": s, "step": step, "learned": learned, "retained": kept}
            for u, s, curve in [("all", 0, [(0.5, 0.4), (0.9, 0.2)]), ("all", 1, [(0.6, 0.5), (0.95, 0.1)]),
                                ("sparse", 0, [(0.3, 0.9), (0.55, 0.8)]), ("sparse", 1, [(0.4, 0.95), (0.7, 0.85)])]
            for step, (learned, kept) in zip((10, 20), curve)]
    points = {p["update"]: p for p in forgetting.at_equal_learning(rows)}
    assert points["all"]["level"] == 0.55  # sparse seed 0 never learns more
    assert points["all"]["retained"] == pytest.approx((0.2 + 0.5) / 2)  # seed 0 reaches 0.55 at its second step
    assert points["sparse"]["retained"] == pytest.approx((0.8 + 0.85) / 2)
    assert points["sparse"]["difference"] == pytest.approx(((0.8 - 0.2) + (0.85 - 0.5)) / 2)
    assert points["sparse"]["final_learned"] == pytest.approx(0.625) and "difference" not in points["all"]
    lo, hi = points["sparse"]["difference_lo"], points["sparse"]["difference_hi"]
    assert lo < points["sparse"]["difference"] < hi
    assert intervals.t_interval([0.9, 1.0, 1.0])[2] == 1.0  # an accuracy's interval stops at 1


def test_each_method_says_how_long_it_trained_and_why_it_stopped():
    assert forgetting.budget_text([(1200, "plateau"), (1500, "plateau"), (6000, "cap")]) == (
        2900, "plateau 2 of 3, cap 1 of 3")
    assert forgetting.budget_text([(800, "plateau")] * 3) == (800, "plateau")


def test_forgetting_bad_input(tmp_path, tiny_spec):
    base = dict(data={"generator": "facts", **WORLD, "subset": "rewritten"}, model=PKM, eval={"k": []})
    one_line_error(run("train", tiny_spec(**base), "--out", tmp_path), "fine-tunes a trained model: set "
                   "train.init_from")
    ok = dict(data={"generator": "facts", **WORLD}, model=PKM, eval={"k": []})
    one_line_error(run("train", tiny_spec(**ok), "--out", tmp_path, "--set", "train.update=some"),
                   "unknown train.update 'some'")
    one_line_error(run("train", tiny_spec(**ok), "--out", tmp_path, "--set", "eval.track=[\"subset=most\"]"),
                   "unknown subset 'most'")
    one_line_error(run("train", tiny_spec(**ok), "--out", tmp_path, "--set", "eval.track=[\"subset\"]"),
                   "expected field=value")
    one_line_error(run("train", tiny_spec(**{**ok, "model": {"name": "mlp_memory", "d_model": 4, "hidden": 8}}),
                       "--out", tmp_path, "--set", "train.update=sparse"), "no addressable memory slots")
    one_line_error(run("gen", "facts", "--n-entities", 1, "--subset", "new", "--n", 2, "--out", tmp_path / "f.npz"),
                   "halves the entities")
    one_line_error(run("gen", "facts", "--n-attributes", 1, "--subset", "kept", "--n", 2, "--out",
                       tmp_path / "f.npz"), "n_attributes must be >= 2")


@pytest.mark.slow
def test_the_forgetting_figure_runs_end_to_end_on_a_shrunken_preset(tmp_path):
    """The real spec, one seed, 4 steps a phase: the stores train first, the fine-tunes start from them."""
    tiny = ["train.max_steps=4", "train.val_every=2", "train.plateau_steps=2", "train.val_size=16", "eval.test_size=16",
            "train.threads=1"]
    res = run("reproduce", "facts-forgetting", "--out", tmp_path, "--jobs", "1", "--seeds", "0",
              *[a for s in tiny for a in ("--set", s)])
    assert res.exit_code == 0, res.output
    fig_dir = tmp_path / "facts-forgetting"
    assert (fig_dir / "figure.png").stat().st_size > 1000
    points = list(csv.DictReader(open(fig_dir / "comparison.csv")))
    assert {p["series"] for p in points} == {f"{phase} {u}" for phase in ("new", "rewrite")
                                             for u in ("all", "memory", "sparse")}
    curves = list(csv.DictReader(open(fig_dir / "results.curves.csv")))
    assert {int(r["step"]) for r in curves} == {1, 3} and len(curves) == 12  # 6 fine-tunes, 2 validations each
    assert json.loads((fig_dir / "meta.json").read_text())["sets"]["train.max_steps"] == 4
    assert all(p["stopped"] in ("plateau", "cap") and 0 < float(p["steps"]) <= 4 for p in points)


@pytest.mark.slow
def test_a_start_recorded_before_an_option_existed_still_fits_and_a_finished_fine_tune_is_not_checked_again(
        tmp_path, tiny_spec):
    path = tiny_spec(data={"generator": "facts", **WORLD, "subset": "stored"}, model=PKM, eval={"k": []},
                     train={"max_steps": 4, "val_every": 2, "warmup_steps": 0},
                     presets={"store": {}, "new": {"data": {"subset": "new"}, "train": {"init_from": "preset:store"}}})
    assert run("train", path, "--preset", "store", "--out", tmp_path / "runs").exit_code == 0
    (start,) = (tmp_path / "runs").iterdir()
    config = json.loads((start / "config.json").read_text())
    del config["model"]["readout"]  # as a run trained before model.readout existed recorded it
    (start / "config.json").write_text(json.dumps(config))
    res = run("train", path, "--preset", "new", "--out", tmp_path / "runs")
    assert res.exit_code == 0 and "start skipped" in res.output and "trained:" in res.output, res.output
    import shutil

    shutil.rmtree(start)  # the start gone: the finished fine-tune is still reported, not refused
    again = run("sweep", path, "--preset", "new", "--out", tmp_path / "runs")
    assert again.exit_code == 0 and "skipped" in again.output, again.output


def test_labels_name_the_preset_first_and_then_what_differs_within_it():
    from testbed.results.tables import labels

    def row(cid, preset, **cfg):
        return {"config_id": cid, "model": "pkm_memory", "n_layer": "1", "task": "", "preset": preset,
                **{f"cfg.train.{k}": v for k, v in {"lr": 0.03, "update": "all", **cfg}.items()}}
    got = labels([row("a", "store"), row("b", "new", lr=0.001), row("c", "new", update="sparse"),
                  row("d", "rewrite", lr=0.001)])
    assert got == {"a": "pkm_memory L=1 preset=store", "b": "pkm_memory L=1 preset=new lr=0.001 update=all",
                   "c": "pkm_memory L=1 preset=new lr=0.03 update=sparse", "d": "pkm_memory L=1 preset=rewrite"}
