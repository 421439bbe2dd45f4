"""Hungarian matching of clip-level predictions to ground-truth objects, and the detector's
set criterion (Mask2Former / OVFormer losses plus boxes).

Costs and losses use the paper's weights (section 3.3): dice 5, mask BCE 5, L1 5, GIoU 2,
classification 2, objectness 2. Every decoder layer is supervised (deep supervision) with its
own matching.

Example:
    >>> import torch
    >>> hungarian_match(torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]]))
    (tensor([1, 0]), tensor([0, 1]))
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from scipy.optimize import linear_sum_assignment
from torch.nn import functional as F

from reference_model.config import ModelConfig
from reference_model.losses import (
    box_cxcywh_to_xyxy, dice_loss, generalized_box_iou, pairwise_bce, pairwise_box_costs,
    pairwise_dice, point_sample, sigmoid_bce_loss,
)


@dataclass
class ClipTargets:
    """Ground truth of one clip: K objects over T frames.

    ``masks`` (K, T, H, W) float {0, 1} at input resolution; ``boxes`` (K, T, 4) normalised
    cxcywh; ``box_valid`` (K, T) where the object is present; ``labels`` (K,) class indices;
    ``caption_ids`` K token-id lists (empty = no caption); ``pixel_valid`` (H, W) where the
    frame is image rather than batch padding (None: all of it); ``track_ids`` (K,) the
    objects' ground-truth track ids (video-level caption tuning follows a track across clips).
    """

    labels: torch.Tensor
    masks: torch.Tensor
    boxes: torch.Tensor
    box_valid: torch.Tensor
    caption_ids: list[list[int]]
    pixel_valid: torch.Tensor | None = None
    track_ids: torch.Tensor | None = None


@dataclass
class LayerPrediction:
    """Predictions of one decoder layer for a batch: logits (B, N, C), objectness (B, N, 2),
    mask logits (B, N, T, h, w), boxes (B, N, T, 4)."""

    class_logits: torch.Tensor
    objectness: torch.Tensor
    masks: torch.Tensor
    boxes: torch.Tensor


def hungarian_match(cost: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Minimum-cost assignment of an (N predictions, K targets) matrix; returns (prediction
    indices, target indices) sorted by target."""
    rows, cols = linear_sum_assignment(cost.detach().float().cpu().numpy())
    order = cols.argsort()
    return torch.as_tensor(rows[order], dtype=torch.long), torch.as_tensor(cols[order], dtype=torch.long)


def sample_points(num_frames: int, num_points: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Uniform random (x, y) points in [0, 1], (T, P, 2), shared by all masks of a clip."""
    return torch.rand(num_frames, num_points, 2, generator=generator)


class SetCriterion:
    """Matching plus weighted detector losses for every decoder layer."""

    def __init__(self, *, config: ModelConfig) -> None:
        self.cfg = config

    def match_cost(self, pred: LayerPrediction, b: int, target: ClipTargets,
                   points: torch.Tensor) -> torch.Tensor:
        """(N, K) matching cost of batch element ``b`` against its targets."""
        cfg = self.cfg
        cost_cls = -pred.class_logits[b].sigmoid()[:, target.labels]
        cost_obj = -pred.objectness[b].softmax(-1)[:, :1]
        p = point_sample(pred.masks[b], points)
        t = point_sample(target.masks, points)
        l1, giou = pairwise_box_costs(pred.boxes[b], target.boxes, target.box_valid)
        return (cfg.weight_cls * cost_cls + cfg.weight_obj * cost_obj
                + cfg.weight_mask_bce * pairwise_bce(p, t) + cfg.weight_dice * pairwise_dice(p, t)
                + cfg.weight_l1 * l1 + cfg.weight_giou * giou)

    def match(self, pred: LayerPrediction, targets: list[ClipTargets],
              points: list[torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per batch element, (query indices, target indices)."""
        with torch.no_grad():
            return [hungarian_match(self.match_cost(pred, b, tgt, pts))
                    for b, (tgt, pts) in enumerate(zip(targets, points))]

    def layer_losses(self, pred: LayerPrediction, targets: list[ClipTargets],
                     points: list[torch.Tensor],
                     matches: list[tuple[torch.Tensor, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """Unweighted losses of one layer, each normalised by the number of objects."""
        cfg = self.cfg
        num_objects = max(sum(len(t.labels) for t in targets), 1)
        cls_target = torch.zeros_like(pred.class_logits)
        obj_target = torch.ones(pred.objectness.shape[:2], dtype=torch.long, device=pred.objectness.device)
        mask_bce, dice, l1, giou = [], [], [], []
        num_boxes = 0
        for b, ((qi, ti), tgt, pts) in enumerate(zip(matches, targets, points)):
            if len(qi) == 0:
                continue
            cls_target[b, qi, tgt.labels[ti]] = 1.0
            obj_target[b, qi] = 0
            p = point_sample(pred.masks[b, qi], pts)
            t = point_sample(tgt.masks[ti], pts)
            mask_bce.append(sigmoid_bce_loss(p, t))
            dice.append(dice_loss(p, t))
            valid = tgt.box_valid[ti]
            pb, gb = pred.boxes[b, qi][valid], tgt.boxes[ti][valid]
            num_boxes += len(gb)
            l1.append((pb - gb).abs().sum(-1))
            giou.append(1 - generalized_box_iou(box_cxcywh_to_xyxy(pb), box_cxcywh_to_xyxy(gb)))
        zero = pred.masks.sum() * 0.0
        obj_weight = torch.tensor([1.0, cfg.no_object_weight], device=pred.objectness.device)
        return {
            # Sigmoid BCE (S uses sigmoid class scores), normalised by the objects as DETR.
            "cls": F.binary_cross_entropy_with_logits(pred.class_logits, cls_target, reduction="sum") / num_objects,
            "obj": F.cross_entropy(pred.objectness.flatten(0, 1), obj_target.flatten(), weight=obj_weight),
            "mask_bce": torch.cat(mask_bce).sum() / num_objects if mask_bce else zero,
            "dice": torch.cat(dice).sum() / num_objects if dice else zero,
            "l1": torch.cat(l1).sum() / max(num_boxes, 1) if l1 else zero,
            "giou": torch.cat(giou).sum() / max(num_boxes, 1) if giou else zero,
        }

    def weighted_total(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        """Sum of the losses with the configured weights."""
        cfg = self.cfg
        weights = {"cls": cfg.weight_cls, "obj": cfg.weight_obj, "mask_bce": cfg.weight_mask_bce,
                   "dice": cfg.weight_dice, "l1": cfg.weight_l1, "giou": cfg.weight_giou}
        return sum(weights[k] * v for k, v in losses.items())

    def __call__(self, layers: list[LayerPrediction], targets: list[ClipTargets],
                 *, generator: torch.Generator | None = None
                 ) -> tuple[torch.Tensor, dict[str, float], list[tuple[torch.Tensor, torch.Tensor]]]:
        """Total detector loss over all layers, the last layer's unweighted losses (for
        logging) and the last layer's matches (the caption loss uses them)."""
        t = layers[-1].masks.shape[2]
        points = [sample_points(t, self.cfg.num_points, generator=generator) for _ in targets]
        total = layers[-1].masks.sum() * 0.0
        for layer in layers:
            matches = self.match(layer, targets, points)
            losses = self.layer_losses(layer, targets, points, matches)
            total = total + self.weighted_total(losses)
        return total, {k: float(v.detach()) for k, v in losses.items()}, matches
