"""GRPO fine-tuning (Shao et al. 2024, DeepSeekMath; P1's recipe: start from the supervised k = 1 checkpoint, reward =
bit accuracy of the generated state, 8 samples per prompt, KL 0.01 to the start).

    [train] algorithm = "grpo", init_from = "runs/<a finished supervised run>"

Per prompt, G target states are sampled from the model; each earns a reward (cell accuracy, or exact match); the
advantage of a sample is its reward standardised within its group, A_i = (r_i - mean r) / (std r + eps); the loss is
the clipped policy-ratio objective per scored cell with a KL penalty to the starting model (the k3 estimator,
exp(q - p) - (q - p) - 1 with p, q the policy's and the reference's log-probabilities of the sampled token):

    loss = -mean_i mean_cells [min(rho A_i, clip(rho, 1 - eps, 1 + eps) A_i)] + beta KL

Sampling: every target cell is drawn from the model's own per-cell distribution. In testbed's layout a target
position holds a mask token and no model reads its own earlier target cells, so this *is* the model's likelihood of
the whole state — exact, and one forward pass for all G samples (they share the prompt's logits). One update per
batch (on-policy: the ratio is 1 in value, its gradient the policy gradient), so the clip acts only when a run
sets several updates per batch, which this implementation does not. Written here rather than with the `trl`
library, which trains Hugging Face language models through their generate(), not masked-position models like ours.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def rewards(samples: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor, kind: str) -> torch.Tensor:
    """(B, G) reward of each sample (B, G, L) against the targets (B, L) on the scored positions."""
    right = (samples == targets.unsqueeze(1)) | ~mask.unsqueeze(1)
    if kind == "exact_match":
        return right.all(-1).float()
    return ((samples == targets.unsqueeze(1)) & mask.unsqueeze(1)).sum(-1).float() / mask.sum(-1, keepdim=True)


def advantages(r: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Rewards standardised within each prompt's group (dimension 1); a group of equal rewards has none."""
    return (r - r.mean(1, keepdim=True)) / (r.std(1, keepdim=True) + eps)


def objective(logp: torch.Tensor, old: torch.Tensor, ref: torch.Tensor, adv: torch.Tensor, mask: torch.Tensor,
              clip: float, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, KL) from per-cell log-probabilities of the samples (B, G, L) under the policy, the policy that sampled
    them and the reference, the advantages (B, G) and the scored positions (B, L)."""
    ratio = torch.exp(logp - old)
    a = adv.unsqueeze(-1)
    surrogate = torch.minimum(ratio * a, ratio.clamp(1 - clip, 1 + clip) * a)
    kl = torch.exp(ref - logp) - (ref - logp) - 1
    m = mask.unsqueeze(1).float()
    kl_mean = _cell_mean(kl, m).mean()
    return -_cell_mean(surrogate, m).mean() + beta * kl_mean, kl_mean


def _cell_mean(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """(B, G): each sample's mean over its scored cells."""
    return (x * m).sum(-1) / m.sum(-1)


def _of_samples(logp: torch.Tensor, samples: torch.Tensor) -> torch.Tensor:
    """(B, G, L) log-probabilities (B, L, V) of the sampled tokens (B, G, L)."""
    return logp.unsqueeze(1).expand(-1, samples.shape[1], -1, -1).gather(-1, samples.unsqueeze(-1)).squeeze(-1)


def loss(model, reference, batch: dict, cfg) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The GRPO loss of a batch of prompts and its logged parts (mean reward, KL to the reference)."""
    inputs, targets, mask = batch["inputs"], batch["targets"], batch["loss_mask"]
    logp_all = F.log_softmax(model(inputs).float(), dim=-1)  # (B, L, V)
    with torch.no_grad():
        samples = torch.distributions.Categorical(logits=logp_all).sample((cfg.grpo_samples,)).transpose(0, 1)
        ref_all = F.log_softmax(reference(inputs).float(), dim=-1)
        r = rewards(samples, targets, mask, cfg.grpo_reward)
    logp = _of_samples(logp_all, samples)
    total, kl = objective(logp, logp.detach(), _of_samples(ref_all, samples), advantages(r), mask, cfg.grpo_clip,
                          cfg.grpo_kl)
    return total, {"reward": r.mean(), "kl": kl}
