"""VLN (UVO subset) and BenSMOT converters on hand-written fixtures in the source formats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from benchmark.datasets.bensmot import convert_bensmot
from benchmark.datasets.vln import convert_vln
from benchmark.errors import InputError

SQUARE_RLE = {"size": [4, 4], "counts": [5, 2, 2, 2, 5]}  # rows/cols 1-2 of a 4x4 frame
SQUARE_POLY = [[0.5, 0.5, 2.5, 0.5, 2.5, 2.5, 0.5, 2.5]]


def expression(actor: int, obj: int, end: int) -> dict:
    return {"narrative_actor_idx": actor, "noun_phrase_start_idx": 0,
            "noun_phrase_end_idx": end, "obj_id": obj}


@pytest.fixture()
def vln_files(tmp_path: Path) -> dict[str, Path]:
    uvo = {
        "videos": [
            {"id": 4, "ytid": "b_vid", "height": 4, "width": 4, "length": 4,
             "file_names": ["b\\0.png", "b\\1.png", "b\\2.png", "b\\3.png"]},
            {"id": 2, "ytid": "a_vid", "height": 4, "width": 4, "length": 3,
             "file_names": ["a/0.png", "a/1.png", "a/2.png"]},
        ],
        "annotations": [
            {"id": 30, "video_id": 4, "bboxes": [[0, 0, 2, 2], None, [1, 1, 1, 1]],
             "segmentations": [None, None, None]},
            {"id": 10, "video_id": 4, "segmentations": [SQUARE_RLE, None, None]},
            {"id": 40, "video_id": 2, "bboxes": [[0, 0, 1, 1]] * 3},
        ],
    }
    extra = {"annotations": [{"id": 20, "video_id": 4,
                              "segmentations": [None, SQUARE_POLY, None]}]}
    meta = {"videos": {
        "b_vid": {
            "frames": ["0", "1", "2"],
            "actor_narratives": [
                {"actor_idx": 0, "actor_name": "man", "description": "A man walks."},
                {"actor_idx": 1, "actor_name": "background", "description": "Trees sway."},
                {"actor_idx": 2, "actor_name": "dog", "description": "A dog sits."}],
            # Sorted string keys: "0", "1", "10", "2", "3".
            "expressions": {"0": expression(0, 30, 3), "1": expression(0, 10, 3),
                            "10": expression(2, 10, 20), "2": expression(1, 20, 2),
                            "3": expression(2, 20, 4)}},
        "a_vid": {
            "frames": ["0", "1", "2"],
            "actor_narratives": [{"actor_idx": 0, "actor_name": "cat",
                                  "description": "A cat naps."}],
            "expressions": {"0": expression(0, 40, 10), "1": expression(0, 40, 3)}},
    }}
    paths = {"meta": tmp_path / "meta_expressions.json", "uvo": tmp_path / "uvo.json",
             "extra": tmp_path / "extra_masks.json"}
    for key, data in (("meta", meta), ("uvo", uvo), ("extra", extra)):
        paths[key].write_text(json.dumps(data))
    return paths


def test_vln_hand_worked(vln_files: dict[str, Path]) -> None:
    gt = convert_vln(expressions=vln_files["meta"], uvo=vln_files["uvo"],
                     extra_masks=vln_files["extra"], show_progress=False)
    assert [(v["id"], v["name"], v["length"]) for v in gt["videos"]] == [(2, "a_vid", 3),
                                                                         (4, "b_vid", 3)]
    assert [(i["id"], i["file_name"]) for i in gt["images"]] == [
        (6, "a/0.png"), (7, "a/1.png"), (8, "a/2.png"),
        (12, "b/0.png"), (13, "b/1.png"), (14, "b/2.png")]
    got = [(a["image_id"], a["track_id"], a["bbox"], a["caption"], "segmentation" in a)
           for a in gt["annotations"]]
    assert got == [
        # cat: first expression is too far into the narrative, the second is a repeat of the
        # actor, so the consumed caption never lands: uncaptioned on every frame.
        (6, 4, [0.0, 0.0, 1.0, 1.0], "", False),
        (7, 4, [0.0, 0.0, 1.0, 1.0], "", False),
        (8, 4, [0.0, 0.0, 1.0, 1.0], "", False),
        # frame 0: man from UVO bboxes (captioned), dog from object 10's mask (uncaptioned:
        # "10" sorts before "3", whose caption is consumed but skipped); background has no mask.
        (12, 3, [0.0, 0.0, 2.0, 2.0], "A man walks.", False),
        (12, 1, [1.0, 1.0, 2.0, 2.0], "", True),
        # frame 1: man's UVO box is null, dog's object has no mask; background from the
        # extra-mask polygon, never captioned.
        (13, 2, [1.0, 1.0, 2.0, 2.0], "", True),
        # frame 2: only the man has a box.
        (14, 3, [1.0, 1.0, 1.0, 1.0], "A man walks.", False),
    ]


def test_vln_unknown_object_is_named(vln_files: dict[str, Path]) -> None:
    meta = json.loads(vln_files["meta"].read_text())
    meta["videos"]["a_vid"]["expressions"]["1"]["obj_id"] = 99
    vln_files["meta"].write_text(json.dumps(meta))
    with pytest.raises(InputError) as err:
        convert_vln(expressions=vln_files["meta"], uvo=vln_files["uvo"],
                    extra_masks=vln_files["extra"], show_progress=False)
    assert "meta_expressions.json: record a_vid/expressions/1, field 'obj_id'" in str(err.value)


GT_SEQ1 = """1,3,10,20,30,40,1,1,1.0
1,5,0,0,5,5,0,1,1
2,3,11,21,30,40,1,1,0.5
2,7,1,1,2,2,1,2,1
4,5,1,2,3,4,1,1,1
"""


@pytest.fixture()
def bensmot_root(tmp_path: Path) -> Path:
    root = tmp_path / "BenSMOT"
    seq1 = root / "test" / "dance" / "seq1"
    (seq1 / "gt").mkdir(parents=True)
    (seq1 / "gt" / "gt.txt").write_text(GT_SEQ1)
    (seq1 / "seqinfo.ini").write_text("[Sequence]\nname=seq1\nseqLength=4\nimWidth=100\n"
                                      "imHeight=50\n")
    seq2 = root / "test" / "walk" / "seq2"
    (seq2 / "gt").mkdir(parents=True)
    (seq2 / "gt" / "gt.txt").write_text("1,1,0,0,4,4,1,1,1\n")
    (seq2 / "imgs").mkdir()
    for name in ("001.jpg", "002.jpg"):
        Image.new("RGB", (8, 6)).save(seq2 / "imgs" / name)
    seq3 = root / "test" / "zzz" / "seq3"
    (seq3 / "gt").mkdir(parents=True)
    (seq3 / "gt" / "gt.txt").write_text("1,1,0,0,4,4,1,1,1\n")
    (root / "instance_caption.json").write_text(json.dumps(
        {"dance/seq1": {"3": "A woman in red dances.", "9": "nobody"}, "walk/seq2": {}}))
    return root


def test_bensmot_hand_worked(bensmot_root: Path) -> None:
    gt = convert_bensmot(root=bensmot_root, split="test",
                         captions=bensmot_root / "instance_caption.json", show_progress=False)
    assert [(v["id"], v["name"], v["length"], v["height"], v["width"]) for v in gt["videos"]] == [
        (1, "dance/seq1", 4, 50, 100), (2, "walk/seq2", 2, 6, 8)]
    assert gt["info"]["skipped"] == ["zzz/seq3"]
    assert [i["file_name"] for i in gt["images"]][-2:] == ["walk/seq2/imgs/001.jpg",
                                                            "walk/seq2/imgs/002.jpg"]
    got = [(a["image_id"], a["track_id"], a["source_track_id"], a["bbox"], a["caption"])
           for a in gt["annotations"]]
    assert got == [
        (1, 1, 3, [10.0, 20.0, 30.0, 40.0], "A woman in red dances."),
        (2, 1, 3, [11.0, 21.0, 30.0, 40.0], "A woman in red dances."),  # vis 0.5 is kept
        (4, 2, 5, [1.0, 2.0, 3.0, 4.0], ""),  # its conf-0 row on frame 1 is ignored
        (5, 3, 1, [0.0, 0.0, 4.0, 4.0], ""),
    ]


def test_bensmot_bad_row_names_line(bensmot_root: Path) -> None:
    gt_txt = bensmot_root / "test" / "walk" / "seq2" / "gt" / "gt.txt"
    gt_txt.write_text("1,1,0,0,4,4,1,1,1\n2,1,0,0,x,4,1,1,1\n")
    with pytest.raises(InputError) as err:
        convert_bensmot(root=bensmot_root, split="test",
                        captions=bensmot_root / "instance_caption.json", show_progress=False)
    assert str(err.value).startswith(f"{gt_txt}: record line 2: non-numeric value")


def test_bensmot_frame_beyond_sequence(bensmot_root: Path) -> None:
    gt_txt = bensmot_root / "test" / "walk" / "seq2" / "gt" / "gt.txt"
    gt_txt.write_text("3,1,0,0,4,4,1,1,1\n")
    with pytest.raises(InputError, match="frame 3 beyond the 2 frames"):
        convert_bensmot(root=bensmot_root, split="test",
                        captions=bensmot_root / "instance_caption.json", show_progress=False)
