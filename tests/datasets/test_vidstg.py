"""VidSTG + VidOR converter: hand-worked fixture and the real validation sentences."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from benchmark.datacard import dataset_statistics
from benchmark.datasets.vidstg import convert_vidstg, tubedetr_frames
from benchmark.errors import InputError

DATA = Path(__file__).parents[1] / "data" / "datasets" / "vidstg"


def box(tid: int, x0: float, y0: float, x1: float, y1: float) -> dict:
    return {"tid": tid, "bbox": {"xmin": x0, "ymin": y0, "xmax": x1, "ymax": y1},
            "generated": 0, "tracker": "none"}


def sentence(vid: str, target: int, begin: int, end: int, text: str) -> dict:
    return {"vid": vid, "fps": 10.0, "frame_count": 12, "width": 64, "height": 48,
            "subject/objects": [{"tid": 0, "category": "dog"}, {"tid": 1, "category": "adult"},
                                {"tid": 2, "category": "ball"}],
            "used_segment": {"begin_fid": 0, "end_fid": 11},
            "used_relation": {"subject_tid": target, "object_tid": 2, "predicate": "watch",
                              "begin_fid": begin, "end_fid": end},
            "temporal_gt": {"begin_fid": begin, "end_fid": end},
            "captions": [{"description": text, "type": "x", "target_id": target}],
            "questions": []}


def write_vidor(folder: Path, vid: str, trajectories: list[list[dict]], fps: float = 10.0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{vid}.json").write_text(json.dumps({
        "video_id": vid, "frame_count": len(trajectories), "fps": fps, "width": 64,
        "height": 48, "subject/objects": [{"tid": 0, "category": "dog"},
                                          {"tid": 1, "category": "adult"},
                                          {"tid": 2, "category": "ball"}],
        "trajectories": trajectories}))


@pytest.fixture()
def small(tmp_path: Path) -> tuple[Path, Path]:
    # Video "100" sorts before "20" (string order), so it is video 1.
    sentences = [
        sentence("100", 0, 2, 6, "a dog runs."),      # frames 2, 4 (6 is excluded)
        sentence("20", 1, 0, 3, "an adult sits."),    # frames 0, 2 of video 2
        sentence("100", 0, 4, 9, "the dog stops."),   # frames 4, 6, 8: overrides frame 4
        sentence("100", 1, 0, 4, "an adult waves."),  # frames 0, 2 (4 is excluded)
    ]
    src = tmp_path / "val_annotations.json"
    src.write_text(json.dumps(sentences))
    # Video 100: dog (tid 0) everywhere, adult (tid 1) on frames 0-5, ball (tid 2) on frame 10.
    traj_100 = [[box(0, 10, 20, 30, 60)] + ([box(1, 1.5, 2, 11.5, 7)] if f < 6 else [])
                + ([box(2, 0, 0, 5, 5)] if f == 10 else []) for f in range(12)]
    write_vidor(tmp_path / "vidor" / "training" / "0001", "100", traj_100)
    write_vidor(tmp_path / "vidor" / "training" / "0007", "20",
                [[box(1, 0, 0, 4, 4)] for _ in range(12)])
    return src, tmp_path / "vidor" / "training"


def test_frame_rule_hand_cases() -> None:
    assert tubedetr_frames(12, 10.0) == [0, 2, 4, 6, 8, 10]
    # 29.97 fps: a new 1/5 s bucket starts at ceil(k * 5.994).
    assert tubedetr_frames(41, 29.97) == [0, 6, 12, 18, 24, 30, 36]
    # 3000 frames at 30 fps -> 500 frames at 5 fps -> kept[(j * 500) // 200].
    capped = tubedetr_frames(3000, 30.0)
    assert len(capped) == 200
    assert capped[:4] == [0, 12, 30, 42]  # kept[0], kept[2], kept[5], kept[7]
    assert capped[-1] == 6 * ((199 * 500) // 200)
    assert tubedetr_frames(1, 25.0) == [0]


def test_small_fixture_exact(small: tuple[Path, Path]) -> None:
    src, vidor = small
    gt = convert_vidstg(sentences=src, vidor=[vidor], show_progress=False)
    assert [(v["id"], v["name"], v["length"]) for v in gt["videos"]] == [(1, "100", 6),
                                                                         (2, "20", 6)]
    images = [(i["id"], i["video_id"], i["frame_index"], i["file_name"])
              for i in gt["images"] if i["video_id"] == 1]
    assert images == [(6000 + f, 1, k, f"100/{f:05d}.jpg") for k, f in enumerate(range(0, 12, 2))]
    assert [c["name"] for c in gt["categories"]] == ["adult", "ball", "dog"]
    got = {(a["image_id"], a["track_id"]): (a["bbox"], a["caption"], a["category_id"])
           for a in gt["annotations"]}
    dog, adult = [10.0, 20.0, 20.0, 40.0], [1.5, 2.0, 10.0, 5.0]
    expected = {
        (6000, 100): (dog, "", 3), (6000, 101): (adult, "an adult waves.", 1),
        (6002, 100): (dog, "a dog runs.", 3), (6002, 101): (adult, "an adult waves.", 1),
        (6004, 100): (dog, "the dog stops.", 3), (6004, 101): (adult, "", 1),
        (6006, 100): (dog, "the dog stops.", 3),
        (6008, 100): (dog, "the dog stops.", 3),
        (6010, 100): (dog, "", 3), (6010, 102): ([0.0, 0.0, 5.0, 5.0], "", 2),
    }
    expected.update({(12000 + f, 201): ([0.0, 0.0, 4.0, 4.0], "an adult sits." if f < 3 else "", 1)
                     for f in range(0, 12, 2)})
    assert got == expected
    assert len(gt["annotations"]) == len(expected)
    assert dataset_statistics(gt)["captioned_tracks"] == 3


def test_missing_vidor_file_names_the_sentence(small: tuple[Path, Path], tmp_path: Path) -> None:
    src, vidor = small
    (vidor / "0007" / "20.json").unlink()
    with pytest.raises(InputError) as err:
        convert_vidstg(sentences=src, vidor=[vidor], show_progress=False)
    assert "val_annotations.json: record 1, field 'vid'" in str(err.value)
    assert "20.json" in str(err.value)


def test_caption_target_without_box_is_an_error(small: tuple[Path, Path]) -> None:
    src, vidor = small
    sentences = json.loads(src.read_text())
    sentences.append(sentence("20", 0, 0, 2, "a dog that is not there."))
    src.write_text(json.dumps(sentences))
    with pytest.raises(InputError, match=r"record 4, field 'captions.target_id'"):
        convert_vidstg(sentences=src, vidor=[vidor], show_progress=False)


def test_malformed_box_names_file_record_field(small: tuple[Path, Path]) -> None:
    src, vidor = small
    file = vidor / "0007" / "20.json"
    data = json.loads(file.read_text())
    del data["trajectories"][4][0]["bbox"]["xmax"]
    file.write_text(json.dumps(data))
    with pytest.raises(InputError) as err:
        convert_vidstg(sentences=src, vidor=[vidor], show_progress=False)
    assert str(err.value).startswith(f"{file}: record trajectories[4][0], field 'bbox.xmax'")


# --- real VidSTG validation sentences with synthesised VidOR trajectories -------------------

@pytest.fixture(scope="module")
def real_gt(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict], dict]:
    """Convert the real val sentences. VidOR files are synthesised consistently with them: the
    subject of each sentence is present on every frame of its temporal window, its relation
    object on the window's first frame, every frame list has the VidOR frame_count length."""
    sentences = json.loads((DATA / "val_annotations.json").read_text())
    root = tmp_path_factory.mktemp("vidor") / "training"
    by_vid: dict[str, list[dict]] = defaultdict(list)
    for entry in sentences:
        by_vid[entry["vid"]].append(entry)
    for n, (vid, entries) in enumerate(sorted(by_vid.items())):
        first = entries[0]
        frames: list[dict[int, dict]] = [{} for _ in range(first["frame_count"])]
        for e in entries:
            rel, window = e["used_relation"], e["temporal_gt"]
            for f in range(window["begin_fid"], window["end_fid"]):
                frames[f][rel["subject_tid"]] = box(rel["subject_tid"], 1, 2, 11, 22)
            frames[window["begin_fid"]].setdefault(rel["object_tid"],
                                                   box(rel["object_tid"], 3, 3, 9, 9))
        folder = root / f"{n % 7:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{vid}.json").write_text(json.dumps({
            "video_id": vid, "frame_count": first["frame_count"], "fps": first["fps"],
            "width": first["width"], "height": first["height"],
            "subject/objects": first["subject/objects"],
            "trajectories": [list(f.values()) for f in frames]}))
    gt = convert_vidstg(sentences=DATA / "val_annotations.json", vidor=[root],
                        show_progress=False)
    return sentences, gt


def test_real_validation_counts(real_gt: tuple[list[dict], dict]) -> None:
    sentences, gt = real_gt
    assert len(sentences) == 3996
    assert len(gt["videos"]) == 602
    assert dataset_statistics(gt)["captioned_tracks"] == 1644  # MaskCaptioner: 602 videos, 1,644 captions
    # Every caption target (vid, tid) of the file is one of the captioned tracks.
    vid_no = {v["name"]: v["id"] for v in gt["videos"]}
    targets = {vid_no[e["vid"]] * 100 + e["captions"][0]["target_id"] for e in sentences}
    assert {a["track_id"] for a in gt["annotations"] if a["caption"]} == targets
    val_files = set(json.loads((DATA / "val_files.json").read_text()))
    assert set(vid_no) <= val_files


def test_real_validation_ids_and_frames(real_gt: tuple[list[dict], dict]) -> None:
    sentences, gt = real_gt
    names = sorted({e["vid"] for e in sentences})
    assert [v["name"] for v in gt["videos"]] == names
    assert [v["id"] for v in gt["videos"]] == list(range(1, 603))
    meta = {e["vid"]: e for e in sentences}
    per_video = defaultdict(list)
    for image in gt["images"]:
        per_video[image["video_id"]].append(image)
    for video in gt["videos"]:
        e = meta[video["name"]]
        images = per_video[video["id"]]
        # 5 fps count: one frame per 1/5-second bucket, i.e. int((N-1) * 5 / fps) + 1.
        at_5fps = int((e["frame_count"] - 1) * 5 / e["fps"]) + 1
        assert len(images) == min(200, at_5fps), video["name"]
        assert [i["frame_index"] for i in images] == list(range(len(images)))
        assert all(i["id"] // 6000 == video["id"] for i in images)
    assert all(a["track_id"] // 100 == a["video_id"] for a in gt["annotations"])


def test_real_validation_caption_windows(real_gt: tuple[list[dict], dict]) -> None:
    """Each captioned box carries the caption of the LAST sentence (file order) whose window
    [begin, end) holds the frame; boxes outside all windows of their tid are uncaptioned."""
    sentences, gt = real_gt
    vid_no = {v["name"]: v["id"] for v in gt["videos"]}
    windows = defaultdict(list)
    for e in sentences:
        track = vid_no[e["vid"]] * 100 + e["captions"][0]["target_id"]
        windows[track].append((e["temporal_gt"]["begin_fid"], e["temporal_gt"]["end_fid"],
                               e["captions"][0]["description"]))
    captioned = 0
    for a in gt["annotations"]:
        frame = a["image_id"] % 6000
        covering = [text for begin, end, text in windows.get(a["track_id"], [])
                    if begin <= frame < end]
        assert a["caption"] == (covering[-1] if covering else "")
        captioned += bool(a["caption"])
    assert captioned == 101160
    assert len({(a["track_id"], a["caption"]) for a in gt["annotations"] if a["caption"]}) == 2468
