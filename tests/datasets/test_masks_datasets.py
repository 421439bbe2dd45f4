"""LV-VIS(Cap), LVIS(Cap), SAV-Caption, ViCaS and per-track predictions on hand-written
fixtures; plus the CLI round trip (pycocotools loads the output; DetA 1.0 against itself)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from benchmark.cli import main
from benchmark.datasets.lvvis import convert_lvis, convert_lvvis
from benchmark.datasets.predictions import convert_predictions
from benchmark.datasets.sav import convert_sav
from benchmark.datasets.vicas import convert_vicas, parse_grounded_caption
from benchmark.errors import InputError

SQUARE_RLE = {"size": [4, 4], "counts": [5, 2, 2, 2, 5]}       # rows/cols 1-2
CORNER_RLE = {"size": [4, 4], "counts": [0, 1, 15]}           # pixel (0, 0)
SQUARE_POLY = [[0.5, 0.5, 2.5, 0.5, 2.5, 2.5, 0.5, 2.5]]
SQUARE_COMPRESSED = mask_utils.encode(np.asfortranarray(
    np.pad(np.ones((2, 2), np.uint8), 1)))["counts"].decode()


def lvvis_source() -> dict:
    return {
        "videos": [{"id": 9, "height": 4, "width": 4, "length": 4,
                    "file_names": ["00009\\00000.jpg", "00009\\00001.jpg", "00009\\00002.jpg",
                                   "00009\\00003.jpg"]}],
        "annotations": [
            {"id": 101, "video_id": 9, "category_id": 2, "iscrowd": 0, "caption": "A red cup.",
             "segmentations": [None, SQUARE_POLY, SQUARE_RLE,
                               {"size": [4, 4], "counts": SQUARE_COMPRESSED}],
             "bboxes": [None, None, [1, 1, 2, 2], None], "areas": [None, 4, 4, 4]},
            {"id": 55, "video_id": 9, "category_id": 1, "iscrowd": 0,
             "segmentations": [CORNER_RLE, None, None, None]},
        ],
        "categories": [{"id": 1, "name": "cat", "partition": 0},
                       {"id": 2, "name": "cup", "partition": 3}],
    }


def test_lvvis_all_encodings(tmp_path: Path) -> None:
    src = tmp_path / "lvviscap_val_instances.json"
    src.write_text(json.dumps(lvvis_source()))
    gt = convert_lvvis(src=src, show_progress=False)
    assert gt["categories"] == [{"id": 1, "name": "cat", "partition": 0},
                                {"id": 2, "name": "cup", "partition": 3}]
    assert gt["videos"][0]["id"] == 9 and gt["videos"][0]["length"] == 4
    assert [i["file_name"] for i in gt["images"]] == [f"00009/0000{k}.jpg" for k in range(4)]
    got = [(a["image_id"], a["track_id"], a["category_id"], a["bbox"], a["area"], a["caption"])
           for a in gt["annotations"]]
    assert got == [
        (2, 101, 2, [1.0, 1.0, 2.0, 2.0], 4.0, "A red cup."),  # polygon, box from mask
        (3, 101, 2, [1.0, 1.0, 2.0, 2.0], 4.0, "A red cup."),  # uncompressed RLE, given box
        (4, 101, 2, [1.0, 1.0, 2.0, 2.0], 4.0, "A red cup."),  # compressed RLE
        (1, 55, 1, [0.0, 0.0, 1.0, 1.0], 1.0, ""),             # no caption in plain LV-VIS
    ]
    assert all(a["segmentation"]["counts"] == gt["annotations"][0]["segmentation"]["counts"]
               for a in gt["annotations"][:3])


def test_lvvis_wrong_length_is_named(tmp_path: Path) -> None:
    data = lvvis_source()
    data["annotations"][1]["segmentations"] = [CORNER_RLE]
    src = tmp_path / "val.json"
    src.write_text(json.dumps(data))
    with pytest.raises(InputError) as err:
        convert_lvvis(src=src, show_progress=False)
    assert "record annotations[1] (id 55), field 'segmentations': 1 entries for 4 frames" in str(
        err.value)


def test_lvis_images_become_one_frame_videos(tmp_path: Path) -> None:
    src = tmp_path / "lviscap_v1_val.json"
    src.write_text(json.dumps({
        "images": [{"id": 397133, "height": 4, "width": 4, "neg_category_ids": [3],
                    "not_exhaustive_category_ids": [],
                    "coco_url": "http://images.cocodataset.org/val2017/000000397133.jpg"}],
        "annotations": [{"id": 7, "image_id": 397133, "category_id": 1, "bbox": [1, 1, 2, 2],
                         "area": 4.0, "segmentation": SQUARE_POLY, "caption": "A small cat."}],
        "categories": [{"id": 1, "name": "cat", "synset": "cat.n.01", "frequency": "f"}]}))
    gt = convert_lvis(src=src, show_progress=False)
    assert gt["videos"] == [{"id": 397133, "name": "val2017/000000397133.jpg", "height": 4,
                             "width": 4, "length": 1, "neg_category_ids": [3],
                             "not_exhaustive_category_ids": []}]
    assert gt["images"][0]["id"] == 397133 and gt["images"][0]["frame_index"] == 0
    ann = gt["annotations"][0]
    assert (ann["track_id"], ann["bbox"], ann["caption"]) == (7, [1.0, 1.0, 2.0, 2.0],
                                                              "A small cat.")
    assert gt["categories"][0]["frequency"] == "f"


def test_sav_several_references(tmp_path: Path) -> None:
    masks = tmp_path / "sav_val"
    masks.mkdir()
    diagonal = {"size": [4, 4], "counts": mask_utils.encode(
        np.asfortranarray(np.eye(4, dtype=np.uint8)))["counts"].decode()}
    square = {"size": [4, 4], "counts": SQUARE_COMPRESSED}
    (masks / "sav_000002_manual.json").write_text(json.dumps({
        "video_id": "sav_000002", "video_frame_count": 9, "video_height": 4, "video_width": 4,
        "masklet_id": [0, 1], "masklet_first_appeared_frame": [0, 4],
        "masklet": [[square, None], [square, diagonal]]}))
    captions = tmp_path / "captions.json"
    captions.write_text(json.dumps([
        {"video_id": "sav_000002", "masklet_id": 0,
         "captions": ["a ball rolls.", "a red ball.", "the ball moves left."]}]))
    gt = convert_sav(masks=[masks], captions=captions, show_progress=False)
    assert [i["file_name"] for i in gt["images"]] == ["sav_000002/00000.jpg",
                                                      "sav_000002/00004.jpg"]
    got = [(a["image_id"], a["track_id"], a["bbox"], a["caption"], len(a["captions"]))
           for a in gt["annotations"]]
    assert got == [(1, 1000, [1.0, 1.0, 2.0, 2.0], "a ball rolls.", 3),
                   (2, 1000, [1.0, 1.0, 2.0, 2.0], "a ball rolls.", 3),
                   (2, 1001, [0.0, 0.0, 4.0, 4.0], "", 0)]
    assert gt["info"]["references_per_object"] == 3
    captions.write_text(json.dumps({"sav_000002": {"5": ["ghost"]}}))
    with pytest.raises(InputError, match="1 captions match no masklet, e.g. video sav_000002 "
                                         "masklet 5"):
        convert_sav(masks=[masks], captions=captions, show_progress=False)


def test_grounded_caption_parsing() -> None:
    text = "[A man]<mask_1> throws [two balls]<mask_2,3> to [people]<mask_?>."
    plain, groundings = parse_grounded_caption(text)
    assert plain == "A man throws two balls to people."
    assert groundings == [("A man", [1], False), ("two balls", [2, 3], False),
                          ("people", [], True)]
    with pytest.raises(ValueError, match="bad track id 'x'"):
        parse_grounded_caption("[a]<mask_x>")


def test_vicas_human_frames_and_prompts(tmp_path: Path) -> None:
    folder = tmp_path / "annotations" / "v0.1"
    folder.mkdir(parents=True)
    (folder / "000012.json").write_text(json.dumps({
        "video_id": 12, "src_dataset": "x", "filename": "000012.mp4", "image_size": [4, 4],
        "caption_raw_en": "raw", "caption_parsed_en": "[A dog]<mask_1> chases [a cat]<mask_2>.",
        "caption_parsed_en_gpt": "A dog chases a cat.", "reworded_en_captions": ["r1", "r2"],
        "object_referrals": [{"prompt": "Where is the dog?", "track_ids": [1]}],
        "all_track_ids": [1, 2],
        "segmentations": [
            {"filename": "00030.jpg", "is_gt": True, "track_ids": [1, 2],
             "mask_rles": [{"size": [4, 4], "counts": SQUARE_COMPRESSED}, CORNER_RLE]},
            {"filename": "00001.jpg", "is_gt": False, "track_ids": [1],
             "mask_rles": [CORNER_RLE]},
            {"filename": "00000.jpg", "is_gt": True, "track_ids": [2],
             "mask_rles": [{"size": [4, 4], "counts": SQUARE_COMPRESSED}]}]}))
    gt = convert_vicas(annotations=folder, show_progress=False)
    video = gt["videos"][0]
    assert video["caption"] == "A dog chases a cat."
    assert video["lgvis_prompts"] == [{"prompt": "Where is the dog?", "track_ids": [1001]}]
    assert video["reference_captions"] == ["[A dog]<mask_1> chases [a cat]<mask_2>.",
                                           "A dog chases a cat.", "r1", "r2"]
    assert [i["file_name"] for i in gt["images"]] == ["000012/00000.jpg", "000012/00030.jpg"]
    got = [(a["image_id"], a["track_id"], a["bbox"], a["caption"]) for a in gt["annotations"]]
    assert got == [(1, 1002, [1.0, 1.0, 2.0, 2.0], "a cat"),
                   (2, 1001, [1.0, 1.0, 2.0, 2.0], "A dog"),
                   (2, 1002, [0.0, 0.0, 1.0, 1.0], "a cat")]
    assert len(convert_vicas(annotations=folder, human_only=False,
                             show_progress=False)["images"]) == 3


def sparse_gt() -> dict:
    """A 3-frame VLN-like GT whose frames are frames 0, 5 and 9 of a 10-frame video."""
    return {"videos": [{"id": 4, "name": "b", "height": 4, "width": 4, "length": 3}],
            "images": [{"id": 12 + k, "video_id": 4, "frame_index": k,
                        "file_name": f"b/{f}.png", "height": 4, "width": 4}
                       for k, f in enumerate((0, 5, 9))],
            "annotations": [], "categories": [{"id": 1, "name": "object"}]}


def test_predictions_sparse_filtering() -> None:
    frames = {"videos": [{"id": 4, "file_names": [f"b\\{f}.png" for f in range(10)]}]}
    seg = [None] * 10
    seg[5] = SQUARE_RLE
    seg[6] = SQUARE_RLE  # not a GT frame: dropped
    tracks = [
        {"video_id": 4, "score": 0.8, "category_id": 1, "caption": "a man.",
         "segmentations": seg},
        {"video_id": 4, "score": 0.3, "category_id": 1, "caption": "",
         "segmentations": [CORNER_RLE] * 10, "bboxes": [[0, 0, 3, 3]] * 10},
    ]
    out = convert_predictions(tracks, sparse_gt(), frames=frames, show_progress=False)
    got = [(r["image_id"], r["track_id"], r["bbox"], r["score"], r["caption"]) for r in out]
    assert got == [(13, 1, [1.0, 1.0, 2.0, 2.0], 0.8, "a man."),
                   (12, 2, [0.0, 0.0, 3.0, 3.0], 0.3, ""),
                   (13, 2, [0.0, 0.0, 3.0, 3.0], 0.3, ""),
                   (14, 2, [0.0, 0.0, 3.0, 3.0], 0.3, "")]
    with pytest.raises(InputError, match="10 frames, the GT video has 3"):
        convert_predictions(tracks, sparse_gt(), show_progress=False)


# --- CLI round trip ----------------------------------------------------------------------

def test_cli_convert_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "lvviscap_val_instances.json"
    src.write_text(json.dumps(lvvis_source()))
    out = tmp_path / "gt.json"
    assert main(["convert", "lvvis", "--src", str(src), "--out", str(out), "--quiet"]) == 0
    assert "1 videos, 4 frames, 4 boxes, 1 captioned tracks" in capsys.readouterr().out
    coco = COCO(str(out))  # the output is a valid COCO file with consistent ids
    assert sorted(coco.getImgIds()) == [1, 2, 3, 4]
    assert len(coco.getAnnIds(imgIds=[3])) == 1
    assert coco.annToMask(coco.loadAnns(coco.getAnnIds(imgIds=[3]))[0]).sum() == 4
    # Per-track view of the GT as predictions, converted back to per-frame predictions.
    gt = json.loads(out.read_text())
    tracks = lvvis_source()["annotations"]
    for t in tracks:
        t["score"] = 1.0
    pred = tmp_path / "pred.json"
    pred.write_text(json.dumps(convert_predictions(tracks, gt, show_progress=False)))
    try:
        from benchmark import chota
    except ImportError:
        pytest.skip("benchmark.chota (the lead's scorer) is not available yet")
    res = chota(str(out), str(pred), iou="mask", caption_metrics=("cider",),
                score_threshold=0.5).to_dict()
    assert res["DetA"] == pytest.approx(1.0)
    assert res["AssA"] == pytest.approx(1.0)


def test_cli_error_is_one_line_and_keeps_existing_output(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    out = tmp_path / "gt.json"
    out.write_text('{"previous": true}')
    bad = tmp_path / "bad.json"
    data = lvvis_source()
    data["annotations"][0]["segmentations"][1] = {"size": [4, 4], "counts": [1, 2]}
    bad.write_text(json.dumps(data))
    assert main(["convert", "lvvis", "--src", str(bad), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "bad.json: record annotations[0] (id 101), field 'segmentations[1]'" in err
    assert json.loads(out.read_text()) == {"previous": True}
    assert main(["convert", "vidstg", "--src", str(bad), "--out", str(out)]) == 2
    assert "needs --vidor" in capsys.readouterr().err
