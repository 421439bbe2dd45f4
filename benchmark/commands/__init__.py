"""Sub-commands of the ``benchmark`` CLI (see :mod:`benchmark.cli`)."""
