"""VoCap object captioning: multi-reference CIDEr-D against pycocoevalcap, and the join."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from benchmark.errors import InputError
from benchmark.metrics.vocap import multi_reference_cider, vocap

WORDS = "a the man woman dog red blue runs sits car ball with on grass jumps".split()


def _sentence(rng):
    return " ".join(rng.choice(WORDS, size=rng.integers(2, 9)))


def test_multi_reference_cider_matches_pycocoevalcap():
    from pycocoevalcap.cider.cider import Cider

    rng = np.random.default_rng(0)
    refs = {i: [_sentence(rng) for _ in range(rng.integers(1, 4))] for i in range(40)}
    cands = {i: _sentence(rng) for i in range(40)}
    cands[3] = refs[3][0]  # an exact hit
    ours = multi_reference_cider(refs, cands)
    mean, per_item = Cider().compute_score(refs, {i: [c] for i, c in cands.items()})
    assert [ours[i] for i in range(40)] == pytest.approx(list(per_item), abs=1e-9)
    assert np.mean(list(ours.values())) == pytest.approx(mean, abs=1e-9)
    assert max(ours.values()) > 1.0  # not a degenerate corpus


def test_document_frequency_counts_an_object_once():
    # "dog" is in both references of object 1 but in one document only: df = 1, not 2.
    # With 2 objects, log(2) - log(1) > 0, so the shared word keeps its weight.
    refs = {1: ["dog", "dog"], 2: ["cat"]}
    scores = multi_reference_cider(refs, {1: "dog", 2: "cow"})
    assert scores[1] == pytest.approx(10.0 / 4)  # only the unigram order matches (of 4)
    assert scores[2] == 0.0


def _gt():
    return {"videos": [{"id": 1, "height": 8, "width": 8, "length": 1},
                       {"id": 2, "height": 8, "width": 8, "length": 1}],
            "annotations": [
                {"id": 11, "video_id": 1, "category_id": 1, "bboxes": [[0, 0, 2, 2]],
                 "captions": ["a dog runs on grass", "a brown dog running", "dog runs"]},
                {"id": 12, "video_id": 1, "category_id": 1, "bboxes": [[4, 4, 2, 2]],
                 "captions": ["a red ball", "a ball rolls", "red ball on grass"]},
                {"id": 21, "video_id": 2, "category_id": 1, "bboxes": [[0, 0, 2, 2]],
                 "captions": ["a man sits", "a man sitting down", "man on a chair"]}]}


def test_vocap_joins_by_object_and_scores_missing_as_empty():
    from pycocoevalcap.cider.cider import Cider

    preds = [{"video_id": 1, "id": 11, "caption": "a dog runs"},
             {"video_id": 2, "track_id": 21, "caption": "a man sits on a chair"}]
    res = vocap(_gt(), preds)
    gt = _gt()["annotations"]
    _, per_item = Cider().compute_score({a["id"]: a["captions"] for a in gt},
                                        {11: ["a dog runs"], 12: [""],
                                         21: ["a man sits on a chair"]})
    assert res.summary["CIDER"] == pytest.approx(float(np.mean(per_item)), abs=1e-9)
    assert res.summary["objects_predicted"] == 2 and res.summary["objects_with_references"] == 3
    row = res.per_object.set_index("track_id")
    assert row.loc[12, "CIDER"] == 0.0 and not row.loc[12, "predicted"]
    assert "J&F" not in res.summary  # no masklets given


def test_vocap_rejects_two_answers_for_one_object():
    preds = [{"video_id": 1, "id": 11, "caption": "x"}, {"video_id": 1, "id": 11, "caption": "y"}]
    with pytest.raises(InputError, match="two predictions for object 11"):
        vocap(_gt(), preds)


@pytest.mark.java
@pytest.mark.skipif(shutil.which("java") is None, reason="needs Java")
def test_vocap_meteor_uses_all_references():
    preds = [{"video_id": 1, "id": 11, "caption": "a brown dog running"},
             {"video_id": 1, "id": 12, "caption": "a cat"},
             {"video_id": 2, "id": 21, "caption": "a man sits"}]
    res = vocap(_gt(), preds, caption_metrics=("cider", "meteor"))
    row = res.per_object.set_index("track_id")
    # exact copies of one of the references score far above an unrelated caption
    assert row.loc[11, "METEOR"] > 0.9 and row.loc[21, "METEOR"] > 0.9
    assert row.loc[12, "METEOR"] < 0.3


@pytest.mark.java
@pytest.mark.skipif(shutil.which("java") is None, reason="needs Java")
def test_vocap_meteor_engines_agree_with_several_references():
    preds = [{"video_id": 1, "id": 11, "caption": "a brown dog is running"},
             {"video_id": 1, "id": 12, "caption": "A cat, sitting."},
             {"video_id": 2, "id": 21, "caption": "the man sat down"}]
    python = vocap(_gt(), preds, caption_metrics=("meteor",), meteor_engine="python")
    java = vocap(_gt(), preds, caption_metrics=("meteor",), meteor_engine="java")
    assert python.per_object["METEOR"].tolist() == pytest.approx(java.per_object["METEOR"].tolist(), abs=1e-9)
    assert python.per_object["references"].max() > 1
    with pytest.raises(ValueError, match="meteor_engine"):
        vocap(_gt(), preds, caption_metrics=("meteor",), meteor_engine="perl")
