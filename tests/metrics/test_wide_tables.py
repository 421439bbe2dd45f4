"""Tables written to a file or a pipe are whole: rich would lay them out for 80 columns (or
$COLUMNS) when standard output is not a terminal, wrapping or cutting wide ones."""

from __future__ import annotations

from benchmark.cli import main
from benchmark.sample_data import sample_paths


def test_benchmark_score_prints_the_whole_table_when_piped(capsys, monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    paths = sample_paths()
    assert main(["score", "--gt", str(paths.gt), "--pred", str(paths.submissions["good"]),
                 "--caption-metrics", "cider", "--quiet"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    # the 'meaning' column is not wrapped: each field's description is on its row
    assert any("│ CapA " in line and "(no rescaling: CIDEr is x10)" in line for line in lines), out
    assert any("│ HOTA " in line and "detection and association together" in line
               for line in lines), out
    assert max(len(line) for line in lines) > 80


def test_metric_table_ignores_a_narrow_columns_when_piped(tmp_path, capsys, monkeypatch):
    import json

    monkeypatch.setenv("COLUMNS", "20")
    gt = {"videos": [{"id": 1, "height": 10, "width": 10, "length": 1}],
          "annotations": [{"id": 1, "video_id": 1, "category_id": 1, "bboxes": [[0, 0, 4, 4]]}],
          "categories": [{"id": 1, "name": "cat"}]}
    pred = [{"video_id": 1, "category_id": 1, "score": 0.9, "bboxes": [[0, 0, 4, 4]]}]
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "pred.json").write_text(json.dumps(pred))
    assert main(["trackmap", "--gt", str(tmp_path / "gt.json"), "--pred",
                 str(tmp_path / "pred.json"), "--iou", "box", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert any("│ AP_medium │ -1.0000 │" in line for line in out.splitlines()), out
