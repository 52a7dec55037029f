"""Training system: metrics, masking, specs, run store (skip, resume), sweeps, and the model contract."""

import json

import lightning as L
import numpy as np
import pytest
import torch
from helpers import TINY as BASE
from helpers import merged

import generators
from generators.core import ConfigError
from testbed import metrics
from testbed import spec as specs
from testbed.models import build_model, masked_loss
from testbed.sweep import points, resolve_all
from testbed.system import lr_factor
from testbed.training import train

TINY = merged(BASE, {"train": {"max_steps": 6, "val_every": 3}})


def test_metrics_on_hand_made_predictions():
    targets = np.array([[0, 1, 1, 0], [1, 1, 0, 0], [0, 0, 0, 1]])
    pred = np.array([[0, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 1]])
    # positions 0-1 are k=1 targets, position 2 a k=2 target, position 3 unscored
    step = np.array([[1, 1, 2, -1]] * 3)
    arrays = {"targets": targets, "loss_mask": step >= 0, "step": step}
    units = metrics.outcomes(pred, arrays)
    rows = {(r["slice"], r["value"]): r for r in metrics.rates(units, "test")}
    assert rows[("all", None)]["cell_accuracy"] == pytest.approx(8 / 9)
    assert rows[("all", None)]["exact_match"] == pytest.approx(2 / 3)  # position 3 is ignored
    assert rows[("k", 1)]["cell_accuracy"] == pytest.approx(5 / 6)
    assert rows[("k", 1)]["exact_match"] == pytest.approx(2 / 3)
    assert rows[("k", 2)]["cell_accuracy"] == 1.0 and rows[("k", 2)]["exact_match"] == 1.0
    twice = metrics.concat([units, units])  # outcomes of two batches add up
    assert metrics.rates(twice, "test")[0]["n"] == 6


def test_slice_groups_prefers_per_position_step():
    gen = generators.make("ca", {k: v for k, v in TINY["data"].items() if k != "generator"})
    batch = gen.sample("test", 0, range(8))
    name, groups = metrics.slice_groups(batch)
    assert name == "k"
    assert np.array_equal(groups[batch["loss_mask"]].reshape(8, -1)[:, 0], batch["k"])
    assert (groups[~batch["loss_mask"]] == -1).all()


@pytest.mark.parametrize("model_name, extra", [
    ("transformer", {"pos": "grid", "causal": False}),
    ("transformer", {"pos": "grid", "causal": True}),
    ("transformer", {"pos": "rope", "causal": True, "rope_fraction": 0.25}),
    ("transformer", {"pos": "learned"}),
    ("torch_encoder", {}),
])
def test_masked_targets_never_leak_into_logits(model_name, extra):
    """Targets are scored, never seen: every target position's input is the mask token, and flipping every target
    changes the training loss but not one logit of the training pass that scores it."""
    gen = generators.make("ca", {"radius": 1, "width": 6, "steps": 6, "n_input": 3, "task": "O-O", "m": 2})
    cfg = {"n_layer": 2, "n_head": 2, "d_model": 16, **extra}
    model = build_model(model_name, cfg, gen.layout()).train()
    batch = {k: torch.as_tensor(v) for k, v in gen.sample("train", 0, range(4)).items()}
    mask = batch["loss_mask"]
    assert (batch["inputs"][mask] == gen.layout().vocab.index("?")).all()
    flipped = {**batch, "targets": torch.where(mask, 1 - batch["targets"].clamp(max=1), batch["targets"])}
    assert (flipped["targets"][mask] != batch["targets"][mask]).all()
    seen = []
    hook = model.register_forward_hook(lambda m, a, out: seen.append(out.detach().clone()))
    losses = []
    for b in (batch, flipped):
        torch.manual_seed(0)  # the same dropout draws in both passes
        losses.append(model.training_loss(b)[0].item())
    hook.remove()
    assert len(seen) == 2 and seen[0].shape == (4, gen.layout().seq_len, len(gen.layout().vocab))
    torch.testing.assert_close(seen[0], seen[1])
    assert abs(losses[0] - losses[1]) > 1e-3  # the flipped targets were scored: the loss saw them


def test_causal_model_ignores_the_future():
    gen = generators.make("ca", {"radius": 1, "width": 6, "steps": 6, "n_input": 3})
    model = build_model("transformer", {"n_layer": 2, "n_head": 2, "d_model": 16, "causal": True},
                        gen.layout()).eval()
    x = torch.as_tensor(gen.sample("train", 0, range(2))["inputs"])
    y = x.clone()
    y[:, 10:] = 1 - y[:, 10:].clamp(max=1)
    torch.testing.assert_close(model(x)[:, :10], model(y)[:, :10])


def test_masked_loss_only_counts_target_positions():
    logits = torch.zeros(1, 3, 2)
    logits[0, 0] = torch.tensor([10.0, -10.0])  # confidently wrong at an unscored position
    batch = {"targets": torch.tensor([[1, 0, 1]]), "loss_mask": torch.tensor([[False, True, True]])}
    assert masked_loss(logits, batch).item() == pytest.approx(np.log(2))


def test_lr_schedule():
    assert lr_factor(0, 10, 100, "cosine", 0.1) == pytest.approx(0.1)
    assert lr_factor(9, 10, 100, "cosine", 0.1) == pytest.approx(1.0)
    assert lr_factor(100, 10, 100, "cosine", 0.1) == pytest.approx(0.1)
    assert lr_factor(55, 10, 100, "linear", 0.0) == pytest.approx(0.5)
    assert lr_factor(70, 10, 100, "constant", 0.1) == 1.0


def test_cached_training_set_cycles_through_fixed_examples():
    from testbed.data import CachedSplit

    gen = generators.make("ca", {k: v for k, v in TINY["data"].items() if k != "generator"})
    cached = CachedSplit(gen, "train", 3, 10)
    first = cached.__getitems__(list(range(10)))["inputs"]
    second = cached.__getitems__(list(range(10, 20)))["inputs"]
    fresh = gen.sample("train", 3, range(10))["inputs"]
    key = lambda a: sorted(map(bytes, a.astype(np.uint8)))  # noqa: E731
    assert key(first) == key(second) == key(fresh)  # every pass visits the same 10 examples
    assert not np.array_equal(first, second)  # in a new order
    straddle = cached.__getitems__([8, 9, 10, 11])["inputs"]
    assert np.array_equal(straddle[:2], first[8:]) and np.array_equal(straddle[2:], second[:2])


def test_spec_resolution_and_errors(tmp_path):
    r = specs.resolve(TINY)
    assert r.model.d_ff == 0 and r.train.lr == 3e-3 and r.data.radius == 1 and r.model.n_layer == 1
    assert isinstance(r.model.n_layer, int) and isinstance(r.seed, int)  # typed from the spec on
    assert specs.run_id(r) == specs.run_id(specs.resolve(TINY))
    assert specs.run_id(r) != specs.run_id(specs.resolve(TINY, {"model.n_layer": 2}))
    assert specs.run_id(r) == specs.run_id(specs.resolve(TINY, {"train.threads": 2}))  # execution detail
    # an option added later keeps the ids of runs made before it, at its default, and changes them otherwise
    assert r.model.init == "gpt2"
    plain = r.as_dict()
    before = {**plain, "model": {k: v for k, v in plain["model"].items() if k != "init"}}
    assert specs.run_id(before) == specs.run_id(r)
    assert specs.run_id(specs.resolve(TINY, {"model.init": "torch"})) != specs.run_id(r)
    with pytest.raises(ConfigError, match="did you mean 'n_layer'"):
        specs.resolve(TINY, {"model.n_layers": 2})
    with pytest.raises(ConfigError, match="unknown model 'transformr'"):
        specs.resolve(TINY, {"model.name": "transformr"})
    with pytest.raises(ConfigError, match="unknown generator"):
        specs.resolve(TINY, {"data.generator": "nope"})
    with pytest.raises(ConfigError, match="malformed --set"):
        specs.parse_sets(["model.n_layer"])
    assert specs.parse_sets(["model.n_layer=4", "train.precision=bf16-mixed", "eval.k=[1,2]"]) == {
        "model.n_layer": 4, "train.precision": "bf16-mixed", "eval.k": [1, 2]}
    bad = tmp_path / "bad.toml"
    bad.write_text("[modle]\nname='x'\n")
    with pytest.raises(ConfigError, match="did you mean 'model'"):
        specs.load(bad)
    bad.write_text("[model\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        specs.load(bad)


def test_sweep_expansion():
    spec = dict(TINY, sweep={"grid": {"model.n_layer": [1, 2], "data.k": [1, 2]}, "seeds": [0, 1]})
    assert len(points(spec)) == 8
    spec = dict(TINY, sweep={"zip": {"model.d_model": [16, 32], "model.n_head": [2, 4]}})
    assert [p for p, _ in points(spec)] == [{"model.d_model": 16, "model.n_head": 2},
                                           {"model.d_model": 32, "model.n_head": 4}]
    spec = dict(TINY, sweep={"one_factor": {"model.n_layer": [2, 3], "train.lr": [0.01]}})
    assert [p for p, _ in points(spec)] == [{}, {"model.n_layer": 2}, {"model.n_layer": 3}, {"train.lr": 0.01}]
    spec = dict(TINY, sweep={"one_factor": {"model.n_layer": [1, 2]}})  # n_layer=1 is the base: deduplicated
    assert len(resolve_all(spec, {})) == 2
    spec = dict(TINY, sweep={"grid": {"data.k": [1, 2]}, "extra": [{"data.task": "O-O", "eval.k": []}]})
    assert [p for p, _ in points(spec)] == [{"data.k": 1}, {"data.k": 2}, {"data.task": "O-O", "eval.k": []}]
    with pytest.raises(ConfigError, match="equal lengths"):
        points(dict(TINY, sweep={"zip": {"model.d_model": [16, 32], "model.n_head": [2]}}))


def test_train_on_a_cached_set(tmp_path):
    _, result, status = train(specs.resolve(TINY, {"train.train_size": 20}), tmp_path, quiet=True)
    assert status == "trained" and result["steps"] == 6


def test_train_skip_and_run_files(tmp_path):
    resolved = specs.resolve(TINY)
    run_dir, result, status = train(resolved, tmp_path, quiet=True)
    assert status == "trained" and result["steps"] == 6
    for name in ("config.json", "env.json", "metrics.csv", "result.json", "model.pt", "checkpoints/last.ckpt"):
        assert (run_dir / name).is_file(), name
    assert json.loads((run_dir / "config.json").read_text()) == resolved.as_dict()
    assert specs.RunConfig.from_dict(resolved.as_dict()) == resolved  # config.json reads back as the same config
    env = json.loads((run_dir / "env.json").read_text())  # where it ran, the processor included
    assert env["torch"] == torch.__version__ and env["cpu"].endswith(f"({torch.backends.cpu.get_cpu_capability()})")
    assert {r["value"] for r in result["test"]} == {1, 2}
    assert run_dir.name == specs.run_id(resolved) == resolved.run_id() == specs.run_id(resolved.as_dict())
    _, again, status = train(resolved, tmp_path, quiet=True)
    assert status == "skipped" and again == result


class Crash(Exception):
    pass


@pytest.mark.slow
def test_interrupted_run_resumes_to_the_same_result(tmp_path):
    import lightning as L

    class CrashAt(L.Callback):
        def on_train_batch_end(self, trainer, *args):
            if trainer.global_step == 7:
                raise Crash()

    resolved = specs.resolve(TINY, {"train.max_steps": 12})
    with pytest.raises(Crash):
        train(resolved, tmp_path / "a", callbacks=[CrashAt()], quiet=True)
    run_dir = tmp_path / "a" / specs.run_id(resolved)
    assert (run_dir / "checkpoints" / "last.ckpt").is_file() and not (run_dir / "result.json").exists()
    _, resumed, status = train(resolved, tmp_path / "a", quiet=True)
    assert status == "trained" and resumed["resumed"] and resumed["steps"] == 12
    logged = (run_dir / "metrics.csv").read_text()  # both attempts' logs are kept
    assert len(list((run_dir / "logs").iterdir())) == 2 and "val/exact_match" in logged
    _, straight, _ = train(resolved, tmp_path / "b", quiet=True)
    assert straight["steps"] == 12
    for a, b in zip(resumed["test"], straight["test"]):
        assert a["cell_accuracy"] == pytest.approx(b["cell_accuracy"], abs=0.02)


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    resolved = specs.resolve(TINY)
    run_dir = tmp_path / specs.run_id(resolved)
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ConfigError, match="corrupt or truncated"):
        train(resolved, tmp_path, quiet=True)
    assert (run_dir / "checkpoints" / "last.ckpt").read_bytes() == b"PK\x03\x04 truncated"  # nothing destroyed


def test_divergence_stops_with_a_clear_message(tmp_path):
    resolved = specs.resolve(TINY, {"train.lr": 1e30, "train.warmup_steps": 0, "train.grad_clip": 0.0,
                                    "train.max_steps": 30})
    with pytest.raises(ConfigError, match="diverged"):
        train(resolved, tmp_path, quiet=True)
    # the divergence is the run's recorded outcome: asked again, it is reported at once, not retrained
    result = json.loads((tmp_path / specs.run_id(resolved) / "result.json").read_text())
    assert result["status"] == "diverged" and ("nan" in result["error"] or "inf" in result["error"])
    with pytest.raises(ConfigError, match="diverged .*--force retrains it"):
        train(resolved, tmp_path, quiet=True)


@pytest.mark.slow
def test_a_second_process_training_the_same_run_is_told_who_holds_it(tmp_path, tiny_spec):
    import os

    from helpers import run

    from testbed.store import RunLock

    spec = tiny_spec()
    resolved = specs.resolve(specs.load(spec))
    run_dir = tmp_path / "runs" / specs.run_id(resolved)
    run_dir.mkdir(parents=True)
    with RunLock(run_dir):  # as if another process were training it
        res = run("train", spec, "--out", tmp_path / "runs")
        assert res.exit_code == 2 and f"is being trained by process {os.getpid()}" in res.output
        assert len(res.output.strip().splitlines()) == 1
        res = run("sweep", spec, "--out", tmp_path / "runs")  # a sweep leaves it to its owner and goes on
        assert res.exit_code == 0 and "locked" in res.output
    assert not (run_dir / "result.json").exists()
    assert run("train", spec, "--out", tmp_path / "runs").exit_code == 0  # released: it trains now


@pytest.mark.slow
@pytest.mark.parametrize("model", ["transformer", "recurrent_depth", "curriculum"])
def test_ctrl_c_stops_cleanly_and_the_resumed_run_is_bit_identical(tmp_path, model):
    import os
    import signal

    import lightning as L

    from testbed.training import Interrupted

    cfg = {"name": model, "n_layer": 1, "n_head": 2, "d_model": 16}
    if model == "recurrent_depth":  # samples its iteration count from torch's generator at every step
        cfg.update(n_prelude=1, n_coda=0, mean_iterations=2, bptt=2)
    train_cfg = {"train.max_steps": 12, "train.val_every": 3}
    if model == "curriculum":  # k = 2 joins at the validation after step 6, before the interruption; Muon's state
        cfg["name"] = "transformer"  # is checkpointed too
        train_cfg.update({"train.curriculum": "k", "train.plateau_steps": 3, "train.plateau_delta": 1.0,
                          "train.optimizer": "muon"})
    resolved = specs.resolve(TINY, {"model": cfg, **train_cfg})

    class CtrlCAt(L.Callback):
        def on_train_batch_end(self, trainer, *args):
            if trainer.global_step == 7:
                os.kill(os.getpid(), signal.SIGINT)

    # the step boundary after the signal: what was saved and how to resume
    with pytest.raises(Interrupted, match=r"interrupted at step [78]; the last checkpoint is .*run the same command"):
        train(resolved, tmp_path / "a", callbacks=[CtrlCAt()], quiet=True)
    run_dir = tmp_path / "a" / specs.run_id(resolved)
    assert not (run_dir / "result.json").exists() and (run_dir / "checkpoints" / "last.ckpt").is_file()
    _, resumed, _ = train(resolved, tmp_path / "a", quiet=True)
    _, straight, _ = train(resolved, tmp_path / "b", quiet=True)
    a = torch.load(run_dir / "model.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / specs.run_id(resolved) / "model.pt", weights_only=True)
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0)
    assert resumed["test"] == straight["test"] and resumed["curriculum"] == straight["curriculum"]
    if model == "curriculum":
        assert straight["curriculum"] == [[0, 1], [6, 2]]
    import csv

    with open(run_dir / "metrics.csv") as f:
        logged = [int(r["step"]) for r in csv.DictReader(f)]
    assert len(logged) == len(set(logged))  # the replayed stretch after the resume is not duplicated


def test_a_budget_stops_on_a_plateau_and_not_on_a_rising_curve():
    """The plateau rule: stop once the best validation exact match has risen by no more than delta over the window
    (steps); a slow but steady climb is progress, a dip back to the old best is not."""
    from testbed.budgets import Plateau

    def first_stop(curve, window=1000, delta=0.01, every=500):
        rule = Plateau(window, delta)
        return next((step for step, v in zip(range(every, every * (len(curve) + 1), every), curve)
                     if rule.observe(step, v)), None)

    flat = [0.1, 0.5, 0.8, 0.805, 0.806, 0.804, 0.81]
    assert first_stop(flat) == 2500  # best 0.806 at 2,500 against 0.8 at 1,500: a rise of 0.006 over the window
    rising = [0.1 + 0.02 * i for i in range(30)]  # +0.02 a validation: always progress
    assert first_stop(rising) is None
    slow = [0.5 + 0.006 * i for i in range(12)]  # +0.012 over two validations: progress within every window
    assert first_stop(slow) is None
    dip = [0.6, 0.8, 0.5, 0.79, 0.8, 0.8]  # back to the old best is no rise
    assert first_stop(dip) == 2000
    rule = Plateau(1000, 0.01)
    for step, v in ((500, 0.2), (1000, 0.6)):
        rule.observe(step, v)
    again = Plateau(1000, 0.01)
    again.load_state_dict(rule.state_dict())  # a resumed run keeps counting from where it stopped
    assert not again.observe(1500, 0.605) and again.observe(2000, 0.6) and again.stopped_at == 2000
    old = Plateau(1000, 0.01)  # a checkpoint written when the history held one best per validation
    old.load_state_dict({"history": [(500, 0.2), (1000, 0.6)], "stopped_at": None})
    assert not old.observe(1500, 0.605) and old.observe(2000, 0.6)


def test_a_task_of_several_states_is_still_learning_while_one_state_climbs():
    """Whole examples of a two-state task sit at 0 until the second state is learnt; the first state's climb is
    progress, so only when every curve is flat does the run stop."""
    from testbed.budgets import Plateau

    rule = Plateau(1000, 0.01)
    curves = [(500, 0.0, 0.0), (1000, 0.0, 0.3), (1500, 0.0, 0.7), (2000, 0.0, 0.95), (2500, 0.0, 0.955),
              (3000, 0.001, 0.955)]
    stops = [rule.observe(s, {"val/exact_match": a, "val/exact_match@k=1": b, "val/exact_match@k=2": a})
             for s, a, b in curves]
    assert stops == [False, False, False, False, False, True]  # k = 1 rose until 2,500; flat everything by 3,000
    alone = Plateau(1000, 0.01)
    assert [alone.observe(s, a) for s, a, _ in curves][:3] == [False, False, True]  # the whole-example view alone


def test_a_curve_still_at_its_start_is_not_a_plateau():
    """The training budget's window starts at the first progress: a loss waiting on its initial plateau for
    thousands of steps (radius 2) is not a converged model; once it has risen, the window runs as before."""
    from testbed.budgets import Plateau

    rule = Plateau(1000, 0.01, after_progress=True)
    waiting = [(s, 0.012) for s in range(250, 2001, 250)]
    assert not any(rule.observe(s, v) for s, v in waiting) and rule.progress_at() is None
    assert not rule.observe(2250, 0.15) and rule.progress_at() is None  # one validation above: not yet held
    assert not rule.observe(2500, 0.92) and rule.progress_at() == 2250
    assert not rule.observe(3000, 0.98)
    assert not rule.observe(3250, 0.985)  # best 0.985 against 0.15 at 2,250
    assert not rule.observe(3500, 0.98)  # 0.985 against 0.92 at 2,500
    assert rule.observe(4000, 0.98) and rule.stopped_at == 4000  # 0.985 against 0.98 at 3,000: flat
    never = Plateau(1000, 0.01, after_progress=True)
    assert not any(never.observe(s, 0.0) for s in range(250, 20001, 250))  # never left its start: runs to the cap
    noise = Plateau(1500, 0.01, after_progress=True)  # a per-k curve drifting a point or two on its initial plateau
    drift = [0.004, 0.012, 0.008, 0.016, 0.02, 0.012, 0.024, 0.02, 0.016, 0.03, 0.02, 0.028, 0.024, 0.03, 0.026]
    assert not any(noise.observe(250 * (i + 1), {"val/exact_match": 0.0, "val/exact_match@k=1": v})
                   for i, v in enumerate(drift)) and noise.progress_at() is None
    spike = Plateau(1500, 0.01, after_progress=True)  # one validation at 0.08, then back on the plateau
    curve = [0.012, 0.012, 0.01, 0.014, 0.012, 0.014, 0.027, 0.008, 0.008, 0.082, 0.012, 0.01, 0.01, 0.006, 0.004]
    assert not any(spike.observe(250 * (i + 1), v) for i, v in enumerate(curve)) and spike.progress_at() is None
    resumed = Plateau(1000, 0.01, after_progress=True)
    resumed.load_state_dict(rule.state_dict())
    assert resumed.progress_at() == 2250  # derived from the checkpointed history


def test_a_plateau_with_a_cool_down_decays_the_rate_from_there_and_stops_when_it_has_run():
    """Warm-up, stable, decay: the plateau starts the cool-down instead of stopping; the run stops `cooldown` steps
    later; without a plateau the cool-down takes the last `cooldown` steps of the cap."""
    from testbed.budgets import Plateau

    rule = Plateau(1000, 0.01, cooldown=1000)
    curve = [(500, 0.1), (1000, 0.5), (1500, 0.8), (2000, 0.805), (2500, 0.806), (3000, 0.9), (3500, 0.95)]
    stops = [rule.observe(s, v) for s, v in curve]
    assert rule.cooling_from == 2500 and stops == [False] * 6 + [True] and rule.stopped_at == 3500
    resumed = Plateau(1000, 0.01, cooldown=1000)
    resumed.load_state_dict({**rule.state_dict(), "stopped_at": None})
    assert resumed.cooling_from == 2500 and resumed.observe(3500, 0.95)  # a resumed run stops where it would have

    def factor(step, cooling_from=None):
        return lr_factor(step, 100, 10_000, "constant", 0.1, cooldown=1000, cooling_from=cooling_from)

    assert factor(50) == pytest.approx(0.51) and factor(2500) == 1.0 and factor(8999) == 1.0  # warm-up, stable
    assert factor(9500) == pytest.approx(0.55) and factor(10_000) == pytest.approx(0.1)  # the cap's cool-down
    assert factor(2500, 2500) == 1.0 and factor(3000, 2500) == pytest.approx(0.55)  # from the plateau
    assert factor(3500, 2500) == pytest.approx(0.1) and factor(5000, 2500) == pytest.approx(0.1)
    assert lr_factor(3000, 100, 10_000, "constant", 0.1) == 1.0  # no cool-down: constant


@pytest.mark.slow
def test_a_run_cools_down_after_its_plateau_and_records_where(tmp_path):
    """A real run with a cool-down: the rule finds its plateau at step 4, the learning rate decays over the next 4
    steps, and the run stops at 8 with the plateau as its reason and where the cool-down began."""
    from testbed.budgets import Plateau

    lrs = []

    class Record(L.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            lrs.append(trainer.optimizers[0].param_groups[0]["lr"])

    original = Plateau.observe

    def at_four(self, step, value):
        if step == 4 and self.cooling_from is None:
            self.values.append((step, {}))
            self.cooling_from = step
            return False
        return original(self, step, value)

    cfg = specs.resolve(TINY, {"train.max_steps": 20, "train.val_every": 2, "train.plateau_steps": 4,
                               "train.cooldown_steps": 4, "train.schedule": "constant", "train.warmup_steps": 0,
                               "train.min_lr_ratio": 0.1, "train.lr": 1e-3})
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Plateau, "observe", at_four)
        _, result, _ = train(cfg, tmp_path, callbacks=[Record()], quiet=True)
    assert result["stopped"] == "plateau" and result["steps"] == 8 and result["cooldown_from"] == 4
    assert lrs[:5] == pytest.approx([1e-3] * 5) and lrs[5:8] == pytest.approx([7.75e-4, 5.5e-4, 3.25e-4])


@pytest.mark.slow
def test_a_run_whose_curve_stops_rising_stops_on_its_plateau(tmp_path):
    """A real run: when the rule says plateau, training stops there and the run records why (the rule itself is
    tested above; here it is made to find one at the second validation). With a rise of 1.0 needed for progress a
    run never leaves its start, and trains to the cap."""
    from testbed.budgets import Plateau

    calls = []

    def found(self, step, value):
        calls.append(value)
        if len(calls) == 2:
            self.stopped_at = step
        return len(calls) == 2

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Plateau, "observe", found)
        _, result, status = train(specs.resolve(TINY, {"train.max_steps": 8, "train.val_every": 2,
                                                       "train.plateau_steps": 4}), tmp_path / "a", quiet=True)
    assert status == "trained" and result["stopped"] == "plateau" and result["steps"] == 4
    assert "val/exact_match@k=1" in calls[0] and "val/exact_match" in calls[0]  # every per-k curve is watched
    _, waiting, _ = train(specs.resolve(TINY, {"train.max_steps": 8, "train.val_every": 2, "train.plateau_steps": 4,
                                                "train.plateau_delta": 1.0}), tmp_path / "b", quiet=True)
    assert waiting["stopped"] == "cap" and waiting["steps"] == 8
    _, capped, _ = train(specs.resolve(TINY, {"train.max_steps": 4}), tmp_path, quiet=True)
    assert capped["stopped"] == "cap" and capped["steps"] == 4
