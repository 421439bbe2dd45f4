"""`benchmark caption` end to end with a fake Gemini client."""

from __future__ import annotations

import argparse
import json

import pytest

from benchmark.captioning import client as client_module
from benchmark.commands import caption
from benchmark.errors import ToolMissingError


def parse(argv):
    parser = argparse.ArgumentParser()
    caption.register(parser.add_subparsers())
    return parser.parse_args(["caption", *argv])


def test_caption_command_writes_lvviscap_and_resumes(lvvis, fake_client, monkeypatch, capsys):
    clients = []
    monkeypatch.setattr(client_module, "GeminiClient", lambda: clients.append(fake_client()) or clients[-1])
    out = lvvis["tmp"] / "lvviscap.json"
    argv = ["--source", str(lvvis["source"]), "--frames-root", str(lvvis["frames_root"]), "--out", str(out),
            "--rpm", "100000", "--no-progress"]
    assert caption.run(parse(argv)) == 0
    data = json.loads(out.read_text())
    assert sorted(a["caption"] for a in data["annotations"]) == [
        f"A small animal number {n} walks across the floor." for n in range(5)]
    summary = json.loads(out.with_suffix(".summary.json").read_text())
    assert summary["captioned"] == 5 and summary["usage_this_run"]["calls"] == 5
    assert summary["usage_this_run"]["cost_usd"] == pytest.approx(6.0e-4)
    assert "this run    5 calls" in capsys.readouterr().out

    assert caption.run(parse(argv)) == 0                                  # rerun: all from cache
    assert len(clients[1].requests) == 0
    assert json.loads(out.read_text()) == data


def test_caption_command_dry_run_needs_no_key(lvvis, monkeypatch):
    for var in client_module.API_KEY_VARIABLES:
        monkeypatch.delenv(var, raising=False)
    review = lvvis["tmp"] / "review"
    argv = ["--source", str(lvvis["source"]), "--frames-root", str(lvvis["frames_root"]),
            "--dry-run", str(review), "--limit", "2", "--visual-prompt", "contour", "--no-progress"]
    assert caption.run(parse(argv)) == 0
    assert sorted(p.name for p in (review / "val_instances").iterdir()) == ["11", "12"]
    assert "red contour" in (review / "val_instances" / "11" / "prompt.txt").read_text()


def test_missing_api_key_is_reported(monkeypatch):
    for var in client_module.API_KEY_VARIABLES:
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ToolMissingError, match="GEMINI_API_KEY"):
        client_module.GeminiClient()
