"""The ``leaderboard`` command line: tracks, validate, score, seed, render.

Example:
    $ leaderboard tracks
    $ leaderboard validate results.zip --track sample-box
    $ leaderboard score results.zip --track sample-box --team "My lab" --method "Baseline v1" \\
          --json scores.json --csv per_video.csv
    $ leaderboard render --out site/ --screenshot site/sample-box.png

The store is ``--db URL`` (any SQLAlchemy URL; default ``$LEADERBOARD_DB`` or the SQLite file
``leaderboard.db``); the track registry is ``--tracks FILE`` (default ``$LEADERBOARD_TRACKS``
or the bundled ``tracks.yaml``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from benchmark.cli import run_command
from benchmark.fields import COUNT_FIELDS
from leaderboard.submission import Limits, MiB


def _store(args: argparse.Namespace):
    from leaderboard.store import DEFAULT_URL, Store

    return Store(args.db or os.environ.get("LEADERBOARD_DB") or DEFAULT_URL)


def _limits(args: argparse.Namespace) -> Limits:
    return Limits(max_upload_bytes=int(args.max_upload_mib * MiB))


def _tracks(args: argparse.Namespace):
    from leaderboard.tracks import load_tracks

    return load_tracks(args.tracks)


def cmd_tracks(args: argparse.Namespace) -> int:
    """List the registry's tracks and whether their ground truth is present."""
    for track in _tracks(args).values():
        state = "ok" if track.gt.exists() else "GT missing"
        print(f"{track.name:22s} {track.protocol_name:9s} {state:10s} {track.gt}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    """Validate a submission against a track without scoring or storing it."""
    from benchmark.io import load_ground_truth
    from leaderboard.submission import read_submission
    from leaderboard.tracks import get_track
    from leaderboard.validation import validate_predictions

    track = get_track(args.track, _tracks(args))
    submission = read_submission(args.submission, limits=_limits(args))
    gt = load_ground_truth(track.require_gt())
    report = validate_predictions(submission.parse(), gt, iou=track.iou, source=submission.source,
                                  limits=_limits(args), score_threshold=track.score_threshold)
    print(f"{submission.source}: valid for {track.name}: {report.n_records} records, "
          f"{report.n_detections} detections on {report.n_videos}/{report.n_gt_videos} videos "
          f"({submission.checksum[:19]})")
    for warning in report.warnings(track.score_threshold):
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    """Validate, score and store a submission; print its scores and rank."""
    from rich.table import Table

    from benchmark.atomic import atomic_write_bytes
    from benchmark.commands.console import show_progress, table_console
    from leaderboard.service import score_submission
    from leaderboard.tracks import get_track

    track = get_track(args.track, _tracks(args))
    store = _store(args)
    outcome = score_submission(args.submission, track, store=store, team=args.team,
                               method=args.method, description=args.description or "",
                               limits=_limits(args), with_alpha_curve=not args.no_alpha_curve,
                               progress=show_progress(args.no_progress))
    entry = outcome.entry
    for warning in outcome.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    rank = next(r for r, e in store.ranking(track.name, metric=track.rank_by) if e.id == entry.id)
    print(f"{track.name}: entry {entry.id}, rank {rank} by {track.rank_by}"
          f"{'' if outcome.created else ' (already stored)'}")
    table = Table()
    table.add_column("metric")
    table.add_column("value", justify="right")
    counts = {f.name for f in COUNT_FIELDS}
    for name, value in entry.metrics.items():
        table.add_row(name, f"{value:.0f}" if name in counts else f"{value:.4f}")
    table_console().print(table)
    if args.json:
        record = {"entry_id": entry.id, "track": track.name, "rank": rank, "team": entry.team,
                  "method": entry.method, "checksum": entry.checksum, "created": outcome.created,
                  "protocol": entry.protocol, "package_version": entry.package_version,
                  "metrics": entry.metrics}
        atomic_write_bytes(Path(args.json), json.dumps(record, indent=1).encode())
    if args.csv:
        atomic_write_bytes(Path(args.csv), store.video_results(entry.id).to_csv(index=False).encode())
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    """Store the papers' published results as reported rows (idempotent; reported rows an
    older package seeded that are no longer published data are replaced)."""
    from leaderboard.reported import reported_rows

    tracks = _tracks(args)
    added = _store(args).seed_reported(reported_rows(tracks), replace_tracks=tracks)
    print(f"{added} reported rows added")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    """Write the static site (seeding the reported rows first); optionally screenshot it."""
    from leaderboard.render import render_site
    from leaderboard.reported import reported_rows

    tracks = _tracks(args)
    store = _store(args)
    store.seed_reported(reported_rows(tracks), replace_tracks=tracks)
    files = render_site(store, args.out, tracks=tracks, plots=not args.no_plots)
    print(f"wrote {len(files)} files under {args.out} (open {Path(args.out) / 'index.html'})")
    if args.screenshot:
        from leaderboard.browser import screenshot
        from leaderboard.render import latest_track
        from leaderboard.tracks import get_track

        # By default the track just scored: the first page often holds only papers' rows.
        name = get_track(args.track, tracks).name if args.track else latest_track(store, tracks)
        page = Path(args.out) / f"{name}.html"
        print(f"screenshot of {name}: {screenshot(page, args.screenshot)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``leaderboard`` argument parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", help="SQLAlchemy URL of the store (default $LEADERBOARD_DB or "
                                     "sqlite:///leaderboard.db)")
    common.add_argument("--tracks", help="track registry YAML (default: the bundled one)")
    parser = argparse.ArgumentParser(prog="leaderboard", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("tracks", parents=[common], help="list the tracks")
    p.set_defaults(func=cmd_tracks)

    for name, func, text in (("validate", cmd_validate, "check a submission, store nothing"),
                             ("score", cmd_score, "validate, score and store a submission")):
        p = sub.add_parser(name, parents=[common], help=text)
        p.add_argument("submission", help=".json, .json.gz or .zip holding one JSON")
        p.add_argument("--track", required=True, help="e.g. vidstg-val-box (see `tracks`)")
        p.add_argument("--max-upload-mib", type=float, default=Limits().max_upload_bytes / MiB)
        p.set_defaults(func=func)
        if name == "score":
            p.add_argument("--team", required=True)
            p.add_argument("--method", required=True)
            p.add_argument("--description")
            p.add_argument("--json", help="write the entry and its scores to this JSON file")
            p.add_argument("--csv", help="write the per-video results to this CSV file")
            p.add_argument("--no-alpha-curve", action="store_true",
                           help="skip the 19-alpha HOTA/DetA/AssA curve shown on the page")
            p.add_argument("--no-progress", action="store_true",
                           help="no progress bar (one is shown only on a terminal)")

    p = sub.add_parser("seed", parents=[common], help="store the papers' published results")
    p.set_defaults(func=cmd_seed)

    p = sub.add_parser("render", parents=[common], help="write the static site")
    p.add_argument("--out", required=True, help="output folder, e.g. site/")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--screenshot", help="also save a PNG of one track page (needs chromium)")
    p.add_argument("--track", "--screenshot-track", dest="track", metavar="NAME",
                   help="track the screenshot shows (default: the track of the most recently "
                        "stored submission, else the first)")
    p.set_defaults(func=cmd_render)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``leaderboard`` console script; returns the exit code."""
    return run_command(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
