"""Speed of ``benchmark.chota`` against its peers, measured in one run on the same data.

    python benchmarks/speed.py [--out benchmarks/results] [--reference-videos 60]

Sets (see datasets.py): a VidSTG-val-scale box set (602 videos x 200 frames) and an
LV-VIS-val-scale mask set (837 videos, 720x1280 RLE). Rows:

* ours, CIDEr + METEOR, from the JSON files, with an empty caption cache and again with the
  cache filled (re-scoring known pairs); METEOR in Python (the default), and once with the
  jar (``meteor_engine="java"``: its JVM starts while loading and matching run);
* METEOR alone on 3,000 distinct caption pairs of the set, cold: a new process with an empty
  score cache, in Python and with the jar (JVM start included), scores checked equal;
* (b) the reference's cost profile (reference_profile.py: per-frame Python loops, one
  pycocoevalcap CIDEr and METEOR call per video and alpha, one METEOR JVM) on the same data;
  with 19 alphas it is timed on the first ``--reference-videos`` videos and scaled to all
  (its cost is linear in videos; the JVM start is counted once);
* (a) trackeval's HOTA (19 alphas, it has no other setting) against ours with
  ``caption_metrics=()``, both from in-memory data, IoU included;
* pycocotools' mask IoUs alone against ours on the mask set (``caption_metrics=()``), and
  the part of ours that decodes and checks every RLE string (the reference does not).

The machine's speed can drift within minutes: METEOR cold and CHOTA at alpha 0.5 against
the reference are the median of ``--repeats`` runs (default 3; ours and the reference's
interleaved), all runs in the JSON. Every pair of rows is checked to give the same numbers.
Writes a Markdown table and a JSON. Takes about 15 minutes on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from datasets import lvvis_scale, vidstg_scale  # noqa: E402
import reference_profile  # noqa: E402

from benchmark import chota  # noqa: E402
from benchmark.matching import HOTA_ALPHAS  # noqa: E402
from benchmark.structures.boxes import box_iou  # noqa: E402


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    value = fn(*args, **kwargs)
    return time.perf_counter() - start, value


def stop_meteor(meteor) -> None:
    """pycocoevalcap's Meteor has no close(): end its JVM like its __del__ does."""
    with meteor.lock:
        meteor.meteor_p.stdin.close()
        meteor.meteor_p.kill()
        meteor.meteor_p.wait()


_METEOR_COLD = """
import json, sys, time
start = time.perf_counter()
import numpy as np
from benchmark.captions import CaptionMetrics
pairs = json.loads(open(sys.argv[1]).read())
with CaptionMetrics(("meteor",), cache=":memory:", meteor_engine=sys.argv[2]) as metrics:
    scores = metrics.score("meteor", [r for r, _ in pairs], [c for _, c in pairs])
np.save(sys.argv[3], scores)
print(time.perf_counter() - start)
"""


def meteor_cold(engine: str, gt: dict, predictions: list, work: Path, n: int = 3000) -> float:
    """Seconds for a new process to score ``n`` distinct (GT, predicted) caption pairs of a
    video with ``engine`` and no score cache (imports, data and JVM start included); the two
    engines' scores must agree."""
    import subprocess

    pairs_file = work / "meteor_pairs.json"
    if not pairs_file.exists():
        video_of = {im["id"]: im["video_id"] for im in gt["images"]}
        truth: dict[int, set[str]] = {}
        for ann in gt["annotations"]:
            if ann.get("caption"):
                truth.setdefault(video_of[ann["image_id"]], set()).add(ann["caption"])
        pairs = list(dict.fromkeys((t, p["caption"]) for p in predictions if p.get("caption")
                                   for t in sorted(truth.get(p["video_id"], ()))))[:n]
        pairs_file.write_text(json.dumps(pairs))
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", _METEOR_COLD, str(pairs_file), engine, str(work / f"{engine}.npy")],
                   check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    if engine == "java":
        python, java = np.load(work / "python.npy"), np.load(work / "java.npy")
        if not np.allclose(python, java, rtol=0, atol=1e-9):
            raise SystemExit(f"METEOR engines differ on {int((np.abs(python - java) > 1e-9).sum())} pairs")
    return seconds


def check_same(name: str, ours: dict, theirs: dict, rel: float = 1e-6) -> None:
    for key, value in theirs.items():
        if not np.isclose(ours[key], value, rtol=rel, atol=1e-12):
            raise SystemExit(f"{name}: {key} differs: ours {ours[key]} vs {value}")


def trackeval_hota(gt: dict, predictions: list) -> tuple[float, dict]:
    """trackeval's HOTA on per-frame arrays; the time counts its IoU and metric, not the
    grouping of our dicts into its per-frame layout."""
    import trackeval

    by_image_gt, by_image_pr = {}, {}
    for a in gt["annotations"]:
        by_image_gt.setdefault(a["image_id"], []).append(a)
    for p in predictions:
        if p["score"] > 0.5:
            by_image_pr.setdefault(p["image_id"], []).append(p)
    frames = {}
    for image in gt["images"]:
        frames.setdefault(image["video_id"], []).append(image["id"])
    prepared = []
    for video, ids in frames.items():
        ids.sort()
        g = [by_image_gt.get(i, []) for i in ids]
        p = [by_image_pr.get(i, []) for i in ids]
        gmap = {t: k for k, t in enumerate(sorted({a["track_id"] for f in g for a in f}))}
        pmap = {t: k for k, t in enumerate(sorted({a["track_id"] for f in p for a in f}))}
        prepared.append((
            [np.array([gmap[a["track_id"]] for a in f], int) for f in g],
            [np.array([pmap[a["track_id"]] for a in f], int) for f in p],
            [np.array([a["bbox"] for a in f], np.float32).reshape(-1, 4) for f in g],
            [np.array([a["bbox"] for a in f], np.float32).reshape(-1, 4) for f in p],
            len(gmap), len(pmap)))
    metric = trackeval.metrics.HOTA()
    start = time.perf_counter()
    results = {}
    for k, (gids, pids, gboxes, pboxes, ngi, npi) in enumerate(prepared):
        data = {"gt_ids": gids, "tracker_ids": pids, "num_gt_ids": ngi, "num_tracker_ids": npi,
                "num_gt_dets": sum(map(len, gids)), "num_tracker_dets": sum(map(len, pids)),
                "similarity_scores": [box_iou(a, b) for a, b in zip(gboxes, pboxes)]}
        results[k] = metric.eval_sequence(data)
    combined = metric.combine_sequences(results)
    return time.perf_counter() - start, {k: float(np.mean(combined[k])) for k in
                                         ("HOTA", "DetA", "AssA", "LocA")}


def pycocotools_ious(gt: dict, predictions: list) -> float:
    """Time of the mask IoUs alone: one pycocotools call per frame on the same RLEs."""
    from pycocotools import mask as mask_utils

    by_image_gt, by_image_pr = {}, {}
    for a in gt["annotations"]:
        by_image_gt.setdefault(a["image_id"], []).append(a["segmentation"])
    for p in predictions:
        by_image_pr.setdefault(p["image_id"], []).append(p["segmentation"])
    start = time.perf_counter()
    for image_id, g in by_image_gt.items():
        p = by_image_pr.get(image_id)
        if p:
            mask_utils.iou(g, p, [0] * len(p))
    return time.perf_counter() - start


def rle_check(gt: dict, predictions: list) -> float:
    """Time of the check every compressed RLE gets before any IoU (a corrupted string can
    make pycocotools loop forever): part of ours, absent from the reference."""
    from benchmark.structures.masks import check_compressed_rles

    segmentations = [a["segmentation"] for a in gt["annotations"]] + \
        [p["segmentation"] for p in predictions]
    start = time.perf_counter()
    reasons = check_compressed_rles([s["counts"] for s in segmentations],
                                    [s["size"][0] * s["size"][1] for s in segmentations])
    assert reasons == [None] * len(reasons)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="benchmarks/results", help="folder for table + JSON")
    parser.add_argument("--reference-videos", type=int, default=60,
                        help="videos on which the 19-alpha reference profile is timed")
    parser.add_argument("--skip-masks", action="store_true")
    parser.add_argument("--repeats", type=int, default=3,
                        help="runs behind each median row (METEOR cold, CHOTA vs reference at alpha 0.5)")
    args = parser.parse_args()
    rows: list[tuple[str, float, str]] = []
    work = Path(tempfile.mkdtemp(prefix="dvoc-speed-"))
    os.environ["BENCHMARK_CACHE_DIR"] = str(work / "user-cache")

    print("generating the VidSTG-scale set ...", flush=True)
    gt, predictions = vidstg_scale()
    gt_path, pred_path = work / "gt.json", work / "pred.json"
    gt_path.write_text(json.dumps(gt))
    pred_path.write_text(json.dumps(predictions))
    caps = ("cider", "meteor")
    cache = work / "scores.sqlite"

    # This machine's speed drifts by up to 1.5x within minutes: the headline rows are the
    # median of --repeats runs, ours and the reference's interleaved (each cold run of ours
    # with a new, empty cache).
    runs: dict[str, list[float]] = {"ours05": [], "ref05": [], "meteor-python": [], "meteor-java": []}
    t_cold, ours05 = timed(chota, gt_path, pred_path, caption_metrics=caps, cache=cache)
    runs["ours05"].append(t_cold)
    t_cold_java, ours_java = timed(chota, gt_path, pred_path, caption_metrics=caps, cache=work / "java.sqlite",
                                   meteor_engine="java")
    check_same("METEOR in the jar", ours05.to_dict(), ours_java.to_dict(), rel=1e-9)
    for _ in range(args.repeats):
        for engine in ("python", "java"):
            runs[f"meteor-{engine}"].append(meteor_cold(engine, gt, predictions, work))
    t_meteor = {engine: median(runs[f"meteor-{engine}"]) for engine in ("python", "java")}
    t_warm, _ = timed(chota, gt_path, pred_path, caption_metrics=caps, cache=cache)
    t_cold19, ours19 = timed(chota, gt_path, pred_path, caption_metrics=caps, alphas="hota",
                             cache=work / "scores19.sqlite")
    t_warm19, _ = timed(chota, gt_path, pred_path, caption_metrics=caps, alphas="hota",
                        cache=work / "scores19.sqlite")
    print(f"ours: {t_cold:.1f}s cold (first run), {t_warm:.1f}s warm (alpha 0.5); "
          f"{t_cold19:.1f}s / {t_warm19:.1f}s (19 alphas)", flush=True)

    from pycocoevalcap.meteor.meteor import Meteor

    def reference(alphas, videos=None):
        sub_gt, sub_pred = gt, predictions
        if videos is not None:
            keep = {v["id"] for v in gt["videos"][:videos]}
            sub_gt = {**gt, "images": [i for i in gt["images"] if i["video_id"] in keep],
                      "annotations": [a for a in gt["annotations"] if a["video_id"] in keep]}
            sub_pred = [p for p in predictions if p["video_id"] in keep]
        start = time.perf_counter()
        meteor = Meteor()  # one JVM for the run, as measured for the reference
        loaded = (json.loads(gt_path.read_text()) if videos is None else sub_gt,
                  json.loads(pred_path.read_text()) if videos is None else sub_pred)
        values = reference_profile.evaluate(*loaded, alphas, meteor=meteor)
        stop_meteor(meteor)
        return time.perf_counter() - start, values

    for k in range(args.repeats):
        if k:
            t, again = timed(chota, gt_path, pred_path, caption_metrics=caps,
                             cache=work / f"scores-repeat{k}.sqlite")
            check_same("a repeated run", again.to_dict(), ours05.to_dict(), rel=0)
            runs["ours05"].append(t)
        t, ref05 = reference([0.5])
        runs["ref05"].append(t)
        check_same("reference profile, alpha 0.5", ours05.to_dict(), ref05)
    t_cold, t_ref05 = median(runs["ours05"]), median(runs["ref05"])
    n_sub = args.reference_videos
    t_ref19_sub, ref19_sub = reference(HOTA_ALPHAS, videos=n_sub)
    def start_jvm():  # the JVM is ready once it answers one pair
        meteor = Meteor()
        meteor.compute_score({0: ["a man"]}, {0: ["a man"]})
        stop_meteor(meteor)

    jvm_start, _ = timed(start_jvm)
    t_ref19 = jvm_start + (t_ref19_sub - jvm_start) * len(gt["videos"]) / n_sub
    print(f"reference profile: {t_ref05:.1f}s (alpha 0.5), ~{t_ref19:.0f}s (19 alphas, "
          f"scaled from {n_sub} videos: {t_ref19_sub:.1f}s)", flush=True)

    med = f" (median of {args.repeats})" if args.repeats > 1 else ""
    rows += [
        (f"METEOR, 3,000 distinct pairs, cold process, Python{med}", t_meteor["python"],
         f"{t_meteor['java'] / t_meteor['python']:.1f}x"),
        (f"METEOR, 3,000 distinct pairs, cold process, jar (JVM start included){med}", t_meteor["java"], "1x"),
        (f"box CHOTA (CIDEr+METEOR), alpha 0.5, empty cache{med}", t_cold, f"{t_ref05 / t_cold:.1f}x"),
        ("box CHOTA (CIDEr+METEOR), alpha 0.5, empty cache, METEOR in the jar", t_cold_java,
         f"{t_ref05 / t_cold_java:.1f}x"),
        ("box CHOTA (CIDEr+METEOR), alpha 0.5, cached pairs", t_warm, f"{t_ref05 / t_warm:.1f}x"),
        (f"reference cost profile, alpha 0.5{med}", t_ref05, "1x"),
        ("box CHOTA (CIDEr+METEOR), 19 alphas, empty cache", t_cold19, f"{t_ref19 / t_cold19:.0f}x"),
        ("box CHOTA (CIDEr+METEOR), 19 alphas, cached pairs", t_warm19, f"{t_ref19 / t_warm19:.0f}x"),
        (f"reference cost profile, 19 alphas (scaled from {n_sub} videos)", t_ref19, "1x"),
    ]

    t_te, te = trackeval_hota(gt, predictions)
    t_det, det = timed(chota, gt, predictions, caption_metrics=(), alphas="hota")
    check_same("trackeval HOTA", det.to_dict(), te)
    rows += [("DetA/AssA/HOTA, 19 alphas, in memory (ours)", t_det, f"{t_te / t_det:.1f}x"),
             ("trackeval HOTA, 19 alphas (IoU + metric only)", t_te, "1x")]
    print(f"DetA/AssA: ours {t_det:.1f}s, trackeval {t_te:.1f}s", flush=True)

    if not args.skip_masks:
        print("generating the LV-VIS-scale mask set ...", flush=True)
        mgt, mpred = lvvis_scale()
        t_coco = pycocotools_ious(mgt, mpred)
        t_mask, _ = timed(chota, mgt, mpred, iou="mask", caption_metrics=())
        t_check = rle_check(mgt, mpred)
        rows += [("mask DetA/AssA/HOTA, LV-VIS scale, in memory (ours)", t_mask,
                  f"{t_mask / t_coco:.2f}x the IoUs alone"),
                 ("of which: decoding and checking every RLE string", t_check, ""),
                 ("pycocotools mask IoUs alone (one call per frame)", t_coco, "")]
        print(f"masks: ours {t_mask:.1f}s, pycocotools IoUs {t_coco:.1f}s", flush=True)

    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    lines = [f"Measured {time.strftime('%Y-%m-%d')} on {machine} (python benchmarks/speed.py):",
             "", "| run | seconds | vs peer |", "|---|---:|---:|"]
    lines += [f"| {name} | {seconds:.1f} | {ratio} |" for name, seconds, ratio in rows]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "speed.md").write_text("\n".join(lines) + "\n")
    (out / "speed.json").write_text(json.dumps(
        {"machine": machine, "rows": [{"run": n, "seconds": s, "vs_peer": r} for n, s, r in rows],
         "repeated_runs": runs,
         "scores_alpha0.5": ours05.to_dict(), "scores_19": ours19.to_dict()}, indent=2))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
