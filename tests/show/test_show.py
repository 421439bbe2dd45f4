"""`benchmark show`: boxes, ids and captions drawn where they must be, in stable colours; an
.mp4, a contact sheet, missing frames said."""

from __future__ import annotations

import json

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from benchmark.cli import main  # noqa: E402
from benchmark.errors import InputError  # noqa: E402
from benchmark.show import GT_COLOUR, SHEET_TILE_WIDTH, render, track_colour  # noqa: E402

W, H = 160, 120  # enlarged x4 (to 640 wide) before drawing


@pytest.fixture
def scene(tmp_path):
    """Three black frames; a ground-truth box on all, a predicted track (id 7) on the first two."""
    frames = tmp_path / "JPEGImages" / "v1"
    frames.mkdir(parents=True)
    for f in range(3):
        cv2.imwrite(str(frames / f"{f:05d}.png"), np.zeros((H, W, 3), np.uint8))
    gt = {"videos": [{"id": 1, "name": "v1", "height": H, "width": W}],
          "images": [{"id": 10 + f, "video_id": 1, "frame_index": f, "file_name": f"v1/{f:05d}.png"}
                     for f in range(3)],
          "annotations": [{"id": f, "image_id": 10 + f, "track_id": 3, "category_id": 1, "bbox": [10, 10, 40, 30],
                           "caption": "a red car"} for f in range(3)]}
    pred = [{"image_id": 10 + f, "track_id": 7, "category_id": 1, "score": 0.9, "bbox": [12, 11, 40, 30],
             "caption": "a car"} for f in range(2)]
    pred.append({"image_id": 10, "track_id": 8, "category_id": 1, "score": 0.9, "bbox": [100, 70, 30, 20],
                 "caption": "a bird"})
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "pred.json").write_text(json.dumps(pred))
    return tmp_path


def test_boxes_ids_and_captions_are_drawn_in_stable_colours(scene):
    out = render(scene / "gt.json", scene / "pred.json", video="v1", out=scene / "frames",
                 contact_sheet=scene / "sheet.png")
    assert [p.name for p in out.frames] == ["frame_00000.png", "frame_00001.png", "frame_00002.png"]
    first = cv2.imread(str(out.frames[0]))
    assert first.shape[1] == 4 * W
    # Predicted track 7's top edge (y 11 -> 44 after x4) in its colour, track 8's in another.
    assert tuple(first[44, 100]) == track_colour(7)
    assert tuple(first[280, 450]) == track_colour(8) and track_colour(7) != track_colour(8)
    # The ground truth's left edge (x 10 -> 40), thin and white, below where the prediction's runs.
    assert tuple(first[110, 40]) == GT_COLOUR
    # Under the frame, one caption line per track, in its colour: track 7 matched the car.
    panel = first[4 * H:]
    assert (panel == track_colour(7)).all(axis=2).any() and (panel == track_colour(8)).all(axis=2).any()
    # Frame 2 has no prediction: only the ground truth is drawn there.
    third = cv2.imread(str(out.frames[2]))
    assert tuple(third[44, 100]) == (0, 0, 0) and tuple(third[110, 40]) == GT_COLOUR
    sheet = cv2.imread(str(out.contact_sheet))
    assert sheet.shape[1] == 3 * SHEET_TILE_WIDTH  # three frames side by side


def test_an_mp4_missing_frames_and_bad_video(scene):
    with pytest.warns(UserWarning, match="3 of 3 frames of video v1 were not found"):
        out = render(scene / "gt.json", scene / "pred.json", video=1, out=scene / "v.mp4",
                     frames_root=scene / "nowhere")
    capture = cv2.VideoCapture(str(out.video))
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == 3
    ok, frame = capture.read()
    assert ok and abs(int(frame[5, 600].mean()) - 96) <= 3  # grey canvas (lossy codec)
    with pytest.raises(InputError, match="no video 'v9'"):
        render(scene / "gt.json", scene / "pred.json", video="v9", out=scene / "x")


def test_the_command(scene, capsys):
    assert main(["show", "--gt", str(scene / "gt.json"), "--pred", str(scene / "pred.json"), "--video", "v1",
                 "--out", str(scene / "f"), "--contact-sheet", str(scene / "s.png")]) == 0
    assert "wrote 3 frames" in capsys.readouterr().out
    assert (scene / "s.png").exists()


@pytest.mark.parametrize("iou", ["box", "mask"])
def test_the_bundled_sample_with_its_frames(tmp_path, iou):
    from benchmark.sample_data import sample_paths
    from benchmark.synthetic import SAMPLE_CONFIG, generate

    gt_path = generate(**SAMPLE_CONFIG).save(tmp_path / "sample")  # the bundled gt.json, with frames
    pred_path = sample_paths().submissions["fair"]
    out = render(gt_path, pred_path, video="video_00001", out=tmp_path / "f", iou=iou)
    first = cv2.imread(str(out.frames[0]))
    scale = 640 // SAMPLE_CONFIG["width"]
    records = [p for p in json.loads(pred_path.read_text()) if p["image_id"] == 1 and p["score"] > 0.5]
    assert records
    for record in records:
        x, y, w, h = (round(v * scale) for v in record["bbox"])
        region = first[y:y + h + 1, x:x + w + 1]
        hit = (region == track_colour(record["track_id"])).all(axis=2)
        if iou == "box":
            assert hit[0, w // 2] and hit[h // 2, 0], record["track_id"]  # top and left edges
        else:
            assert hit.any(), record["track_id"]                           # its mask's contour
