"""The ground truth loaded in a forked child while the predictions are read: the same object,
the same errors and warnings as loading in this process, and no child left behind."""

import gc
import json
import os
import time
import warnings
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

import benchmark.background as background
from benchmark import chota
from benchmark.background import PendingGroundTruth
from benchmark.errors import InputError
from benchmark.gc_pause import gc_paused
from benchmark.io import load_ground_truth

GOLDEN = Path(__file__).parents[1] / "data" / "golden"

pytestmark = pytest.mark.skipif(not hasattr(os, "fork") or os.uname().sysname != "Linux",
                                reason="the ground truth loads in the background on Linux only")


@pytest.fixture
def always_background(monkeypatch):
    """Send every input, however small, to a child process."""
    monkeypatch.setattr(background, "BACKGROUND_MIN_BYTES", 0)
    monkeypatch.setattr(background, "BACKGROUND_MIN_RECORDS", 0)
    monkeypatch.setattr(background.os, "cpu_count", lambda: 2)


@pytest.fixture
def children(monkeypatch):
    """The child process of each PendingGroundTruth created (None where it loads here)."""
    started = []
    real_init = PendingGroundTruth.__init__

    def spy(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        started.append(self._process)

    monkeypatch.setattr(PendingGroundTruth, "__init__", spy)
    return started


def assert_same(a, b):
    """Two loaded objects (dataclasses of arrays, lists and scalars) are equal field by field."""
    assert type(a) is type(b)
    for f in fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if hasattr(x, "__dataclass_fields__"):
            assert_same(x, y)
        elif isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), f.name
        elif isinstance(x, list) and x and isinstance(x[0], np.ndarray):
            assert len(x) == len(y) and all(np.array_equal(p, q) for p, q in zip(x, y)), f.name
        else:
            assert x == y, f.name


@pytest.mark.parametrize("case", ["visible_small", "visible_medium", "visible_sparse_captions"])
def test_the_child_loads_what_this_process_loads(case, always_background):
    path = GOLDEN / case / "gt.json"
    pending = PendingGroundTruth(path)
    assert pending.in_background
    loaded = pending.result()
    assert not pending.in_background  # the child has ended
    assert_same(loaded, load_ground_truth(path))
    assert pending.result() is loaded  # waited for once


@pytest.mark.parametrize("iou", ["box", "mask"])
def test_chota_scores_the_same_with_the_ground_truth_loaded_in_the_background(iou, always_background,
                                                                               children):
    gt, pred = GOLDEN / "visible_medium" / "gt.json", GOLDEN / "visible_medium" / "pred.json"
    options = dict(iou=iou, caption_metrics=("cider",), alphas="hota")
    result = chota(gt, pred, **options)
    assert len(children) == 1 and children[0] is not None
    inline = chota(gt, pred, num_workers=1, **options)  # one process: loads in turn
    assert len(children) == 2 and children[1] is None
    assert result.to_dict() == inline.to_dict()
    assert result.per_video.equals(inline.per_video)


def write(tmp_path, name, data):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def small_case():
    gt = {"videos": [{"id": 1}], "images": [{"id": 7, "video_id": 1}, {"id": 8, "video_id": 1}],
          "annotations": [{"image_id": 7, "track_id": 1, "bbox": [0, 0, 2, 2], "caption": "a dog"},
                          {"image_id": 8, "track_id": 1, "bbox": [0, 0, 2, 2], "caption": "a dog"}]}
    pred = [{"image_id": 7, "track_id": 3, "bbox": [0, 0, 2, 2], "score": 0.9, "caption": "a dog"}]
    return gt, pred


def test_a_ground_truth_error_comes_first_as_when_loaded_in_turn(tmp_path, always_background):
    gt, pred = small_case()
    gt["annotations"][1]["bbox"] = [0, 0, -1, 2]
    bad_pred = [dict(pred[0], score="high")]
    gt_path, pred_path = write(tmp_path, "gt.json", gt), write(tmp_path, "pred.json", bad_pred)
    with pytest.raises(InputError) as inline:
        load_ground_truth(gt_path)
    for pred_source in (pred_path, write(tmp_path, "ok.json", pred)):
        with pytest.raises(InputError) as raised:
            chota(gt_path, pred_source, caption_metrics=("cider",))
        assert str(raised.value) == str(inline.value)
        assert "annotations[1]" in str(raised.value) and "negative width" in str(raised.value)
    # Only the predictions are wrong: their error, naming the record and field.
    gt_path = write(tmp_path, "gt_ok.json", small_case()[0])
    with pytest.raises(InputError, match=r"pred.json: record predictions\[0\], field 'score'"):
        chota(gt_path, pred_path, caption_metrics=("cider",))


def test_warnings_of_the_child_are_issued_here(tmp_path, always_background):
    gt, pred = small_case()
    gt["images"][0]["frame_index"], gt["images"][1]["frame_index"] = 0, 2  # a gap: a warning
    pending = PendingGroundTruth(write(tmp_path, "gt.json", gt))
    assert pending.in_background
    with pytest.warns(UserWarning, match="gaps in frame_index, first video 1"):
        pending.result()


def test_a_child_that_dies_is_replaced_by_loading_here(tmp_path, always_background, monkeypatch):
    parent = os.getpid()
    real = background.load_ground_truth

    def dies_in_the_child(*args, **kwargs):
        if os.getpid() != parent:
            os._exit(3)
        return real(*args, **kwargs)

    monkeypatch.setattr(background, "load_ground_truth", dies_in_the_child)
    path = write(tmp_path, "gt.json", small_case()[0])
    pending = PendingGroundTruth(path)
    with pytest.warns(RuntimeWarning, match="exit code 3 and no result; loading it here"):
        loaded = pending.result()
    assert_same(loaded, real(path))


def test_a_bug_in_the_child_is_raised_with_its_traceback(tmp_path, always_background, monkeypatch):
    def broken(*args, **kwargs):
        return 1 / 0

    monkeypatch.setattr(background, "load_ground_truth", broken)
    pending = PendingGroundTruth(write(tmp_path, "gt.json", small_case()[0]))
    with pytest.raises(ZeroDivisionError) as raised:
        pending.result()
    assert "background process" in str(raised.value.__cause__)
    assert "in broken" in str(raised.value.__cause__)  # the child's traceback


def test_close_stops_a_child_still_loading(tmp_path, always_background, monkeypatch):
    monkeypatch.setattr(background, "load_ground_truth", lambda *a, **k: time.sleep(60))
    pending = PendingGroundTruth(write(tmp_path, "gt.json", small_case()[0]))
    process = pending._process
    assert process.is_alive()
    start = time.perf_counter()
    pending.close()
    assert time.perf_counter() - start < 5 and not process.is_alive()


def test_a_failed_run_stops_the_child(tmp_path, always_background, monkeypatch, children):
    gt_path = write(tmp_path, "gt.json", small_case()[0])
    pred_path = tmp_path / "pred.json"
    pred_path.write_text("[{")
    # Bad predictions: their error, once the ground truth is known to have none.
    with pytest.raises(InputError, match="pred.json: not valid JSON"):
        chota(gt_path, pred_path, caption_metrics=("cider",))
    # A bad option, while the child is still loading: it is stopped at once.
    monkeypatch.setattr(background, "load_ground_truth", lambda *a, **k: time.sleep(60))
    start = time.perf_counter()
    with pytest.raises(InputError, match="iou must be"):
        chota(gt_path, write(tmp_path, "ok.json", small_case()[1]), iou="cube")
    assert time.perf_counter() - start < 5
    assert len(children) == 2 and all(p is not None and not p.is_alive() for p in children)


def test_what_goes_to_a_child(tmp_path, monkeypatch):
    monkeypatch.setattr(background.os, "cpu_count", lambda: 2)
    small = write(tmp_path, "gt.json", small_case()[0])
    assert not PendingGroundTruth(small).in_background  # smaller than a process costs
    big = {"annotations": [{}] * background.BACKGROUND_MIN_RECORDS}
    assert background._worth_a_process(big)
    assert not PendingGroundTruth(big, background=False).in_background
    monkeypatch.setattr(background, "BACKGROUND_MIN_BYTES", 0)
    assert background._worth_a_process(small)
    assert not background._worth_a_process(tmp_path / "missing.json")  # the loader names it
    monkeypatch.setattr(background.os, "cpu_count", lambda: 1)
    assert not background._worth_a_process(small)  # one core: nothing runs alongside


def test_gc_paused_restores_the_collector_and_nests():
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # only the outermost pause re-enables
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # was off: stays off
    finally:
        gc.enable()
    with pytest.raises(ZeroDivisionError):
        with gc_paused():
            1 / 0
    assert gc.isenabled()
