"""Compressed RLE strings are decoded and checked before any IoU: against a scalar decoder
written from pycocotools' ``rleFrString`` (one character at a time), on pycocotools' own
encodings and on thousands of mutations of them, and end to end (a corrupted string made
pycocotools' IoU loop forever)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from benchmark.structures.masks import check_compressed_rles

ALPHABET = bytes(range(48, 112))  # '0' to 'o', the characters pycocotools writes


def _scalar_verdict(counts: bytes, area: int) -> bool:
    """Whether pycocotools decodes ``counts`` to run lengths that are safe and cover the
    mask: every character in its alphabet, every number ended, at most 6 digits per number,
    no negative run, runs summing to ``area``."""
    runs: list[int] = []
    p = 0
    while p < len(counts):
        x, k, more = 0, 0, True
        while more:
            if p == len(counts):
                return False  # the string stops inside a number
            c = counts[p] - 48
            if not 0 <= c <= 63:
                return False
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and c & 0x10:
                x -= 1 << (5 * k)
        if k > 6:
            return False
        if len(runs) > 2:
            x += runs[-2]
        if x < 0:
            return False
        runs.append(x)
    return sum(runs) == area


def _pycocotools_strings(rng: np.random.Generator, n: int) -> list[tuple[bytes, int, tuple]]:
    out = []
    for _ in range(n):
        h, w = (int(v) for v in rng.integers(1, 60, 2))
        kind = rng.integers(3)
        if kind == 0:
            m = rng.random((h, w)) < rng.uniform(0.05, 0.95)
        elif kind == 1:
            m = np.zeros((h, w), bool)
            y, x = rng.integers(0, h), rng.integers(0, w)
            m[y:y + rng.integers(1, h + 1), x:x + rng.integers(1, w + 1)] = True
        else:
            m = np.full((h, w), bool(rng.integers(2)))
        rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
        out.append((rle["counts"], h * w, (h, w)))
    # Long runs: numbers of several digits, up to a 4K frame.
    for h, w in ((720, 1280), (2160, 3840), (1, 1)):
        m = np.zeros((h, w), np.uint8, order="F")
        m[h // 3: h // 2, w // 4: w // 2] = 1
        out.append((mask_utils.encode(m)["counts"], h * w, (h, w)))
    return out


def _encode(runs: list[int]) -> bytes:
    """pycocotools' rleToString for any integers (negative ones included)."""
    out = bytearray()
    for i, run in enumerate(runs):
        x = run - runs[i - 2] if i > 2 else run
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = x != -1 if c & 0x10 else x != 0
            out.append((c | 0x20 if more else c) + 48)
    return bytes(out)


def _run_lists(rng: np.random.Generator, n: int) -> list[tuple[bytes, int]]:
    """Run lengths that cover their mask, and the same with one run made negative, one run
    off by one, zeros in the middle, or a huge run."""
    cases = []
    for _ in range(n):
        area = int(rng.integers(1, 10**int(rng.integers(1, 8))))
        cuts = np.sort(rng.integers(0, area + 1, int(rng.integers(0, 12))))
        runs = np.diff(np.r_[0, cuts, area]).tolist()
        cases.append((_encode(runs), area))
        k = int(rng.integers(len(runs)))
        for change in (lambda r: -r - 1, lambda r: r + 1, lambda r: 0, lambda r: r + 2**31):
            bad = list(runs)
            bad[k] = change(bad[k])
            cases.append((_encode(bad), area))
    return cases


def _mutate(s: bytes, rng: np.random.Generator) -> bytes:
    b = bytearray(s)
    op = rng.integers(5)
    pos = int(rng.integers(0, len(b) + 1))
    if op == 0 and b:  # substitute within the alphabet
        b[min(pos, len(b) - 1)] = ALPHABET[rng.integers(64)]
    elif op == 1:  # insert
        b[pos:pos] = bytes([ALPHABET[rng.integers(64)]])
    elif op == 2 and b:  # delete
        del b[min(pos, len(b) - 1)]
    elif op == 3:  # truncate
        b = b[:pos]
    else:  # any byte at all
        b[pos:pos] = bytes([int(rng.integers(0, 128))])
    return bytes(b)


def test_pycocotools_encodings_are_valid():
    strings = _pycocotools_strings(np.random.default_rng(0), 400)
    reasons = check_compressed_rles([s for s, _, _ in strings], [a for _, a, _ in strings])
    assert reasons == [None] * len(strings)
    # str and bytes alike, and an empty mask of no pixels
    assert check_compressed_rles([strings[0][0].decode()], [strings[0][1]]) == [None]
    assert check_compressed_rles([b""], [0]) == [None]


def test_verdicts_equal_the_scalar_decoder_on_mutations():
    rng = np.random.default_rng(1)
    strings = _pycocotools_strings(rng, 300)
    cases = []
    for s, area, _ in strings:
        for _ in range(10):
            t = s
            for _ in range(int(rng.integers(1, 4))):
                t = _mutate(t, rng)
            cases.append((t, area))
    cases += [(bytes(rng.choice(list(ALPHABET), int(rng.integers(0, 12)))), int(rng.integers(0, 50)))
              for _ in range(2000)]
    cases += _run_lists(rng, 1000)
    reasons = check_compressed_rles([c for c, _ in cases], [a for _, a in cases])
    mismatches = [(c, a, r) for (c, a), r in zip(cases, reasons)
                  if (r is None) != _scalar_verdict(c, a)]
    assert not mismatches, f"{len(mismatches)} verdicts differ, first: {mismatches[0]}"
    valid = sum(r is None for r in reasons)
    assert 1000 < valid < len(cases) - 1000  # both verdicts are well represented


def test_accepted_strings_are_safe_for_pycocotools():
    # Every string the check accepts decodes in pycocotools to a mask whose pixel count is
    # its area, and its IoU with a full mask ends (an unchecked string can loop forever).
    rng = np.random.default_rng(2)
    candidates = [(_mutate(s, rng), (h, w)) for s, _, (h, w) in _pycocotools_strings(rng, 150)
                  for _ in range(8)]
    candidates += [(s, (area, 1)) for s, area in _run_lists(rng, 300) if area <= 10**5]
    checked = 0
    for counts, (h, w) in candidates:
        if check_compressed_rles([counts], [h * w])[0] is not None:
            continue
        rle = {"size": [h, w], "counts": counts}
        full = mask_utils.encode(np.ones((h, w), np.uint8, order="F"))
        assert mask_utils.decode(rle).sum() == mask_utils.area(rle)
        iou = mask_utils.iou([rle], [full], [0])[0][0]
        assert iou == pytest.approx(mask_utils.area(rle) / (h * w))
        checked += 1
    assert checked > 200


def test_non_ascii_characters_are_named_at_their_position():
    # Not decoded as a replacement character that happens to be a valid digit.
    assert check_compressed_rles(["1\u00e91", b"1\xff", "121", "\ud800"], [4, 1, 4, 1]) == [
        "character '\u00e9' at position 1 is not in a compressed RLE ('0' to 'o')",
        "character '\u00ff' at position 1 is not in a compressed RLE ('0' to 'o')",
        None,
        "character '\\ud800' at position 0 is not in a compressed RLE ('0' to 'o')",
    ]


def test_reasons_name_what_is_wrong():
    assert check_compressed_rles(
        [b"121", "0TS<", "!!!!~~~~", b"12", b"1P", b"1N", b"1oooooo0", b"", b"1"],
        [4, 4, 4, 4, 1, 1, 1, 4, 1]) == [
        None,
        "run lengths sum to 12388 pixels, the mask has 4",
        "character '!' at position 0 is not in a compressed RLE ('0' to 'o')",
        "run lengths sum to 3 pixels, the mask has 4",
        "the string stops inside a run length",
        "run length 1 decodes to -2 (negative)",
        "a run length spans more than 6 characters (beyond pycocotools' integers)",
        "run lengths sum to 0 pixels, the mask has 4",
        None,
    ]


def test_many_strings_are_checked_in_chunks(monkeypatch):
    import benchmark.structures.masks as masks

    strings = _pycocotools_strings(np.random.default_rng(3), 200)
    counts = [s for s, _, _ in strings] * 3
    areas = [a for _, a, _ in strings] * 3
    counts[450] = b"0TS<"
    expected = check_compressed_rles(counts, areas)
    monkeypatch.setattr(masks, "_CHECK_CHUNK", 64)  # many chunks of a few strings each
    assert check_compressed_rles(counts, areas) == expected
    assert [i for i, r in enumerate(expected) if r is not None] == [450]


def _overlapping_case(tmp_path, counts: str):
    h, w = 32, 32
    gt_mask = np.zeros((h, w), np.uint8, order="F")
    gt_mask[4:20, 4:20] = 1
    gt_rle = mask_utils.encode(gt_mask)
    gt = {"videos": [{"id": 1, "height": h, "width": w}],
          "images": [{"id": 1, "video_id": 1, "frame_index": 0, "height": h, "width": w}],
          "annotations": [{"id": 1, "image_id": 1, "video_id": 1, "track_id": 1, "bbox":
                           [4, 4, 16, 16], "caption": "a cat", "category_id": 1,
                           "segmentation": {"size": [h, w], "counts": gt_rle["counts"].decode()}}],
          "categories": [{"id": 1, "name": "object"}]}
    pred = [{"image_id": 1, "track_id": 5, "score": 0.9, "caption": "a cat",
             "segmentation": {"size": [h, w], "counts": counts}}]
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "pred.json").write_text(json.dumps(pred))


@pytest.mark.parametrize("counts, message", [
    # Decodes to runs over 12388 pixels of a 1024-pixel frame whose box overlaps the ground
    # truth's: unchecked, pycocotools' IoU loop never ends.
    ("0TS<", "run lengths sum to 12388 pixels, the mask has 1024"),
    ("!!!!~~~~", "character '!' at position 0"),
])
def test_score_refuses_a_corrupted_rle_at_once(tmp_path, counts, message):
    _overlapping_case(tmp_path, counts)
    for iou in ("mask", "box"):
        run = subprocess.run(
            [sys.executable, "-m", "benchmark", "score", "--gt", str(tmp_path / "gt.json"),
             "--pred", str(tmp_path / "pred.json"), "--iou", iou, "--caption-metrics", "cider"],
            capture_output=True, text=True, timeout=120)
        assert run.returncode != 0
        assert "pred.json: record predictions[0], field 'segmentation': compressed RLE " \
               "'counts' of size [32, 32]: " + message in run.stderr
