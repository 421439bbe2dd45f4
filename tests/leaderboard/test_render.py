"""The static site: expected rows, reported rows marked, CSVs, plots, atomic writes, and a real
headless browser that loads the page, sorts the table and takes a screenshot."""

from __future__ import annotations

import datetime as dt
import html.parser
import os
import shutil

import numpy as np
import pandas as pd
import pytest

from leaderboard.cli import main
from leaderboard.render import latest_track, render_site


class _Rows(html.parser.HTMLParser):
    """Collects the table body rows: (class, [cell data-value...])."""

    def __init__(self):
        super().__init__()
        self.rows, self.headers, self._in_head = [], [], False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "thead":
            self._in_head = True
        elif tag == "tr" and not self._in_head and "data-entry" in attrs:
            self.rows.append((attrs.get("class"), []))
        elif tag == "td" and self.rows and "data-value" in attrs:
            self.rows[-1][1].append(attrs["data-value"])

    def handle_endtag(self, tag):
        if tag == "thead":
            self._in_head = False

    def handle_data(self, data):
        if self._in_head and data.strip():
            self.headers.append(data.strip())


def _parse(text):
    parser = _Rows()
    parser.feed(text)
    return parser


@pytest.fixture
def board(store, tracks):
    """Three scored entries and two reported ones on the vidstg-val-box test track."""
    for k, (chota, deta, team) in enumerate([(0.30, 0.5, "Mid"), (0.62, 0.7, "Best"),
                                             (0.10, 0.2, "Low")]):
        store.add_scored(
            track="vidstg-val-box", team=team, method=f"method {k}", checksum=f"sha256:{k}",
            protocol={"name": "test"}, metrics={"CHOTA": chota, "DetA": deta, "AssA": 0.6,
                                                "CapA": 0.4, "HOTA": 0.5},
            per_video=[{"video_id": 1, "HOTA": 0.5 + k / 10}],
            alpha_curve={"alphas": [0.05, 0.5, 0.95], "HOTA": [0.9, 0.5, 0.1],
                         "DetA": [0.9, 0.5, 0.1], "AssA": [0.9, 0.5, 0.1]},
            created_at=dt.datetime(2026, 1, 1 + k, tzinfo=dt.timezone.utc))
    store.seed_reported([
        {"track": "vidstg-val-box", "method": "MaskCaptioner", "team": "Fiastre et al., 2025",
         "setting": "pretraining: COCO", "metrics": {"CHOTA": 0.587, "DetA": 0.651, "AssA": 0.702,
                                                     "CapA": 0.443},
         "source": "MaskCaptioner paper, Table 3", "note": None},
        {"track": "vidstg-val-box", "method": "DVOC-DS", "team": "Zhou et al., 2025",
         "metrics": {"CHOTA": 0.569}, "source": "MaskCaptioner paper, Table 3",
         "note": "printed CHOTA 56.9 is not the cube root of <its parts>"}])
    return store


def test_page_has_the_ranked_rows(board, tracks, tmp_path):
    files = render_site(board, tmp_path / "site", tracks=tracks)
    page = (tmp_path / "site" / "vidstg-val-box.html").read_text()
    parsed = _parse(page)
    # Rank, team, method, kind, then the metrics present on this track.
    assert parsed.headers[:9] == ["Rank", "Team", "Method", "Kind", "CHOTA", "CapA", "DetA",
                                  "AssA", "HOTA"]
    assert [(cls, cells[0], cells[1]) for cls, cells in parsed.rows] == [
        ("scored", "1", "Best"), ("reported", "", "Fiastre et al., 2025"),
        ("reported", "", "Zhou et al., 2025"), ("scored", "2", "Mid"), ("scored", "3", "Low")]
    assert "<td data-value=\"0.587\">58.7</td>" in page       # reported: as printed
    assert "<td data-value=\"0.62\">62.00</td>" in page       # scored: two decimals
    assert 'title="MaskCaptioner paper, Table 3"' in page
    # A reported row's note (e.g. a known inconsistency of the paper) is shown under the table.
    assert '<sup class="note"><a href="#note-1">1</a></sup>' in page
    assert '<li id="note-1">printed CHOTA 56.9 is not the cube root of &lt;its parts&gt;</li>' in page
    assert "CapA-spice" not in parsed.headers                 # no entry has it
    site = tmp_path / "site"
    assert {p.name for p in (site / "vidstg-val-box").iterdir()} == {
        "leaderboard.csv", "entry-1-videos.csv", "entry-2-videos.csv", "entry-3-videos.csv",
        "scatter.png", "bars.png", "alpha.png"}
    for png in ("scatter.png", "bars.png", "alpha.png"):
        assert (site / "vidstg-val-box" / png).read_bytes()[:4] == b"\x89PNG"
    csv = pd.read_csv(site / "vidstg-val-box" / "leaderboard.csv")
    assert csv["kind"].tolist() == ["scored", "reported", "reported", "scored", "scored"]
    assert csv["CHOTA"].tolist() == [0.62, 0.587, 0.569, 0.30, 0.10]
    per_video = pd.read_csv(site / "vidstg-val-box" / "entry-2-videos.csv")
    assert per_video["HOTA"].tolist() == [0.6]
    index = (site / "index.html").read_text()
    assert 'href="vidstg-val-box.html"' in index and "62.00" in index
    assert site / "index.html" in files
    assert not [p for p in site.rglob("*.tmp")]


def test_empty_track_page_says_so(store, tracks, tmp_path):
    render_site(store, tmp_path / "site", tracks=tracks, plots=False)
    assert "No entries yet." in (tmp_path / "site" / "golden-mask.html").read_text()


chromium = pytest.mark.skipif(shutil.which("chromium") is None and not os.environ.get("CHROMIUM"),
                              reason="needs Debian's chromium (apt-get install -y chromium)")


@chromium
def test_page_sorts_in_a_real_browser(board, tracks, tmp_path):
    from leaderboard.browser import dump_dom, screenshot

    render_site(board, tmp_path / "site", tracks=tracks, plots=False)
    page = tmp_path / "site" / "vidstg-val-box.html"
    by_deta = _parse(dump_dom(page, fragment="sort=DetA&dir=asc"))
    # DetA ascending, blank (DVOC-DS has no DetA) last: sorted by the page's own script.
    assert [cells[1] for _, cells in by_deta.rows] == [
        "Low", "Mid", "Fiastre et al., 2025", "Best", "Zhou et al., 2025"]
    by_team = _parse(dump_dom(page, fragment="sort=Team&dir=desc"))
    assert [cells[1] for _, cells in by_team.rows] == [
        "Zhou et al., 2025", "Mid", "Low", "Fiastre et al., 2025", "Best"]
    assert 'data-sorted="Team:desc"' in dump_dom(page, fragment="sort=Team&dir=desc")
    png = screenshot(page, tmp_path / "shot.png", width=1000, height=700)
    data = png.read_bytes()
    assert data[:4] == b"\x89PNG"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1000, 700)


MATH_TEAM = r"$x^2$ \alpha"
MATH_METHOD = r"$\frac{1}{$"


def test_names_with_mathtext_render_literally(store, tracks, tmp_path, monkeypatch):
    # Team and method names are participants' text: `$...$` or `\frac` must neither break the
    # site (matplotlib's mathtext parser raised on them) nor be typeset as math.
    store.add_scored(track="vidstg-val-box", team=MATH_TEAM, method=MATH_METHOD,
                     checksum="sha256:m", protocol={"name": "test"},
                     metrics={"CHOTA": 0.3, "DetA": 0.5, "AssA": 0.6, "CapA": 0.4, "HOTA": 0.5},
                     per_video=[{"video_id": 1, "HOTA": 0.5}],
                     alpha_curve={"alphas": [0.05, 0.5], "HOTA": [0.9, 0.5],
                                  "DetA": [0.9, 0.5], "AssA": [0.9, 0.5]})
    import leaderboard.render as render

    drawn = []
    original = render._figure_png

    def spy(fig):
        # What matplotlib will draw for each text of the figure (before it is closed).
        drawn.extend(t._preprocess_math(t.get_text()) for t in fig.findobj(
            lambda a: hasattr(a, "get_text") and hasattr(a, "_preprocess_math")))
        return original(fig)

    monkeypatch.setattr(render, "_figure_png", spy)
    render_site(store, tmp_path / "site", tracks=tracks)
    folder = tmp_path / "site" / "vidstg-val-box"
    for png in ("scatter.png", "bars.png", "alpha.png"):
        assert (folder / png).read_bytes()[:4] == b"\x89PNG"
    label = render._label(store.entries("vidstg-val-box")[0])
    assert label == r"$\frac{1}{$ ($x^2$ \alpha)"
    # scatter key ("1  label"), bars legend, alpha legend: drawn as plain text, character for
    # character
    assert [d for d in drawn if d[0].endswith(label)] == [
        ("1  " + label, False), (label, False), (label, False)]
    assert not [d for d in drawn if d[1] is not False]


def test_csv_neutralises_formulas_but_page_keeps_the_names(store, tracks, tmp_path):
    # A spreadsheet runs a cell starting with = + - @ tab or CR as a formula: leaderboard.csv
    # prefixes such text cells with a quote; the page shows the name as submitted.
    names = ['=HYPERLINK("http://x","y")', "+1+2", "-2", "@SUM(A1)", "\tTab", "\rCR", "Plain"]
    for k, team in enumerate(names):
        store.add_scored(track="vidstg-val-box", team=team, method=f"m{k}", checksum=f"sha256:{k}",
                         protocol={"name": "test"}, metrics={"CHOTA": 0.9 - k / 10},
                         per_video=[], description="=1+1")
    render_site(store, tmp_path / "site", tracks=tracks, plots=False)
    csv = pd.read_csv(tmp_path / "site" / "vidstg-val-box" / "leaderboard.csv",
                      keep_default_na=False)
    # (the CR inside "'\rCR" stays in its cell: the rows are CRLF-terminated and quoted)
    assert csv["team"].tolist() == ["'" + n for n in names[:-1]] + ["Plain"]
    assert csv["setting"].tolist() == [""] * 7     # description is not shown for scored rows
    assert csv["method"].tolist() == [f"m{k}" for k in range(7)]
    assert csv["CHOTA"].tolist() == pytest.approx([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3])
    assert csv["rank"].tolist() == [1, 2, 3, 4, 5, 6, 7]
    page = (tmp_path / "site" / "vidstg-val-box.html").read_text()
    assert "=HYPERLINK(&#34;http://x&#34;,&#34;y&#34;)" in page and "'=HYPERLINK" not in page
    assert [cells[1] for _, cells in _parse(page).rows][:4] == [
        '=HYPERLINK("http://x","y")', "+1+2", "-2", "@SUM(A1)"]


def _scored(store, track, k, day):
    store.add_scored(track=track, team=f"Team {k}", method=f"method {k}", checksum=f"sha256:{k}",
                     protocol={"name": "test"}, metrics={"CHOTA": 0.3, "DetA": 0.5, "AssA": 0.6},
                     per_video=[], created_at=dt.datetime(2026, 1, day, tzinfo=dt.timezone.utc))


@pytest.fixture
def shots(monkeypatch):
    """The pages ``leaderboard render --screenshot`` photographs, without a browser."""
    import leaderboard.browser

    taken = []

    def fake(page, png, **kwargs):
        taken.append(page.name)
        return png

    monkeypatch.setattr(leaderboard.browser, "screenshot", fake)
    return taken


def test_screenshot_shows_the_track_scored_last(store, tracks, data_dir, tmp_path, shots):
    # Registry order: golden-box, golden-mask, vidstg-val-box. The first track has entries,
    # but the submission scored last is on the second one: that is the page to show.
    _scored(store, "golden-box", 1, day=1)
    _scored(store, "vidstg-val-box", 2, day=2)
    _scored(store, "golden-mask", 3, day=3)
    _scored(store, "golden-box", 4, day=2)        # stored later, submitted earlier
    assert latest_track(store, tracks) == "golden-mask"
    args = ["render", "--out", str(tmp_path / "site"), "--no-plots", "--db", store.url,
            "--tracks", str(data_dir / "tracks.yaml"), "--screenshot", str(tmp_path / "s.png")]
    assert main(args) == 0
    assert main([*args, "--track", "vidstg-val-box"]) == 0         # asked for: that one
    assert shots == ["golden-mask.html", "vidstg-val-box.html"]


def test_screenshot_without_submissions_shows_the_first_track(store, tracks, data_dir, tmp_path,
                                                               shots):
    store.seed_reported([{"track": "vidstg-val-box", "method": "Paper", "team": "X et al.",
                          "metrics": {"CHOTA": 0.5}, "source": "Table 1", "note": None}])
    assert latest_track(store, tracks) == "golden-box"      # a paper's row is no submission
    assert main(["render", "--out", str(tmp_path / "site"), "--no-plots", "--db", store.url,
                 "--tracks", str(data_dir / "tracks.yaml"),
                 "--screenshot", str(tmp_path / "s.png")]) == 0
    assert shots == ["golden-box.html"]


def test_scatter_labels_do_not_overlap(store, tracks, tmp_path, monkeypatch):
    # Papers report near-identical DetA/AssA for variants of one method: names written beside
    # the points stacked into an unreadable blot. No two texts of the figure may overlap.
    for k in range(6):
        store.add_scored(track="vidstg-val-box", team="Fiastre et al., 2025",
                         method=f"MaskCaptioner variant {k}", checksum=f"sha256:{k}",
                         protocol={"name": "test"}, per_video=[],
                         metrics={"CHOTA": 0.6, "DetA": 0.65 + k / 1000, "AssA": 0.70,
                                  "CapA": 0.44})
    import leaderboard.render as render

    boxes = []
    original = render._figure_png

    def spy(fig):
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        ax = fig.axes[0]
        texts = [t for t in ax.texts if t.get_text()]           # the points' labels
        texts += [t for legend in ax.findobj(lambda a: a.__class__.__name__ == "Legend")
                  for t in legend.get_texts()]
        boxes.append([(t.get_text(), t.get_window_extent(renderer)) for t in texts])
        return original(fig)

    monkeypatch.setattr(render, "_figure_png", spy)
    render.plot_scatter(store.entries("vidstg-val-box"))
    (drawn,) = boxes
    assert len(drawn) >= 6
    overlapping = [(a, b) for i, (a, box_a) in enumerate(drawn) for b, box_b in drawn[i + 1:]
                   if box_a.overlaps(box_b)]
    assert not overlapping


def _stats(tp_per_video):
    """Per-video statistics (one alpha) of an entry with these TPs out of 10, perfect
    association and every caption scoring 0.5 (so CHOTA follows DetA)."""
    tp = np.array(tp_per_video, dtype=float)[:, None]
    return {"HOTA_TP": tp.tolist(), "HOTA_FN": (10 - tp).tolist(), "HOTA_FP": np.zeros_like(tp).tolist(),
            "AssA*TP": tp.tolist(), "AssRe*TP": tp.tolist(), "AssPr*TP": tp.tolist(), "LocA*TP": tp.tolist(),
            "TP_with_caps": tp.tolist(), "sum-cider": (0.5 * tp).tolist()}


def test_scored_rows_get_a_bootstrap_interval_and_ties_are_marked(store, tracks, tmp_path):
    from benchmark.scoring import resample_fields

    rng = np.random.default_rng(0)
    base = rng.integers(3, 9, size=30)
    # "Noisy" differs from "Base" by -1, 0 or +1 TP per video: no paired difference to speak of.
    systems = {"Base": base, "Noisy": base + rng.integers(-1, 2, size=30), "Far": base - 3}
    for k, (team, tps) in enumerate(systems.items()):
        stats = _stats(tps)
        fields = resample_fields({k2: np.array(v) for k2, v in stats.items()}, ["cider"], np.ones(30))
        store.add_scored(track="vidstg-val-box", team=team, method="m", checksum=f"sha256:{team}",
                         protocol={"caption_metrics": ["cider"]},
                         metrics={f: float(fields[f]) for f in ("DetA", "AssA", "CapA", "CHOTA")},
                         per_video=[{"video_id": v, "HOTA": 0.5} for v in range(30)], video_stats=stats,
                         created_at=dt.datetime(2026, 1, 1 + k, tzinfo=dt.timezone.utc))
    from leaderboard.render import significance

    ranking = store.ranking("vidstg-val-box", metric="CHOTA")   # the track's rank metric
    found = significance(store, ranking, "CHOTA")
    by_team = {e.team: found[e.id] for _, e in ranking}
    order = [e.team for _, e in ranking]
    assert order[2] == "Far" and set(order[:2]) == {"Base", "Noisy"}
    assert by_team[order[0]]["above_significant"] is None               # nothing above it
    assert by_team[order[1]]["above_significant"] is False              # within noise of the first
    assert by_team["Far"]["above_significant"] is True
    for _, e in ranking:
        assert by_team[e.team]["low"] <= e.metric("CHOTA") <= by_team[e.team]["high"]
    render_site(store, tmp_path / "site", tracks=tracks, plots=False)
    page = (tmp_path / "site" / "vidstg-val-box.html").read_text()
    assert page.count('<span class="ns"') == 1 + 1                      # the tied row, and the legend
    tied = by_team[order[1]]
    assert f"[{100 * tied['low']:.2f}, {100 * tied['high']:.2f}]" in page
