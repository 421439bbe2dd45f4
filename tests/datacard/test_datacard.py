"""Tests of dataset statistics, data-card parsing and the card-versus-data check."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pytest

from benchmark.datacard import (
    REQUIRED_FIELDS, REQUIRED_SECTIONS, STAT_KEYS, DataCard, compare_statistics,
    dataset_statistics, parse_card, validate_card,
)
from benchmark.errors import InputError
from benchmark.sample_data import sample_paths

CARDS = Path(__file__).resolve().parents[2] / "data_cards"
RLE = {"size": [2, 2], "counts": "04"}


def _run_cli(*argv: str) -> int:
    # The datacard command on its own parser, independent of the other commands.
    from benchmark.commands import datacard

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    datacard.register(sub)
    args = parser.parse_args(list(argv))
    return args.func(args)


def _tiny_coco_video() -> dict:
    images = [{"id": i, "video_id": v} for i, v in [(1, 1), (2, 1), (3, 1), (4, 2), (5, 2), (6, 3)]]
    box = [0, 0, 1, 1]
    anns = [
        {"image_id": 1, "track_id": 1, "category_id": 1, "bbox": box, "segmentation": RLE,
         "caption": "A red ball."},
        {"image_id": 2, "track_id": 1, "category_id": 1, "bbox": box, "caption": "A red ball."},
        {"image_id": 1, "track_id": 2, "category_id": 2, "bbox": box, "caption": ""},
        # Track 1 again, but in video 2: another track.
        {"image_id": 4, "track_id": 1, "category_id": 1, "bbox": box, "segmentation": RLE,
         "caption": "the dog runs"},
        {"image_id": 5, "track_id": 1, "category_id": 1, "bbox": box, "caption": "a dog"},
        {"image_id": 5, "track_id": 7, "category_id": 1, "bbox": None, "segmentation": RLE,
         "caption": ""},
    ]
    return {"videos": [{"id": 1}, {"id": 2}, {"id": 3}], "images": images, "annotations": anns,
            "categories": [{"id": 1, "name": "dog"}, {"id": 2, "name": "ball"},
                           {"id": 3, "name": "cat"}]}


def test_statistics_by_hand_coco_video():
    stats = dataset_statistics(_tiny_coco_video())
    expected = {
        "videos": 3, "frames": 6,
        "tracks": 4,                      # (v1,1) (v1,2) (v2,1) (v2,7)
        "captioned_tracks": 2,            # (v1,1) (v2,1)
        "captions": 3,                    # "A red ball." + two different captions of (v2,1)
        "boxes": 5, "masks": 3,
        "objects_per_video_mean": 1.3333, "objects_per_video_median": 2.0,
        "objects_per_video_max": 2,       # tracks per video: 2, 2, 0
        "words_per_caption_mean": 2.6667,  # (3 + 3 + 2) / 3
        "vocabulary_size": 6,             # a red ball the dog runs
        "categories": 3, "categories_used": 2,
    }
    assert {k: stats[k] for k in STAT_KEYS} == expected
    assert stats["category_tracks"] == {"dog": 3, "ball": 1}


def test_statistics_by_hand_per_track():
    gt = {
        "videos": [{"id": 1, "file_names": ["a", "b", "c"], "length": 3},
                   {"id": 2, "file_names": ["d", "e"], "length": 2}],
        "annotations": [
            {"id": 10, "video_id": 1, "category_id": 1, "bboxes": [[0, 0, 1, 1], None, [0, 0, 1, 1]],
             "segmentations": [RLE, None, None], "caption": "a cat sleeping"},
            {"id": 11, "video_id": 1, "category_id": 1, "bboxes": [None, [0, 0, 1, 1], None],
             "segmentations": [None, RLE, None], "caption": ""},
            # Several references for one object (SAV-Caption style).
            {"id": 12, "video_id": 2, "category_id": 2, "segmentations": [RLE, RLE],
             "bboxes": [[0, 0, 1, 1], [0, 0, 1, 1]], "caption": ["a dog", "the brown dog"]},
        ],
        "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}],
    }
    stats = dataset_statistics(gt)
    assert (stats["videos"], stats["frames"], stats["tracks"]) == (2, 5, 3)
    assert (stats["captioned_tracks"], stats["captions"]) == (2, 3)
    assert (stats["boxes"], stats["masks"]) == (5, 4)
    assert (stats["objects_per_video_mean"], stats["objects_per_video_median"],
            stats["objects_per_video_max"]) == (1.5, 1.5, 2)
    assert stats["words_per_caption_mean"] == pytest.approx(8 / 3, abs=1e-4)
    assert stats["vocabulary_size"] == 6      # a cat sleeping dog the brown


def test_statistics_of_the_bundled_sample_against_pycocotools_counts():
    gt = json.loads(sample_paths().gt.read_text())
    stats = dataset_statistics(sample_paths().gt)
    assert stats["boxes"] == stats["masks"] == len(gt["annotations"])
    assert stats["tracks"] == len({(a["video_id"], a["track_id"]) for a in gt["annotations"]})
    assert stats["frames"] == 12 * 16


def test_bad_ground_truth_names_record_and_field(tmp_path):
    gt = _tiny_coco_video()
    del gt["annotations"][2]["track_id"]
    with pytest.raises(InputError, match=r"record 2, field 'track_id'"):
        dataset_statistics(gt)
    gt = _tiny_coco_video()
    gt["annotations"][0]["image_id"] = 99
    with pytest.raises(InputError, match="image 99"):
        dataset_statistics(gt)
    broken = tmp_path / "gt.json"
    broken.write_text("{not json")
    with pytest.raises(InputError, match="gt.json"):
        dataset_statistics(broken)
    with pytest.raises(InputError, match="videos"):
        dataset_statistics({"annotations": []})


def test_every_card_parses_and_is_complete():
    names = sorted(p.name for p in CARDS.glob("*.md"))
    assert names == sorted(["vidstg.md", "vln.md", "bensmot.md", "lv-viscap.md", "lviscap.md",
                            "sav-caption.md", "vicas.md", "sample.md"])
    for path in CARDS.glob("*.md"):
        card = parse_card(path)
        assert validate_card(card) == [], path.name
        assert set(REQUIRED_FIELDS) <= set(card.metadata), path.name
        assert all(card.sections[s] for s in REQUIRED_SECTIONS), path.name
        assert all(block["source"] for block in card.metadata["statistics"].values())


def test_sample_card_matches_the_bundled_data():
    card = parse_card(CARDS / "sample.md")
    mismatches, not_checked = compare_statistics(card, dataset_statistics(sample_paths().gt))
    assert mismatches == [] and not_checked == []
    assert _run_cli("datacard", "check", str(CARDS / "sample.md"), str(sample_paths().gt)) == 0


def test_tampered_card_fails_with_each_mismatch(tmp_path, capsys):
    text = (CARDS / "sample.md").read_text()
    text = text.replace("    videos: 12\n", "    videos: 13\n")
    text = text.replace("    words_per_caption_mean: 6.31\n", "    words_per_caption_mean: 6.5\n")
    tampered = tmp_path / "sample.md"
    tampered.write_text(text)
    assert _run_cli("datacard", "check", str(tampered), str(sample_paths().gt)) == 1
    err = capsys.readouterr().err
    assert "videos: card says 13, data has 12" in err
    assert "words_per_caption_mean: card says 6.5, data has 6.3077" in err
    assert "2 statistics mismatch(es)" in err


def test_float_statistics_compare_at_the_cards_precision():
    stats = {"words_per_caption_mean": 13.93, "videos": 602}
    def card(value):
        return DataCard(Path("c.md"), {"statistics": {"val": {
            "source": "paper", "words_per_caption_mean": value, "videos": 602,
            "frames": None, "tracks": "5.4k", "lg_vis_prompts": 3}}}, {})
    assert compare_statistics(card(13.9), stats) == ([], ["frames", "tracks", "lg_vis_prompts"])
    assert compare_statistics(card(13.93), stats)[0] == []
    assert [m.key for m in compare_statistics(card(14.0), stats)[0]] == ["words_per_caption_mean"]


def test_split_must_be_chosen_when_there_are_several():
    card = parse_card(CARDS / "vidstg.md")
    with pytest.raises(InputError, match="--split"):
        compare_statistics(card, {})
    with pytest.raises(InputError, match="no split 'test'"):
        compare_statistics(card, {}, split="test")
    stats = {k: 0 for k in STAT_KEYS} | {"videos": 602, "captioned_tracks": 1644}
    assert compare_statistics(card, stats, split="val")[0] == []


def test_validation_lists_missing_parts(tmp_path, capsys):
    text = (CARDS / "sample.md").read_text()
    text = text.replace("pretty_name: DVOC synthetic shapes sample\n", "")
    text = text.replace("## Maintenance\n", "## Upkeep\n")
    text = text.replace("    videos: 12\n", "    videos: [12]\n")
    broken = tmp_path / "broken.md"
    broken.write_text(text)
    problems = validate_card(parse_card(broken))
    assert "front matter: missing field 'pretty_name'" in problems
    assert "missing section '## Maintenance'" in problems
    assert any(p.startswith("statistics.sample.videos:") for p in problems)
    assert len(problems) == 3
    assert _run_cli("datacard", "lint", str(broken), str(CARDS / "vln.md")) == 1
    captured = capsys.readouterr()
    assert "vln.md: OK" in captured.out and "broken.md: missing section" in captured.err
    nofront = tmp_path / "plain.md"
    nofront.write_text("# just markdown\n")
    with pytest.raises(InputError, match="plain.md: no YAML front matter"):
        parse_card(nofront)


def test_stats_cli_writes_json(tmp_path, capsys):
    out = tmp_path / "stats.json"
    assert _run_cli("datacard", "stats", str(sample_paths().gt), "--json", str(out)) == 0
    written = json.loads(out.read_text())
    assert written == json.loads(json.dumps(dataset_statistics(sample_paths().gt)))
    assert "vocabulary_size" in capsys.readouterr().out


def test_stats_tables_are_not_cut_when_piped(tmp_path):
    # Piped, rich lays tables out for 80 columns and cuts a long cell with "…"; the datacard
    # tables use the score tables' full-width console, so a log or file holds every name.
    import subprocess
    import sys

    gt = json.loads(sample_paths().gt.read_text())
    long_name = "category_with_a_name_much_longer_than_an_eighty_column_terminal_" * 2
    gt["categories"][0]["name"] = long_name
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(gt))
    # Without the variables that make rich assume a terminal or a width (as in a CI log).
    env = {k: v for k, v in os.environ.items()
           if k not in ("COLUMNS", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")}
    done = subprocess.run([sys.executable, "-m", "benchmark", "datacard", "stats", str(path)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          encoding="utf-8", env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert long_name in done.stdout
    assert "…" not in done.stdout
