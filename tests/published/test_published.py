"""The published results: transcribed as printed (checked against the sources' lines), the
consistency check on hand-made tables (each check fires, rounding does not), exactly the
papers' known inconsistencies found, bad data files named, and the command."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest

from benchmark.cli import main
from benchmark.errors import InputError
from benchmark.published import (Printed, check, compare_with_known, find_row, load_known_findings,
                                 load_papers, select_rows)

EXCERPTS = Path(__file__).parents[1] / "data" / "published"
NUMBER_OR_DASH = re.compile(r"-?\d+(?:\.\d+)?|(?<!\S)-(?!\S)")


def _excerpt(row, table) -> str:
    if row.paper == "CaptionFormer":
        return "captionformer-release.md" if table.table.startswith("Release") else "captionformer-summary.md"
    return {"MaskCaptioner": "maskcaptioner.md", "DVOC-DS": "dvoc-ds-release.md", "ViCaS": "vicas.md",
            "VoCap": "vocap.md"}[row.paper]


def _printed_on_a_line(lines: list[str], wanted: list[str]) -> bool:
    for line in lines:
        tokens = NUMBER_OR_DASH.findall(re.sub(r"</?[bu]>", "", line))
        if any(tokens[k:k + len(wanted)] == wanted for k in range(len(tokens) - len(wanted) + 1)):
            return True
    return False


def test_every_row_is_printed_in_its_source():
    papers = load_papers()
    checked = 0
    for paper in papers:
        for table in paper.tables:
            for row in table.rows:
                checked += 1
                lines = (EXCERPTS / _excerpt(row, table)).read_text(encoding="utf-8").splitlines()[1:]
                with_dashes = ["-" if v is None else v.text for v in row.values.values()]
                numbers = [v.text for v in row.values.values() if v is not None]
                if not numbers:  # printed "N/A*": the row says why
                    assert "N/A" in row.note, row.id
                    continue
                assert _printed_on_a_line(lines, with_dashes) or _printed_on_a_line(lines, numbers), row.id
    assert checked == 87
    # The tables the issue names are all there (those that could be read).
    tables = {(t.paper, t.table) for p in papers for t in p.tables}
    assert {("MaskCaptioner", f"Table {n}") for n in (2, 3, 4, 5, 6, 7, 8, 10)} <= tables
    assert {("ViCaS", "Table 3"), ("ViCaS", "Table 4"), ("ViCaS", "Table 7"), ("VoCap", "Table 6")} <= tables
    assert sum(1 for p, t in tables if p == "CaptionFormer" and t.startswith("Release")) == 4
    # What could not be read is said, not guessed.
    missing = {p.paper: [m["table"] for m in p.not_transcribed] for p in papers if p.not_transcribed}
    assert set(missing) == {"OW-VISCapTor", "DVOC-DS", "VoCap"}


def test_values_keep_their_printed_precision():
    row = find_row(load_papers(), "MaskCaptioner, Table 3, row 1")
    assert row.values["CHOTA"].text == "53.0" and row.values["CHOTA"].decimals == 1
    assert row.name == "OW-VISCaptor" and row.team == "Choudhuri et al., 2024"
    assert [r.id for r in select_rows(load_papers(), dataset="vln", method="dvoc")] == [
        "MaskCaptioner, Table 4, row 1"]
    assert [r.id for r in select_rows(load_papers(), method="DENSEVOC_VLN")] == ["DVOC-DS, Model Zoo (VLN), row 1"]


def test_the_check_finds_exactly_the_papers_known_inconsistencies():
    noted, new, stale = compare_with_known(check(load_papers()), load_known_findings())
    assert not new and not stale
    assert sorted(f.key for f in noted) == [
        ("chota", ("CaptionFormer, Summary, Table 3, row 3",)),
        ("chota", ("MaskCaptioner, Table 3, row 1",)),
        ("chota", ("MaskCaptioner, Table 6, row 2",)),
        ("chota", ("MaskCaptioner, Table 6, row 4",)),
        ("swapped", ("CaptionFormer, Summary, ablation (Table 2 rows), row 1",
                     "CaptionFormer, Summary, ablation (Table 2 rows), row 2",
                     "MaskCaptioner, Table 2, row 1", "MaskCaptioner, Table 2, row 2")),
    ]
    owv = next(f for f in noted if f.rows == ("MaskCaptioner, Table 3, row 1",))
    assert owv.expected.startswith("52.2 from DetA 60.1 x AssA 54.0 x CapA 43.9") and owv.note
    # A finding that is not recorded is new; a record no longer found is stale.
    known = load_known_findings()
    dropped = ("chota", ("MaskCaptioner, Table 6, row 2",))
    _, new, _ = compare_with_known(check(load_papers()), {k: v for k, v in known.items() if k != dropped})
    assert [f.key for f in new] == [dropped]
    _, _, stale = compare_with_known(check(load_papers()), {**known, ("hota", ("x",)): "gone"})
    assert stale == [("hota", ("x",))]


def _write(folder: Path, rows: str, *, columns: str = "[CapA, DetA, AssA, CHOTA, HOTA, CIDEr, METEOR]",
           extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "a.yaml").write_text(textwrap.dedent(f"""\
        paper: A
        authors: "A et al., 2020"
        citation: "A"
        source: "here"
        tables:
          - table: "Table 1"
            title: "t"
            dataset: vidstg
            split: val
            iou: box
            columns: {columns}
            units: percent
            rows:
        """) + textwrap.indent(textwrap.dedent(rows), "      ") + extra)
    return folder


def _checks(tmp_path, rows: str, **kwargs) -> list[tuple[str, tuple[str, ...]]]:
    return sorted(f.key for f in check(load_papers(_write(tmp_path / "p", rows, **kwargs))))


def test_each_check_fires_on_a_hand_made_row_and_rounding_does_not(tmp_path):
    # Consistent at the printed precision: OVFormer's 34.6 with 64.3 x 50.1 x 12.8 (34.548, and
    # the inputs' rounding reaches 34.61); HOTA 56.8 = sqrt(64.3 x 50.1) = 56.76; CHOTA 52.4 =
    # cbrt(40 x 60 x 60) = 52.41 and CapA 40.0 = mean(CIDEr 50.0, METEOR 30.0).
    assert _checks(tmp_path / "ok", """\
        - {row: 1, method: "M", values: [12.8, 64.3, 50.1, 34.6, 56.8, null, null]}
        - {row: 2, method: "M", values: [40.0, 60.0, 60.0, 52.4, null, 50.0, 30.0]}
        """) == []
    # 53.0 printed where 60.1 x 54.0 x 43.9 gives 52.23 (52.18-52.28 within the rounding).
    assert _checks(tmp_path / "chota", """\
        - {row: 1, method: "M", values: [43.9, 60.1, 54.0, 53.0, null, null, null]}
        """) == [("chota", ("A, Table 1, row 1",))]
    assert _checks(tmp_path / "hota", """\
        - {row: 1, method: "M", values: [null, 64.3, 50.1, null, 57.0, null, null]}
        """) == [("hota", ("A, Table 1, row 1",))]
    assert _checks(tmp_path / "capa", """\
        - {row: 1, method: "M", values: [41.0, null, null, null, null, 50.0, 30.0]}
        """) == [("capa", ("A, Table 1, row 1",))]


def test_repeated_rows_are_compared_and_swaps_named(tmp_path):
    second = """
  - table: "Table 2"
    title: "t"
    dataset: vidstg
    split: val
    iou: box
    columns: [CHOTA]
    units: percent
    rows:
      - {row: 1, method: "M", values: [45.8], same_as: "A, Table 1, row 1"}
      - {row: 2, method: "M", values: [54.7], same_as: "A, Table 1, row 2"}
      - {row: 3, method: "M", values: [60.0], same_as: "A, Table 1, row 3"}
"""
    found = _checks(tmp_path / "s", """\
        - {row: 1, method: "M", values: [54.7]}
        - {row: 2, method: "M", values: [45.8]}
        - {row: 3, method: "M", values: [61.0]}
        """, columns="[CHOTA]", extra=second)
    assert found == [("same-as", ("A, Table 2, row 3", "A, Table 1, row 3")),
                     ("swapped", ("A, Table 1, row 1", "A, Table 1, row 2", "A, Table 2, row 1",
                                  "A, Table 2, row 2"))]
    # The same numbers in two tables of one dataset without a same_as: a duplicate to declare.
    dup = second.replace(', same_as: "A, Table 1, row 1"', "").replace("columns: [CHOTA]", "columns: [CHOTA, CapA]") \
        .replace("[45.8]", "[45.8, 30.0]").replace("[54.7]", "[54.7, 1.0]").replace("[60.0]", "[60.0, 2.0]")
    found = _checks(tmp_path / "d", """\
        - {row: 1, method: "M", values: [45.8, 30.0]}
        - {row: 2, method: "M", values: [45.8, 9.0]}
        - {row: 3, method: "M", values: [60.0, 2.0]}
        """, columns="[CHOTA, CapA]", extra=dup)
    assert ("duplicate", ("A, Table 1, row 1", "A, Table 2, row 1")) in found


@pytest.mark.parametrize("rows, field", [
    ('- {row: 1, method: "M", values: [1.0, 2.0]}\n', "values"),             # 2 values, 7 columns
    ('- {row: 1, method: "M", values: [1, 2, 3, 4, 5, 6, "x"]}\n', "values"),
    ('- {row: 1, method: "M", valuez: [1, 2, 3, 4, 5, 6, 7]}\n', "valuez"),
    ('- {row: 1, method: "M", values: [1, 2, 3, 4, 5, 6, 7], same_as: "A, Table 9, row 1"}\n', "same_as"),
])
def test_a_bad_data_file_is_named(tmp_path, rows, field):
    folder = _write(tmp_path / "bad", rows)
    with pytest.raises(InputError) as caught:
        load_papers(folder)
    assert caught.value.source.endswith("a.yaml") and caught.value.field == field


def test_printed_numbers():
    assert Printed("24.10").decimals == 2 and float(Printed("24.10")) == 24.1
    assert Printed("7").half_unit == 0.5


def test_the_command_lists_filters_writes_and_checks(tmp_path, capsys):
    out = tmp_path / "bensmot.json"
    assert main(["published", "--dataset", "bensmot", "--json", str(out), "--csv", str(tmp_path / "b.csv")]) == 0
    doc = json.loads(out.read_text())
    assert [r["id"] for r in doc["rows"]] == [
        "CaptionFormer, Release table (BenSMOT row), row 5", "MaskCaptioner, Table 5, row 1",
        "MaskCaptioner, Table 5, row 2", "MaskCaptioner, Table 5, row 3", "MaskCaptioner, Table 5, row 4"]
    assert doc["rows"][1]["values"] == {"DetA": "80.8", "AssA": "73.7", "CIDeR": "8.7"}
    assert (tmp_path / "b.csv").read_text().count("\n") == 1 + 1 + 4 * 3
    assert "SMOTer (Li et al., 2024)" in capsys.readouterr().out
    assert main(["published", "--check", "--json", str(tmp_path / "check.json")]) == 0
    findings = json.loads((tmp_path / "check.json").read_text())["findings"]
    assert len(findings) == 5 and all(f["known"] for f in findings)
    assert "52.2" in capsys.readouterr().out


def test_docs_reproduce_has_a_section_for_every_published_table():
    headings = [line[4:] for line in (Path(__file__).parents[2] / "docs" / "reproduce.md")
                .read_text(encoding="utf-8").splitlines() if line.startswith("### ")]
    named = {part.strip() for heading in headings for part in heading.split(";")}
    tables = {f"{t.paper}, {t.table}" for p in load_papers() for t in p.tables}
    assert tables <= named, sorted(tables - named)
