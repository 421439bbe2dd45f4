"""Tests of the procedural DVOC generator, the corrupted submissions and the bundled sample."""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from scipy.optimize import linear_sum_assignment

from benchmark.errors import InputError
from benchmark.sample_data import SAMPLE_QUALITIES, sample_paths
from benchmark.synthetic import (
    CATEGORIES, COLOURS, MOTIONS, SAMPLE_CONFIG, SHAPES, ShapeTrack, SyntheticDataset,
    generate, make_submission, write_sample,
)
from benchmark.synthetic import _MOTION_PHRASES, _shape_mask

# pycocotools' decode trips numpy 2's copy-keyword deprecation on every call.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _run_cli(*argv: str) -> int:
    # The sample command on its own parser, so the test does not depend on other commands.
    from benchmark.commands import sample

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    sample.register(sub)
    args = parser.parse_args(list(argv))
    return args.func(args)


@pytest.fixture(scope="module")
def data() -> SyntheticDataset:
    return generate(num_videos=40, num_frames=12, height=64, width=80, max_objects=4, seed=7)


def test_same_seed_same_data_and_frames():
    a = generate(num_videos=5, num_frames=8, seed=3)
    b = generate(num_videos=5, num_frames=8, seed=3)
    assert json.dumps(a.gt) == json.dumps(b.gt)
    for vid in a.video_ids:
        np.testing.assert_array_equal(a.render(vid), b.render(vid))
    c = generate(num_videos=5, num_frames=8, seed=4)
    assert json.dumps(a.gt["annotations"]) != json.dumps(c.gt["annotations"])


def test_a_video_does_not_depend_on_how_many_videos_are_generated():
    small = generate(num_videos=2, num_frames=8, seed=5)
    large = generate(num_videos=6, num_frames=8, seed=5)
    assert small.tracks(2) == large.tracks(2)
    np.testing.assert_array_equal(small.render(2), large.render(2))


def test_circle_mask_by_hand():
    # Radius 2 at (5, 5): pixel centres at offsets +-0.5 and +-1.5; 4 have d^2 = 0.5 and
    # 8 have d^2 = 2.5 (<= 4), the 4 corners have d^2 = 4.5: 12 pixels in rows/cols 3..6.
    mask = _shape_mask("circle", 5.0, 5.0, 2.0, 10, 10)
    assert mask.sum() == 12
    ys, xs = np.nonzero(mask)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (3, 6, 3, 6)
    assert not mask[3, 3] and mask[3, 4]


def test_shapes_are_distinct_and_clipped_at_the_border():
    areas = {s: _shape_mask(s, 40.0, 40.0, 30.0, 80, 80).sum() for s in SHAPES}
    # Pixel counts against the analytic areas (r^2 times the unit outline's area), within 3%.
    unit = {"circle": np.pi, "square": 1.7 ** 2, "diamond": 2.0, "triangle": 1.9 * 1.75 / 2,
            "hexagon": 3 * np.sqrt(3) / 2,
            "star": 10 * 0.5 * 1.0 * 0.45 * np.sin(np.pi / 5)}
    for shape, area in areas.items():
        assert area == pytest.approx(unit[shape] * 900, rel=0.03), shape
    half = _shape_mask("square", 0.0, 20.0, 10.0, 40, 40)
    assert half.sum() == 8 * 17  # x 0..7 (centres < 8.5) by rows 12..28 (17 rows)


def test_boxes_and_areas_are_those_of_the_masks(data):
    anns = data.gt["annotations"]
    rles = [a["segmentation"] for a in anns]
    np.testing.assert_array_equal(mask_utils.toBbox(rles), np.array([a["bbox"] for a in anns]))
    pixels = [int(mask_utils.decode(r).sum()) for r in rles]
    assert pixels == [a["area"] for a in anns]
    assert all(a["area"] > 0 for a in anns)


def test_masks_are_exactly_the_rendered_pixels_of_each_object(data):
    images = {img["id"]: img for img in data.gt["images"]}
    by_video: dict[int, list[dict]] = {}
    for ann in data.gt["annotations"]:
        by_video.setdefault(ann["video_id"], []).append(ann)
    for vid in data.video_ids[:15]:
        frames = data.render(vid)
        colour_of = {t.track_id: COLOURS[t.colour] for t in data.tracks(vid)}
        for track in data.tracks(vid):
            # Every pixel of the object's colour is in its mask and vice versa, frame by frame.
            painted = (frames == np.array(colour_of[track.track_id])).all(-1)
            from_gt = np.zeros_like(painted)
            for ann in by_video.get(vid, []):
                if ann["track_id"] == track.track_id:
                    t = images[ann["image_id"]]["frame_index"]
                    from_gt[t] = mask_utils.decode(ann["segmentation"]).astype(bool)
            np.testing.assert_array_equal(painted, from_gt)


def test_occlusion_keeps_only_the_visible_part():
    def square(track_id, colour, x):
        return ShapeTrack(track_id=track_id, shape="square", colour=colour, motion="still",
                          caption=f"a {colour} square", size=10.0, start=(x, 20.2),
                          velocity=(0.0, 0.0), growth=1.0, first_frame=0, last_frame=1)

    bottom, top = square(101, "red", 16.2), square(102, "blue", 26.2)
    data = SyntheticDataset.from_tracks([[bottom, top]], num_frames=2, height=40, width=48)
    boxes = {a["track_id"]: a["bbox"] for a in data.gt["annotations"] if a["image_id"] == 1}
    # Half-side 8.5: red spans 7.7..24.7 (pixel centres x 8..24), blue 17.7..34.7 (x 18..34),
    # both y 11.7..28.7 (rows 12..28).
    assert boxes[102] == [18.0, 12.0, 17.0, 17.0]
    assert boxes[101] == [8.0, 12.0, 10.0, 17.0]   # red keeps only x 8..17
    visible = data.visible_masks(1)
    assert not (visible[:, 0] & visible[:, 1]).any()


def test_hidden_object_gets_no_annotation():
    big = ShapeTrack(track_id=102, shape="square", colour="blue", motion="still", caption="b",
                     size=12.0, start=(16.0, 16.0), velocity=(0.0, 0.0), growth=1.0,
                     first_frame=0, last_frame=2)
    small = ShapeTrack(track_id=101, shape="circle", colour="red", motion="still", caption="a",
                       size=3.0, start=(16.0, 16.0), velocity=(0.0, 0.0), growth=1.0,
                       first_frame=0, last_frame=2)
    data = SyntheticDataset.from_tracks([[small, big]], num_frames=3, height=32, width=32)
    assert {a["track_id"] for a in data.gt["annotations"]} == {102}
    assert len(data.gt["images"]) == 3   # frames stay images even without a visible object


def test_captions_name_colour_shape_and_motion(data):
    by_track = {a["track_id"]: a for a in data.gt["annotations"]}
    articles, left_phrases = set(), set()
    for vid in data.video_ids:
        for track in data.tracks(vid):
            caption = track.caption
            assert re.search(rf"\b{track.colour}\b", caption), caption
            assert re.search(rf"\b{track.shape}\b", caption), caption
            assert any(caption.endswith(p) for p in _MOTION_PHRASES[track.motion]), caption
            for other in set(COLOURS) - {track.colour}:
                assert not re.search(rf"\b{other}\b", caption), caption
            articles.add(caption.split()[0])
            if track.motion == "left":
                left_phrases.add(caption)
            if track.track_id in by_track:
                ann = by_track[track.track_id]
                assert ann["caption"] == caption
                assert ann["category_id"] == SHAPES.index(track.shape) + 1
    assert articles == {"a", "the"}
    assert len(left_phrases) >= 2     # lexical variety within one motion


def test_motions_move_the_way_the_caption_says(data):
    seen = set()
    for vid in data.video_ids:
        for track in data.tracks(vid):
            first = track.geometry(track.first_frame, num_frames=12, height=64, width=80)
            last = track.geometry(track.last_frame, num_frames=12, height=64, width=80)
            dx, dy, grow = last[0] - first[0], last[1] - first[1], last[2] / first[2]
            expected = {"left": dx < -5, "right": dx > 5, "up": dy < -5, "down": dy > 5,
                        "growing": grow > 1.2, "shrinking": grow < 0.8,
                        "still": (dx, dy, grow) == (0, 0, 1), "bouncing": True}
            assert expected[track.motion], (track.motion, dx, dy, grow)
            seen.add(track.motion)
    assert seen == set(MOTIONS)


def test_bouncing_stays_inside_the_frame():
    track = ShapeTrack(track_id=1, shape="circle", colour="red", motion="bouncing", caption="",
                       size=5.0, start=(10.0, 10.0), velocity=(13.0, 7.0), growth=1.0,
                       first_frame=0, last_frame=39)
    xs = [track.geometry(t, num_frames=40, height=30, width=40)[0] for t in range(40)]
    assert min(xs) >= 5.0 and max(xs) <= 35.0
    # 10 -> 23 -> 36 folds back to 34 -> reflected from the right wall.
    assert xs[2] == pytest.approx(34.0)


def test_every_frame_is_an_image_in_order(data):
    images = data.gt["images"]
    assert len(images) == 40 * 12
    assert len({img["id"] for img in images}) == len(images)
    for vid in (1, 40):
        frames = [img["frame_index"] for img in images if img["video_id"] == vid]
        assert frames == list(range(12))
    assert data.gt["categories"] == CATEGORIES


def test_save_writes_frames_that_match_render(tmp_path):
    data = generate(num_videos=2, num_frames=3, seed=1)
    gt_path = data.save(tmp_path)
    gt = json.loads(gt_path.read_text())
    first = gt["images"][4]
    pixels = np.asarray(Image.open(tmp_path / "JPEGImages" / first["file_name"]))
    np.testing.assert_array_equal(pixels, data.render(first["video_id"])[first["frame_index"]])
    assert first["file_name"] == "video_00002/00001.png"
    data.save(tmp_path / "j", image_format="jpg")
    assert (tmp_path / "j" / "JPEGImages" / "video_00001" / "00002.jpg").exists()


def test_generation_is_fast():
    start = time.perf_counter()
    data = generate(num_videos=60, num_frames=16, seed=2)
    for vid in data.video_ids:
        data.render(vid)
    rate = 60 * 16 / (time.perf_counter() - start)
    assert rate > 1000, f"{rate:.0f} frames/s"   # measured about 3000/s (gt + frames), 2 cores


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="max_objects"):
        generate(num_videos=1, max_objects=len(COLOURS) + 1)
    with pytest.raises(ValueError, match="quality"):
        make_submission(generate(num_videos=1).gt, quality="great", seed=0)
    gt = generate(num_videos=1).gt
    del gt["annotations"][1]["bbox"]
    with pytest.raises(InputError, match=r"record 1, field 'bbox'"):
        make_submission(gt, quality="good", seed=0)
    with pytest.raises(InputError, match="nope.json"):
        make_submission("nope.json", quality="good", seed=0)


# ------------------------------------------------------------------ submissions of known quality

def _box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, :2] + a[:, None, 2:], b[None, :, :2] + b[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=-1)
    union = np.prod(a[:, 2:], -1)[:, None] + np.prod(b[:, 2:], -1)[None] - inter
    return inter / np.maximum(union, 1e-9)


def _simple_scores(gt: dict, preds: list[dict]) -> tuple[float, float, int]:
    """Independent check: per-frame Hungarian on box IoU >= 0.5 -> (DetA, exact-caption rate
    of the matches, number of predicted identities that cover two GT tracks)."""
    preds = [p for p in preds if p["score"] > 0.5]
    gts, ps = {}, {}
    for a in gt["annotations"]:
        gts.setdefault(a["image_id"], []).append(a)
    for p in preds:
        ps.setdefault(p["image_id"], []).append(p)
    tp = fn = fp = same = 0
    gt_of_pred: dict[int, set] = {}
    for image in gt["images"]:
        g, p = gts.get(image["id"], []), ps.get(image["id"], [])
        n = 0
        if g and p:
            iou = _box_iou(np.array([x["bbox"] for x in g], float),
                           np.array([x["bbox"] for x in p], float))
            rows, cols = linear_sum_assignment(-iou)
            for r, c in zip(rows, cols):
                if iou[r, c] >= 0.5:
                    n += 1
                    same += g[r]["caption"] == p[c]["caption"]
                    gt_of_pred.setdefault(p[c]["track_id"], set()).add(g[r]["track_id"])
        tp, fn, fp = tp + n, fn + len(g) - n, fp + len(p) - n
    return tp / (tp + fn + fp), same / max(tp, 1), len(gt_of_pred)


def test_submissions_are_in_a_clear_monotone_order(data):
    scores = {q: _simple_scores(data.gt, make_submission(data.gt, quality=q, seed=3))
              for q in SAMPLE_QUALITIES}
    det = [scores[q][0] for q in SAMPLE_QUALITIES]
    cap = [scores[q][1] for q in SAMPLE_QUALITIES]
    assert det[0] > 0.8 and det[0] - det[1] > 0.1 and det[1] - det[2] > 0.2, det
    assert cap[0] > cap[1] > cap[2], cap
    # More identity switches -> more predicted identities for the same GT tracks.
    assert scores["good"][2] < scores["fair"][2]


def test_submission_details(data):
    good = make_submission(data.gt, quality="good", seed=0)
    poor = make_submission(data.gt, quality="poor", seed=0)
    assert min(p["score"] for p in good) > 0.5
    assert any(p["score"] <= 0.5 for p in poor)
    assert make_submission(data.gt, quality="good", seed=0) == good
    for p in good[:200]:
        np.testing.assert_array_equal(mask_utils.toBbox(p["segmentation"]), p["bbox"])
        per_track = {q["caption"] for q in good if q["track_id"] == p["track_id"]
                     and q["video_id"] == p["video_id"]}
        assert len(per_track) == 1   # one caption per predicted track
    # Poor captions get colours or shapes wrong: some name a colour absent from the video.
    colours_in = {vid: {t.colour for t in data.tracks(vid)} for vid in data.video_ids}
    wrong = sum(1 for p in poor if not any(re.search(rf"\b{c}\b", p["caption"])
                                          for c in colours_in[p["video_id"]]))
    assert wrong > 0.2 * len(poor)


def test_box_only_ground_truth_gets_box_predictions():
    gt = generate(num_videos=3, seed=2).gt
    for ann in gt["annotations"]:
        del ann["segmentation"]
    preds = make_submission(gt, quality="fair", seed=1)
    assert preds and all("segmentation" not in p and len(p["bbox"]) == 4 for p in preds)
    assert _simple_scores(gt, preds)[0] > 0.3


def test_scored_by_chota_in_order():
    """The lead's scorer on the bundled sample: good > fair > poor on every component."""
    pytest.importorskip("benchmark.scoring")
    from benchmark import chota

    paths = sample_paths()
    for iou in ("box", "mask"):
        results = {q: chota(paths.gt, paths.submissions[q], iou=iou,
                            caption_metrics=("cider",)).to_dict() for q in SAMPLE_QUALITIES}
        # Measured (box): HOTA 0.94 / 0.71 / 0.22, CapA-cider 5.39 / 2.90 / 1.99.
        for key in ("HOTA", "DetA", "AssA", "CapA-cider", "CHOTA"):
            values = [results[q][key] for q in SAMPLE_QUALITIES]
            assert values[0] > values[1] > values[2], (iou, key, values)
        assert results["good"]["HOTA"] > 0.85 and results["poor"]["HOTA"] < 0.35


# ------------------------------------------------------------------ the bundled sample

def test_bundled_sample_is_a_fresh_generation(tmp_path):
    written = write_sample(tmp_path)
    paths = sample_paths()
    assert written["gt"].read_bytes() == paths.gt.read_bytes()
    for quality in SAMPLE_QUALITIES:
        assert written[quality].read_bytes() == paths.submissions[quality].read_bytes()


def test_bundled_sample_shape_and_size():
    paths = sample_paths()
    gt = json.loads(paths.gt.read_text())
    assert len(gt["videos"]) == SAMPLE_CONFIG["num_videos"]
    assert {(v["height"], v["width"], v["length"]) for v in gt["videos"]} == {(96, 128, 16)}
    assert all("segmentation" in a and a["caption"] for a in gt["annotations"])
    total = paths.gt.stat().st_size + sum(p.stat().st_size for p in paths.submissions.values())
    assert total < 2 * 1024 * 1024


def test_cli_make_and_generate(tmp_path: Path):
    assert _run_cli("sample", "make", "--out", str(tmp_path / "s")) == 0
    assert (tmp_path / "s" / "gt.json").read_bytes() == sample_paths().gt.read_bytes()
    assert _run_cli("sample", "generate", "--out", str(tmp_path / "g"), "--num-videos", "2",
                    "--num-frames", "4", "--no-frames", "--submissions", "poor") == 0
    gt = json.loads((tmp_path / "g" / "gt.json").read_text())
    assert len(gt["images"]) == 8
    assert not (tmp_path / "g" / "JPEGImages").exists()
    assert json.loads((tmp_path / "g" / "submissions" / "poor.json").read_text()) == \
        make_submission(gt, quality="poor", seed=0)
