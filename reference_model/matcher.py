"""Hungarian matching of clip-level predictions to ground-truth objects, and the detector's
set criterion (Mask2Former / OVFormer losses plus boxes).

Costs and losses use the paper's weights (section 3.3): dice 5, mask BCE 5, L1 5, GIoU 2,
classification 2, objectness 2. Every decoder layer is supervised (deep supervision) with its
own matching.

The zero-shot class head is trained as the official code trains it (OVFormer's criterion):
its matching cost is -sqrt(sigmoid(class) x p_object) at the target class, and its class loss
is a sigmoid BCE on the matched queries only, over a federated subset of the categories (the
targets' own plus random others, drawn with probability proportional to sqrt(frequency), 50
in all counting "no object"), scaled by 1.7 / (B x Q), B x Q the batch's queries; its
objectness cross-entropy weighs "no object" 0.4. See :func:`federated_classes`.

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
    box_cxcywh_to_xyxy, box_xywh_to_xyxy, box_xyxy_to_xywh, clamp_xyxy, dice_loss, generalized_box_iou,
    pairwise_bce, pairwise_box_costs, pairwise_dice, point_sample, point_sample_each, sigmoid_bce_loss,
    uncertain_points,
)


@dataclass
class ClipTargets:
    """Ground truth of one clip: K objects over T frames.

    ``masks`` (K, T, H, W) float {0, 1} at input resolution; ``boxes`` (K, T, 4) normalised
    cxcywh; ``box_valid`` (K, T) where the object is present; ``labels`` (K,) class indices;
    ``caption_ids`` K token-id lists (empty = no caption); ``pixel_valid`` (H, W) where the
    frame is image rather than batch padding (None: all of it); ``track_ids`` (K,) the
    objects' ground-truth track ids (video-level caption tuning follows a track across clips);
    ``clip_features`` (F, E) the clip's CLIP image features, which a zero-shot class head
    reads (the official training reads the clip's first frame: F = 1).
    """

    labels: torch.Tensor
    masks: torch.Tensor
    boxes: torch.Tensor
    box_valid: torch.Tensor
    caption_ids: list[list[int]]
    pixel_valid: torch.Tensor | None = None
    track_ids: torch.Tensor | None = None
    clip_features: torch.Tensor | None = None


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


# The official zero-shot classification loss: categories per federated draw (the "no object"
# index counts as one when present) and the loss scale (OVFormer's criterion).
FEDERATED_CLASSES = 50
ZERO_SHOT_CLASS_SCALE = 1.7
# The official criterion's objectness weight of "no object" (the configured
# ``no_object_weight`` applies to the linear head).
ZERO_SHOT_NO_OBJECT_WEIGHT = 0.4


def federated_classes(target_classes: torch.Tensor, num_classes: int, weights: torch.Tensor, *,
                      count: int = FEDERATED_CLASSES, generator: torch.Generator | None = None) -> torch.Tensor:
    """The categories a zero-shot class loss reads, as a (C,) 0/1 mask: every class among
    ``target_classes`` (the per-query target class, ``num_classes`` = no object) plus random
    others drawn without replacement with probability proportional to ``weights`` (C,),
    until ``count`` indices are chosen (the no-object index, when present, takes one of them,
    as in the official code). Classes of zero weight (rare / novel categories) are drawn only
    when they are targets.

    Example:
        >>> mask = federated_classes(torch.tensor([2, 5, 5]), 5, torch.tensor([0., 1, 1, 1, 0]), count=3,
        ...                          generator=torch.Generator().manual_seed(0))
        >>> int(mask[2]), int(mask.sum()), int(mask[0] + mask[4])
        (1, 2, 0)
    """
    appeared = torch.unique(target_classes.flatten().cpu())
    mask = torch.zeros(num_classes + 1)
    mask[appeared] = 1
    prob = torch.zeros(num_classes + 1)
    prob[:num_classes] = weights.float().cpu()
    prob[appeared] = 0
    more = min(count - len(appeared), int((prob > 0).sum()))
    if more > 0:
        mask[torch.multinomial(prob, more, replacement=False, generator=generator)] = 1
    return mask[:num_classes]


def sample_points(num_frames: int, num_points: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Uniform random (x, y) points in [0, 1], (T, P, 2), shared by all masks of a clip."""
    return torch.rand(num_frames, num_points, 2, generator=generator)


class SetCriterion:
    """Matching plus weighted detector losses for every decoder layer.

    Heads with a "no class" column (the zero-shot head, the official heads) are trained with
    the official class loss, matching cost and objectness weight (see the module docstring).
    Official configurations also take the official geometry: mask models have no box terms;
    box models (raw (x, y, w, h) fractions of the padded frame, no masks) the official box
    loss: L1 and GIoU over every frame of a matched track, frames without the object
    included (their target box is all zeros), divided by the number of tracks; and the
    official box matching cost, which reads the clip's last frame only (its per-frame loop
    overwrites the cost), divided by T. Official mask losses read each (track, frame) mask
    at its own points, most of them where the prediction is least sure (Mask2Former's
    importance sampling: 3x oversampling, 75% uncertain), summed over the frames of a track;
    their matching reads one set of random points in every frame.

    ``class_weights`` (C,): the federated sampling weights, sqrt of each category's
    frequency, 0 for rare / novel ones (see :func:`reference_model.data.category_frequencies`);
    None draws every category evenly.
    """

    def __init__(self, *, config: ModelConfig, class_weights: torch.Tensor | None = None) -> None:
        self.cfg = config
        self.official_class = config.no_class_column
        self.class_weights = class_weights

    def match_cost(self, pred: LayerPrediction, b: int, target: ClipTargets,
                   points: torch.Tensor) -> torch.Tensor:
        """(N, K) matching cost of batch element ``b`` against its targets."""
        cfg = self.cfg
        if self.official_class:
            # Official: one class term, the clip score's own form, and no objectness term.
            p_obj = pred.objectness[b].float().softmax(-1)[:, :1]
            cost = -(pred.class_logits[b, :, target.labels].float().sigmoid() * p_obj).sqrt() * cfg.weight_cls
        else:
            cost = (-cfg.weight_cls * pred.class_logits[b].sigmoid()[:, target.labels]
                    - cfg.weight_obj * pred.objectness[b].softmax(-1)[:, :1])
        if pred.masks is not None:
            p = point_sample(pred.masks[b], points)
            t = point_sample(target.masks, points)
            cost = cost + cfg.weight_mask_bce * pairwise_bce(p, t) + cfg.weight_dice * pairwise_dice(p, t)
        if pred.boxes is not None:
            if cfg.official:
                pred_xywh, gt_xyxy = pred.boxes[b, :, -1].float(), box_cxcywh_to_xyxy(target.boxes[:, -1])
                frames = pred.boxes.shape[2]
                l1 = torch.cdist(pred_xywh, box_xyxy_to_xywh(gt_xyxy), p=1) / frames
                giou = 1 - generalized_box_iou(clamp_xyxy(box_xywh_to_xyxy(pred_xywh))[:, None], gt_xyxy[None])
                giou = giou / frames
            else:
                l1, giou = pairwise_box_costs(pred.boxes[b], target.boxes, target.box_valid)
            cost = cost + cfg.weight_l1 * l1 + cfg.weight_giou * giou
        return cost

    def class_loss(self, logits: torch.Tensor, matched_classes: torch.Tensor, num_objects: int, *,
                   generator: torch.Generator | None = None) -> torch.Tensor:
        """Unweighted classification loss of one layer. ``matched_classes`` (B, N): each
        query's target class, ``num_classes`` where it matched nothing."""
        c = self.cfg.num_classes
        if not self.official_class:
            target = F.one_hot(matched_classes, c + 1)[..., :c].to(logits.dtype)
            # Sigmoid BCE (S uses sigmoid class scores), normalised by the objects as DETR.
            return F.binary_cross_entropy_with_logits(logits, target, reduction="sum") / num_objects
        logits = logits[..., :c].float()
        target = F.one_hot(matched_classes, c + 1)[..., :c].float()
        weights = self.class_weights if self.class_weights is not None else torch.ones(c)
        classes = federated_classes(matched_classes, c, weights, generator=generator).to(logits.device)
        matched = (matched_classes != c).float()[..., None]
        loss = F.binary_cross_entropy_with_logits(logits, target, reduction="none") * classes * matched
        return ZERO_SHOT_CLASS_SCALE * loss.sum() / matched_classes.numel()

    def match(self, pred: LayerPrediction, targets: list[ClipTargets],
              points: list[torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per batch element, (query indices, target indices)."""
        with torch.no_grad():
            return [hungarian_match(self.match_cost(pred, b, tgt, pts))
                    for b, (tgt, pts) in enumerate(zip(targets, points))]

    def layer_losses(self, pred: LayerPrediction, targets: list[ClipTargets],
                     points: list[torch.Tensor], matches: list[tuple[torch.Tensor, torch.Tensor]], *,
                     generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Unweighted losses of one layer, each normalised by the number of objects."""
        cfg = self.cfg
        num_objects = max(sum(len(t.labels) for t in targets), 1)
        matched_classes = torch.full(pred.class_logits.shape[:2], cfg.num_classes, dtype=torch.long,
                                     device=pred.class_logits.device)
        obj_target = torch.ones(pred.objectness.shape[:2], dtype=torch.long, device=pred.objectness.device)
        mask_bce, dice, l1, giou = [], [], [], []
        num_boxes = 0
        for b, ((qi, ti), tgt, pts) in enumerate(zip(matches, targets, points)):
            if len(qi) == 0:
                continue
            matched_classes[b, qi] = tgt.labels[ti]
            obj_target[b, qi] = 0
            if pred.masks is not None and cfg.official:
                # Each (track, frame) mask at its own uncertain points, as the official loss.
                src, dst = pred.masks[b, qi].flatten(0, 1), tgt.masks[ti].flatten(0, 1)
                with torch.no_grad():
                    each = uncertain_points(src, cfg.num_points, generator=generator)
                p, t = point_sample_each(src, each), point_sample_each(dst, each)
                mask_bce.append(sigmoid_bce_loss(p, t))
                dice.append(dice_loss(p, t))
            elif pred.masks is not None:
                p = point_sample(pred.masks[b, qi], pts)
                t = point_sample(tgt.masks[ti], pts)
                mask_bce.append(sigmoid_bce_loss(p, t))
                dice.append(dice_loss(p, t))
            if pred.boxes is None:
                continue
            if cfg.official:
                # Every frame, absent ones included (an all-zero target), per track.
                pred_xywh = pred.boxes[b, qi].float().flatten(0, 1)
                gt_xyxy = box_cxcywh_to_xyxy(tgt.boxes[ti]).flatten(0, 1)
                l1.append((pred_xywh - box_xyxy_to_xywh(gt_xyxy)).abs().sum(-1))
                giou.append(1 - generalized_box_iou(clamp_xyxy(box_xywh_to_xyxy(pred_xywh)), gt_xyxy))
                num_boxes += len(qi)
                continue
            valid = tgt.box_valid[ti]
            pb, gb = pred.boxes[b, qi][valid], tgt.boxes[ti][valid]
            num_boxes += len(gb)
            l1.append((pb - gb).abs().sum(-1))
            giou.append(1 - generalized_box_iou(box_cxcywh_to_xyxy(pb), box_cxcywh_to_xyxy(gb)))
        zero = pred.class_logits.sum() * 0.0
        no_object = ZERO_SHOT_NO_OBJECT_WEIGHT if self.official_class else cfg.no_object_weight
        obj_weight = torch.tensor([1.0, no_object], device=pred.objectness.device)
        losses = {
            "cls": self.class_loss(pred.class_logits, matched_classes, num_objects, generator=generator),
            "obj": F.cross_entropy(pred.objectness.flatten(0, 1).float(), obj_target.flatten(), weight=obj_weight),
        }
        if pred.masks is not None:
            losses["mask_bce"] = torch.cat(mask_bce).sum() / num_objects if mask_bce else zero
            losses["dice"] = torch.cat(dice).sum() / num_objects if dice else zero
        if pred.boxes is not None:
            losses["l1"] = torch.cat(l1).sum() / max(num_boxes, 1) if l1 else zero
            losses["giou"] = torch.cat(giou).sum() / max(num_boxes, 1) if giou else zero
        return losses

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
        t = targets[0].box_valid.shape[1] if targets else 1
        # Matching points: per frame; the official matcher uses one set for every frame.
        points = [sample_points(1, self.cfg.num_points, generator=generator).expand(t, -1, -1) if self.cfg.official
                  else sample_points(t, self.cfg.num_points, generator=generator) for _ in targets]
        total = layers[-1].class_logits.sum() * 0.0
        for layer in layers:
            matches = self.match(layer, targets, points)
            losses = self.layer_losses(layer, targets, points, matches, generator=generator)
            total = total + self.weighted_total(losses)
        return total, {k: float(v.detach()) for k, v in losses.items()}, matches
