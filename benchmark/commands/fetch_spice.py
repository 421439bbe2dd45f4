"""``benchmark fetch-spice``: download the Stanford CoreNLP 3.6.0 jars that SPICE needs.

Example:
    $ benchmark fetch-spice                      # into ~/.cache/dvoc-benchmark/corenlp
    $ benchmark fetch-spice --dest /data/corenlp # then: export BENCHMARK_CORENLP_DIR=/data/corenlp
"""

from __future__ import annotations

import argparse

from benchmark.captions.spice import CORENLP_JARS, CORENLP_URL, fetch_spice


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``fetch-spice`` sub-command."""
    parser = subparsers.add_parser(
        "fetch-spice",
        help="download the Stanford CoreNLP 3.6.0 jars SPICE needs (about 390 MB)",
        description=f"Download {CORENLP_URL} and keep {' and '.join(CORENLP_JARS)}.",
    )
    parser.add_argument(
        "--dest",
        default=None,
        help="folder for the jars (default: $BENCHMARK_CACHE_DIR/corenlp or ~/.cache/dvoc-benchmark/corenlp; "
        "any other folder needs BENCHMARK_CORENLP_DIR set to it)",
    )
    parser.add_argument("--url", default=CORENLP_URL, help="where to download the CoreNLP zip from")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Fetch the jars and say where they are."""
    dest = fetch_spice(args.dest, url=args.url)
    print(f"CoreNLP 3.6.0 jars ready in {dest}")
    return 0
