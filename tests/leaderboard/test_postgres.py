"""The store on a real PostgreSQL server (Debian's postgresql package), started on 127.0.0.1
for this module; skipped where the server binaries or the psycopg driver are missing."""

from __future__ import annotations

import datetime as dt
import glob
import multiprocessing
import os
import shutil
import socket
import subprocess
import tempfile

import pytest

pytest.importorskip("psycopg", reason="needs the psycopg driver (pip install 'psycopg[binary]')")

from sqlalchemy import event  # noqa: E402

from leaderboard.store import Store, _VideoResult  # noqa: E402


def _pg_bin(name):
    # Debian puts the server tools under /usr/lib/postgresql/<version>/bin, off the PATH.
    return shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))), None)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def pg_url():
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("PostgreSQL server binaries not installed (apt-get install -y postgresql)")
    root = tempfile.mkdtemp(prefix="lb-pg-")
    # PostgreSQL refuses to run as root: run it as the 'postgres' system user then.
    prefix = []
    if os.geteuid() == 0:
        try:
            shutil.chown(root, "postgres")
        except (LookupError, PermissionError):
            pytest.skip("running as root without a 'postgres' user")
        prefix = ["runuser", "-u", "postgres", "--"]
    data, port = os.path.join(root, "data"), _free_port()
    subprocess.run(prefix + [initdb, "-D", data, "-U", "lb", "--auth=trust", "-E", "UTF8"],
                   check=True, capture_output=True)
    subprocess.run(prefix + [pg_ctl, "-D", data, "-l", os.path.join(root, "log"), "-w", "-o",
                             f"-p {port} -k {root} -c listen_addresses=127.0.0.1", "start"],
                   check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://lb@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(prefix + [pg_ctl, "-D", data, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_store(pg_url):
    store = Store(pg_url)
    with store.engine.begin() as conn:
        conn.exec_driver_sql("TRUNCATE entries, video_results RESTART IDENTITY CASCADE")
    return store


def _add(store, checksum, chota):
    return store.add_scored(track="t-box", team="A", method="m", checksum=checksum,
                            protocol={"name": "test"}, metrics={"CHOTA": chota, "x": float("nan")},
                            per_video=[{"video_id": 1, "video": "v", "HOTA": 0.5}],
                            created_at=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc))


def test_dedup_ranking_and_reported_rows(pg_store):
    assert _add(pg_store, "sha256:a", 0.4)[1] is True
    assert _add(pg_store, "sha256:a", 0.9)[1] is False
    _add(pg_store, "sha256:b", 0.6)
    pg_store.seed_reported([{"track": "t-box", "method": "P", "team": "X", "metrics": {"CHOTA": 0.5},
                             "source": "paper, Table 3", "note": None}])
    assert [(r, e.kind, e.metric("CHOTA")) for r, e in pg_store.ranking("t-box")] == [
        (1, "scored", 0.6), (None, "reported", 0.5), (2, "scored", 0.4)]
    assert pg_store.entries("t-box")[0].metrics == {"CHOTA": 0.4}  # NaN dropped, not stored
    assert pg_store.video_results(1)["video"].tolist() == ["v"]


def test_failed_write_leaves_nothing(pg_store):
    def boom(*_args):
        raise RuntimeError("crash mid-write")

    event.listen(_VideoResult, "before_insert", boom)
    try:
        with pytest.raises(RuntimeError):
            _add(pg_store, "sha256:c", 0.5)
    finally:
        event.remove(_VideoResult, "before_insert", boom)
    assert pg_store.entries("t-box") == []


def _child(url, k, queue):
    entry, created = _add(Store(url), f"sha256:{k % 10}", k / 100)
    queue.put((entry.id, created))


def test_concurrent_writers(pg_url, pg_store):
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_child, args=(pg_url, k, queue)) for k in range(20)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    assert sum(created for _, created in results) == 10
    assert len(pg_store.entries("t-box")) == 10


def test_text_limits_are_the_servers(pg_store):
    # At the limits the server stores the names; one over (or a NUL) is refused by the store
    # with a message naming the field, never by the server after scoring.
    from benchmark.errors import InputError

    entry, created = pg_store.add_scored(
        track="t-box", team="T" * 200, method="M" * 300, checksum="sha256:l", protocol={},
        metrics={"CHOTA": 0.5}, per_video=[], submission_name="s" * 300, description="d")
    assert created and (entry.team, entry.method) == ("T" * 200, "M" * 300)
    for names, field in [({"team": "T" * 201}, "team"), ({"method": "M" * 301}, "method"),
                         ({"description": "\x00"}, "description")]:
        with pytest.raises(InputError, match=f"field '{field}'"):
            pg_store.add_scored(track="t-box", checksum="sha256:x", protocol={},
                                metrics={"CHOTA": 0.5}, per_video=[],
                                **{"team": "A", "method": "m", **names})
    assert [e.team for e in pg_store.entries("t-box")] == ["T" * 200]


def test_fresh_store_created_by_twenty_processes_at_once(pg_url, pg_store, create_at_once):
    # Every process finds no tables and creates them: all but one lose the race and must see
    # the schema the winner made (PostgreSQL said DuplicateTable / UniqueViolation).
    for round_ in range(4):
        with pg_store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS race{round_}")
            conn.exec_driver_sql(f"CREATE DATABASE race{round_}")
        url = pg_url.rsplit("/", 1)[0] + f"/race{round_}"
        results = create_at_once(url)
        assert results == ["ok"] * 20, f"round {round_}: {sorted(set(results))}"
        store = Store(url)
        assert _add(store, "sha256:r", 0.5)[1] is True
        assert store.entries("t-box")[0].metric("CHOTA") == 0.5
        store.engine.dispose()
