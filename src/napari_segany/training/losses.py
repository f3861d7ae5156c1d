"""Losses: promptable masks (as in SAM's training: focal + dice, IoU regression), instance head."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from napari_segany.models.instance_head import CENTRE, FOREGROUND
from napari_segany.training.instance_targets import centre_map


def focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0):
    """Mean sigmoid focal loss per mask; logits and target (..., H, W) → (...)."""
    prob = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = prob * target + (1 - prob) * (1 - target)
    loss = ce * (1 - p_t) ** gamma
    loss = (alpha * target + (1 - alpha) * (1 - target)) * loss
    return loss.flatten(-2).mean(-1)


def dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """Soft dice loss per mask; (..., H, W) → (...)."""
    prob = torch.sigmoid(logits).flatten(-2)
    target = target.flatten(-2)
    inter = (prob * target).sum(-1)
    return 1 - (2 * inter + eps) / (prob.sum(-1) + target.sum(-1) + eps)


def mask_iou(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """IoU of boolean masks; (..., H, W) → (...), 1 where both are empty."""
    predicted, target = predicted.flatten(-2), target.flatten(-2)
    inter = (predicted & target).sum(-1).float()
    union = (predicted | target).sum(-1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def prompt_loss(
    logits: torch.Tensor, iou_pred: torch.Tensor, target: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """SAM's loss for one decoding round.

    Parameters
    ----------
    logits : Tensor (B, K, H, W)
        Mask logits at the target's resolution (K candidates).
    iou_pred : Tensor (B, K)
    target : Tensor (B, H, W) float {0, 1}

    Returns
    -------
    loss : Tensor ()
        20·focal + dice of the best candidate per prompt (only it is trained, so candidates can
        specialise), plus the MSE of every candidate's predicted IoU.
    best : Tensor (B,) long
        Index of the best candidate per prompt.
    """
    t = target[:, None].expand_as(logits)
    mask_losses = 20 * focal_loss(logits, t) + dice_loss(logits, t)  # (B, K)
    best = mask_losses.argmin(dim=1)
    chosen = mask_losses.gather(1, best[:, None]).mean()
    with torch.no_grad():
        actual_iou = mask_iou(logits > 0, t > 0.5)
    iou_loss = F.mse_loss(iou_pred, actual_iou)
    return chosen + iou_loss, best


def head_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Loss of full-resolution instance-head logits (B, 2, H, W) against labels (B, H, W).

    Binary cross-entropy + dice on the foreground, plus twice the binary cross-entropy of the
    centre map against :func:`~napari_segany.training.instance_targets.centre_map`.
    """
    fg_target = (labels > 0).float()
    centre_target = torch.as_tensor(
        np.stack([centre_map(lab) for lab in labels.cpu().numpy()]), device=logits.device
    )
    fg = logits[:, FOREGROUND]
    fg_loss = F.binary_cross_entropy_with_logits(fg, fg_target) + dice_loss(fg, fg_target).mean()
    centre_loss = F.binary_cross_entropy_with_logits(logits[:, CENTRE], centre_target)
    return fg_loss + 2 * centre_loss
