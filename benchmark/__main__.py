"""``python -m benchmark``: the ``benchmark`` command line (same as the console script).

Example:
    $ python -m benchmark score --gt gt.json --pred pred.json
"""

import sys

from benchmark.cli import main

if __name__ == "__main__":
    sys.exit(main())
