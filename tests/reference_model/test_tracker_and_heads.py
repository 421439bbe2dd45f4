"""Tracker, aggregation weights, clip score and caption attention masks on hand-built cases."""

from __future__ import annotations

import math

import pytest
import torch

from reference_model.caption_head import CaptionHead, aggregation_plan
from reference_model.config import get_config
from reference_model.heads import BoxHead, clip_score, mask_box
from reference_model.tracker import TopKTracker

E = torch.eye(4)
A, B, N1, N2 = E[0], E[1], E[3], E[2]   # objects A and B; background embeddings N1, N2
N3 = 0.6 * E[0] + 0.8 * E[2]          # a new background query that resembles N2


def _run(tracker: TopKTracker, clips: list[list[torch.Tensor]]) -> list[list[int]]:
    return [tracker.step(torch.stack(q)).tolist() for q in clips]


# Clip 1: A, B, N1. Clip 2: A is gone (N2 takes its slot). Clip 3: A is back, shuffled,
# next to N3 which looks like what slot 0 held in clip 2.
SEQUENCE = [[A, B, N1], [B, N2, N1], [B, A, N3]]


def test_previous_clip_only_loses_a_returning_object():
    # T_match = K_match = 1 (OVFormer's i -> i+1 matching). Clip 3 costs against clip 2:
    # slot 0 (N2): B 1, A 1, N3 1 - 0.8 = 0.2; slot 1 (B): 0, 1, 1; slot 2 (N1): 1, 1, 1.
    perms = _run(TopKTracker(t_match=1, k_match=1), SEQUENCE)
    assert perms[1] == [1, 0, 2]
    assert perms[2] == [2, 0, 1]  # A lands in slot 2: a new identity


def test_top_k_memory_recovers_a_returning_object():
    # T_match = 2, K_match = 1: entry clip 1 (A, B, N1) matches clip 3 with total 0 + 0 + 1 = 1,
    # entry clip 2 (N2, B, N1) with 0.2 + 0 + 1 = 1.2, so the older entry is used.
    tracker = TopKTracker(t_match=2, k_match=1)
    perms = _run(tracker, SEQUENCE)
    assert perms[2] == [1, 0, 2]  # A is back in its own slot 0


def test_top_k_average_uses_recency_weights():
    tracker = TopKTracker(t_match=2, k_match=2)
    _run(tracker, SEQUENCE[:2])
    cost = tracker.matching_cost(torch.stack(SEQUENCE[2]))
    # weights 1/1 and 1/2 normalised: 2/3 for clip 2, 1/3 for clip 1.
    # slot 0: B -> 1; A -> 2/3 * 1 + 1/3 * 0; N3 -> 2/3 * 0.2 + 1/3 * 0.4
    expected_slot0 = [1.0, 2 / 3, 2 / 3 * 0.2 + 1 / 3 * 0.4]
    assert cost[0].tolist() == pytest.approx(expected_slot0, abs=1e-6)
    assert cost[1].tolist() == pytest.approx([0.0, 1.0, 1.0], abs=1e-6)


def test_tracker_rejects_bad_settings():
    with pytest.raises(ValueError):
        TopKTracker(t_match=2, k_match=3)


def test_aggregation_plan_uniform_clips_and_score_weights():
    chosen, weights = aggregation_plan(torch.tensor([0.9, 0.6, 0.8, 0.7, 0.5]), t_agg=3)
    assert chosen.tolist() == [0, 2, 4]
    assert weights.tolist() == pytest.approx([0.9 / 2.2, 0.8 / 2.2, 0.5 / 2.2], abs=1e-6)
    chosen, weights = aggregation_plan(torch.tensor([0.5, 1.5]), t_agg=4)
    assert chosen.tolist() == [0, 1] and weights.tolist() == pytest.approx([0.25, 0.75])


def test_clip_score_formula():
    cls = torch.tensor([[0.0, math.log(3)]])   # sigmoid: 0.5, 0.75
    obj = torch.tensor([[math.log(4), 0.0]])   # softmax index 0: 0.8
    assert float(clip_score(cls, obj)) == pytest.approx(math.sqrt(0.75 * 0.8), abs=1e-6)


def test_box_head_depth_and_per_frame_output():
    head = BoxHead(hidden_dim=16, num_layers=4)
    assert len(head.mlp.layers) == 4
    boxes = head(torch.randn(2, 3, 16), num_frames=5)
    assert boxes.shape == (2, 3, 5, 4) and bool(((boxes > 0) & (boxes < 1)).all())
    # Frames differ only by the time embedding, so the boxes of one query differ per frame.
    assert not torch.allclose(boxes[0, 0, 0], boxes[0, 0, 1])


def test_mask_box_of_a_rectangle_is_exact():
    logits = torch.full((2, 8, 8), -30.0)
    logits[0, 2:4, 1:7] = 30.0   # rows 2-3, columns 1-6
    logits[1, 0:8, 0:1] = 30.0   # first column
    boxes = mask_box(logits)
    assert boxes[0].tolist() == pytest.approx([4 / 8, 3 / 8, 6 / 8, 2 / 8], abs=1e-5)
    assert boxes[1].tolist() == pytest.approx([0.5 / 8, 0.5, 1 / 8, 1.0], abs=1e-5)


def test_box_head_mask_anchor_follows_the_mask():
    torch.manual_seed(0)
    queries = torch.randn(1, 1, 16)
    left = torch.full((1, 1, 1, 8, 8), -30.0)
    left[..., 2:4, 0:2] = 30.0
    right = torch.full((1, 1, 1, 8, 8), -30.0)
    right[..., 5:7, 6:8] = 30.0
    head = BoxHead(hidden_dim=16, num_layers=2, mask_anchor=True)
    torch.nn.init.zeros_(head.mlp.layers[-1].weight)
    torch.nn.init.zeros_(head.mlp.layers[-1].bias)
    # A zero correction returns the mask's own box.
    assert head(queries, 1, right)[0, 0, 0].tolist() == pytest.approx([7 / 8, 6 / 8, 2 / 8, 2 / 8], abs=1e-4)
    assert head(queries, 1, left)[0, 0, 0].tolist() == pytest.approx([1 / 8, 3 / 8, 2 / 8, 2 / 8], abs=1e-4)
    plain = BoxHead(hidden_dim=16, num_layers=2)
    assert torch.equal(plain(queries, 1, left), plain(queries, 1, right))


@pytest.mark.parametrize("polarity", ["inside", "outside"])
def test_caption_attention_mask_polarity(polarity):
    cfg = get_config("tiny", qformer_mask_polarity=polarity)
    head = CaptionHead(config=cfg, vocab_size=10, pad_token_id=0,
                       bos_token_id=1, eos_token_id=2)
    logits = torch.tensor([[[[5.0, -5.0], [-5.0, -5.0]]], [[[-5.0, -5.0], [-5.0, -5.0]]]])  # (2, 1, 2, 2)
    mask = head.attention_mask(logits).tolist()
    first = [1, 0, 0, 0] if polarity == "inside" else [0, 1, 1, 1]
    # The second object has no foreground: inside -> attend everywhere; outside -> all background.
    assert mask == [first, [1, 1, 1, 1]]


def test_text_embedding_classifier_is_scaled_cosine():
    from reference_model.heads import ClassHead

    names = torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]])  # un-normalised class-name embeddings
    head = ClassHead(hidden_dim=3, num_classes=2, class_embeddings=names)
    with torch.no_grad():
        head.proj.weight.copy_(torch.eye(3))
        head.proj.bias.zero_()
    logits = head(torch.tensor([[[0.0, 3.0, 4.0]]]))
    # cosines 0 and 3/5, times the initial scale 10, plus the initial bias -5
    assert logits[0, 0].tolist() == pytest.approx([-5.0, 1.0], abs=1e-5)
