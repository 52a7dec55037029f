"""Depth-extending families: the model contract, weight tying, gradient cuts, halting, overrides, learning."""

import dataclasses

import numpy as np
import pytest
import torch

import generators
from generators.core import ConfigError
from testbed.models import MODELS, build_model
from testbed.models.act import act_halting

SMALL = {"n_layer": 2, "n_head": 2, "d_model": 32}
FAMILIES = {  # a small config of every registered family
    "transformer": SMALL,
    "torch_encoder": SMALL,
    "fast_weights": SMALL,
    "looped": {**SMALL, "n_layer": 1, "loops": 3},
    "recurrent_depth": {**SMALL, "n_layer": 1, "n_prelude": 1, "n_coda": 1, "mean_iterations": 2, "bptt": 2,
                        "init_std": 0.1},
    "act": {**SMALL, "init_std": 0.1},
    "memory_tokens": {**SMALL, "n_memory": 4},
    "rmt": {**SMALL, "n_memory": 4, "init_std": 0.1},
    "armt": {**SMALL, "n_memory": 4, "d_mem": 16, "nu": 2, "init_std": 0.1},
    "lstm": {"n_layer": 1, "d_model": 64},
    "mamba": {"n_layer": 2, "d_model": 32, "d_state": 8},
    "cot": SMALL,
    "pkm_transformer": {**SMALL, "n_keys": 8, "topk": 4, "d_key": 8},
}
CA = {"radius": 1, "width": 6, "steps": 7, "n_input": 3}


def setup(name, cfg=None, **data):
    gen = generators.make("ca", {**CA, **({"task": "O-O", "m": 2} if name == "cot" else {}), **data})
    model = build_model(name, {**FAMILIES[name], **(cfg or {})}, gen.layout())
    batch = {k: torch.as_tensor(v) for k, v in gen.sample("train", 0, range(8)).items()}
    return gen, model, batch


def test_every_family_has_a_test_config():
    # linear_memory: tests/test_associative_memory; the fact memories: tests/test_parametric
    assert set(FAMILIES) | {"linear_memory", "mlp_memory", "pkm_memory", "hash_memory"} == set(MODELS.names())


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_shapes_and_masking(name):
    gen, model, batch = setup(name)
    model.eval()
    logits = model(batch["inputs"])
    assert logits.shape == (8, gen.layout().seq_len, len(gen.layout().vocab))
    assert torch.isfinite(logits).all()
    # targets never reach the model at evaluation: inputs hold mask tokens where targets are scored
    assert (batch["inputs"][batch["loss_mask"]] == gen.layout().vocab.index("?")).all()
    model.train()
    loss, extras = model.training_loss(batch)
    assert loss.ndim == 0 and torch.isfinite(loss)


def test_parameter_counts_follow_the_architecture():
    lay = generators.make("ca", CA).layout()
    v, length, d = len(lay.vocab), lay.seq_len, 32
    block = (3 * d * d + 3 * d) + (d * d + d) + 2 * (2 * d) + (d * 4 * d + 4 * d) + (4 * d * d + d)  # attn, norms, mlp
    embeddings = v * d + length * d  # tokens and learned absolute positions (the grid encoding keeps them)
    assert build_model("transformer", SMALL, lay).num_params() == embeddings + 2 * block + 2 * d + d * v
    looped = build_model("looped", {**SMALL, "n_layer": 1, "loops": 5}, lay)
    assert looped.num_params() == embeddings + block + 2 * d + d * v  # one block, however many loops
    # fixed random embeddings are buffers, not parameters: the memory is W alone
    gen = generators.make("zipf_memory", {"n_tokens": 50, "n_classes": 5})
    assert build_model("linear_memory", {"d": 12, "n_classes": 5}, gen.layout()).num_params() == 12 * 12
    learned = build_model("linear_memory", {"d": 12, "n_classes": 5, "learn_embeddings": True}, gen.layout())
    assert learned.num_params() == 12 * 12 + 50 * 12 + 5 * 12


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_family_overfits_a_tiny_fixed_batch(name):
    torch.manual_seed(0)
    torch.set_num_threads(1)  # the same arithmetic whatever ran before
    _, model, batch = setup(name)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2 if name == "lstm" else 3e-3)  # LSTMs like larger steps
    first, mask = None, batch["loss_mask"]

    def fitted() -> float:
        model.eval()
        with torch.no_grad():
            pred = model(batch["inputs"]).argmax(-1)
        model.train()
        return (pred[mask] == batch["targets"][mask]).float().mean().item()

    model.train()
    for step in range(200):  # at most 200 steps; checked every 25 (most families fit the batch well before)
        model.global_step = step
        loss, _ = model.training_loss(batch)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)  # as the trainer does
        opt.step()
        if step % 25 == 24 and loss.item() < 0.1 * first and fitted() > 0.95:
            break
    assert loss.item() < 0.1 * first
    assert fitted() > 0.95


@pytest.mark.parametrize("name,key", [("looped", "loops"), ("recurrent_depth", "mean_iterations")])
def test_weight_tying_shares_parameters(name, key):
    sizes = {build_model(name, {**FAMILIES[name], key: r, "bptt": 1} if name == "recurrent_depth" else
                         {**FAMILIES[name], key: r}, setup(name)[0].layout()).num_params() for r in (1, 2, 8)}
    assert len(sizes) == 1


@pytest.mark.parametrize("name", ["looped", "recurrent_depth"])
def test_iteration_override_changes_compute_not_parameters(name):
    torch.manual_seed(0)
    _, model, batch = setup(name)
    model.eval()
    calls = []
    block = model.blocks[0] if name == "looped" else model.core[0]
    block.register_forward_hook(lambda *a: calls.append(1))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    outs = {}
    for r in (1, 2, 6):
        calls.clear()
        model.iterations = r
        outs[r] = model(batch["inputs"])
        assert len(calls) == r
    assert not torch.allclose(outs[1], outs[6])
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    # the per-step read-out is the same computation, read out at every iteration
    steps = model.forward_steps(batch["inputs"], 6)
    assert len(steps) == 6
    torch.testing.assert_close(steps[1], outs[2])
    torch.testing.assert_close(steps[5], outs[6])


def test_looped_no_gradient_prefix():
    _, model, batch = setup("looped", {"loops": 4, "nograd_loops": 2, "loss_loops": 2})
    states = model.states(batch["inputs"], 4, nograd=2)
    assert [s.requires_grad for s in states] == [False, False, True, True]
    grad_flags = []
    model.blocks[0].register_forward_hook(lambda *a: grad_flags.append(torch.is_grad_enabled()))
    model.train()
    model.training_loss(batch)[0].backward()
    assert grad_flags == [False, False, True, True]


def test_recurrent_depth_truncated_backprop_and_sampling():
    torch.manual_seed(0)
    _, model, batch = setup("recurrent_depth", {"mean_iterations": 4, "bptt": 2})
    flags = []
    model.core[0].register_forward_hook(lambda *a: flags.append(torch.is_grad_enabled()))
    model.train()
    model.run(batch["inputs"], 5, bptt=2).sum().backward()
    assert flags == [False, False, False, True, True]
    draws = [model.sample_iterations() for _ in range(2000)]
    assert min(draws) >= 1 and abs(np.mean(draws) - 5.0) < 0.3  # E[Poisson(tau) + 1] = r_bar + 1
    fixed = setup("recurrent_depth", {"mean_iterations": 3, "sample_iterations": False, "bptt": 2})[1]
    assert {fixed.sample_iterations() for _ in range(20)} == {3}


def test_recurrent_depth_adaptive_exit_reports_steps():
    torch.manual_seed(0)
    _, model, batch = setup("recurrent_depth", {"exit_threshold": 1e9, "max_iterations": 6})
    model.eval()
    model(batch["inputs"])
    assert (model.steps_used == 2).all()  # any KL is below a huge threshold: stop at the first comparison
    _, model, batch = setup("recurrent_depth", {"exit_threshold": 1e-12, "max_iterations": 5})
    model.eval()
    torch.testing.assert_close(model(batch["inputs"]).exp().sum(-1), torch.ones(8, model.seq_len))
    assert (model.steps_used == 5).all()


def test_rmt_detach_really_cuts_gradients_across_segments():
    for bptt, early_grad in ((0, True), (1, False)):
        _, model, batch = setup("rmt", {"bptt": bptt})
        captured = {}

        def keep(module, args, out, captured=captured):
            out[0].retain_grad()
            captured["x"] = out[0]

        model.embed.register_forward_hook(keep)
        model.train()
        model.training_loss(batch)[0].backward()
        first_segment = model.segments[0]
        g = captured["x"].grad[:, first_segment[0] : first_segment[1]]
        assert (g.abs().sum() > 0) == early_grad
        last = model.segments[-1]
        assert captured["x"].grad[:, last[0] : last[1]].abs().sum() > 0


def test_rmt_segments_follow_orbit_rows_and_curriculum_grows_the_window():
    gen, model, _ = setup("rmt", {"curriculum_steps": 100})
    width = CA["width"]
    assert [b - a for a, b in model.segments] == [width + 1] * CA["n_input"] + [width]
    model.train()
    windows = []
    for step in (0, 50, 100, 1000):
        model.global_step = step
        windows.append(model.bptt_window())
    assert windows == [1, 2, 4, 4]
    with pytest.raises(ConfigError, match="longer than the sequence"):
        build_model("rmt", {**FAMILIES["rmt"], "segment_len": 1000}, gen.layout())


@pytest.mark.parametrize("mode", ["layer", "block"])
def test_act_halting_weights_sum_to_one(mode):
    torch.manual_seed(0)
    _, model, batch = setup("act", {"mode": mode, "halt_bias": 0.0})
    model.eval()
    model(batch["inputs"])
    for w in model.halting_weights:
        torch.testing.assert_close(w.sum(0), torch.ones_like(w[0]))
        assert (w >= 0).all()
    assert ((model.steps_used >= 1) & (model.steps_used <= 4)).all()


def test_act_halting_on_a_known_sequence():
    # halting probability 0.35 every step, threshold 0.9: the sum passes 0.9 at step 3, which takes the remainder
    halt = torch.nn.Linear(1, 1)
    with torch.no_grad():
        halt.weight.zero_()
        halt.bias.fill_(float(np.log(0.35 / 0.65)))
    out, cost, steps, w = act_halting(lambda x: x + 1, torch.zeros(1, 1, 1), halt, 5, 0.9)
    torch.testing.assert_close(w[:, 0, 0], torch.tensor([0.35, 0.35, 0.30]))
    assert steps.item() == 3 and cost.item() == pytest.approx(3.3)
    assert out.item() == pytest.approx(0.35 * 1 + 0.35 * 2 + 0.30 * 3)


def test_pondernet_halting_distribution():
    _, model, batch = setup("act", {"mode": "block", "halting": "pondernet", "max_steps": 3})
    logits, p = model.ponder_steps(batch["inputs"])
    torch.testing.assert_close(p.sum(0), torch.ones_like(p[0]))
    model.eval()
    model(batch["inputs"])
    assert ((model.steps_used >= 1) & (model.steps_used <= 3)).all()


def test_cot_teacher_forces_earlier_rows_and_masks_later_ones(monkeypatch):
    from testbed.models.transformer import Transformer

    gen, model, batch = setup("cot")
    seen, forward = [], Transformer.forward
    monkeypatch.setattr(Transformer, "forward", lambda self, x: seen.append(x.clone()) or forward(self, x))
    model.training_loss(batch)
    stacked = seen[0].view(2, 8, -1)  # one pass per target row, stacked along the batch
    mask_id = gen.layout().vocab.index("?")
    scored = batch["loss_mask"][0]
    first = scored & (model.row == CA["n_input"])
    second = scored & (model.row == CA["n_input"] + 1)
    assert (stacked[0][:, first | second] == mask_id).all()  # row 1 pass: nothing of the target visible
    assert torch.equal(stacked[1][:, first], batch["targets"][:, first])  # row 2 pass: true row 1 fed back
    assert (stacked[1][:, second] == mask_id).all()


def test_cot_evaluation_feeds_back_its_own_predictions():
    gen, model, batch = setup("cot")
    model.eval()
    out = model(batch["inputs"])
    rows = model.row
    first = rows == CA["n_input"]
    fed = torch.where(first & (batch["inputs"] == model.mask_id), out.argmax(-1), batch["inputs"])
    second = rows == CA["n_input"] + 1
    from testbed.models.transformer import Transformer

    torch.testing.assert_close(out[:, second], Transformer.forward(model, fed)[:, second])


@pytest.mark.parametrize("name,cfg,match", [
    ("looped", {"loops": 0}, r"loops must be in 1..1024"),
    ("act", {"max_steps": 2000}, r"max_steps must be in 1..1024, got 2000"),
    ("looped", {"loops": 2, "loss_loops": 2, "nograd_loops": 1}, "must not exceed loops"),
    ("recurrent_depth", {"mean_iterations": 2, "sample_iterations": False, "bptt": 3}, "bptt"),
    ("recurrent_depth", {"bptt": 0}, r"bptt must be in 1..1024"),
    ("act", {"threshold": 1.0}, "threshold must be in"),
    ("act", {"threshold": 0.0}, "threshold must be in"),
    ("act", {"halting": "pondernet"}, "needs mode = block"),
    ("memory_tokens", {"n_memory": 0}, "n_memory must be at least 1"),
])
def test_bad_configs(name, cfg, match):
    with pytest.raises(ConfigError, match=match):
        setup(name, cfg)


def test_armt_memory_starts_silent_then_carries_information_across_segments():
    torch.manual_seed(0)
    _, model, batch = setup("armt")
    model.eval()
    x = batch["inputs"]
    y = x.clone()
    a, b = model.segments[1]
    y[:, a:b] = 1 - y[:, a:b].clamp(max=1)  # change an early orbit row
    last = slice(*model.segments[-1])
    # W_v = 0 at initialisation: nothing is written, so the last segment cannot see the earlier ones
    torch.testing.assert_close(model(x)[:, last], model(y)[:, last])
    for mem in model.memories:
        torch.nn.init.normal_(mem.value.weight, std=0.5)
    assert not torch.allclose(model(x)[:, last], model(y)[:, last])


def test_armt_state_resets_between_sequences():
    torch.manual_seed(0)
    _, model, batch = setup("armt")
    for mem in model.memories:
        torch.nn.init.normal_(mem.value.weight, std=0.5)
    model.eval()
    together = model(batch["inputs"])
    torch.testing.assert_close(model(batch["inputs"][3:4]), together[3:4])  # no state from other sequences
    torch.testing.assert_close(model(batch["inputs"]), together)  # nor from an earlier call


def test_armt_detach_cuts_gradients():
    for bptt, early_grad in ((0, True), (1, False)):
        torch.manual_seed(0)
        _, model, batch = setup("armt", {"bptt": bptt})
        for mem in model.memories:
            torch.nn.init.normal_(mem.value.weight, std=0.5)
        captured = {}

        def keep(module, args, out, captured=captured):
            out[0].retain_grad()
            captured["x"] = out[0]

        model.embed.register_forward_hook(keep)
        model.training_loss(batch)[0].backward()
        a, b = model.segments[0]
        assert (captured["x"].grad[:, a:b].abs().sum() > 0) == early_grad


def test_state_sizes_follow_the_definitions():
    gen = generators.make("ca", CA)
    lay = gen.layout()
    t = build_model("transformer", SMALL, lay)
    assert t.state_size() == 2 * 2 * lay.seq_len * 32  # keys and values, every layer and position
    fw = build_model("fast_weights", {**SMALL, "feature": "identity"}, lay)
    assert fw.state_size() == 2 * 2 * 16 * 16  # layers x heads x d_head x d_head
    assert build_model("fast_weights", {**SMALL, "feature": "dpfp", "nu": 2}, lay).state_size() == 2 * 2 * 16 * 64
    assert build_model("armt", FAMILIES["armt"], lay).state_size() == 2 * (2 * 2 * 16) * 33
    assert build_model("rmt", FAMILIES["rmt"], lay).state_size() == 4 * 32
    assert build_model("lstm", FAMILIES["lstm"], lay).state_size() == 2 * 1 * 64
    assert build_model("looped", FAMILIES["looped"], lay).state_size() is None


def test_overlap_shows_each_segment_the_previous_row():
    torch.manual_seed(0)
    for overlap in (True, False):
        _, model, batch = setup("armt", {"overlap": overlap})
        model.eval()
        for mem in model.memories:  # a silent associative memory: only the overlap can carry the previous row
            torch.nn.init.zeros_(mem.value.weight)
        x = batch["inputs"]
        y = x.clone()
        a, b = model.segments[-2]
        y[:, a:b] = 1 - y[:, a:b].clamp(max=1)  # change the row before the target
        last = slice(*model.segments[-1])
        assert torch.allclose(model(x)[:, last], model(y)[:, last]) != overlap


def test_recurrent_depth_blocks_are_sandwich_normed_unless_asked_otherwise():
    from testbed.models.recurrent_depth import SandwichBlock
    from testbed.models.transformer import Block

    assert isinstance(setup("recurrent_depth")[1].core[0], SandwichBlock)
    plain = setup("recurrent_depth", {"sandwich": False})[1]
    assert type(plain.core[0]) is Block
    assert plain.num_params() < setup("recurrent_depth")[1].num_params()  # two norms fewer per block


# --- per-loop step supervision (depth extrapolation) -----------------------------------------------------------

PATH = {"task": "RO-S", "n_input": 2, "k": 3, "path": True}


def test_path_targets_are_the_targets_at_each_depth():
    """Row j of path_targets is exactly what an example asked for j + 1 steps ahead has as its target."""
    gen = generators.make("ca", {**CA, **PATH})
    path = gen.sample("train", 5, np.arange(40))["path_targets"]
    assert path.shape[:2] == (40, 3) and gen.layout().path_steps == 3
    for j in range(3):
        np.testing.assert_array_equal(path[:, j], gen.sample_at_depth("train", 5, np.arange(40), j + 1)["targets"])
    assert not any(np.array_equal(path[:, 0], path[:, j]) for j in (1, 2))  # the steps differ somewhere


def test_step_loss_scores_loop_j_against_the_state_j_steps_ahead():
    gen, model, batch = setup("looped", {"step_loss": True}, **PATH)
    loss, _ = model.training_loss(batch)
    at_depth = [gen.sample_at_depth("train", 0, np.arange(8), j + 1) for j in range(3)]
    with torch.no_grad():
        logits = model.forward_steps(batch["inputs"], 3)
    per_loop = [torch.nn.functional.cross_entropy(
        logits[j][torch.as_tensor(d["loss_mask"])], torch.as_tensor(d["targets"])[torch.as_tensor(d["loss_mask"])]
    ).item() for j, d in enumerate(at_depth)]
    assert loss.item() == pytest.approx(np.mean(per_loop), rel=1e-5)
    assert abs(per_loop[-1] - loss.item()) > 1e-4  # not the final state's loss alone
    loss.backward()  # every loop's read-out trains the shared block
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("cfg, data, message", [
    ({"step_loss": True}, {"task": "RO-S", "n_input": 2, "k": 3}, "set data.path = true and data.k = 3"),
    ({"step_loss": True, "loops": 2}, PATH, "data.k = 2 (the task gives 3 steps)"),
    ({"step_loss": True, "loss_loops": 2}, PATH, "leave loss_loops = 1"),
])
def test_step_loss_needs_a_path_as_long_as_the_loops(cfg, data, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        setup("looped", cfg, **data)


@pytest.mark.parametrize("data", [{"task": "O-O", "m": 2}, {"task": "RO-S", "mixed_k": True}])
def test_path_needs_a_single_state_task(data):
    with pytest.raises(ConfigError, match="path .* needs task O-S or RO-S without mixed_k"):
        generators.make("ca", {**CA, "n_input": 2, "k": 3, "path": True, **data}).layout()


# --- Mamba -------------------------------------------------------------------------------------------------------


def naive_scan(x, dt, A, B, C, D):
    """The recurrence one position at a time, as the equations write it."""
    h, ys = torch.zeros(x.shape[0], x.shape[2], A.shape[1], dtype=x.dtype), []
    for t in range(x.shape[1]):
        h = torch.exp(dt[:, t, :, None] * A) * h + (dt[:, t] * x[:, t])[:, :, None] * B[:, t, None, :]
        ys.append((h * C[:, t, None, :]).sum(-1) + D * x[:, t])
    return torch.stack(ys, 1)


@pytest.mark.parametrize("chunk", [1, 3, 8, 64])
def test_selective_scan_is_the_recurrence(chunk):
    from testbed.models.mamba import selective_scan

    g = torch.Generator().manual_seed(0)
    b, length, d, n = 3, 21, 5, 4
    x, B, C = (torch.randn(s, generator=g, dtype=torch.float64) for s in ((b, length, d), (b, length, n),
                                                                         (b, length, n)))
    dt = torch.nn.functional.softplus(torch.randn(b, length, d, generator=g, dtype=torch.float64))
    A = -torch.rand(d, n, generator=g, dtype=torch.float64) * 3
    D = torch.randn(d, generator=g, dtype=torch.float64)
    torch.testing.assert_close(selective_scan(x, dt, A, B, C, D, chunk), naive_scan(x, dt, A, B, C, D))
    x.requires_grad_(True)
    selective_scan(x, dt, A, B, C, D, chunk).sum().backward()
    assert torch.isfinite(x.grad).all()  # the masked, never-contributing pairs give no nan in backward


@pytest.mark.slow
def test_mamba_trains_and_its_state_is_counted():
    gen, model, batch = setup("mamba")
    c = model.config
    assert model.state_size() == c.n_layer * c.expand * c.d_model * (c.d_state + c.d_conv - 1)
    with torch.no_grad():
        steps = model.blocks[0].dt_proj.bias
        dt = torch.nn.functional.softplus(steps)
    assert (dt >= c.dt_min * 0.999).all() and (dt <= c.dt_max * 1.001).all()  # the steps start in range
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(30):
        loss, _ = model.training_loss(batch)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.7 * first
    with pytest.raises(ConfigError, match="need 0 < dt_min <= dt_max"):
        setup("mamba", {"dt_min": 0.5, "dt_max": 0.1})


def test_progressive_step_loss_scores_only_the_loops_after_the_free_ones(monkeypatch):
    """DeepThinking's progressive loss: n loops without gradient, then loops n+1.. scored against their own steps."""
    gen, model, batch = setup("looped", {"step_loss": True, "progressive": True}, **PATH)
    monkeypatch.setattr(torch, "randint", lambda high, size: torch.tensor(2))
    loss, _ = model.training_loss(batch)
    third = gen.sample_at_depth("train", 0, np.arange(8), 3)
    mask = torch.as_tensor(third["loss_mask"])
    with torch.no_grad():
        logits = model.forward_steps(batch["inputs"], 3)[2]
    expected = torch.nn.functional.cross_entropy(logits[mask], torch.as_tensor(third["targets"])[mask]).item()
    assert loss.item() == pytest.approx(expected, rel=1e-5)  # loop 3 alone: loops 1-2 ran free
    loss.backward()
    assert model.head.weight.grad is not None


def test_progressive_needs_step_loss():
    with pytest.raises(ConfigError, match="set step_loss = true"):
        setup("looped", {"progressive": True}, **PATH)


def test_feedback_starts_each_loop_from_the_embedded_read_out():
    """With feedback, loop t + 1 sees softmax(read-out of loop t) times the token embeddings, not the raw state."""
    _, model, batch = setup("looped", {"feedback": True, "loops": 3})
    model.eval()
    with torch.no_grad():
        e, rotary = model.embed(batch["inputs"])
        y1 = model.step(torch.zeros_like(e), e, rotary, 0)  # the first loop starts from zero, as without feedback
        expected = model.readout(y1).softmax(-1) @ model.embed.tok_emb.weight + e
        for block in model.blocks:
            expected = block(expected, rotary)
        torch.testing.assert_close(model.states(batch["inputs"], 2)[1], expected)
        model.config = dataclasses.replace(model.config, feedback=False)  # the same weights, the raw state fed on
        assert not torch.allclose(model.states(batch["inputs"], 2)[1], expected, atol=1e-4)
