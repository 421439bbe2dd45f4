"""``python -m leaderboard``: the ``leaderboard`` command line (same as the console script).

Example:
    $ python -m leaderboard score results.zip --track sample-box --team Lab --method M
"""

import sys

from leaderboard.cli import main

if __name__ == "__main__":
    sys.exit(main())
