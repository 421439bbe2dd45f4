"""The results store: SQLite by default, any SQLAlchemy URL (PostgreSQL) for a hosted board.

Two kinds of entries live in one table and are never confused: ``scored`` (a submission we
scored, with its checksum, protocol, package version, metrics and per-video results) and
``reported`` (a number published in a paper, with the paper and table it comes from). An
entry is unique per track by its ``dedup_key`` (the submission checksum, or the paper row),
enforced by the database so that concurrent writers cannot add the same submission twice.
Every write is one transaction: an entry and its per-video rows land together or not at all.

Example:
    >>> store = Store("sqlite:///:memory:")
    >>> store.entries("sample-box")
    []
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import os
import time
from typing import Any, Iterable

import numpy as np
import pandas as pd
from sqlalchemy import (JSON, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint,
                        create_engine, event, select, text)
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from benchmark.errors import InputError

DEFAULT_URL = "sqlite:///leaderboard.db"
SCORED = "scored"
REPORTED = "reported"
_STATS = "_stats"  # the key of a per-video row's sufficient statistics (not a metric)
#: Longest team, method and submission file names, in characters: the sizes of their columns.
#: PostgreSQL enforces them and SQLite does not, so :func:`check_text` applies them on both.
MAX_TEAM_CHARS = 200
MAX_METHOD_CHARS = 300
MAX_SUBMISSION_NAME_CHARS = 300
# Schema creation: the PostgreSQL advisory lock taken by creators (an arbitrary constant,
# "lbschema" in ASCII) and how often a creator that lost a race looks again.
_SCHEMA_LOCK_KEY = 0x6C62736368656D61
_SCHEMA_ATTEMPTS = 5


def check_text(field: str, value: Any, max_chars: int | None = None) -> None:
    """Raise ``InputError`` naming ``field`` unless every database can store ``value``: text
    within ``max_chars`` characters, without NUL (refused by PostgreSQL) and encodable as
    UTF-8 (no lone surrogate, e.g. an undecodable byte of a command-line argument).

    Example:
        >>> check_text("team", "x" * 201, MAX_TEAM_CHARS)
        Traceback (most recent call last):
        ...
        benchmark.errors.InputError: field 'team': has 201 characters, above the 200 limit
    """
    if not isinstance(value, str):
        raise InputError(f"must be text, got {type(value).__name__}", field=field)
    if max_chars is not None and len(value) > max_chars:
        raise InputError(f"has {len(value)} characters, above the {max_chars} limit", field=field)
    if "\x00" in value:
        raise InputError(f"holds a NUL character (\\x00) at position {value.index(chr(0))}",
                         field=field)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(f"is not valid Unicode: {value[exc.start]!r} at position {exc.start} "
                         "(a lone surrogate, e.g. a byte that is not UTF-8)", field=field) from None


def check_entry_text(*, team: str, method: str, description: str = "",
                     submission_name: str | None = None) -> None:
    """:func:`check_text` on the participant-given text of an entry, before any scoring."""
    check_text("team", team, MAX_TEAM_CHARS)
    check_text("method", method, MAX_METHOD_CHARS)
    check_text("description", description)
    if submission_name is not None:
        check_text("submission_name", submission_name, MAX_SUBMISSION_NAME_CHARS)


class _Base(DeclarativeBase):
    pass


class _Entry(_Base):
    __tablename__ = "entries"
    __table_args__ = (UniqueConstraint("track", "dedup_key", name="uq_entry_track_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    track: Mapped[str] = mapped_column(String(100), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    dedup_key: Mapped[str] = mapped_column(String(300))
    team: Mapped[str] = mapped_column(String(MAX_TEAM_CHARS))
    method: Mapped[str] = mapped_column(String(MAX_METHOD_CHARS))
    description: Mapped[str] = mapped_column(Text, default="")
    checksum: Mapped[str | None] = mapped_column(String(80), nullable=True)
    submission_name: Mapped[str | None] = mapped_column(String(MAX_SUBMISSION_NAME_CHARS),
                                                         nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    protocol: Mapped[dict[str, Any]] = mapped_column(JSON)
    package_version: Mapped[str | None] = mapped_column(String(40), nullable=True)
    metrics: Mapped[dict[str, float]] = mapped_column(JSON)
    alpha_curve: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    source: Mapped[str | None] = mapped_column(Text, nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    videos: Mapped[list["_VideoResult"]] = relationship(back_populates="entry",
                                                        cascade="all, delete-orphan")


class _VideoResult(_Base):
    __tablename__ = "video_results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("entries.id", ondelete="CASCADE"), index=True)
    video_id: Mapped[int] = mapped_column(Integer)
    metrics: Mapped[dict[str, float]] = mapped_column(JSON)
    entry: Mapped[_Entry] = relationship(back_populates="videos")


@dataclasses.dataclass(frozen=True)
class Entry:
    """One leaderboard row, detached from the database session."""

    id: int
    track: str
    kind: str
    team: str
    method: str
    description: str
    checksum: str | None
    submission_name: str | None
    created_at: dt.datetime
    protocol: dict[str, Any]
    package_version: str | None
    metrics: dict[str, float]
    alpha_curve: dict[str, Any] | None
    source: str | None
    note: str | None

    @property
    def is_reported(self) -> bool:
        """True for a number copied from a paper rather than scored here."""
        return self.kind == REPORTED

    def metric(self, name: str) -> float | None:
        """A metric's value, ``None`` when absent (papers report only some)."""
        value = self.metrics.get(name)
        return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def _to_entry(row: _Entry) -> Entry:
    return Entry(**{f.name: getattr(row, f.name) for f in dataclasses.fields(Entry)})


def _clean_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    # JSON has no NaN (PostgreSQL's json type refuses it): absent values are dropped.
    # Text (a video's name in the per-video rows) is kept as text, numbers become floats.
    return {str(k): v if isinstance(v, str) else float(v) for k, v in metrics.items()
            if v is not None and not (isinstance(v, float) and math.isnan(v))}


class Store:
    """Leaderboard entries in a SQL database.

    ``url`` is any SQLAlchemy URL; a bare path is taken as a SQLite file.

    Example:
        >>> store = Store("sqlite:///:memory:")
        >>> e, created = store.add_scored(track="t", team="A", method="m", checksum="sha256:1",
        ...     protocol={}, metrics={"CHOTA": 0.5}, per_video=[])
        >>> created, store.add_scored(track="t", team="A", method="m", checksum="sha256:1",
        ...     protocol={}, metrics={"CHOTA": 0.5}, per_video=[])[1]
        (True, False)
    """

    def __init__(self, url: str = DEFAULT_URL) -> None:
        if "://" not in url:
            url = f"sqlite:///{os.path.abspath(url)}"
        self.url = url
        is_sqlite = url.startswith("sqlite")
        # A generous busy timeout: concurrent scorers queue on SQLite's single writer lock.
        connect_args = {"timeout": 120} if is_sqlite else {}
        self.engine = create_engine(url, connect_args=connect_args)
        if is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._create_schema()

    def _create_schema(self) -> None:
        # Many processes may open a fresh store at once (a burst of submissions): each finds
        # no table and creates them. On PostgreSQL an advisory lock queues the creators, and
        # the later ones find the tables; on SQLite a loser's CREATE fails ("table already
        # exists") and it looks again, to find the winner's schema.
        for attempt in range(_SCHEMA_ATTEMPTS):
            try:
                with self.engine.begin() as conn:
                    if self.engine.dialect.name == "postgresql":
                        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                                     {"key": _SCHEMA_LOCK_KEY})
                    _Base.metadata.create_all(conn)
                return
            except (OperationalError, IntegrityError, ProgrammingError):
                if attempt == _SCHEMA_ATTEMPTS - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))

    def find(self, track: str, checksum: str) -> Entry | None:
        """The scored entry of this submission on this track, if any."""
        with Session(self.engine) as session:
            row = session.scalars(select(_Entry).where(
                _Entry.track == track, _Entry.dedup_key == checksum)).first()
            return _to_entry(row) if row else None

    def add_scored(
        self,
        *,
        track: str,
        team: str,
        method: str,
        checksum: str,
        protocol: dict[str, Any],
        metrics: dict[str, Any],
        per_video: Iterable[dict[str, Any]],
        video_stats: dict[str, list[list[float]]] | None = None,
        description: str = "",
        submission_name: str | None = None,
        package_version: str | None = None,
        alpha_curve: dict[str, Any] | None = None,
        created_at: dt.datetime | None = None,
    ) -> tuple[Entry, bool]:
        """Add a scored submission with its per-video rows in one transaction.

        ``video_stats``: the scorer's sufficient statistics, ``{name: rows of per_video x
        alphas}``, kept with the per-video rows for :meth:`video_stats`.

        Returns ``(entry, created)``; ``created`` is False when the same checksum was already
        on this track (the existing entry is returned and nothing is written). Raises
        ``InputError`` (nothing written) for text :func:`check_entry_text` refuses.
        """
        check_entry_text(team=team, method=method, description=description,
                         submission_name=submission_name)
        per_video = list(per_video)
        stats_of = [{k: [float(x) for x in rows[i]] for k, rows in video_stats.items()} if video_stats else None
                    for i in range(len(per_video))]
        row = _Entry(
            track=track, kind=SCORED, dedup_key=checksum, team=team, method=method,
            description=description, checksum=checksum, submission_name=submission_name,
            created_at=created_at or dt.datetime.now(dt.timezone.utc), protocol=protocol,
            package_version=package_version, metrics=_clean_metrics(metrics),
            alpha_curve=alpha_curve, source=None, note=None,
            videos=[_VideoResult(video_id=int(v["video_id"]),
                                 metrics={**_clean_metrics({k: x for k, x in v.items() if k != "video_id"}),
                                          **({_STATS: stats} if stats else {})})
                    for v, stats in zip(per_video, stats_of)],
        )
        try:
            with Session(self.engine) as session, session.begin():
                session.add(row)
                session.flush()
                entry = _to_entry(row)
        except IntegrityError:
            existing = self.find(track, checksum)
            if existing is None:
                raise
            return existing, False
        return entry, True

    def seed_reported(self, rows: Iterable[dict[str, Any]], *,
                      replace_tracks: Iterable[str] = ()) -> int:
        """Insert published results (see :mod:`leaderboard.reported`); returns how many were new.

        Idempotent: a row already present (same track, paper table and method) is skipped.
        ``replace_tracks``: tracks whose reported rows become exactly ``rows`` (reported rows
        of theirs not in ``rows``, e.g. seeded by an older package, are removed in one
        transaction first); scored entries are never touched.
        """
        rows = list(rows)
        keys = [f"reported:{spec['source']}:{spec['method']}:{spec.get('setting', '')}"[:300]
                for spec in rows]
        replace_tracks = set(replace_tracks)
        if replace_tracks:
            wanted = {(spec["track"], key) for spec, key in zip(rows, keys)}
            with Session(self.engine) as session, session.begin():
                for entry in session.scalars(select(_Entry).where(
                        _Entry.kind == REPORTED, _Entry.track.in_(sorted(replace_tracks)))):
                    if (entry.track, entry.dedup_key) not in wanted:
                        session.delete(entry)
        added = 0
        for spec, key in zip(rows, keys):
            check_entry_text(team=spec["team"], method=spec["method"],
                             description=spec.get("setting", ""))
            row = _Entry(
                track=spec["track"], kind=REPORTED, dedup_key=key, team=spec["team"],
                method=spec["method"], description=spec.get("setting", ""), checksum=None,
                submission_name=None, created_at=dt.datetime.now(dt.timezone.utc),
                protocol={"name": "as published"}, package_version=None,
                metrics=_clean_metrics(spec["metrics"]), alpha_curve=None,
                source=spec["source"], note=spec.get("note"),
            )
            try:
                with Session(self.engine) as session, session.begin():
                    session.add(row)
                added += 1
            except IntegrityError:
                continue
        return added

    def entries(self, track: str, *, kind: str | None = None) -> list[Entry]:
        """All entries of a track (optionally only ``scored`` or ``reported``), oldest first."""
        with Session(self.engine) as session:
            query = select(_Entry).where(_Entry.track == track)
            if kind is not None:
                query = query.where(_Entry.kind == kind)
            return [_to_entry(r) for r in session.scalars(query.order_by(_Entry.id))]

    def _video_rows(self, entry_id: int) -> list[tuple[int, dict[str, Any]]]:
        """(video id, stored per-video JSON) of a scored entry, by video id."""
        with Session(self.engine) as session:
            rows = session.scalars(select(_VideoResult).where(_VideoResult.entry_id == entry_id)
                                   .order_by(_VideoResult.video_id)).all()
            return [(r.video_id, r.metrics) for r in rows]

    def video_results(self, entry_id: int) -> pd.DataFrame:
        """Per-video metrics of a scored entry (column ``video_id`` + the fields)."""
        return pd.DataFrame([{"video_id": v, **{k: x for k, x in m.items() if k != _STATS}}
                             for v, m in self._video_rows(entry_id)])

    def video_stats(self, entry_id: int) -> tuple[list[int], dict[str, np.ndarray]] | None:
        """``(video ids, {name: (videos, alphas) array})``: the scorer's per-video sufficient
        statistics of a scored entry, or None when they were not stored (older entries)."""
        rows = self._video_rows(entry_id)
        if not rows or any(_STATS not in m for _, m in rows):
            return None
        return ([v for v, _ in rows],
                {k: np.array([m[_STATS][k] for _, m in rows], dtype=np.float64) for k in rows[0][1][_STATS]})

    def ranking(self, track: str, *, metric: str = "CHOTA") -> list[tuple[int | None, Entry]]:
        """Entries of a track ordered by ``metric`` (best first), with their rank.

        Only scored entries get a rank; reported ones are placed by their value with rank
        ``None``. Entries lacking the metric come last. Ties go to the earlier submission.
        """
        def key(entry: Entry) -> tuple[bool, float, float, dt.datetime, int]:
            value = entry.metric(metric)
            hota = entry.metric("HOTA")
            return (value is None, -(value or 0.0), -(hota or 0.0), _aware(entry.created_at),
                    entry.id)

        ordered = sorted(self.entries(track), key=key)
        out: list[tuple[int | None, Entry]] = []
        rank = 0
        for entry in ordered:
            if entry.is_reported:
                out.append((None, entry))
            else:
                rank += 1
                out.append((rank, entry))
        return out


def _aware(value: dt.datetime) -> dt.datetime:
    # SQLite returns naive datetimes even for timezone-aware columns.
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers (the page renderer) work while a scorer writes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
