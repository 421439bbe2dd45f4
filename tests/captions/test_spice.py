"""SPICE: jar lookup, command line, output parsing, errors, an end-to-end run against a fake
SPICE jar, and fetch_spice / `benchmark fetch-spice` on a local archive."""

from __future__ import annotations

import functools
import http.server
import io
import json
import math
import shutil
import sys
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

from benchmark.captions import CaptionScorerError, SpiceScorer, fetch_spice
from benchmark.captions._java import pycocoevalcap_dir
from benchmark.captions.spice import CORENLP_JARS, find_corenlp, parse_spice_output
from benchmark.cli import main as cli_main
from benchmark.errors import ToolMissingError

# ---- finding the CoreNLP jars


def test_corenlp_lookup_order(tmp_path, corenlp, monkeypatch):
    env_dir = tmp_path / "env"
    shutil.copytree(corenlp, env_dir)
    cache_dir = tmp_path / "user-cache" / "corenlp"
    shutil.copytree(corenlp, cache_dir)
    monkeypatch.setenv("BENCHMARK_CORENLP_DIR", str(env_dir))
    assert find_corenlp(corenlp) == corenlp  # the argument first
    assert find_corenlp() == env_dir  # then the environment variable
    monkeypatch.delenv("BENCHMARK_CORENLP_DIR")
    assert find_corenlp() == cache_dir  # pycocoevalcap's lib has none here, so the user cache
    assert find_corenlp(tmp_path / "empty") == cache_dir  # a folder without them is skipped


def test_missing_corenlp_says_where_it_looked_and_what_to_do(tmp_path, corenlp):
    (tmp_path / "half").mkdir()
    shutil.copy(corenlp / CORENLP_JARS[0], tmp_path / "half")  # one jar is not enough
    with pytest.raises(ToolMissingError) as err:
        SpiceScorer(corenlp_dir=tmp_path / "half")
    message = str(err.value)
    for expected in (*CORENLP_JARS, str(tmp_path / "half"), "spice/lib", "user-cache/corenlp",
                     "benchmark fetch-spice", "BENCHMARK_CORENLP_DIR"):  # fmt: skip
        assert expected in message


def test_missing_java_names_spice(corenlp):
    with pytest.raises(ToolMissingError, match=r"SPICE needs Java.*apt-get install default-jre"):
        SpiceScorer(corenlp_dir=corenlp, java="/no/such/java")


# ---- command line and output parsing


def test_command_line(corenlp, tmp_path):
    scorer = SpiceScorer(corenlp_dir=corenlp, use_launcher=False, cache_dir=tmp_path / "parses")
    cmd = scorer.command(Path("/t/in.json"), Path("/t/out.json"))
    assert cmd[0] == shutil.which("java")
    assert cmd[1:3] == ["-Xmx8G", "-Dfile.encoding=UTF-8"]
    assert cmd[3] == "-cp"
    classpath = cmd[4].split(":")
    spice_dir = pycocoevalcap_dir() / "spice"
    assert classpath[:3] == [str(spice_dir / "spice-1.0.jar"), *(str(corenlp / n) for n in CORENLP_JARS)]
    libs = {Path(p).name for p in classpath[3:]}
    assert {"json-simple-1.1.1.jar", "SceneGraphParser-1.0.jar", "Meteor-1.5.jar", "guava-19.0.jar"} <= libs
    assert len(libs) == 17
    assert cmd[5:] == [
        "edu.anu.spice.SpiceScorer", "/t/in.json", "-out", "/t/out.json",
        "-cache", str(tmp_path / "parses"), "-subset", "-silent",
    ]  # fmt: skip
    assert scorer.metric_id.startswith("spice-1.0:") and "stanford-corenlp-3.6.0-models.jar" in scorer.metric_id


def test_parse_output_maps_by_id_and_keeps_nan():
    out = [
        {"image_id": 2, "scores": {"All": {"f": 0.25}}},
        {"image_id": 0, "scores": {"All": {"f": None}}},
        {"image_id": 1, "scores": {"All": {"f": "NaN"}}},
    ]
    got = parse_spice_output(out, 3)
    assert got[2] == 0.25 and math.isnan(got[0]) and math.isnan(got[1])
    with pytest.raises(CaptionScorerError, match="lacks 1 of the 3"):
        parse_spice_output(out[:2], 3)
    with pytest.raises(CaptionScorerError, match="expected shape"):
        parse_spice_output([{"image_id": 0, "scores": {}}], 1)
    with pytest.raises(CaptionScorerError, match="expected shape"):
        parse_spice_output([{"image_id": 7, "scores": {"All": {"f": 1}}}], 1)


# ---- end to end against the fake jar

PAIRS = [
    ("a man rides a horse", "a man on a horse"),  # shared {a, man, horse} of {a, man, on, horse}
    ("two dogs run", "a cat"),
    ("a red car", ""),  # SPICE gives NaN-like null
    ("café au lait", "un café"),  # UTF-8 must survive the JSON round trip
]
EXPECTED = [0.75, 0.0, math.nan, 0.5]


@pytest.mark.java
@pytest.mark.parametrize("use_launcher", [False, True])
def test_end_to_end_with_fake_jar(fake_spice_jar, corenlp, tmp_path, use_launcher):
    scorer = SpiceScorer(
        corenlp_dir=corenlp, spice_jar=fake_spice_jar, use_launcher=use_launcher, cache_dir=tmp_path / "parses"
    )
    assert (scorer.launcher_dir is not None) == use_launcher
    got = scorer.score([r for r, _ in PAIRS], [c for _, c in PAIRS])
    np.testing.assert_array_equal(got, EXPECTED)
    assert (tmp_path / "parses").is_dir()
    # Temporary files live in a temp folder, never next to the jars.
    assert sorted(p.name for p in fake_spice_jar.parent.iterdir()) == ["classes", "spice-1.0.jar", "src"]


@pytest.mark.java
def test_jvm_failure_is_an_error_with_stderr(fake_spice_jar, corenlp):
    scorer = SpiceScorer(corenlp_dir=corenlp, spice_jar=fake_spice_jar, use_launcher=False)
    with pytest.raises(CaptionScorerError, match=r"SPICE failed \(exit status 1\) on 2 pairs.*IllegalStateException: boom"):
        scorer.score(["a", "b"], ["a", "CRASH"])


@pytest.mark.java
def test_real_jar_command_is_accepted_up_to_corenlp(jdk, corenlp, tmp_path):
    # The real spice-1.0.jar with stand-in CoreNLP jars: it parses our arguments and input and
    # fails only when it needs CoreNLP's classes, which proves the command and classpath reach it.
    scorer = SpiceScorer(corenlp_dir=corenlp, cache_dir=tmp_path / "parses")
    with pytest.raises(CaptionScorerError) as err:
        scorer.score(["a man"], ["a dog"])
    assert "edu/stanford/nlp" in str(err.value) or "edu.stanford.nlp" in str(err.value)
    assert "Unknown option" not in str(err.value)


# ---- fetch_spice and the CLI


def corenlp_zip(path: Path, members=CORENLP_JARS) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name in members:
            inner = io.BytesIO()
            with zipfile.ZipFile(inner, "w") as jar:
                jar.writestr("edu/stanford/nlp/Placeholder.class", name)
            zf.writestr(f"stanford-corenlp-full-2015-12-09/{name}", inner.getvalue())
        zf.writestr("stanford-corenlp-full-2015-12-09/README.txt", "other files are left out")
    return path


def test_fetch_from_file_url(tmp_path):
    archive = corenlp_zip(tmp_path / "corenlp.zip")
    dest = fetch_spice(tmp_path / "jars", url=archive.as_uri(), progress=False)
    assert sorted(p.name for p in dest.iterdir()) == sorted(CORENLP_JARS)  # no temp leftovers
    for name in CORENLP_JARS:
        with zipfile.ZipFile(dest / name) as jar:
            assert jar.read("edu/stanford/nlp/Placeholder.class") == name.encode()
    assert find_corenlp(dest) == dest
    # Already there: nothing is downloaded (the URL would fail).
    assert fetch_spice(dest, url=(tmp_path / "gone.zip").as_uri(), progress=False) == dest


def test_fetch_default_destination_is_where_spice_looks(tmp_path):
    archive = corenlp_zip(tmp_path / "corenlp.zip")
    dest = fetch_spice(url=archive.as_uri(), progress=False)
    assert dest == tmp_path / "user-cache" / "corenlp"
    assert find_corenlp() == dest


def test_fetch_over_http(tmp_path):
    corenlp_zip(tmp_path / "corenlp.zip")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/corenlp.zip"
        dest = fetch_spice(tmp_path / "jars", url=url, progress=True)
    finally:
        server.shutdown()
    assert sorted(p.name for p in dest.iterdir()) == sorted(CORENLP_JARS)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: (p.write_bytes(b"not a zip"), p)[1], "not a valid zip"),
        (lambda p: corenlp_zip(p, members=CORENLP_JARS[:1]), "does not contain stanford-corenlp-3.6.0-models.jar"),
        (lambda p: p.with_name("missing.zip"), "could not download"),
    ],
)
def test_fetch_failures_leave_nothing_behind(tmp_path, make, message):
    archive = make(tmp_path / "corenlp.zip")
    with pytest.raises(ToolMissingError, match=message):
        fetch_spice(tmp_path / "jars", url=archive.as_uri(), progress=False)
    assert list((tmp_path / "jars").iterdir()) == []


def test_cli_fetch_spice(tmp_path, capsys):
    archive = corenlp_zip(tmp_path / "corenlp.zip")
    assert cli_main(["fetch-spice", "--dest", str(tmp_path / "jars"), "--url", archive.as_uri()]) == 0
    assert "ready in" in capsys.readouterr().out
    assert cli_main(["fetch-spice", "--dest", str(tmp_path / "other"), "--url", "file:///nonexistent.zip"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: could not download file:///nonexistent.zip") and err.count("\n") == 1


def test_json_input_written_for_spice(corenlp, tmp_path):
    """The input file SPICE reads: one item per pair, image_id = position, one reference, UTF-8."""
    capture = tmp_path / "seen.json"
    fake_java = tmp_path / "java"
    # A stand-in "java" that keeps a copy of its input and answers f = 0.5 for every item.
    fake_java.write_text(
        f"#!{sys.executable}\n"
        "import json, shutil, sys\n"
        "args = sys.argv[1:]\n"
        "src = args[args.index('-out') - 1]\n"
        f"shutil.copy(src, {str(capture)!r})\n"
        "items = json.load(open(src, encoding='utf-8'))\n"
        "out = [{'image_id': it['image_id'], 'scores': {'All': {'f': 0.5}}} for it in items]\n"
        "json.dump(out, open(args[args.index('-out') + 1], 'w'))\n"
    )
    fake_java.chmod(0o755)
    scorer = SpiceScorer(corenlp_dir=corenlp, java=str(fake_java), use_launcher=False, cache_dir=tmp_path / "p")
    assert scorer.score(["ref é", "r2"], ["cand\nx", "c2"]).tolist() == [0.5, 0.5]
    assert json.loads(capture.read_bytes().decode("utf-8")) == [
        {"image_id": 0, "test": "cand\nx", "refs": ["ref é"]},
        {"image_id": 1, "test": "c2", "refs": ["r2"]},
    ]
