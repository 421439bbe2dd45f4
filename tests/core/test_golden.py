"""Every value of the reference scorer's outputs in tests/data/golden (box and mask, alpha 0.5
and the 19 alphas) is reproduced to 1e-5 relative."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from benchmark import chota
GOLDEN = Path(__file__).parents[1] / "data" / "golden"
GOLDEN_CASES = sorted(p.name for p in GOLDEN.iterdir() if p.is_dir())

SETTINGS = {"alpha0.5": (0.5,), "alphas19": "hota"}


@pytest.fixture(scope="session")
def caption_cache(tmp_path_factory):
    # One cache for the session: each case's pairs go through the METEOR JVM once.
    return tmp_path_factory.mktemp("cache") / "scores.sqlite"


def expected_runs():
    for case in GOLDEN_CASES:
        for key in json.loads((GOLDEN / case / "expected.json").read_text()):
            yield case, key


@pytest.mark.parametrize("case, key", list(expected_runs()))
def test_tracking_and_cider_fields(case, key):
    expected = json.loads((GOLDEN / case / "expected.json").read_text())[key]
    iou, alphas = key.split("/")
    result = chota(GOLDEN / case / "gt.json", GOLDEN / case / "pred.json", iou=iou,
                   alphas=SETTINGS[alphas], caption_metrics=("cider",), cache=None).to_dict()
    for name, value in expected.items():
        if name != "CapA-meteor":
            assert result[name] == pytest.approx(value, rel=1e-5, abs=0), name


@pytest.mark.parametrize("engine", [
    "python",
    pytest.param("java", marks=[pytest.mark.java, pytest.mark.skipif(shutil.which("java") is None,
                                                                     reason="needs Java")]),
])
@pytest.mark.parametrize("case, key", list(expected_runs()))
def test_meteor_field(case, key, engine, caption_cache):
    expected = json.loads((GOLDEN / case / "expected.json").read_text())[key]
    iou, alphas = key.split("/")
    # The Python engine is given no Java at all: CIDEr + METEOR must not need it.
    java = "/no/such/java" if engine == "python" else "java"
    result = chota(GOLDEN / case / "gt.json", GOLDEN / case / "pred.json", iou=iou,
                   alphas=SETTINGS[alphas], caption_metrics=("cider", "meteor"),
                   cache=caption_cache, meteor_engine=engine, java=java)
    assert result.settings()["meteor_engine"] == engine
    assert result["CapA-meteor"] == pytest.approx(expected["CapA-meteor"], rel=1e-5, abs=0)
    assert result["CapA-cider"] == pytest.approx(expected["CapA-cider"], rel=1e-5, abs=0)
    # Not the official three metrics: computed, but labelled as such.
    assert not result.official
    assert result["CapA"] == pytest.approx((expected["CapA-cider"] + expected["CapA-meteor"]) / 2,
                                           rel=1e-5)
    assert result["CHOTA"] == pytest.approx(float(np.mean(np.cbrt(
        result.per_alpha["DetA"] * result.per_alpha["AssA"] * result.per_alpha["CapA"]))),
        rel=1e-12)


def test_golden_cases_cover_the_documented_quirks():
    """The fixtures exercise what the README promises (so a passing suite means something)."""
    small = json.loads((GOLDEN / "visible_small" / "expected.json").read_text())
    assert small["box/alpha0.5"]["CapA-cider"] == pytest.approx(5e-11)  # 1e-10 floor over 2 TPs
    preds = json.loads((GOLDEN / "visible_small" / "pred.json").read_text())
    assert any(p["score"] == 0.5 for p in preds)  # must be dropped (score > threshold)
