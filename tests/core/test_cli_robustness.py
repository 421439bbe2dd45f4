"""The ``benchmark`` command line as a user meets it: outputs that never replace a link or a
device, ``-`` for standard output, degenerate results that say so, one-line option errors."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import pytest

from benchmark import atomic, errors
from benchmark.atomic import atomic_write_bytes
from benchmark.cli import main, run_command
from benchmark.sample_data import sample_paths

SCORE = ["score", "--caption-metrics", "cider", "--quiet", "--workers", "1", "--cache", "none"]


def _score_args(gt, pred, *extra):
    return [*SCORE, "--gt", str(gt), "--pred", str(pred), *extra]


# ------------------------------------------------------------------ outputs


def test_symlink_target_is_refused_and_left_intact(tmp_path):
    real = tmp_path / "real.json"
    real.write_text("keep me")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    with pytest.raises(errors.OutputError, match=r"link\.json: is a symbolic link, not a regular file"):
        atomic_write_bytes(link, b"new")
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_text() == "keep me"
    assert sorted(os.listdir(tmp_path)) == ["link.json", "real.json"]  # no temp file left


def test_device_and_folder_targets_are_refused(tmp_path):
    with pytest.raises(errors.OutputError, match="/dev/null: is a character device"):
        atomic_write_bytes("/dev/null", b"x")
    with pytest.raises(errors.OutputError, match="is a folder"):
        atomic.check_output_path(tmp_path)
    assert atomic.check_output_path(tmp_path / "fresh.json") == tmp_path / "fresh.json"


def test_score_refuses_symlinked_json_with_one_line(tmp_path, capsys):
    paths = sample_paths()
    real = tmp_path / "real.json"
    real.write_text("old")
    link = tmp_path / "scores.json"
    link.symlink_to(real)
    assert main(_score_args(paths.gt, paths.submissions["good"], "--json", str(link))) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "scores.json: is a symbolic link" in err
    assert "Traceback" not in err
    assert link.is_symlink() and real.read_text() == "old"


def test_score_json_dash_prints_only_json_to_stdout(tmp_path, capsys):
    paths = sample_paths()
    assert main(_score_args(paths.gt, paths.submissions["good"], "--json", "-")) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)  # stdout is the JSON document and nothing else
    assert doc["scores"]["HOTA_TP"] == 365
    assert doc["scores"]["HOTA_FN"] == 6 and doc["scores"]["HOTA_FP"] == 28
    assert "HOTA_TP" in captured.err  # the table went to stderr
    assert not (tmp_path / "-").exists() and not os.path.exists("-")


def test_score_csv_dash_prints_csv(capsys):
    paths = sample_paths()
    assert main(_score_args(paths.gt, paths.submissions["good"], "--csv", "-")) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("video_id,video,CHOTA,CapA,HOTA,")
    assert lines[1].startswith("1,video_00001,2.00357,8.50823,0.972272,")
    assert not os.path.exists("-")


def test_score_two_outputs_on_stdout_is_an_error(capsys):
    paths = sample_paths()
    assert main(_score_args(paths.gt, paths.submissions["good"], "--json", "-", "--csv", "-")) == 2
    assert "--json and --csv both name standard output" in capsys.readouterr().err
    assert main(_score_args(paths.gt, paths.submissions["good"], "--plot", "-")) == 2
    assert "--plot -: standard output is only for text outputs" in capsys.readouterr().err


# ------------------------------------------------------------------ degenerate results


@pytest.fixture()
def low_and_empty(tmp_path):
    """The bundled good submission with every score at 0.32 (below the 0.5 threshold), and an
    empty prediction list."""
    records = json.loads(sample_paths().submissions["good"].read_text())
    for record in records:
        record["score"] = 0.32
    low, empty = tmp_path / "low.json", tmp_path / "empty.json"
    low.write_text(json.dumps(records))
    empty.write_text("[]")
    return low, empty, len(records)


UNDEFINED = ("CapA", "AssA", "AssRe", "AssPr", "LocA", "CapA-cider")


@pytest.mark.parametrize("which", ["low", "empty"])
def test_nothing_kept_warns_and_keeps_reference_values(low_and_empty, which, tmp_path, capsys):
    low, empty, n = low_and_empty
    out = tmp_path / "scores.json"
    pred = low if which == "low" else empty
    assert main(_score_args(sample_paths().gt, pred, "--json", str(out))) == 0
    captured = capsys.readouterr()
    head = (f"warning: no prediction scored: 0 of {n} predictions kept (score > 0.5)"
            if which == "low" else "warning: no prediction scored: the predictions are empty")
    assert captured.err.startswith(head)
    assert ("undefined for lack of true positives: CapA, AssA, AssRe, AssPr, LocA, CapA-cider"
            in captured.err)
    doc = json.loads(out.read_text())
    # The reference's values, unchanged: LocA and CapA 1.0 next to CHOTA 0.
    scores = doc["scores"]
    assert scores["LocA"] == 1.0 and scores["CapA"] == 1.0 and scores["CapA-cider"] == 1.0
    assert scores["CHOTA"] == 0.0 and scores["HOTA"] == 0.0 and scores["AssA"] == 0.0
    assert scores["HOTA_TP"] == 0 and scores["HOTA_FN"] == 371 and scores["HOTA_FP"] == 0
    assert doc["per_alpha"]["LocA"] == [1.0]
    assert len(doc["warnings"]) == 1 and doc["warnings"][0] == captured.err.split("\n")[0][9:]
    # The table marks exactly the undefined fields.
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip()
            for line in captured.out.splitlines() if line.count("│") >= 3}
    rows = {k: v for k, v in rows.items() if k}
    for name in UNDEFINED:
        assert rows[name].endswith(" *"), name
    assert rows["LocA"] == "1.0000 *" and rows["CHOTA"] == "0.0000"
    assert [k for k, v in rows.items() if v.endswith("*")] == list(UNDEFINED)


def test_undefined_fields_count_alphas(low_and_empty):
    from benchmark import chota

    low, empty, _ = low_and_empty
    with pytest.warns(UserWarning, match="no prediction scored"):
        result = chota(sample_paths().gt, empty, caption_metrics=(), alphas=[0.5, 0.9],
                       num_workers=1, progress=False)
    assert result.undefined_fields() == {"AssA": 2, "AssRe": 2, "AssPr": 2, "LocA": 2}
    # Boxes shrunk to 60% a side overlap their ground truth by IoU <= 0.36: TPs at 0.1,
    # none at 0.9.
    records = json.loads(sample_paths().submissions["good"].read_text())
    for record in records:
        record["bbox"] = [*record["bbox"][:2], record["bbox"][2] * 0.6, record["bbox"][3] * 0.6]
    small = low.with_name("small.json")
    small.write_text(json.dumps(records))
    with pytest.warns(UserWarning, match="no true positive at some alpha"):
        good = chota(sample_paths().gt, small, caption_metrics=(), alphas=[0.1, 0.9],
                     num_workers=1, progress=False)
    assert good.per_alpha["HOTA_TP"][0] > 0 and good.per_alpha["HOTA_TP"][1] == 0
    assert good.undefined_fields() == {"AssA": 1, "AssRe": 1, "AssPr": 1, "LocA": 1}
    assert good.warnings[-1] == (
        "393 of 393 predictions kept (score > 0.5), but no true positive at some alpha; "
        "undefined for lack of true positives: AssA (1 of 2 alphas), AssRe (1 of 2 alphas), "
        "AssPr (1 of 2 alphas), LocA (1 of 2 alphas); their values are the reference "
        "scorer's conventions, not measurements")


# ------------------------------------------------------------------ options, extras, entry


@pytest.mark.parametrize("value, reason", [
    ("foo", "'foo' is not a number in (0, 1] nor 'hota'"),
    ("1.5", "'1.5' is not a number in (0, 1] nor 'hota'"),
    ("0.5,hota", "'hota' stands alone"),
])
def test_bad_alphas_is_one_argparse_line(value, reason, capsys):
    paths = sample_paths()
    with pytest.raises(SystemExit) as exit_info:
        main(_score_args(paths.gt, paths.submissions["good"], "--alphas", value))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.splitlines()[-1].startswith(f"benchmark score: error: argument --alphas: {reason}")


def test_comma_separated_alphas(tmp_path):
    paths = sample_paths()
    out = tmp_path / "scores.json"
    assert main(_score_args(paths.gt, paths.submissions["good"], "--alphas", "0.5,0.75",
                            "0.9", "--json", str(out))) == 0
    doc = json.loads(out.read_text())
    assert doc["settings"]["alphas"] == [0.5, 0.75, 0.9]
    assert len(doc["per_alpha"]["HOTA"]) == 3


def test_missing_optional_package_names_the_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "PIL", None)  # `import PIL` now fails as if absent
    monkeypatch.setitem(sys.modules, "PIL.Image", None)
    assert main(["sample", "generate", "--out", str(tmp_path / "synth"), "--num-videos", "1",
                 "--num-frames", "2"]) == 2
    err = capsys.readouterr().err  # after the progress bar: one line, no traceback
    assert "Traceback" not in err
    assert err.splitlines()[-1] == ("error: this command needs the optional package 'PIL', "
                                    "which is not installed: pip install 'dvoc-benchmark[captioning]'")


def test_tool_missing_from_import_gets_the_extra(tmp_path, monkeypatch, capsys):
    from benchmark.metrics.caption_accuracy import TransformersJudge

    monkeypatch.setitem(sys.modules, "torch", None)
    args = argparse.Namespace(func=lambda _args: TransformersJudge(model_path=tmp_path))
    assert run_command(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the transformers judge needs torch and transformers")
    assert err.endswith("(pip install 'dvoc-benchmark[model]')\n")


def test_other_module_errors_keep_their_traceback():
    def broken(_args):
        import benchmark.no_such_module  # noqa: F401

    with pytest.raises(ModuleNotFoundError):
        run_command(argparse.Namespace(func=broken))


def test_python_dash_m_benchmark():
    done = subprocess.run([sys.executable, "-m", "benchmark", "--help"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: benchmark ")
    assert "score" in done.stdout and "demo" in done.stdout


def test_counts_print_as_integers(capsys):
    paths = sample_paths()
    assert main(_score_args(paths.gt, paths.submissions["good"])) == 0
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip()
            for line in capsys.readouterr().out.splitlines() if line.count("│") >= 3}
    assert [rows[n] for n in ("HOTA_TP", "HOTA_FN", "HOTA_FP", "TP_with_caps")] == \
        ["365", "6", "28", "365"]
    assert rows["HOTA"] == "0.9445"


# ------------------------------------------------------------------ alpha plot


def test_single_alpha_plot_draws_bars_not_dots(tmp_path):
    import matplotlib.pyplot as plt

    from benchmark import chota, report

    paths = sample_paths()
    one = chota(paths.gt, paths.submissions["good"], caption_metrics=("cider",),
                num_workers=1, progress=False, cache=None)
    fig = report.alpha_figure(one)
    try:
        ax = fig.axes[0]
        heights = [p.get_height() for p in ax.patches]
        assert len(heights) == 5  # HOTA, DetA, AssA, LocA, CHOTA
        assert heights == pytest.approx([one["HOTA"], one["DetA"], one["AssA"], one["LocA"],
                                         one["CHOTA"]])
        assert heights[0] == pytest.approx(0.9445, abs=1e-4)
        assert [t.get_text() for t in ax.get_xticklabels()] == [
            "HOTA", "DetA", "AssA", "LocA", "CHOTA"]
        assert len(ax.lines) == 0  # no column of dots
    finally:
        plt.close(fig)
    report.plot_alpha_curves(one, tmp_path / "a.png")
    assert (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"

    several = chota(paths.gt, paths.submissions["good"], caption_metrics=(), alphas=[0.3, 0.5, 0.7],
                    num_workers=1, progress=False)
    fig = report.alpha_figure(several)
    try:
        ax = fig.axes[0]
        assert len(ax.patches) == 0
        assert len(ax.lines) == 4
        assert [list(line.get_xdata()) for line in ax.lines] == [[0.3, 0.5, 0.7]] * 4
        assert list(ax.lines[0].get_ydata()) == pytest.approx(list(several.per_alpha["HOTA"]))
    finally:
        plt.close(fig)


def test_pyproject_license_is_an_spdx_string():
    """The license table form makes setuptools print ~50 lines of deprecation warnings on
    every install (before the demo); the SPDX string form needs setuptools >= 77."""
    import tomllib
    from pathlib import Path

    doc = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())
    assert doc["project"]["license"] == "Apache-2.0"
    assert "setuptools>=77" in doc["build-system"]["requires"]


def test_refused_output_fails_before_any_output_is_written(tmp_path, capsys):
    paths = sample_paths()
    (tmp_path / "real.csv").write_text("old")
    (tmp_path / "link.csv").symlink_to(tmp_path / "real.csv")
    code = main(_score_args(paths.gt, paths.submissions["good"], "--json",
                            str(tmp_path / "scores.json"), "--csv", str(tmp_path / "link.csv")))
    assert code == 2
    captured = capsys.readouterr()
    assert "link.csv: is a symbolic link" in captured.err
    assert "HOTA_TP" not in captured.out  # refused before scoring
    assert sorted(os.listdir(tmp_path)) == ["link.csv", "real.csv"]  # no half set of outputs
