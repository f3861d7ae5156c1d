"""Losses: promptable masks (as in SAM's training: focal + dice, IoU regression), instance head."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from napari_segany.models.instance_head import BOUNDARY, CENTRE, FOREGROUND
from napari_segany.training.instance_targets import centre_map, touching_border_map


def focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0):
    """Mean sigmoid focal loss per mask; logits and target (..., H, W) → (...)."""
    prob = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = prob * target + (1 - prob) * (1 - target)
    loss = ce * (1 - p_t) ** gamma
    loss = (alpha * target + (1 - alpha) * (1 - target)) * loss
    return loss.flatten(-2).mean(-1)


def dice_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    eps: float = 1.0,
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Soft dice loss per mask; (..., H, W) → (...). ``weight`` (..., H, W), optional, counts
    only the pixels where it is 1 (0: left out)."""
    prob = torch.sigmoid(logits)
    if weight is not None:
        prob, target = prob * weight, target * weight
    prob, target = prob.flatten(-2), target.flatten(-2)
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


def _bce(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    """Mean binary cross-entropy over all pixels, or over the ``valid`` ones."""
    if valid is None:
        return F.binary_cross_entropy_with_logits(logits, target)
    weight = valid.to(logits.dtype)
    per_pixel = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return (per_pixel * weight).sum() / weight.sum().clamp(min=1)


def _dice(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    """Mean soft dice loss per image, counting only the ``valid`` pixels when given."""
    weight = None if valid is None else valid.to(logits.dtype)
    return dice_loss(logits, target, weight=weight).mean()


def head_loss(
    logits: torch.Tensor, labels: torch.Tensor, valid: torch.Tensor | None = None
) -> torch.Tensor:
    """Loss of full-resolution instance-head logits (B, 3, H, W) against labels (B, H, W).

    Binary cross-entropy + dice on the foreground; twice the binary cross-entropy of the centre
    map against :func:`~napari_segany.training.instance_targets.centre_map`; binary
    cross-entropy + dice of the boundary map against
    :func:`~napari_segany.training.instance_targets.touching_border_map` (dice, because borders
    between touching objects cover a few percent of the pixels at most).

    ``valid`` (B, H, W) bool, optional, marks the pixels to learn from (None: all): pixels
    outside it are neither object nor background (e.g. not annotated) and add nothing.
    """
    label_arrays = labels.cpu().numpy()
    centre_target = torch.as_tensor(
        np.stack([centre_map(lab) for lab in label_arrays]), device=logits.device
    )
    border_target = torch.as_tensor(
        np.stack([touching_border_map(lab) for lab in label_arrays]), device=logits.device
    )
    fg_target = (labels > 0).float().to(logits.device)
    if valid is not None:
        valid = valid.to(logits.device)
    fg = logits[:, FOREGROUND]
    fg_loss = _bce(fg, fg_target, valid) + _dice(fg, fg_target, valid)
    centre_loss = _bce(logits[:, CENTRE], centre_target, valid)
    border = logits[:, BOUNDARY]
    border_loss = _bce(border, border_target, valid)
    # scenes without touching objects have no border to find: dice only where there is one
    seen_border = border_target if valid is None else border_target * valid
    has_border = seen_border.flatten(1).amax(1) > 0
    if has_border.any():
        border_valid = None if valid is None else valid[has_border]
        border_loss = border_loss + _dice(
            border[has_border], border_target[has_border], border_valid
        )
    return fg_loss + 2 * centre_loss + border_loss
