"""Losses and box geometry: point-sampled dice + BCE masks, L1 + GIoU boxes.

All pairwise helpers return (num_predictions, num_targets) matrices used by the Hungarian
matcher; the element-wise ones return the loss of matched pairs. Masks are compared at a
shared set of random points (Mask2Former's point sampling), so that full-resolution ground
truth never has to be resized.

Example:
    >>> import torch
    >>> round(float(dice_loss(torch.zeros(1, 4), torch.tensor([[1.0, 1.0, 0.0, 0.0]]))), 4)
    0.4
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def box_cxcywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    """(..., 4) centre/size boxes -> corner boxes."""
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)


def box_xyxy_to_cxcywh(boxes: torch.Tensor) -> torch.Tensor:
    """(..., 4) corner boxes -> centre/size boxes."""
    x0, y0, x1, y1 = boxes.unbind(-1)
    return torch.stack([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0], dim=-1)


def box_xywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    """(..., 4) corner-and-size boxes (x, y, w, h), the official box head's format -> corner boxes."""
    x, y, w, h = boxes.unbind(-1)
    return torch.stack([x, y, x + w, y + h], dim=-1)


def box_xyxy_to_xywh(boxes: torch.Tensor) -> torch.Tensor:
    """(..., 4) corner boxes -> (x, y, w, h)."""
    x0, y0, x1, y1 = boxes.unbind(-1)
    return torch.stack([x0, y0, x1 - x0, y1 - y0], dim=-1)


def clamp_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    """Corner boxes with the far corner moved up to the near one where a raw regression put
    it before (the official ``box_clamp_xyxy``): x1 >= x0, y1 >= y0.

    Example:
        >>> clamp_xyxy(torch.tensor([0.5, 0.5, 0.2, 0.9])).tolist()
        [0.5, 0.5, 0.5, 0.8999999761581421]
    """
    x0, y0, x1, y1 = boxes.unbind(-1)
    return torch.stack([x0, y0, torch.maximum(x1, x0), torch.maximum(y1, y0)], dim=-1)


def generalized_box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Element-wise GIoU of corner boxes ``a`` and ``b`` (same shape (..., 4)).

    Example:
        >>> round(float(generalized_box_iou(torch.tensor([0., 0, 2, 2]), torch.tensor([1., 1, 3, 3]))), 4)
        -0.0794
    """
    area_a = (a[..., 2] - a[..., 0]).clamp(min=0) * (a[..., 3] - a[..., 1]).clamp(min=0)
    area_b = (b[..., 2] - b[..., 0]).clamp(min=0) * (b[..., 3] - b[..., 1]).clamp(min=0)
    lt = torch.maximum(a[..., :2], b[..., :2])
    rb = torch.minimum(a[..., 2:], b[..., 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    union = area_a + area_b - inter
    iou = inter / union.clamp(min=1e-7)
    enclosing = (torch.maximum(a[..., 2:], b[..., 2:]) - torch.minimum(a[..., :2], b[..., :2])).clamp(min=0).prod(-1)
    return iou - (enclosing - union) / enclosing.clamp(min=1e-7)


def point_sample(masks: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Bilinear values of ``masks`` (K, T, H, W) at ``points`` (T, P, 2) given as (x, y) in
    [0, 1] -> (K, T * P). The same points serve masks of any resolution."""
    k, t = masks.shape[:2]
    if k == 0:
        return masks.new_zeros(0, t * points.shape[1])
    grid = (points * 2 - 1)[:, None]  # (T, 1, P, 2)
    values = F.grid_sample(masks.transpose(0, 1).float(), grid.to(masks.device), align_corners=False)
    return values[:, :, 0].permute(1, 0, 2).reshape(k, -1)


def point_sample_each(masks: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Bilinear values of each mask (R, H, W) at its own points (R, P, 2), (x, y) in [0, 1]
    -> (R, P)."""
    if masks.shape[0] == 0:
        return masks.new_zeros(0, points.shape[1])
    grid = (points.to(masks.device) * 2 - 1)[:, :, None]  # (R, P, 1, 2)
    return F.grid_sample(masks[:, None].float(), grid, align_corners=False)[:, 0, :, 0]


def uncertain_points(logits: torch.Tensor, num_points: int, *, oversample: float = 3.0,
                     importance: float = 0.75, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mask2Former's loss points for each mask (R, H, W) of logits -> (R, P, 2): of
    ``oversample`` x P random points, the ``importance`` x P whose logits are closest to 0
    (the most uncertain), then random points for the rest.

    Example:
        >>> logits = torch.full((1, 4, 4), 9.0); logits[0, :, 2:] = 0.0  # unsure on the right half
        >>> points = uncertain_points(logits, 8, importance=1.0, generator=torch.Generator().manual_seed(0))
        >>> bool((points[0, :, 0] > 0.375).all())  # none where the logits are all 9 (left of 0.375)
        True
    """
    r = logits.shape[0]
    candidates = torch.rand(r, int(num_points * oversample), 2, generator=generator)
    uncertainty = -point_sample_each(logits.detach(), candidates).abs()
    chosen = uncertainty.topk(int(importance * num_points), dim=1).indices.cpu()
    picked = torch.gather(candidates, 1, chosen[..., None].expand(-1, -1, 2))
    extra = torch.rand(r, num_points - picked.shape[1], 2, generator=generator)
    return torch.cat([picked, extra], dim=1)


def dice_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-row dice loss 1 - (2 sum(p t) + 1) / (sum p + sum t + 1); (K, P) -> (K,)."""
    probs = logits.sigmoid()
    return 1 - (2 * (probs * targets).sum(-1) + 1) / (probs.sum(-1) + targets.sum(-1) + 1)


def sigmoid_bce_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-row mean binary cross-entropy; (K, P) -> (K,)."""
    return F.binary_cross_entropy_with_logits(logits, targets, reduction="none").mean(-1)


def pairwise_dice(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Dice loss of every prediction row (N, P) against every target row (K, P) -> (N, K)."""
    probs = logits.sigmoid()
    numerator = 2 * probs @ targets.T + 1
    return 1 - numerator / (probs.sum(-1)[:, None] + targets.sum(-1)[None, :] + 1)


def pairwise_bce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean BCE of every prediction row (N, P) against every target row (K, P) -> (N, K)."""
    pos = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits), reduction="none")
    neg = F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits), reduction="none")
    return (pos @ targets.T + neg @ (1 - targets).T) / logits.shape[-1]


def pairwise_box_costs(pred: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean L1 and mean (1 - GIoU) over the frames where the target has a box.

    ``pred`` (N, T, 4), ``gt`` (K, T, 4) normalised cxcywh, ``valid`` (K, T) -> two (N, K).
    """
    l1 = (pred[:, None] - gt[None]).abs().sum(-1)  # (N, K, T)
    giou = 1 - generalized_box_iou(box_cxcywh_to_xyxy(pred)[:, None], box_cxcywh_to_xyxy(gt)[None])
    weights = valid.float()[None]
    frames = weights.sum(-1).clamp(min=1)
    return (l1 * weights).sum(-1) / frames, (giou * weights).sum(-1) / frames
