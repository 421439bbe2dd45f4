"""Clip targets from a hand-made COCO-video ground truth, tokenizer round trip, input errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from benchmark.errors import InputError
from reference_model.data import ClipDataset, Resize, VideoSource, load_source
from reference_model.tokenizer import load_tokenizer, train_word_tokenizer


def _square_video():
    """One 3-frame 32x48 video, a 4x6 red square at x = 10 + 2t, y = 8; frame 2 has no object."""
    h, w, t = 32, 48, 3
    frames = np.zeros((t, h, w, 3), dtype=np.uint8)
    annotations = []
    for k in range(2):
        frames[k, 8:12, 10 + 2 * k: 16 + 2 * k] = (230, 40, 40)
        m = np.zeros((h, w), dtype=np.uint8)
        m[8:12, 10 + 2 * k: 16 + 2 * k] = 1
        rle = mask_utils.encode(np.asfortranarray(m))
        annotations.append({"id": k + 1, "image_id": 100 + k, "video_id": 7, "track_id": 3, "category_id": 5,
                            "bbox": [10.0 + 2 * k, 8.0, 6.0, 4.0],
                            "segmentation": {"size": [h, w], "counts": rle["counts"].decode()},
                            "caption": "a red square moving right"})
    gt = {"videos": [{"id": 7, "name": "v", "height": h, "width": w, "length": t}],
          "images": [{"id": 100 + k, "video_id": 7, "frame_index": k, "file_name": f"v/{k}.png",
                      "height": h, "width": w} for k in range(t)],
          "annotations": annotations, "categories": [{"id": 2, "name": "x"}, {"id": 5, "name": "square"}]}
    return gt, frames


def test_clip_targets_are_resized_and_normalised():
    gt, frames = _square_video()
    source = VideoSource(name="gt.json", gt=gt, render=lambda v: frames)
    ds = ClipDataset(source=source, clip_len=2, short_edge=64, category_ids=[2, 5], tokenize=lambda s: [len(s.split())])
    assert len(ds) == 2  # windows starting at frames 0 and 1
    clip, tgt = ds[1]
    # scale 64/32 = 2: 64 x 96, already multiples of 32
    assert clip.shape == (2, 3, 64, 96)
    assert tgt.labels.tolist() == [1]
    assert tgt.box_valid.tolist() == [[True, False]]
    # frame 1 box [12, 8, 6, 4] -> x2 = [24, 16, 12, 8] on a 96 x 64 canvas, as cxcywh
    assert tgt.boxes[0, 0].tolist() == pytest.approx([30 / 96, 20 / 64, 12 / 96, 8 / 64])
    assert float(tgt.masks[0, 0].sum()) == 4 * 6 * 4  # area grows by scale^2
    assert float(tgt.masks[0, 1].sum()) == 0
    assert tgt.caption_ids == [[5]]


def test_resize_pads_to_multiples_of_32():
    r = Resize(50, 70, 40)
    assert r.resized == (40, 56) and r.padded == (64, 64)
    x = r.images(np.full((1, 50, 70, 3), 255, dtype=np.uint8))
    assert x.shape == (1, 3, 64, 64) and float(x[0, 0, 39, 55]) == 1.0 and float(x[0, 0, 40, 0]) == 0.0


def test_bad_annotation_names_record_and_field():
    gt, frames = _square_video()
    gt["annotations"][1]["category_id"] = 99
    source = VideoSource(name="gt.json", gt=gt, render=lambda v: frames)
    with pytest.raises(InputError) as err:
        ClipDataset(source=source, clip_len=2, short_edge=32, category_ids=[2, 5], tokenize=lambda s: [])
    assert "gt.json" in str(err.value) and "record 1" in str(err.value) and "category_id" in str(err.value)


def test_bad_segmentation_names_record():
    gt, frames = _square_video()
    gt["annotations"][0]["segmentation"] = {"size": [32, 48]}
    ds = ClipDataset(source=VideoSource(name="gt.json", gt=gt, render=lambda v: frames), clip_len=2,
                     short_edge=32, category_ids=[2, 5], tokenize=lambda s: [])
    with pytest.raises(InputError, match="record 0.*segmentation"):
        ds[0]


def test_load_source_folder_and_errors(tmp_path):
    gt, frames = _square_video()
    from PIL import Image

    (tmp_path / "JPEGImages" / "v").mkdir(parents=True)
    for k, frame in enumerate(frames):
        Image.fromarray(frame).save(tmp_path / "JPEGImages" / "v" / f"{k}.png")
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    src = load_source(tmp_path)
    assert np.array_equal(src.frames(7), frames)
    with pytest.raises(InputError, match="missing.json"):
        load_source(tmp_path / "missing.json")
    with pytest.raises(InputError, match="KEY=INTEGER"):
        load_source("synthetic:num_videos=two")


def test_word_tokenizer_round_trip(tmp_path):
    captions = ["a red square moving right", "the small blue circle that is rising."]
    tok = train_word_tokenizer(captions)
    assert len(tok) == 4 + 12  # four specials, twelve distinct words
    ids = tok("the red circle rising.", add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == "the red circle rising."
    assert tok.decode(tok("a zebra", add_special_tokens=False)["input_ids"]) == "a <unk>"
    tok.save_pretrained(tmp_path)
    again = load_tokenizer(tmp_path)
    assert again("the red circle rising.", add_special_tokens=False)["input_ids"] == ids
    assert (again.pad_token_id, again.bos_token_id, again.eos_token_id) == (0, 1, 2)
