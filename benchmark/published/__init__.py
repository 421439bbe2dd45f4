"""The field's published results, as printed, and a check of their arithmetic.

Each YAML file of this folder is one paper (or release) whose result tables this package can
score: ``paper``, ``authors`` (who reported its rows, e.g. "Fiastre et al., 2025"),
``citation``, ``source`` and ``tables``; tables it does not hold are listed under
``not_included`` (with why) and ``not_transcribed`` (could not be read). A table has
``table`` (its label in the source), ``title``, ``dataset``, ``split``, ``iou`` (box, mask or
null when the source does not say), ``columns`` (the metric names as printed), ``units``,
optionally ``note`` (about the transcription), ``source``, ``leaderboard: true`` (its rows
are seeded on the leaderboard) and ``leaderboard_note`` (what a reader of the board must
know), and ``rows``: ``{row, method, setting, values, note?, same_as?}`` with the values
exactly as printed (null for a dash). ``same_as`` names the row of another table that reports
the same experiment ("MaskCaptioner, Table 3, row 5"), which the check then compares.

Numbers keep their printed text (:class:`Printed`), so that the check works at the printed
precision: a row is inconsistent only when no values within the printed rounding of its
inputs give its printed result (CHOTA = cube root of DetA x AssA x CapA, HOTA = sqrt(DetA x
AssA), CapA = mean of its caption metrics at alpha 0.5, as in chota-protocol.md).
``known_findings.yaml`` records the inconsistencies of the papers themselves, with a note;
:func:`check` reports every finding, and :func:`compare_with_known` which are new or stale.

Example:
    >>> papers = load_papers()
    >>> row = find_row(papers, "MaskCaptioner, Table 3, row 6")
    >>> row.name, row.team, row.values["CHOTA"].text
    ('MaskCaptioner + temp agg', 'Fiastre et al., 2025', '64.0')
    >>> sorted({f.check for f in check(papers)})
    ['chota', 'swapped']
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from itertools import combinations
from pathlib import Path
from typing import Any

import yaml

from benchmark.errors import InputError

__all__ = ["Finding", "Paper", "Printed", "PublishedRow", "PublishedTable", "check",
           "compare_with_known", "find_row", "load_known_findings", "load_papers", "select_rows"]

FOLDER = Path(__file__).parent
KNOWN_FINDINGS = FOLDER / "known_findings.yaml"
DATASETS = ("vidstg", "vln", "bensmot", "lvviscap", "lvis", "sav-caption", "vicas", "other")
CAPTION_METRICS = ("cider", "meteor", "spice")
_PAPER_KEYS = {"paper", "authors", "citation", "citation_note", "source", "tables", "not_included",
               "not_transcribed"}
_TABLE_KEYS = {"table", "title", "dataset", "split", "iou", "columns", "units", "note", "source",
               "leaderboard", "leaderboard_note", "rows"}
_ROW_KEYS = {"row", "method", "setting", "values", "note", "same_as"}


class Printed(float):
    """A number as printed: its value, and its text (``53.0`` keeps its one decimal).

    Example:
        >>> x = Printed("53.0")
        >>> x + 1, x.text, x.decimals, x.half_unit
        (54.0, '53.0', 1, 0.05)
    """

    text: str

    def __new__(cls, text: str) -> Printed:
        value = super().__new__(cls, float(text))
        value.text = text
        return value

    @property
    def decimals(self) -> int:
        return len(self.text.split(".")[1]) if "." in self.text else 0

    @property
    def half_unit(self) -> float:
        """Half the last printed digit: the printed value is within this of the true one."""
        return 0.5 * 10.0 ** -self.decimals

    def __repr__(self) -> str:
        return self.text


@dataclass(frozen=True)
class PublishedRow:
    """One printed row. ``values`` maps each printed column name to its :class:`Printed`
    value (None for a dash)."""

    paper: str
    table: str
    row: int
    method: str
    setting: str
    values: dict[str, Printed | None]
    dataset: str
    split: str | None
    iou: str | None
    authors: str
    note: str | None = None
    same_as: str | None = None

    @property
    def id(self) -> str:
        """``"<paper>, <table>, row <n>"``, how ``same_as`` and the known findings name it."""
        return f"{self.paper}, {self.table}, row {self.row}"

    @property
    def name(self) -> str:
        """The method without its printed citation or "(ours)": "DVOC-DS (Zhou et al., 2025)"
        and "DVOC-DS Zhou et al. (2025)" give "DVOC-DS"."""
        return _split_method(self.method, self.authors)[0]

    @property
    def team(self) -> str:
        """Who the method is by: its printed citation, else the paper's authors."""
        return _split_method(self.method, self.authors)[1]

    def value(self, metric: str) -> Printed | None:
        """The value of a column, by case-insensitive name (the papers print "CIDeR")."""
        for column, value in self.values.items():
            if column.lower() == metric.lower():
                return value
        return None


@dataclass(frozen=True)
class PublishedTable:
    paper: str
    table: str
    title: str
    dataset: str
    split: str | None
    iou: str | None
    columns: tuple[str, ...]
    units: str
    source: str
    rows: tuple[PublishedRow, ...]
    note: str | None = None
    leaderboard: bool = False
    leaderboard_note: str | None = None


@dataclass(frozen=True)
class Paper:
    paper: str
    authors: str
    citation: str
    source: str
    tables: tuple[PublishedTable, ...]
    not_included: tuple[str, ...] = ()
    not_transcribed: tuple[dict[str, str], ...] = ()
    file: str = ""


@dataclass(frozen=True)
class Finding:
    """An inconsistency: which ``check`` ("chota", "hota", "capa", "same-as", "swapped",
    "duplicate"), the rows involved, what is printed and what the others imply."""

    check: str
    rows: tuple[str, ...]
    printed: str
    expected: str
    note: str | None = field(default=None, compare=False)

    @property
    def key(self) -> tuple[str, tuple[str, ...]]:
        return self.check, self.rows


# --------------------------------------------------------------------------- loading

class _Loader(yaml.SafeLoader):
    """Floats keep their printed text."""


_Loader.add_constructor("tag:yaml.org,2002:float",
                        lambda loader, node: Printed(loader.construct_scalar(node)))


def load_papers(folder: str | os.PathLike[str] | None = None) -> list[Paper]:
    """Every paper file of ``folder`` (default: this package's), checked: known keys, one
    value per column, numbers or null, unique row ids, ``same_as`` naming an existing row."""
    folder = Path(folder) if folder is not None else FOLDER
    papers = [_load_paper(path) for path in sorted(folder.glob("*.yaml"))
              if path.name != KNOWN_FINDINGS.name]
    ids: dict[str, PublishedRow] = {}
    for paper in papers:
        for table in paper.tables:
            for row in table.rows:
                if row.id in ids:
                    raise InputError(f"row {row.id!r} is given twice", source=paper.file, field="row")
                ids[row.id] = row
    for paper in papers:
        for row in _rows(paper):
            if row.same_as is not None and row.same_as not in ids:
                raise InputError(f"same_as names no row: {row.same_as!r}", source=paper.file,
                                 record=row.id, field="same_as")
    # A repeated row without its own citation is by whoever the row it repeats is by (the
    # CaptionFormer summary's "OW-VISCaptor" is Choudhuri et al.'s, not the summary's).
    def cited(row: PublishedRow) -> PublishedRow:
        if row.same_as is None or _split_method(row.method, "")[1]:
            return row
        return replace(row, authors=ids[row.same_as].team)

    return [replace(paper, tables=tuple(replace(table, rows=tuple(cited(r) for r in table.rows))
                                        for table in paper.tables)) for paper in papers]


def _load_paper(path: Path) -> Paper:
    name = str(path)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506 (safe loader)
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"cannot read published results: {exc}", source=name) from exc
    if not isinstance(data, dict):
        raise InputError("must be a mapping with 'paper' and 'tables'", source=name)
    _known_keys(data, _PAPER_KEYS, name, "paper")
    for key in ("paper", "authors", "citation", "source"):
        if not isinstance(data.get(key), str):
            raise InputError("missing or not a string", source=name, field=key)
    tables = []
    for t_index, table in enumerate(data.get("tables") or []):
        where = f"tables[{t_index}]"
        if not isinstance(table, dict):
            raise InputError("a table must be a mapping", source=name, record=where)
        _known_keys(table, _TABLE_KEYS, name, where)
        columns = table.get("columns")
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            raise InputError("must be a list of column names", source=name, record=where, field="columns")
        if table.get("dataset") not in DATASETS:
            raise InputError(f"must be one of {', '.join(DATASETS)}, got {table.get('dataset')!r}",
                             source=name, record=where, field="dataset")
        if table.get("iou") not in (None, "box", "mask"):
            raise InputError(f"must be box, mask or null, got {table.get('iou')!r}", source=name,
                             record=where, field="iou")
        rows = []
        for r_index, row in enumerate(table.get("rows") or []):
            record = f"{where}.rows[{r_index}]"
            if not isinstance(row, dict):
                raise InputError("a row must be a mapping", source=name, record=record)
            _known_keys(row, _ROW_KEYS, name, record)
            values = row.get("values")
            if not isinstance(values, list) or len(values) != len(columns):
                raise InputError(f"must be a list of {len(columns)} values, one per column",
                                 source=name, record=record, field="values")
            printed = []
            for value in values:
                if isinstance(value, bool) or not isinstance(value, (int, float)) and value is not None:
                    raise InputError(f"must be a number or null, got {value!r}", source=name,
                                     record=record, field="values")
                printed.append(Printed(str(value)) if type(value) is int else value)
            if not isinstance(row.get("row"), int) or not isinstance(row.get("method"), str):
                raise InputError("needs an integer 'row' and a 'method'", source=name, record=record)
            rows.append(PublishedRow(
                paper=data["paper"], table=str(table["table"]), row=row["row"], method=row["method"],
                setting=str(row.get("setting") or ""), values=dict(zip(columns, printed)),
                dataset=table["dataset"], split=table.get("split"), iou=table.get("iou"),
                authors=data["authors"], note=row.get("note"), same_as=row.get("same_as")))
        tables.append(PublishedTable(
            paper=data["paper"], table=str(table["table"]), title=str(table.get("title", "")),
            dataset=table["dataset"], split=table.get("split"), iou=table.get("iou"),
            columns=tuple(columns), units=str(table.get("units", "")),
            source=str(table.get("source", data["source"])), rows=tuple(rows),
            note=table.get("note"), leaderboard=bool(table.get("leaderboard", False)),
            leaderboard_note=table.get("leaderboard_note")))
    return Paper(paper=data["paper"], authors=data["authors"], citation=data["citation"],
                 source=data["source"], tables=tuple(tables),
                 not_included=tuple(data.get("not_included") or ()),
                 not_transcribed=tuple(data.get("not_transcribed") or ()), file=name)


def _known_keys(mapping: dict, allowed: set[str], source: str, record: str) -> None:
    unknown = sorted(set(mapping) - allowed)
    if unknown:
        raise InputError(f"unknown field(s) {', '.join(map(repr, unknown))}; known: "
                         f"{', '.join(sorted(allowed))}", source=source, record=record, field=unknown[0])


def _rows(paper: Paper) -> Iterable[PublishedRow]:
    for table in paper.tables:
        yield from table.rows


def select_rows(papers: Sequence[Paper], *, dataset: str | None = None,
                method: str | None = None) -> list[PublishedRow]:
    """Rows of ``dataset`` (exact) whose method contains ``method`` (case-insensitive).

    Example:
        >>> [r.id for r in select_rows(load_papers(), dataset="bensmot", method="smoter")]
        ['MaskCaptioner, Table 5, row 1']
    """
    return [row for paper in papers for row in _rows(paper)
            if (dataset is None or row.dataset == dataset)
            and (method is None or method.lower() in row.method.lower())]


def find_row(papers: Sequence[Paper], row_id: str) -> PublishedRow:
    """The row named ``"<paper>, <table>, row <n>"``."""
    for paper in papers:
        for row in _rows(paper):
            if row.id == row_id:
                return row
    raise KeyError(row_id)


_CITED = re.compile(r"^(?P<name>.+?)\s*\((?P<team>[^()]*\bet al\.,? \d{4}[a-z]?)\)(?P<rest>.*)$")
_CITED_INLINE = re.compile(r"^(?P<name>.+?)\s+(?P<authors>[A-Z][\w-]*(?: et al\.| and [A-Z][\w-]*))"
                           r" \((?P<year>\d{4})[a-z]?\)(?P<rest>.*)$")
_OURS = re.compile(r"\s*\(ours\)")
_REFERENCE = re.compile(r"\s*\[\d+\]")


def _split_method(method: str, authors: str) -> tuple[str, str]:
    """(name, team) of a printed method: its citation removed and used as the team.

    Example:
        >>> _split_method("DVOC-DS Zhou et al. (2025)", "Fiastre et al., 2025")
        ('DVOC-DS', 'Zhou et al., 2025')
        >>> _split_method("MaskCaptioner (ours) + temp agg", "Fiastre et al., 2025")
        ('MaskCaptioner + temp agg', 'Fiastre et al., 2025')
    """
    text = _REFERENCE.sub("", _OURS.sub("", method))
    match = _CITED.match(text)
    if match:
        return (match["name"] + match["rest"]).strip(), re.sub(r"et al\.,? ", "et al., ", match["team"])
    match = _CITED_INLINE.match(text)
    if match:
        return (match["name"] + match["rest"]).strip(), f"{match['authors']}, {match['year']}"
    return text.strip(), authors


# --------------------------------------------------------------------------- the check

def _fmt(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}"


def _outside(printed: Printed, low: float, high: float) -> bool:
    """True when the printed value cannot be any value in [low, high] rounded."""
    tolerance = 1e-9
    return printed + printed.half_unit < low - tolerance or printed - printed.half_unit > high + tolerance


def _product_check(row: PublishedRow, result: str, parts: Sequence[str], power: float,
                   check_name: str) -> Finding | None:
    target = row.value(result)
    inputs = [row.value(p) for p in parts]
    if target is None or any(v is None for v in inputs):
        return None
    low = math.prod(max(v - v.half_unit, 0.0) for v in inputs) ** power
    high = math.prod(v + v.half_unit for v in inputs) ** power
    if not _outside(target, low, high):
        return None
    exact = math.prod(inputs) ** power
    return Finding(check_name, (row.id,), printed=f"{result} {target.text}",
                   expected=f"{_fmt(exact, target.decimals)} from {' x '.join(f'{p} {v.text}' for p, v in zip(parts, inputs))}"
                            f"{' (cube root)' if power < 0.5 else ' (square root)'}")


def _capa_check(row: PublishedRow) -> Finding | None:
    capa = row.value("CapA")
    metrics = [(m, row.value(m)) for m in CAPTION_METRICS if row.value(m) is not None]
    if capa is None or not metrics:
        return None
    low = sum(v - v.half_unit for _, v in metrics) / len(metrics)
    high = sum(v + v.half_unit for _, v in metrics) / len(metrics)
    if not _outside(capa, low, high):
        return None
    mean = sum(v for _, v in metrics) / len(metrics)
    return Finding("capa", (row.id,), printed=f"CapA {capa.text}",
                   expected=f"{_fmt(mean, capa.decimals)}, the mean of "
                            f"{', '.join(f'{m} {v.text}' for m, v in metrics)}")


def _shared(a: PublishedRow, b: PublishedRow) -> list[tuple[str, Printed, Printed]]:
    """(column, a's value, b's value) of the columns both print a number in."""
    out = []
    for column, value in a.values.items():
        other = b.value(column)
        if value is not None and other is not None:
            out.append((column, value, other))
    return out


def _equal(pairs: Sequence[tuple[str, Printed, Printed]]) -> bool:
    return all(x.text == y.text or float(x) == float(y) for _, x, y in pairs)


def check(papers: Sequence[Paper]) -> list[Finding]:
    """Every inconsistency among the published rows: CHOTA, HOTA and CapA against their
    parts at the printed precision; rows declared ``same_as`` that differ (or are swapped
    with another declared pair); and undeclared duplicates (two rows of different tables
    of one dataset printing the same numbers in two or more shared columns).

    Example:
        >>> [f.rows for f in check(load_papers()) if f.check == "swapped"]
        [('CaptionFormer, Summary, ablation (Table 2 rows), row 1', 'CaptionFormer, Summary, ablation (Table 2 rows), row 2', 'MaskCaptioner, Table 2, row 1', 'MaskCaptioner, Table 2, row 2')]
    """
    rows = [row for paper in papers for row in _rows(paper)]
    by_id = {row.id: row for row in rows}
    findings: list[Finding] = []
    for row in rows:
        for found in (_product_check(row, "CHOTA", ("DetA", "AssA", "CapA"), 1 / 3, "chota"),
                      _product_check(row, "HOTA", ("DetA", "AssA"), 1 / 2, "hota"),
                      _capa_check(row)):
            if found is not None:
                findings.append(found)
    # Declared repeats: the same numbers, unless two pairs swap them.
    links = [(row, by_id[row.same_as]) for row in rows if row.same_as is not None]
    differing = [(a, b) for a, b in links if not _equal(_shared(a, b))]
    swapped: set[str] = set()
    for (a1, b1), (a2, b2) in combinations(differing, 2):
        if a1.table == a2.table and b1.table == b2.table and _shared(a1, b2) and _shared(a2, b1) \
                and _equal(_shared(a1, b2)) and _equal(_shared(a2, b1)):
            ids = tuple(sorted((a1.id, a2.id, b1.id, b2.id)))
            findings.append(Finding("swapped", ids,
                                    printed=f"{a1.id}: {_values(a1)}; {a2.id}: {_values(a2)}",
                                    expected=f"{b1.id}: {_values(b1)}; {b2.id}: {_values(b2)}"))
            swapped.update(ids)
    for a, b in differing:
        if a.id not in swapped:
            findings.append(Finding("same-as", (a.id, b.id), printed=_values(a), expected=_values(b)))
    # Undeclared repeats.
    linked = {frozenset((a.id, b.id)) for a, b in links}
    for a, b in combinations(rows, 2):
        if (a.paper, a.table) == (b.paper, b.table) or a.dataset != b.dataset or a.dataset == "other":
            continue
        if frozenset((a.id, b.id)) in linked or (a.same_as and a.same_as == b.same_as) \
                or a.same_as == b.id or b.same_as == a.id:
            continue
        pairs = _shared(a, b)
        if len(pairs) >= 2 and _equal(pairs):
            findings.append(Finding("duplicate", tuple(sorted((a.id, b.id))), printed=_values(a),
                                    expected=_values(b)))
    return findings


def _values(row: PublishedRow) -> str:
    return ", ".join(f"{c} {'-' if v is None else v.text}" for c, v in row.values.items())


def load_known_findings(path: str | os.PathLike[str] | None = None) -> dict[tuple[str, tuple[str, ...]], str]:
    """``known_findings.yaml``: {(check, rows): note} of the papers' own inconsistencies."""
    source = Path(path) if path is not None else KNOWN_FINDINGS
    try:
        entries = yaml.safe_load(source.read_text(encoding="utf-8")) or []
    except (OSError, yaml.YAMLError) as exc:
        raise InputError(f"cannot read known findings: {exc}", source=str(source)) from exc
    known = {}
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not {"check", "rows", "note"} <= set(entry):
            raise InputError("needs 'check', 'rows' and 'note'", source=str(source), record=f"[{i}]")
        known[(entry["check"], tuple(sorted(entry["rows"])))] = entry["note"]
    return known


def compare_with_known(findings: Sequence[Finding], known: dict[tuple[str, tuple[str, ...]], str]
                       ) -> tuple[list[Finding], list[Finding], list[tuple[str, tuple[str, ...]]]]:
    """(every finding with its known note, the new ones, the known keys no longer found)."""
    noted = [Finding(f.check, f.rows, f.printed, f.expected, note=known.get(f.key)) for f in findings]
    found_keys = {f.key for f in findings}
    return noted, [f for f in noted if f.note is None], [k for k in known if k not in found_keys]


def row_notes(known: dict[tuple[str, tuple[str, ...]], str] | None = None) -> dict[str, list[str]]:
    """Row id -> the notes of the known findings that involve it (for the leaderboard)."""
    known = load_known_findings() if known is None else known
    notes: dict[str, list[str]] = {}
    for (_, rows), note in known.items():
        for row_id in rows:
            notes.setdefault(row_id, []).append(note)
    return notes


def as_records(rows: Sequence[PublishedRow]) -> list[dict[str, Any]]:
    """One flat record per row and column (paper, table, row, method, setting, dataset,
    split, iou, metric, value as printed), for JSON and CSV."""
    return [{"paper": r.paper, "table": r.table, "row": r.row, "method": r.method, "name": r.name,
             "team": r.team, "setting": r.setting, "dataset": r.dataset, "split": r.split,
             "iou": r.iou, "metric": column, "value": None if value is None else value.text}
            for r in rows for column, value in r.values.items()]
