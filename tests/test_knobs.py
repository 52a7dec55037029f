"""Options that no spec of experiments/ sets: each one is tested here to do what its help text says."""

import json

import numpy as np
import pytest
import torch

import generators
from testbed import spec as specs
from testbed.models import build_model
from testbed.models.transformer import rotary_angles
from testbed.training import train

CA = {"radius": 1, "width": 6, "steps": 7, "n_input": 3}
SMALL = {"n_layer": 1, "n_head": 2, "d_model": 16}


def layout(**data):
    return generators.make("ca", {**CA, **data}).layout()


def inputs(n=4, **data):
    return torch.as_tensor(generators.make("ca", {**CA, **data}).sample("test", 0, range(n))["inputs"])


def test_rope_base_sets_the_frequencies_of_the_sequence_angles():
    from testbed.models.transformer import TransformerConfig

    lay = layout()
    slow = rotary_angles(TransformerConfig(**SMALL, pos="rope", rope_base=1e6), lay)
    fast = rotary_angles(TransformerConfig(**SMALL, pos="rope", rope_base=100.0), lay)
    pairs = slow.shape[1]
    # angle(t, i) = t * base^(-i / pairs): pair 0 turns once per position whatever the base, later pairs slower
    torch.testing.assert_close(slow[:, 0], torch.arange(lay.seq_len, dtype=slow.dtype))
    torch.testing.assert_close(fast[1, 1:], 100.0 ** (-torch.arange(1, pairs) / pairs))
    assert (slow[1, 1:] < fast[1, 1:]).all()


def test_looped_concat_injection_projects_state_and_input():
    add = build_model("looped", {**SMALL, "loops": 2}, layout())
    concat = build_model("looped", {**SMALL, "loops": 2, "injection": "concat"}, layout())
    assert add.adapter is None and concat.adapter.in_features == 2 * 16
    assert concat.num_params() == add.num_params() + 2 * 16 * 16 + 16  # the adapter's weight and bias
    x = inputs()
    calls = []
    concat.adapter.register_forward_hook(lambda m, args, out: calls.append(args[0].shape))
    concat.eval()(x)
    assert calls == [(4, x.shape[1], 32)] * 2  # [state ; input] at every loop


def test_looped_step_embedding_tells_the_loops_apart():
    torch.manual_seed(0)
    plain = build_model("looped", {**SMALL, "loops": 3}, layout()).eval()
    stepped = build_model("looped", {**SMALL, "loops": 3, "step_embedding": True}, layout()).eval()
    stepped.load_state_dict(plain.state_dict())  # the embedding is sinusoidal: no parameters of its own
    x = inputs()
    assert not torch.allclose(plain(x), stepped(x))
    from testbed.models.looped import step_encoding

    e0, e1 = step_encoding(0, 16, "cpu"), step_encoding(1, 16, "cpu")
    assert e0.shape == (16,) and not torch.allclose(e0, e1) and e0.abs().max() <= 1


def test_lstm_bidirectional_reads_the_future():
    torch.manual_seed(0)
    x = inputs()
    y = x.clone()
    y[:, -3:] = 1 - y[:, -3:].clamp(max=1)  # change the last positions only
    for bidirectional, sees_future in ((False, False), (True, True)):
        model = build_model("lstm", {"n_layer": 1, "d_model": 16, "bidirectional": bidirectional}, layout()).eval()
        early = slice(0, x.shape[1] - 3)
        assert torch.allclose(model(x)[:, early], model(y)[:, early]) != sees_future
    assert model.state_size() == 2 * 1 * 16 * 2  # h and c, both directions


def test_pondernet_kl_is_to_the_truncated_geometric_prior():
    torch.manual_seed(0)
    gen = generators.make("ca", CA)
    batch = {k: torch.as_tensor(v) for k, v in gen.sample("train", 0, range(4)).items()}
    for prior in (0.2, 0.6):
        model = build_model("act", {**SMALL, "mode": "block", "halting": "pondernet", "max_steps": 3,
                                    "prior": prior, "beta": 1.0}, gen.layout())
        _, extras = model.training_loss(batch)
        _, p = model.ponder_steps(batch["inputs"])
        geometric = prior * (1 - prior) ** torch.arange(3.0)
        geometric = geometric / geometric.sum()
        want = (p * (p.clamp_min(1e-10).log() - geometric.log()[:, None, None])).sum(0).mean()
        assert extras["kl"].item() == pytest.approx(want.item(), rel=1e-5)


def test_recurrent_depth_sigma_spreads_the_iteration_counts_and_state_scale_the_initial_state():
    cfg = {**SMALL, "n_prelude": 0, "n_coda": 0, "mean_iterations": 4, "bptt": 1}
    torch.manual_seed(0)
    model_n = build_model("recurrent_depth", {**cfg, "sigma": 0.1}, layout())
    model_w = build_model("recurrent_depth", {**cfg, "sigma": 1.5}, layout())
    narrow = np.array([model_n.sample_iterations() for _ in range(3000)])
    wide = np.array([model_w.sample_iterations() for _ in range(3000)])
    assert abs(narrow.mean() - 5) < 0.2 and abs(wide.mean() - 5) < 0.4  # E[r] = r_bar + 1 either way
    assert wide.std() > 1.5 * narrow.std()
    like = torch.zeros(2000, 16)
    for scale in (0.5, 2.0):
        model = build_model("recurrent_depth", {**cfg, "state_scale": scale}, layout()).train()
        s = model.initial_state(like)
        # a standard normal truncated at 3 has std 0.986
        assert s.std().item() == pytest.approx(0.986 * scale * (2 / (5 * 16)) ** 0.5, rel=0.05)


@pytest.mark.slow
def test_max_time_stops_training_and_says_so(tmp_path, tiny_spec):
    resolved = specs.resolve(tiny_spec(as_dict=True, train={"max_steps": 100000, "max_time_s": 1.0}))
    _, result, status = train(resolved, tmp_path, quiet=True)
    assert status == "trained" and 0 < result["steps"] < 100000 and result["stopped"] == "max_time"
    assert result["fit_seconds"] < 30
    with pytest.raises(generators.ConfigError, match="max_time_s must be >= 0|must be >= 0"):
        specs.resolve(tiny_spec(as_dict=True, train={"max_time_s": -1.0}))


@pytest.mark.slow
def test_data_loader_workers_change_nothing_but_speed(tmp_path, tiny_spec):
    # examples are a pure function of (seed, split, index): the worker processes build exactly the batches of
    # the main process, so the trained weights are the same
    spec = tiny_spec(as_dict=True, train={"max_steps": 6, "val_every": 3})
    results = {}
    for workers in (0, 1):
        run_dir, result, _ = train(specs.resolve(spec, {"train.num_workers": workers}), tmp_path / str(workers),
                                   quiet=True)
        results[workers] = (torch.load(run_dir / "model.pt", weights_only=True), result)
    (w0, r0), (w1, r1) = results[0], results[1]
    for name in w0:
        torch.testing.assert_close(w0[name], w1[name], rtol=0, atol=0)
    assert [r["exact_match"] for r in r0["test"]] == [r["exact_match"] for r in r1["test"]]


@pytest.mark.slow
def test_tensorboard_logger_writes_event_files_with_the_scalars(tmp_path, tiny_spec):
    pytest.importorskip("tensorboardX")
    from tensorboard_events import scalars

    resolved = specs.resolve(tiny_spec(as_dict=True, train={"logger": "tensorboard", "max_steps": 4}))
    run_dir, result, _ = train(resolved, tmp_path, quiet=True)
    events = list((run_dir / "logs").rglob("events.out.tfevents.*"))
    assert events, list((run_dir / "logs").rglob("*"))
    logged = scalars(events[0])
    assert "train/loss" in logged and "val/exact_match" in logged
    # the numbers the run recorded: its best validation exact match is the best one logged
    assert max(v for _, v in logged["val/exact_match"]) == pytest.approx(result["best_val_exact_match"], abs=1e-6)
    assert json.loads((run_dir / "config.json").read_text())["train"]["logger"] == "tensorboard"


def test_unknown_or_missing_trackers_are_one_line_errors(tiny_spec, tmp_path, monkeypatch):
    import importlib.util

    from helpers import one_line_error, run

    spec = tiny_spec()
    one_line_error(run("train", spec, "--out", tmp_path, "--logger", "mlflow"), "unknown train.logger 'mlflow'")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    one_line_error(run("train", spec, "--out", tmp_path, "--logger", "wandb"), "pip install 'testbed[wandb]'")
