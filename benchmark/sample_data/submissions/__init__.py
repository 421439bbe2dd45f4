"""Sample submissions (package data only; a package so that setuptools ships its JSON files)."""
