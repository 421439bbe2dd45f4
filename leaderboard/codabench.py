"""Codabench / CodaLab scoring program on the leaderboard's core.

Codabench runs ``python -m leaderboard.codabench $input $output --track NAME`` with the
reference data in ``$input/ref`` (one GT JSON) and the participant's unzipped submission in
``$input/res`` (exactly one JSON, possibly in a sub-folder). It writes ``$output/scores.json``
(Codabench), ``$output/scores.txt`` (CodaLab's ``key: value`` lines) and
``$output/detailed_results.html`` (per-video table). A bad submission writes nothing, prints
one line naming the problem and exits with status 2, which Codabench shows as a failure.

Example:
    $ python -m leaderboard.codabench /app/input /app/output --track vidstg-val-box
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmark.atomic import atomic_write_bytes
from benchmark.errors import BenchmarkError, InputError
from leaderboard.evalai import SHOWN_METRICS
from leaderboard.render import TEMPLATES
from leaderboard.service import evaluate
from leaderboard.submission import read_submission
from leaderboard.tracks import get_track, load_tracks

_JUNK = ("__MACOSX", ".DS_Store", "Thumbs.db", "metadata")


def _single_file(folder: Path, *, what: str, suffixes: tuple[str, ...]) -> Path:
    """The one file of ``folder`` (searched recursively) that has one of ``suffixes``."""
    if not folder.is_dir():
        raise InputError(f"{what} folder is missing", source=str(folder))
    found, links = [], []
    for path in sorted(folder.rglob("*")):
        if any(part in _JUNK for part in path.relative_to(folder).parts):
            continue
        if path.is_symlink():
            links.append(path.name)
        elif path.is_file() and path.name.lower().endswith(suffixes):
            found.append(path)
    if links:
        raise InputError(f"{what} holds symbolic links {links}; submit the files themselves",
                         source=str(folder))
    if len(found) != 1:
        raise InputError(f"{what} must hold exactly one {'/'.join(suffixes)} file, found "
                         f"{[str(p.relative_to(folder)) for p in found]}", source=str(folder))
    return found[0]


def score_folder(input_dir: str | Path, output_dir: str | Path, *, track_name: str,
                 tracks_file: str | None = None) -> dict[str, float]:
    """Score ``input_dir/res`` against ``input_dir/ref`` and write the output files.

    Example:
        >>> score_folder("input", "output", track_name="sample-box")["CHOTA"]   # doctest: +SKIP
        0.41
    """
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    gt = _single_file(input_dir / "ref", what="reference data", suffixes=(".json", ".json.gz"))
    sub = _single_file(input_dir / "res", what="submission",
                       suffixes=(".json", ".json.gz", ".zip"))
    track = get_track(track_name, load_tracks(tracks_file)).with_gt(gt)
    ev = evaluate(read_submission(sub), track)
    scores = {m: ev.metrics[m] for m in SHOWN_METRICS if m in ev.metrics}
    columns = list(ev.per_video[0]) if ev.per_video else []
    html = TEMPLATES.get_template("detailed.html").render(
        source=ev.submission.source, track=track.name, protocol=track.protocol_record(),
        metrics=ev.metrics, per_video=ev.per_video, columns=columns)
    atomic_write_bytes(output_dir / "scores.json", json.dumps(scores, indent=1).encode())
    atomic_write_bytes(output_dir / "scores.txt",
                 "".join(f"{k}: {v:.6f}\n" for k, v in scores.items()).encode())
    atomic_write_bytes(output_dir / "detailed_results.html", html.encode())
    return scores


def main(argv: list[str] | None = None) -> int:
    """Command-line entry of the scoring program; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m leaderboard.codabench",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input_dir")
    parser.add_argument("output_dir")
    parser.add_argument("--track", required=True, help="track whose protocol applies")
    parser.add_argument("--tracks", help="track registry YAML (default: the bundled one)")
    args = parser.parse_args(argv)
    try:
        scores = score_folder(args.input_dir, args.output_dir, track_name=args.track,
                              tracks_file=args.tracks)
    except BenchmarkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(" ".join(f"{k}={v:.4f}" for k, v in scores.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
