"""Losses and matching against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from reference_model.config import get_config
from reference_model.losses import (
    dice_loss, generalized_box_iou, pairwise_bce, pairwise_box_costs,
    pairwise_dice, point_sample, sigmoid_bce_loss,
)
from reference_model.matcher import ClipTargets, LayerPrediction, SetCriterion, hungarian_match


def test_dice_loss_hand_computed():
    # logits 0 -> p = 0.5 everywhere; logit ln 3 -> p = 0.75.
    logits = torch.tensor([[0.0, 0.0, 0.0, 0.0], [math.log(3), math.log(3), -100.0, -100.0]])
    target = torch.tensor([[1.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    # row 0: 1 - (2*1 + 1) / (2 + 2 + 1) = 0.4
    # row 1: sum(p t) = 0.75, sum p = 1.5, sum t = 1 -> 1 - (1.5 + 1) / (1.5 + 1 + 1) = 1/3.5... = 0.285714
    assert dice_loss(logits, target).tolist() == pytest.approx([0.4, 1 - 2.5 / 3.5], abs=1e-6)


def test_bce_hand_computed():
    logits = torch.tensor([[0.0, math.log(3)]])
    target = torch.tensor([[1.0, 0.0]])
    # -ln 0.5 and -ln(1 - 0.75) = ln 4, averaged
    assert float(sigmoid_bce_loss(logits, target)[0]) == pytest.approx((math.log(2) + math.log(4)) / 2, abs=1e-6)


def test_pairwise_losses_equal_elementwise_ones():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 10, generator=g)
    targets = (torch.rand(2, 10, generator=g) > 0.5).float()
    for i in range(3):
        for j in range(2):
            assert float(pairwise_dice(logits, targets)[i, j]) == pytest.approx(float(dice_loss(logits[i:i + 1], targets[j:j + 1])[0]), abs=1e-6)
            assert float(pairwise_bce(logits, targets)[i, j]) == pytest.approx(float(sigmoid_bce_loss(logits[i:i + 1], targets[j:j + 1])[0]), abs=1e-6)


def test_giou_hand_computed():
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]])
    b = torch.tensor([[1.0, 1.0, 3.0, 3.0], [0.0, 0.0, 1.0, 1.0], [2.0, 0.0, 3.0, 1.0]])
    # overlap 1, union 7, hull 9 -> 1/7 - 2/9; identical -> 1; disjoint: 0 - (3 - 2)/3
    assert generalized_box_iou(a, b).tolist() == pytest.approx([1 / 7 - 2 / 9, 1.0, -1 / 3], abs=1e-6)


def test_box_costs_only_count_frames_with_a_box():
    pred = torch.tensor([[[0.5, 0.5, 0.2, 0.2], [0.5, 0.5, 0.2, 0.2]]])  # 1 query, 2 frames
    gt = torch.tensor([[[0.6, 0.5, 0.2, 0.2], [0.0, 0.0, 0.0, 0.0]]])
    valid = torch.tensor([[True, False]])
    l1, giou = pairwise_box_costs(pred, gt, valid)
    assert float(l1) == pytest.approx(0.1, abs=1e-6)  # frame 2 ignored
    # boxes [0.4,0.4,0.6,0.6] vs [0.5,0.4,0.7,0.6]: overlap 0.02, union 0.06, hull 0.06
    assert float(giou) == pytest.approx(1 - 1 / 3, abs=1e-5)


def test_point_sample_reads_pixel_centres():
    masks = torch.zeros(1, 1, 4, 4)
    masks[0, 0, 1, 2] = 1.0
    # pixel (row 1, col 2) has its centre at x = 2.5/4, y = 1.5/4
    points = torch.tensor([[[2.5 / 4, 1.5 / 4], [0.5 / 4, 0.5 / 4]]])
    assert point_sample(masks, points).tolist() == [[1.0, 0.0]]


def test_hungarian_match_minimum_cost():
    cost = torch.tensor([[4.0, 1.0, 3.0], [2.0, 0.0, 5.0], [3.0, 2.0, 2.0]])
    rows, cols = hungarian_match(cost)
    # the optimum (total 5) is 0->1, 1->0, 2->2
    assert rows.tolist() == [1, 0, 2] and cols.tolist() == [0, 1, 2]


def _crafted_case():
    """Three queries, two objects over two 4x4 frames; query 2 fits object 0, query 0 object 1."""
    t, h, w = 2, 4, 4
    obj0 = torch.zeros(t, h, w)
    obj0[:, :2, :2] = 1
    obj1 = torch.zeros(t, h, w)
    obj1[:, 2:, 2:] = 1
    targets = ClipTargets(
        labels=torch.tensor([0, 1]), masks=torch.stack([obj0, obj1]),
        boxes=torch.tensor([[[0.25, 0.25, 0.5, 0.5]] * 2, [[0.75, 0.75, 0.5, 0.5]] * 2]),
        box_valid=torch.ones(2, t, dtype=torch.bool), caption_ids=[[5], []])
    masks = torch.full((1, 3, t, h, w), -10.0)
    masks[0, 2][obj0.bool()] = 10.0
    masks[0, 0][obj1.bool()] = 10.0
    boxes = torch.tensor([[[[0.75, 0.75, 0.5, 0.5]] * 2, [[0.5, 0.5, 0.1, 0.1]] * 2, [[0.25, 0.25, 0.5, 0.5]] * 2]])
    class_logits = torch.tensor([[[-5.0, 5.0], [0.0, 0.0], [5.0, -5.0]]])
    objectness = torch.tensor([[[5.0, -5.0], [-5.0, 5.0], [5.0, -5.0]]])
    return LayerPrediction(class_logits, objectness, masks, boxes), targets


def test_matcher_picks_the_fitting_queries():
    pred, targets = _crafted_case()
    criterion = SetCriterion(config=get_config("tiny", num_classes=2, num_points=64))
    points = torch.rand(2, 64, 2, generator=torch.Generator().manual_seed(0))
    queries, objects = criterion.match(pred, [targets], [points])[0]
    assert queries.tolist() == [2, 0] and objects.tolist() == [0, 1]


def test_losses_of_a_perfect_match_are_near_zero_and_of_a_bad_one_large():
    pred, targets = _crafted_case()
    cfg = get_config("tiny", num_classes=2, num_points=64)
    criterion = SetCriterion(config=cfg)
    # Pixel centres: bilinear sampling reads the pixel values exactly.
    centres = (torch.stack(torch.meshgrid(torch.arange(4), torch.arange(4), indexing="xy"), -1).reshape(-1, 2) + 0.5) / 4
    points = [centres[None].expand(2, -1, -1)]
    good = criterion.layer_losses(pred, [targets], points, [(torch.tensor([2, 0]), torch.tensor([0, 1]))])
    assert float(good["l1"]) == 0.0 and float(good["giou"]) == pytest.approx(0.0, abs=1e-6)
    # BCE of logit +-10 on its own side: softplus(-10) = 4.54e-5; dice 1 - (2*8s + 1)/(8s + e + 8 + 1)
    assert float(good["mask_bce"]) == pytest.approx(math.log1p(math.exp(-10)), rel=2e-2)
    s, e = torch.sigmoid(torch.tensor(10.0)).item(), torch.sigmoid(torch.tensor(-10.0)).item()
    per_object = 1 - (2 * 8 * s + 1) / (8 * s + 24 * e + 8 + 1)
    assert float(good["dice"]) == pytest.approx(2 * per_object / 2, rel=1e-3)
    # objectness: targets 0, 1, 0 with weights 1, 0.1, 1 -> weighted mean of -log softmax
    nll = -torch.log_softmax(torch.tensor([5.0, -5.0]), 0)[0]
    assert float(good["obj"]) == pytest.approx(float(nll), abs=1e-6)
    swapped = criterion.layer_losses(pred, [targets], points, [(torch.tensor([0, 2]), torch.tensor([0, 1]))])
    # Swapped boxes are off by 0.5 in both centre coordinates: L1 = 1.0 per frame.
    assert float(swapped["l1"]) == pytest.approx(1.0, abs=1e-6)
    # No overlap: 1 - (2*8e + 1) / (8s + 24e + 8 + 1), about 1 - 1/17 per object
    assert float(swapped["dice"]) == pytest.approx(1 - (16 * e + 1) / (8 * s + 24 * e + 9), rel=1e-4)
