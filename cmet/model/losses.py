"""C-MET losses: L = L_recon + w_cnt * L_cnt + w_dir * L_dir (defaults 0.1, 0.05; 0 disables a term).

* focal MSE (per element): ``(x - y)^2 * (2 * sigmoid(gamma * |x - y|) - 1)``, gamma = 0.2; L_recon is
  its mean over the forward (i->j) and the backward (j->i) pass, summed.
* supervised contrastive (InfoNCE, temperature 0.1) between the speech token and the visual-difference
  feature (time mean of the tokenised difference); positives = samples with the same target emotion;
  symmetric (speech->visual and visual->speech), both passes averaged.
* direction loss: ``(1 + cos(v_hat_{i->j}, v_hat_{j->i}))^2`` (squared, as the authors' code does;
  ``squared=False`` gives the paper's ``1 + cos``). Both are 0 when the two predictions are opposite.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def focal_mse(pred: torch.Tensor, target: torch.Tensor, gamma: float = 0.2) -> torch.Tensor:
    """Mean of ``(x-y)^2 * (2*sigmoid(gamma*|x-y|) - 1)`` over all elements (any matching shapes)."""
    d = pred - target
    return (d.pow(2) * (2 * torch.sigmoid(gamma * d.abs()) - 1)).mean()


def recon_loss(
    pred: torch.Tensor, target: torch.Tensor, kind: str = "focal", gamma: float = 0.2
) -> torch.Tensor:
    """Per-frame reconstruction: pred, target [B, T, D_v] -> scalar (``focal`` | ``mse`` | ``l1``)."""
    if kind == "focal":
        return focal_mse(pred, target, gamma)
    if kind == "mse":
        return F.mse_loss(pred, target)
    if kind == "l1":
        return F.l1_loss(pred, target)
    from cmet.errors import ConfigError

    raise ConfigError(f"train.loss.recon must be focal, mse or l1; got {kind!r}")


def supcon_loss(
    speech: torch.Tensor, visual: torch.Tensor, labels: torch.Tensor, temperature: float = 0.1
) -> torch.Tensor:
    """Supervised InfoNCE between speech tokens [B, d] and visual features [B, d]; labels [B].

    For every anchor on one side, the positives are all samples on the other side with the same label;
    loss = - mean over anchors of the mean log-softmax at its positives; symmetric in the two sides.
    """
    s = F.normalize(speech, dim=-1)
    v = F.normalize(visual, dim=-1)
    logits = s @ v.T / temperature  # [B, B]
    pos = (labels[:, None] == labels[None, :]).float()

    def one_side(lg: torch.Tensor) -> torch.Tensor:
        logp = lg.log_softmax(dim=1)
        return -((logp * pos).sum(1) / pos.sum(1)).mean()

    return 0.5 * (one_side(logits) + one_side(logits.T))


def direction_loss(fwd: torch.Tensor, bwd: torch.Tensor, squared: bool = True) -> torch.Tensor:
    """``(1 + cos(fwd, bwd))^2`` (or ``1 + cos``), cosine over the flattened [T*D_v] prediction: [B,...] -> scalar."""
    c = F.cosine_similarity(fwd.flatten(1), bwd.flatten(1), dim=1, eps=1e-8)
    l_dir = 1 + c
    return (l_dir.pow(2) if squared else l_dir).mean()
