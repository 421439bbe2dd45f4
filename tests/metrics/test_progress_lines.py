"""No progress line is left behind on standard error when it is a file or a pipe: tqdm's bars
end with a carriage return that a log keeps, so 'matching:   0%' lines stayed in it."""

from __future__ import annotations

import json
import sys

import pytest

from benchmark.cli import main
from benchmark.sample_data import sample_paths


@pytest.mark.parametrize("which", ["empty", "good"])
def test_score_leaves_no_progress_line_when_stderr_is_not_a_terminal(which, tmp_path, capsys):
    paths = sample_paths()
    pred = tmp_path / "empty.json"
    pred.write_text("[]")  # matching has nothing to do
    if which == "good":
        pred = paths.submissions["good"]
    assert main(["score", "--gt", str(paths.gt), "--pred", str(pred),
                 "--caption-metrics", "cider"]) == 0
    err = capsys.readouterr().err
    assert "matching" not in err and "\r" not in err, err


def test_score_still_shows_progress_on_a_terminal(capsys, monkeypatch):
    monkeypatch.setattr(type(sys.stderr), "isatty", lambda self: True, raising=False)
    paths = sample_paths()
    assert main(["score", "--gt", str(paths.gt), "--pred", str(paths.submissions["good"]),
                 "--caption-metrics", "cider"]) == 0
    assert "matching" in capsys.readouterr().err


def test_metric_commands_leave_no_progress_line(tmp_path, capsys):
    gt = {"videos": [{"id": 1, "height": 10, "width": 10, "length": 1}],
          "annotations": [{"id": 1, "video_id": 1, "category_id": 1, "bboxes": [[0, 0, 4, 4]]}],
          "categories": [{"id": 1, "name": "cat"}]}
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "pred.json").write_text("[]")
    assert main(["trackmap", "--gt", str(tmp_path / "gt.json"), "--pred",
                 str(tmp_path / "pred.json"), "--iou", "box"]) == 0
    err = capsys.readouterr().err
    assert "track mAP" not in err and "\r" not in err, err
