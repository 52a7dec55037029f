"""GRPO: rewards, advantages and the clipped, KL-penalised loss against hand computation; one step moves the policy
towards the better sample; fine-tuning from a finished run end to end, and its bad input."""

import csv
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from helpers import one_line_error, run

import generators
from testbed import grpo
from testbed import spec as specs
from testbed.models import build_model


def test_rewards_count_the_scored_cells_only():
    targets = torch.tensor([[1, 0, 1, 3]])
    mask = torch.tensor([[True, True, True, False]])
    samples = torch.tensor([[[1, 0, 1, 0], [1, 1, 1, 3], [0, 1, 0, 3]]])
    assert grpo.rewards(samples, targets, mask, "cell_accuracy").tolist() == [[1.0, pytest.approx(2 / 3), 0.0]]
    assert grpo.rewards(samples, targets, mask, "exact_match").tolist() == [[1.0, 0.0, 0.0]]


def test_advantages_and_loss_by_hand():
    r = torch.tensor([[1.0, 0.5, 0.0]])  # mean 0.5, sample standard deviation 0.5
    adv = grpo.advantages(r)
    torch.testing.assert_close(adv, torch.tensor([[1.0, 0.0, -1.0]]), atol=1e-5, rtol=0)
    assert grpo.advantages(torch.ones(1, 4)).abs().max() == 0  # equal rewards: no signal
    mask = torch.tensor([[True, True, False]])
    logp = torch.log(torch.tensor([[[0.5, 0.4, 0.9], [0.6, 0.5, 0.9], [0.3, 0.2, 0.9]]]))
    old = torch.log(torch.tensor([[[0.25, 0.4, 0.9], [0.6, 0.5, 0.9], [0.3, 0.4, 0.9]]]))
    ref = torch.log(torch.tensor([[[0.5, 0.5, 0.9], [0.6, 0.25, 0.9], [0.3, 0.2, 0.9]]]))
    loss, kl = grpo.objective(logp, old, ref, adv, mask, clip=0.2, beta=0.1)
    # sample 1 (A = 1): ratios 2 and 1, the first clipped to 1.2 -> surrogate mean 1.1; sample 2 (A = 0): 0;
    # sample 3 (A = -1): ratios 1 and 0.5 -> min(-r, -clip(r)) = -1 and -0.8 -> mean -0.9
    surrogate = (1.1 + 0.0 - 0.9) / 3
    k3 = lambda p, q: q / p - np.log(q / p) - 1  # noqa: E731  (the estimator, written out)
    kl_by_hand = np.mean([(k3(0.5, 0.5) + k3(0.4, 0.5)) / 2, (k3(0.6, 0.6) + k3(0.5, 0.25)) / 2,
                          (k3(0.3, 0.3) + k3(0.2, 0.2)) / 2])
    assert kl.item() == pytest.approx(kl_by_hand, rel=1e-5)
    assert loss.item() == pytest.approx(-surrogate + 0.1 * kl_by_hand, rel=1e-5)


def test_one_step_moves_the_policy_towards_the_better_sample():
    gen = generators.make("ca", {"radius": 1, "width": 6, "steps": 4, "n_input": 2, "task": "RO-S", "k": 1})
    torch.manual_seed(0)
    model = build_model("transformer", {"n_layer": 1, "n_head": 2, "d_model": 16, "pos": "grid"}, gen.layout())
    reference = build_model("transformer", {"n_layer": 1, "n_head": 2, "d_model": 16, "pos": "grid"}, gen.layout())
    reference.load_state_dict(model.state_dict())
    batch = {k: torch.as_tensor(v) for k, v in gen.sample("train", 0, range(4)).items()}
    cfg = SimpleNamespace(grpo_samples=8, grpo_reward="cell_accuracy", grpo_clip=0.2, grpo_kl=0.0)
    mask = batch["loss_mask"]

    def score(m):  # the policy's log-likelihood of the true state, the best possible sample, per prompt
        lp = torch.log_softmax(m(batch["inputs"]), -1).gather(-1, batch["targets"].unsqueeze(-1)).squeeze(-1)
        return (lp * mask).sum(-1)

    before = score(model).detach()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    torch.manual_seed(1)
    loss, logged = grpo.loss(model, reference, batch, cfg)
    assert 0 <= logged["reward"] <= 1 and logged["kl"].item() == pytest.approx(0.0, abs=1e-6)
    opt.zero_grad()
    loss.backward()
    opt.step()
    assert (score(model) > before).float().mean() >= 0.75  # the rewarded direction: towards the true cells


@pytest.mark.slow
def test_grpo_fine_tunes_a_finished_run_and_refuses_bad_starts(tmp_path, tiny_spec):
    data = {"task": "RO-S", "k": 1, "mixed_k": False, "n_input": 2, "steps": 4}
    spec = tiny_spec(data=data, eval={"k": [1]})
    runs = tmp_path / "runs"
    assert run("train", spec, "--out", runs).exit_code == 0
    start = next(p for p in runs.iterdir() if (p / "result.json").is_file())
    res = run("train", spec, "--out", tmp_path / "ft", "--set", "train.algorithm=grpo", "--set",
              f"train.init_from={start}", "--set", "train.grpo_samples=4")
    assert res.exit_code == 0, res.output
    ft = next(p for p in (tmp_path / "ft").iterdir() if (p / "result.json").is_file())
    logged = list(csv.DictReader((ft / "metrics.csv").open()))
    assert any(r.get("train/reward") for r in logged) and any(r.get("train/kl") for r in logged)
    assert any(r.get("val/exact_match@k=1") for r in logged)  # per-k accuracy during fine-tuning
    # seed 1 fine-tuned from seed 1 of the same supervised configuration: one configuration with two seeds
    assert run("train", spec, "--out", runs, "--seed", 1).exit_code == 0
    start1 = next(p for p in runs.iterdir() if p != start)
    assert run("train", spec, "--out", tmp_path / "ft", "--seed", 1, "--set", "train.algorithm=grpo", "--set",
               f"train.init_from={start1}", "--set", "train.grpo_samples=4").exit_code == 0
    assert run("collect", tmp_path / "ft", "--out", tmp_path / "ft.csv").exit_code == 0
    table = [r for r in csv.DictReader((tmp_path / "ft.csv").open()) if r["model"] == "transformer"]
    assert {r["n_seeds"] for r in table} == {"2"} and len({r["config_id"] for r in table}) == 1
    one_line_error(run("train", spec, "--out", tmp_path / "x", "--set", "train.algorithm=grpo"),
                   "train.algorithm = grpo needs train.init_from = RUN_DIR")
    one_line_error(run("train", spec, "--out", tmp_path / "x", "--set", "train.algorithm=grpo", "--set",
                       f"train.init_from={tmp_path / 'none'}"), "does not exist; train it first")
    one_line_error(run("train", spec, "--out", tmp_path / "x", "--set", "train.algorithm=ppo"),
                   "unknown train.algorithm 'ppo'")
    one_line_error(run("train", spec, "--out", tmp_path / "x", "--set", "train.algorithm=grpo", "--set",
                       f"train.init_from={start}", "--set", "data.task=O-S"), "is of another task (data.task")
    one_line_error(run("train", spec, "--out", tmp_path / "x", "--set", "train.algorithm=grpo", "--set",
                       f"train.init_from={start}", "--set", "model.n_layer=2"), "is of another model (model.n_layer")
    assert not (tmp_path / "x").exists()  # refused before anything was written


@pytest.mark.slow
def test_the_grpo_figure_fine_tunes_each_seed_from_its_own_start_and_pairs_them(tmp_path):
    tiny = ["train.max_steps=4", "train.val_every=2", "train.val_size=16", "eval.test_size=32", "train.threads=1",
            "model.d_model=16", "train.grpo_samples=2"]
    res = run("reproduce", "grpo-finetune", "--out", tmp_path, "--jobs", "1", "--seeds", "0,1",
              *[a for s in tiny for a in ("--set", s)])
    assert res.exit_code == 0, res.output
    configs = [json.loads(p.read_text()) for p in (tmp_path / "runs").glob("*/config.json")]
    starts = {c["seed"]: c for c in configs if c["train"]["algorithm"] == "supervised"}
    for c in configs:
        if c["train"]["algorithm"] == "grpo":  # each seed from the supervised run of its own seed
            assert c["train"]["init_from"] == "run:" + specs.run_id(starts[c["seed"]])
    points = list(csv.DictReader(open(tmp_path / "grpo-finetune" / "comparison.csv")))
    grpo = [p for p in points if p["series"] == "grpo"]
    assert {int(p["k"]) for p in grpo} == {1, 2} and all(p["vs supervised"] not in ("", None) for p in grpo)
    assert {p["series"] for p in points} >= {"supervised", "grpo"}
