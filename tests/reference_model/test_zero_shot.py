"""Training the zero-shot CLIP class head as the official code does: the federated class
loss and its sampling weights, the matching cost, per-clip CLIP features in the data, the
class-name embeddings, and train -> predict (also on a new vocabulary) with a tiny CLIP."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from benchmark.errors import InputError
from benchmark.synthetic import generate
from reference_model.__main__ import main
from reference_model.clip_features import (
    FrameFeatures,
    class_embeddings_for,
    class_text_embeddings,
    load_class_embeddings,
    load_feature_file,
)
from reference_model.config import get_config
from reference_model.data import ClipDataset, category_frequencies, collate, images_as_videos, load_source
from reference_model.heads import ZeroShotClassHead
from reference_model.matcher import (
    FEDERATED_CLASSES,
    ClipTargets,
    LayerPrediction,
    SetCriterion,
    federated_classes,
)
from reference_model.model import MaskCaptioner


# --- federated class sampling ----------------------------------------------------------------

def test_federated_classes_keeps_targets_and_never_draws_held_out_classes():
    weights = torch.tensor([1.0, 0.0, 2.0, 3.0, 0.0, 1.0])
    for seed in range(50):
        mask = federated_classes(torch.tensor([[1, 6, 6], [4, 6, 6]]), 6, weights, count=4,
                                 generator=torch.Generator().manual_seed(seed))
        assert mask[1] == 1 and mask[4] == 1  # targets, even of weight 0
        # 4 indices in all, "no object" (6) being one of them: one class drawn besides 1 and 4.
        assert int(mask.sum()) == 3
    # Asked for more than there are classes of positive weight: all of them, no error.
    mask = federated_classes(torch.tensor([6]), 6, weights, count=50)
    assert mask.tolist() == [1, 0, 1, 1, 0, 1]
    # Without "no object" among the targets, every one of the count indices is a class.
    assert int(federated_classes(torch.tensor([0, 2]), 6, torch.ones(6), count=4).sum()) == 4


def test_federated_draws_follow_the_weights():
    # One class drawn among {0: 1, 1: 3} besides the target 2: P(1) = 0.75.
    draws = [federated_classes(torch.tensor([2]), 3, torch.tensor([1.0, 3.0, 0.0]), count=2,
                               generator=torch.Generator().manual_seed(s))[1].item() for s in range(4000)]
    assert abs(np.mean(draws) - 0.75) < 0.03


def test_category_frequencies_by_image_count_and_by_video_frames():
    videos = {"videos": [{"id": 1}, {"id": 2}],
              "images": [{"id": i, "video_id": 1 if i <= 3 else 2, "frame_index": i} for i in range(1, 6)],
              "categories": [{"id": 10, "name": "a"}, {"id": 20, "name": "b"}, {"id": 30, "name": "c",
                                                                                 "frequency": "n"}],
              "annotations": [{"image_id": 1, "category_id": 10}, {"image_id": 2, "category_id": 10},
                              {"image_id": 4, "category_id": 10}, {"image_id": 5, "category_id": 20},
                              {"image_id": 5, "category_id": 30}]}
    from reference_model.data import VideoSource

    source = VideoSource(name="v", gt=videos, render=lambda v: None)
    # a: videos 1 (3 frames) and 2 (2 frames) -> 5; b: video 2 -> 2; c: novel -> 0.
    assert torch.allclose(category_frequencies([source], [10, 20, 30]), torch.tensor([5 ** 0.5, 2 ** 0.5, 0.0]))
    lvis = images_as_videos({"images": [{"id": 1}], "annotations": [{"id": 1, "image_id": 1, "category_id": 1}],
                             "categories": [{"id": 1, "image_count": 16, "frequency": "f"},
                                            {"id": 2, "image_count": 9, "frequency": "r"},
                                            {"id": 3, "image_count": 4, "frequency": "c"}]}, source="lvis")
    lvis_source = VideoSource(name="l", gt=lvis, render=lambda v: None)
    assert category_frequencies([lvis_source], [1, 2, 3]).tolist() == [4.0, 0.0, 2.0]
    # Two sources add up.
    assert category_frequencies([lvis_source, lvis_source], [1]).item() == pytest.approx(math.sqrt(32))


# --- the official class loss and matching cost -----------------------------------------------

def _criterion(num_classes, **kw):
    config = get_config("tiny", class_head="zero_shot", num_classes=num_classes, num_points=64)
    return SetCriterion(config=config, **kw)


def test_zero_shot_class_loss_matches_a_hand_computation():
    torch.manual_seed(0)
    b, q, c = 2, 4, 3
    logits = torch.randn(b, q, c + 1)
    matched = torch.tensor([[1, 3, 3, 0], [3, 2, 3, 3]])  # 3 = no object
    loss = _criterion(c).class_loss(logits, matched, num_objects=3)
    total = 0.0
    for i in range(b):
        for j in range(q):
            if matched[i, j] == c:
                continue  # unmatched queries have no class loss (objectness covers them)
            for k in range(c):
                y = float(matched[i, j] == k)
                p = 1 / (1 + math.exp(-float(logits[i, j, k])))
                total += -(y * math.log(p) + (1 - y) * math.log(1 - p))
    assert loss.item() == pytest.approx(1.7 * total / (b * q), rel=1e-5)
    # Classes of zero weight that are not targets leave the loss: here class 2 is a target,
    # class 1 too, class 0 too; with only class 1 as target, zero weight on 0 and 2 removes them.
    only = torch.tensor([[1, 3, 3, 3], [3, 3, 3, 3]])
    weighted = _criterion(c, class_weights=torch.tensor([0.0, 1.0, 0.0])).class_loss(logits, only, num_objects=1)
    x = float(logits[0, 0, 1])
    assert weighted.item() == pytest.approx(1.7 * math.log1p(math.exp(-x)) / (b * q), rel=1e-5)


def test_zero_shot_objectness_weighs_no_object_as_the_official_criterion():
    torch.manual_seed(2)
    n, t = 3, 2
    pred = LayerPrediction(class_logits=torch.randn(1, n, 3), objectness=torch.randn(1, n, 2),
                           masks=torch.zeros(1, n, t, 8, 8), boxes=torch.full((1, n, t, 4), 0.5))
    target = ClipTargets(labels=torch.tensor([1]), masks=torch.zeros(1, t, 8, 8), boxes=torch.full((1, t, 4), 0.5),
                         box_valid=torch.ones(1, t, dtype=torch.bool), caption_ids=[[]])
    matches = [(torch.tensor([2]), torch.tensor([0]))]
    losses = _criterion(2).layer_losses(pred, [target], [torch.rand(t, 16, 2)], matches)
    # Weighted mean of -log softmax: query 2 is an object (weight 1), the others are not (0.4).
    logp = pred.objectness[0].log_softmax(-1)
    expected = -(logp[2, 0] + 0.4 * (logp[0, 1] + logp[1, 1])) / (1 + 0.4 * 2)
    assert losses["obj"].item() == pytest.approx(expected.item(), rel=1e-5)


def test_linear_class_loss_is_unchanged():
    torch.manual_seed(1)
    config = get_config("tiny", num_classes=3)
    logits = torch.randn(2, 4, 3)
    matched = torch.tensor([[1, 3, 3, 0], [3, 2, 3, 3]])
    target = torch.zeros(2, 4, 3)
    target[0, 0, 1] = target[0, 3, 0] = target[1, 1, 2] = 1
    expected = F.binary_cross_entropy_with_logits(logits, target, reduction="sum") / 3
    assert torch.allclose(SetCriterion(config=config).class_loss(logits, matched, num_objects=3), expected)


def test_zero_shot_matching_cost_is_the_official_score_form():
    crit = _criterion(2)
    n, t = 3, 2
    class_logits = torch.tensor([[[2.0, -1.0, 0.0], [-1.0, 2.0, 0.0], [0.0, 0.0, 0.0]]])
    # Query 0 has the right class but little objectness; query 2 is a sure object of no class.
    objectness = torch.tensor([[[-3.0, 3.0], [0.0, 0.0], [3.0, -3.0]]])
    pred = LayerPrediction(class_logits=class_logits, objectness=objectness,
                           masks=torch.zeros(1, n, t, 8, 8), boxes=torch.full((1, n, t, 4), 0.5))
    target = ClipTargets(labels=torch.tensor([0]), masks=torch.zeros(1, t, 8, 8), boxes=torch.full((1, t, 4), 0.5),
                         box_valid=torch.ones(1, t, dtype=torch.bool), caption_ids=[[]])
    cost = crit.match_cost(pred, 0, target, torch.rand(t, 16, 2))
    sig = torch.sigmoid(class_logits[0, :, 0])
    p_obj = objectness[0].softmax(-1)[:, 0]
    shape_terms = cost[:, 0] + 2.0 * (sig * p_obj).sqrt()
    # Everything but the class term is the same for the three queries (same masks and boxes).
    assert torch.allclose(shape_terms, shape_terms[0].expand(3), atol=1e-5)


# --- the head, the data ----------------------------------------------------------------------

def test_head_reads_each_clips_features_or_shares_one_clips():
    torch.manual_seed(0)
    head = ZeroShotClassHead(hidden_dim=8, class_embeddings=torch.randn(3, 16), num_heads=2)
    queries, features = torch.randn(2, 5, 8), torch.randn(2, 1, 16)
    batched = head(queries, features)
    assert batched.shape == (2, 5, 4)
    for i in range(2):
        assert torch.allclose(batched[i], head(queries[i:i + 1], features[i])[0], atol=1e-6)
    assert torch.all(batched[..., -1] == 0)  # the "no class" column


def _features_for(source, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {im["file_name"]: torch.randn(1, 512, generator=g) for im in source.gt["images"]}


def test_clips_carry_their_first_frames_feature():
    source = load_source("synthetic:num_videos=2,num_frames=5,seed=0")
    stored = _features_for(source)
    features = FrameFeatures.from_mapping(stored)
    data = ClipDataset(source=source, clip_len=2, short_edge=64, category_ids=[1, 2, 3, 4, 5, 6],
                       tokenize=lambda s: [1], clip_features=features)
    video, start = data.index[6]
    _, targets = data[6]
    first = source.frame_images[video][start]["file_name"]
    assert torch.equal(targets.clip_features, stored[first].float())
    _, batch, _ = collate([data[0], data[6]])
    assert [tuple(t.clip_features.shape) for t in batch] == [(1, 512), (1, 512)]
    # A frame without a feature stops before training, naming the frame and the file.
    del stored[source.frame_images[2][3]["file_name"]]
    with pytest.raises(InputError, match="no CLIP feature for frame 'video_00002/00003.png'"):
        ClipDataset(source=source, clip_len=2, short_edge=64, category_ids=[1, 2, 3, 4, 5, 6],
                    tokenize=lambda s: [1], clip_features=FrameFeatures.from_mapping(stored, source="f.pkl"))


def test_image_sets_read_features_keyed_by_image_id(tmp_path):
    # The official LVIS feature files key images by id.
    gt = {"images": [{"id": 7, "file_name": "a.jpg", "height": 32, "width": 32},
                     {"id": 9, "file_name": "b.jpg", "height": 32, "width": 32}],
          "annotations": [{"id": 1, "image_id": 7, "bbox": [1, 1, 5, 5], "category_id": 1}],
          "categories": [{"id": 1, "name": "cat"}]}
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    torch.save({7: torch.full((1, 512), 7.0), 9: torch.full((1, 512), 9.0)}, tmp_path / "lvis_clip_feature.pkl")
    features = load_feature_file(tmp_path / "lvis_clip_feature.pkl")
    assert features.keyed_by_image_id
    data = ClipDataset(source=load_source(tmp_path), clip_len=2, short_edge=32, category_ids=[1],
                       tokenize=lambda s: [1], clip_features=features)
    assert [float(data.clip_features[r][0]) for r in data.feature_rows] == [7.0, 9.0]
    torch.save({7: torch.zeros(1, 512)}, tmp_path / "partial.pkl")
    with pytest.raises(InputError, match="no CLIP feature for image id 9"):
        ClipDataset(source=load_source(tmp_path), clip_len=2, short_edge=32, category_ids=[1],
                    tokenize=lambda s: [1], clip_features=load_feature_file(tmp_path / "partial.pkl"))


# --- class-name embeddings -------------------------------------------------------------------

def test_text_embeddings_are_the_official_prompt_through_clip(tiny_clip_dir):
    from transformers import AutoTokenizer, CLIPModel

    got = class_text_embeddings(["baby_seat", "dog"], tiny_clip_dir)
    assert got.shape == (2, 512)
    assert torch.allclose(got.norm(dim=-1), torch.ones(2))
    # Independently: one prompt at a time (no padding), the end-of-text token's output projected.
    tokenizer = AutoTokenizer.from_pretrained(tiny_clip_dir)
    model = CLIPModel.from_pretrained(tiny_clip_dir).eval()
    for row, prompt in zip(got, ["a photo of baby seat", "A photo of dog"]):
        ids = torch.tensor([tokenizer(prompt)["input_ids"]])
        with torch.no_grad():
            hidden = model.text_model(input_ids=ids).last_hidden_state[0, -1]
            expected = model.text_projection(hidden)
        assert torch.allclose(row, expected / expected.norm(), atol=1e-5)


def test_class_embedding_files_are_checked(tmp_path):
    np.save(tmp_path / "ok.npy", np.ones((2, 512), np.float32))
    assert load_class_embeddings(tmp_path / "ok.npy", num_classes=2).shape == (2, 512)
    np.save(tmp_path / "wide.npy", np.ones((2, 256), np.float32))
    bad_row = np.ones((2, 512), np.float32)
    bad_row[1, 3] = np.nan
    np.save(tmp_path / "nan.npy", bad_row)
    (tmp_path / "text.npy").write_text("not numpy")
    for name, count, message in [("wide.npy", 2, r"\(C, 512\) float array"), ("ok.npy", 3, "2 rows for 3 categories"),
                                 ("nan.npy", 2, "row 1 holds NaN"), ("text.npy", 2, "not a numpy"),
                                 ("absent.npy", 2, "no such")]:
        with pytest.raises(InputError, match=message) as err:
            load_class_embeddings(tmp_path / name, num_classes=count)
        assert str(tmp_path / name) in str(err.value)
    with pytest.raises(InputError, match="either a .npy file"):
        class_embeddings_for([{"id": 1, "name": "a"}])


def test_new_vocabulary_replaces_the_head_embeddings():
    config = get_config("tiny", class_head="zero_shot", num_classes=2)
    model = MaskCaptioner(config=config, vocab_size=16, pad_token_id=0, bos_token_id=1, eos_token_id=2,
                          class_embeddings=torch.randn(2, 512))
    new = torch.randn(4, 512)
    model.set_class_embeddings(new)
    assert model.cfg.num_classes == 4
    assert torch.allclose(model.class_head.weight[:, :4], F.normalize(new, dim=-1).T, atol=1e-6)
    out = model(torch.zeros(1, 2, 3, 64, 64), torch.randn(1, 1, 512))
    assert out.layers[-1].class_logits.shape[-1] == 5 and out.scores.shape == (1, 8)
    with pytest.raises(ValueError, match=r"\(C, 512\)"):
        model.set_class_embeddings(torch.randn(3, 16))
    linear = MaskCaptioner(config=get_config("tiny", num_classes=2), vocab_size=16, pad_token_id=0,
                           bos_token_id=1, eos_token_id=2)
    with pytest.raises(ValueError, match="only the zero-shot head"):
        linear.set_class_embeddings(new)


# --- train -> predict ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def zero_shot_run(tmp_path_factory, tiny_clip_dir):
    tmp = tmp_path_factory.mktemp("zero_shot")
    generate(num_videos=6, num_frames=4, seed=0).save(tmp / "train")
    generate(num_videos=2, num_frames=4, seed=1).save(tmp / "val")
    for split in ("train", "val"):
        assert main(["extract-clip-features", "--data", str(tmp / split), "--clip-model", str(tiny_clip_dir),
                     "--out", str(tmp / f"{split}.pt")]) == 0
    assert main(["train", "--config", "tiny", "--zero-shot", "--data", str(tmp / "train"),
                 "--clip-features", str(tmp / "train.pt"), "--clip-model", str(tiny_clip_dir),
                 "--steps", "4", "--batch-size", "2", "--log-every", "2", "--out", str(tmp / "run")]) == 0
    return tmp


def test_zero_shot_training_runs_and_predicts(zero_shot_run, tiny_clip_dir):
    tmp = zero_shot_run
    ckpt = torch.load(tmp / "run" / "checkpoint.pt", weights_only=False)
    assert ckpt["config"]["class_head"] == "zero_shot"
    # The head holds the names' embeddings, normalised, plus the zero "no class" column.
    names = [c["name"] for c in sorted(json.loads((tmp / "train" / "gt.json").read_text())["categories"],
                                       key=lambda c: c["id"])]
    weight = ckpt["model"]["class_head.weight"]
    assert torch.allclose(weight[:, :-1], class_text_embeddings(names, tiny_clip_dir).T, atol=1e-6)
    assert torch.all(weight[:, -1] == 0)
    logged = [json.loads(line) for line in (tmp / "run" / "train_log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in logged] == [2, 4] and all(math.isfinite(row["cls"]) for row in logged)
    base = ["predict", "--checkpoint", str(tmp / "run" / "checkpoint.pt"), "--data", str(tmp / "val"),
            "--clip-features", str(tmp / "val.pt"), "--score-threshold", "0"]
    assert main([*base, "--out", str(tmp / "a.json")]) == 0
    # Re-embedding the same names gives the same predictions; renamed categories keep their
    # embeddings' names: the category a detection gets follows its name, not its id.
    assert main([*base, "--clip-model", str(tiny_clip_dir), "--out", str(tmp / "b.json")]) == 0
    a, b = (json.loads((tmp / f"{x}.json").read_text()) for x in "ab")
    assert a and a == b
    gt = json.loads((tmp / "val" / "gt.json").read_text())
    renumbered = {c["id"]: 100 + (len(gt["categories"]) - c["id"]) for c in gt["categories"]}
    gt["categories"] = [{**c, "id": renumbered[c["id"]]} for c in gt["categories"]]
    gt["annotations"] = [{**a, "category_id": renumbered[a["category_id"]]} for a in gt["annotations"]]
    (tmp / "renamed").mkdir()
    (tmp / "renamed" / "gt.json").write_text(json.dumps(gt))
    (tmp / "renamed" / "JPEGImages").symlink_to(tmp / "val" / "JPEGImages")
    base[base.index(str(tmp / "val"))] = str(tmp / "renamed")
    assert main([*base, "--clip-model", str(tiny_clip_dir), "--out", str(tmp / "c.json")]) == 0
    c = json.loads((tmp / "c.json").read_text())
    assert [r["category_id"] for r in c] == [renumbered[r["category_id"]] for r in a]


def test_zero_shot_inputs_are_required_and_checked(zero_shot_run, tiny_clip_dir, capsys):
    tmp = zero_shot_run
    common = ["train", "--config", "tiny", "--data", str(tmp / "train"), "--steps", "1"]
    assert main([*common, "--zero-shot", "--clip-model", str(tiny_clip_dir), "--out", str(tmp / "x")]) == 2
    assert "give one feature file per --data (1) with --clip-features" in capsys.readouterr().err
    assert main([*common, "--zero-shot", "--clip-features", str(tmp / "train.pt"), "--out", str(tmp / "y")]) == 2
    assert "either a .npy file" in capsys.readouterr().err
    assert main([*common, "--clip-features", str(tmp / "train.pt"), "--out", str(tmp / "z")]) == 2
    assert "only the zero-shot class head reads CLIP features" in capsys.readouterr().err
    assert main(["predict", "--checkpoint", str(tmp / "run" / "checkpoint.pt"), "--data", str(tmp / "val"),
                 "--out", str(tmp / "p.json")]) == 2
    assert "give --clip-features FILE" in capsys.readouterr().err


def test_fine_tuning_on_a_new_vocabulary(zero_shot_run, tiny_clip_dir, capsys):
    tmp = zero_shot_run
    # Other categories: the names of the training set's first three only, other ids.
    gt = json.loads((tmp / "train" / "gt.json").read_text())
    keep = {c["id"]: 50 + c["id"] for c in gt["categories"][:3]}
    gt["categories"] = [{**c, "id": keep[c["id"]]} for c in gt["categories"] if c["id"] in keep]
    gt["annotations"] = [{**a, "category_id": keep[a["category_id"]]} for a in gt["annotations"]
                         if a["category_id"] in keep]
    (tmp / "new").mkdir()
    (tmp / "new" / "gt.json").write_text(json.dumps(gt))
    (tmp / "new" / "JPEGImages").symlink_to(tmp / "train" / "JPEGImages")
    common = ["train", "--config", "tiny", "--data", str(tmp / "new"), "--clip-features", str(tmp / "train.pt"),
              "--init", str(tmp / "run" / "checkpoint.pt"), "--steps", "2", "--batch-size", "2"]
    assert main([*common, "--out", str(tmp / "ft_refused")]) == 2
    assert "give the new categories' embeddings" in capsys.readouterr().err
    assert main([*common, "--clip-model", str(tiny_clip_dir), "--out", str(tmp / "ft")]) == 0
    ckpt = torch.load(tmp / "ft" / "checkpoint.pt", weights_only=False)
    assert ckpt["category_ids"] == sorted(keep.values()) and ckpt["config"]["num_classes"] == 3
    assert ckpt["model"]["class_head.weight"].shape == (512, 4)
