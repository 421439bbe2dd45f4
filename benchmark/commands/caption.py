"""``benchmark caption``: add VLM captions to an LV-VIS / LVIS / SA-V style dataset.

Example:
    $ export GEMINI_API_KEY=...
    $ benchmark caption --source val_instances.json --frames-root JPEGImages/val \\
          --out lvviscap_val.json --cache lvviscap_val.cache.jsonl
    $ benchmark caption --source val_instances.json --frames-root JPEGImages/val \\
          --dry-run review/ --limit 20          # writes the exact prompts and images only

Rerunning the same command resumes: answers already in the cache are never requested again.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from benchmark.captioning.client import DEFAULT_MODEL
from benchmark.captioning.costs import DEFAULT_PRICES, load_prices
from benchmark.captioning.pipeline import CaptionPipeline, load_few_shot
from benchmark.captioning.prompts import VISUAL_PROMPTS
from benchmark.atomic import write_json_atomic
from benchmark.captioning.sources import FORMATS, add_captions, detect_format, load_targets, read_json
from benchmark.errors import InputError


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``caption`` sub-command."""
    p = subparsers.add_parser(
        "caption",
        help="generate synthetic object captions with a VLM (LV-VISCap / LVISCap recipe)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--source", required=True, help="dataset JSON (YouTube-VIS/LV-VIS, LVIS/COCO or one SA-V video)")
    p.add_argument("--frames-root", required=True, help="folder the frame file names are relative to")
    p.add_argument("--out", help="captioned dataset JSON to write (required unless --dry-run)")
    p.add_argument("--cache", help="JSONL answer cache (default: OUT with .cache.jsonl)")
    p.add_argument("--format", choices=FORMATS, help="source layout (default: detected)")
    p.add_argument("--dataset-name", help="name used in the cache key (default: source file stem)")
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--visual-prompt", choices=VISUAL_PROMPTS, default="boxes",
                   help="boxes: MaskCaptioner's drawn boxes; contour: VoCap's red contour + blur")
    p.add_argument("--few-shot", help="JSON list of {images, text, caption} examples")
    p.add_argument("--frames", type=int, default=4, help="frames sampled per object (default 4)")
    p.add_argument("--max-side", type=int, default=768, help="downscale frames to this long side")
    p.add_argument("--temperature", type=float, default=0.2)
    p.add_argument("--concurrency", type=int, default=4, help="parallel requests (threads)")
    p.add_argument("--rpm", type=float, default=60.0, help="requests per minute, all threads together")
    p.add_argument("--max-retries", type=int, default=5, help="retries of a 429 / 5xx / network error")
    p.add_argument("--prices", help="JSON/YAML price table {model: {input_per_million, output_per_million}}")
    p.add_argument("--retry-invalid", action="store_true", help="ask again for answers rejected by validation")
    p.add_argument("--limit", type=int, help="only the first N objects (trial runs)")
    p.add_argument("--dry-run", metavar="DIR", help="write the exact requests under DIR; call nothing")
    p.add_argument("--sav-frame-stride", type=int, default=4, help="SA-V: frame file index = annotated index * stride")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Execute ``benchmark caption``; exit status 1 when some objects got no caption."""
    source = Path(args.source)
    data = read_json(source)
    if not isinstance(data, dict):
        raise InputError("expected a JSON object", source=str(source))
    fmt = args.format or detect_format(data)
    targets = load_targets(
        data, frames_root=args.frames_root, dataset=args.dataset_name or source.stem, fmt=fmt,
        source=str(source), sav_frame_stride=args.sav_frame_stride,
    )
    if args.limit is not None:
        targets = targets[: args.limit]
    if not args.dry_run and not args.out:
        raise InputError("--out is required (or use --dry-run DIR)", field="--out")
    out = Path(args.out) if args.out else None
    cache = Path(args.cache) if args.cache else (out.with_suffix(".cache.jsonl") if out else Path(args.dry_run) / "cache.jsonl")
    client = None
    if not args.dry_run:
        from benchmark.captioning.client import GeminiClient

        client = GeminiClient()
    pipeline = CaptionPipeline(
        client=client, cache_path=cache, model=args.model, style=args.visual_prompt,
        num_frames=args.frames, max_side=args.max_side,
        few_shot=load_few_shot(args.few_shot) if args.few_shot else (),
        temperature=args.temperature, concurrency=args.concurrency, requests_per_minute=args.rpm,
        max_retries=args.max_retries, prices=load_prices(args.prices) if args.prices else DEFAULT_PRICES,
        retry_invalid=args.retry_invalid, progress=not args.no_progress,
    )
    if args.dry_run:
        folders = pipeline.dry_run(targets, args.dry_run)
        print(f"wrote {len(folders)} requests under {args.dry_run}")
        return 0

    result = pipeline.run(targets)
    write_json_atomic(add_captions(data, result.captions, fmt=fmt), out)
    summary = {"source": str(source), "out": str(out), "cache": str(cache), "model": args.model,
               "prompt": pipeline.prompt_id, **result.summary()}
    write_json_atomic(summary, out.with_suffix(".summary.json"))
    with open(out.with_suffix(".failures.csv"), "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["annotation_id", "video_id", "status", "reason", "answer"])
        writer.writeheader()
        writer.writerows(result.failures)
    _print_summary(result.summary(), out)
    return 1 if result.failures else 0


def _print_summary(summary: dict, out: Path) -> None:
    run, total = summary["usage_this_run"], summary["usage_all_runs"]
    lines = [
        f"captioned   {summary['captioned']}  (from cache {summary['from_cache']}, requested now {summary['requested_this_run']})",
        f"failed      {summary['failed']}  (see {out.with_suffix('.failures.csv')})",
        f"this run    {run['calls']} calls, {run['input_tokens']} in / {run['output_tokens']} out tokens, ${run['cost_usd']:.4f}",
        f"all runs    {total['calls']} calls, {total['input_tokens']} in / {total['output_tokens']} out tokens, ${total['cost_usd']:.4f}",
    ]
    if run["unpriced_calls"] or total["unpriced_calls"]:
        lines.append("note        the model has no price in the table: costs above are incomplete (--prices)")
    if summary["torn_cache_lines"]:
        lines.append(f"note        {summary['torn_cache_lines']} torn cache line(s) skipped (crash); those objects were asked again")
    reasons: dict[str, int] = {}
    for failure in summary["failures"]:
        reasons[failure["reason"] or failure["status"]] = reasons.get(failure["reason"] or failure["status"], 0) + 1
    for reason, count in sorted(reasons.items(), key=lambda kv: -kv[1])[:10]:
        lines.append(f"  {count:5d} x {reason}")
    print("\n".join(lines))
