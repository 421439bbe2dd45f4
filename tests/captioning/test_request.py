"""The exact request built for a fixture object, the visual prompts and the source loaders."""

from __future__ import annotations

import hashlib

import cv2
import numpy as np
import pytest

from benchmark.captioning import CaptionPipeline, add_captions, load_targets
from benchmark.captioning.prompts import PROMPT_VERSION, SYSTEM_PROMPTS
from benchmark.captioning.visual import render_views, sample_indices
from benchmark.errors import InputError


def decoded(png: bytes) -> np.ndarray:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)


def targets_of(lvvis):
    return {t.annotation_id: t for t in load_targets(lvvis["data"], frames_root=lvvis["frames_root"], dataset="lvvis")}


EXPECTED_CAT_PROMPT = """Category of the queried object: cat
Frame size: 64 x 48 pixels.
Box of the queried object in each frame, as [x_min, y_min, x_max, y_max] in pixels:
- frame 1: [8, 10, 24, 20]
- frame 2: [12, 10, 28, 20]
- frame 3: [14, 10, 30, 20]
- frame 4: [18, 10, 34, 20]
Area of the queried object: 5.2% of the frame on average.
Other objects annotated in the video: dog, person."""

# SHA-256 of the decoded BGR pixels of the 4 frames sent for the cat (PNG bytes themselves may
# differ between zlib builds; the pixels may not).
EXPECTED_CAT_PIXELS = [
    "646202e203a850541f4d1b46d6b0e5c085677a547eba4fb023aec425706e1f4c",
    "ce1e7c182d08b354b22cd7330aad911c0db64baff42310c38545e56f61202b0a",
    "1bdc23b0777f21f0041f094c6385569ad87a44067cd30357627f949212fa0c79",
    "0f0dc0dbce3f5406a93d8150a59362c5d2c952463b904a51ce75426b3ac6f50f",
]


def test_exact_request_for_fixture_object(lvvis, tmp_path):
    cat = targets_of(lvvis)["11"]
    pipeline = CaptionPipeline(client=None, cache_path=tmp_path / "c.jsonl", progress=False)
    request = pipeline.build_request(cat)
    assert request.model == "gemini-2.0-flash"
    assert request.system_prompt == SYSTEM_PROMPTS["boxes"]
    assert len(request.turns) == 1 and request.turns[0].role == "user"
    assert request.turns[0].text == EXPECTED_CAT_PROMPT
    images = [decoded(png) for png in request.turns[0].images]
    assert [hashlib.sha256(np.ascontiguousarray(im).tobytes()).hexdigest() for im in images] == EXPECTED_CAT_PIXELS
    assert pipeline.key(cat) == f"lvvis|11|{PROMPT_VERSION}/boxes/f4/s768/t0.2|gemini-2.0-flash"


def test_box_drawn_in_red_and_rest_of_frame_untouched(lvvis):
    cat = targets_of(lvvis)["11"]
    views = render_views(cat, style="boxes")
    assert [v.frame_index for v in views] == [0, 2, 3, 5]
    for view in views:
        image = decoded(view.png)
        source = cv2.imread(str(cat.frame_paths[view.frame_index]))
        x1, y1, x2, y2 = (int(v) for v in view.box_xyxy)
        assert image[y1, (x1 + x2) // 2].tolist() == [0, 0, 255]      # top edge, BGR red
        assert image[(y1 + y2) // 2, x1].tolist() == [0, 0, 255]      # left edge
        # Inside (away from the 2-px line) and far outside: the original pixels.
        assert image[y1 + 4, x1 + 5].tolist() == source[y1 + 4, x1 + 5].tolist()
        assert image[40, 5].tolist() == source[40, 5].tolist()


def test_contour_prompt_blurs_outside_keeps_inside(lvvis):
    cat = targets_of(lvvis)["11"]
    view = render_views(cat, style="contour", num_frames=1)[0]
    image = decoded(view.png).astype(int)
    source = cv2.imread(str(cat.frame_paths[view.frame_index])).astype(int)
    x1, y1, x2, y2 = (int(v) for v in view.box_xyxy)
    assert image[y1, x1 + 5].tolist() == [0, 0, 255]                   # contour on the mask edge
    inside = (slice(y1 + 3, y2 - 3), slice(x1 + 3, x2 - 3))
    assert np.array_equal(image[inside], source[inside])
    outside = (slice(30, 48), slice(0, 64))
    assert np.abs(image[outside] - source[outside]).mean() > 5           # textured -> visibly blurred


def test_resize_scales_boxes(lvvis):
    cat = targets_of(lvvis)["11"]
    view = render_views(cat, num_frames=1, max_side=32)[0]
    assert view.size == (32, 24)
    assert view.box_xyxy == pytest.approx((6.0, 5.0, 14.0, 10.0))      # frame 2: [12,10,28,20] / 2
    assert decoded(view.png).shape == (24, 32, 3)


@pytest.mark.parametrize("n,k,expected", [(6, 4, [0, 2, 3, 5]), (3, 4, [0, 1, 2]), (10, 4, [0, 3, 6, 9]), (5, 1, [2])])
def test_sample_indices(n, k, expected):
    assert sample_indices(n, k) == expected


def test_boxes_from_masks_polygons_and_given_boxes(lvvis):
    targets = targets_of(lvvis)
    assert set(targets) == {"11", "12", "13", "21", "22"}
    assert targets["11"].boxes[1] == (10.0, 10.0, 16.0, 10.0)
    assert targets["12"].present_frames == [0, 1, 2]                    # box-only, then absent
    assert targets["12"].boxes[0] == (30.0, 25.0, 20.0, 15.0)
    assert targets["13"].boxes[0] == (40.0, 2.0, 20.0, 18.0)            # polygon -> mask -> box
    assert targets["22"].present_frames == [1]
    assert targets["22"].other_categories == ("cat",)
    assert targets["11"].frame_paths[3] == lvvis["frames_root"] / "00001" / "00003.png"


def test_lvis_images_are_one_frame_videos(tmp_path):
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((20, 30, 3), np.uint8))
    data = {
        "images": [{"id": 5, "height": 20, "width": 30, "coco_url": "http://x/val2017/a.png"}],
        "annotations": [
            {"id": 1, "image_id": 5, "category_id": 1, "bbox": [0, 0, 1, 1], "segmentation": [[2, 2, 12, 2, 12, 8, 2, 8]]},
            {"id": 2, "image_id": 5, "category_id": 2, "bbox": [3, 4, 5, 6], "segmentation": []},
        ],
        "categories": [{"id": 1, "name": "mug"}, {"id": 2, "name": "spoon"}],
    }
    targets = load_targets(data, frames_root=tmp_path, dataset="lvis")
    assert [t.boxes for t in targets] == [((2.0, 2.0, 10.0, 6.0),), ((3.0, 4.0, 5.0, 6.0),)]
    assert targets[0].frame_paths == (tmp_path / "val2017" / "a.png",)
    assert targets[0].other_categories == ("spoon",)
    out = add_captions(data, {"1": "A white mug stands on a table."})
    assert [a["caption"] for a in out["annotations"]] == ["A white mug stands on a table.", ""]
    assert "caption" not in data["annotations"][0]                      # the source is not modified


def test_add_captions_ytvis_adds_boxes_from_masks(lvvis):
    out = add_captions(lvvis["data"], {"11": "A grey cat walks to the right."})
    cat = out["annotations"][0]
    assert cat["caption"] == "A grey cat walks to the right."
    assert cat["bboxes"][2] == [12.0, 10.0, 16.0, 10.0]
    assert out["annotations"][1]["caption"] == ""


def test_bad_segmentation_names_record_and_field(lvvis):
    lvvis["data"]["annotations"][0]["segmentations"][2] = {"size": [48, 64], "counts": 5}
    with pytest.raises(InputError, match=r"val_instances.json: record 11, field 'segmentations\[2\]'"):
        load_targets(lvvis["data"], frames_root=lvvis["frames_root"], dataset="lvvis", source="val_instances.json")


def test_missing_frame_is_an_input_error(lvvis):
    cat = targets_of(lvvis)["11"]
    cat.frame_paths[0].unlink()
    with pytest.raises(InputError, match="00000.png"):
        render_views(cat)
