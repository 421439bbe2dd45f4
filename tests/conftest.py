"""Shared test configuration."""

from __future__ import annotations

import shutil

import pytest


def pytest_collection_modifyitems(config, items):
    # Java-based metrics need a JVM: skip with a reason instead of failing where none is.
    if shutil.which("java") is None:
        skip = pytest.mark.skip(reason="java not installed (METEOR/SPICE jars need it)")
        for item in items:
            if "java" in item.keywords:
                item.add_marker(skip)
