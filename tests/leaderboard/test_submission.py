"""Reading uploads safely: formats, checksums, and every malicious-archive class."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
import stat
import time
import zipfile
import zlib

import pytest

from benchmark.errors import InputError
from leaderboard.submission import MiB, Limits, read_submission

PAYLOAD = json.dumps([{"image_id": 1, "track_id": 1, "bbox": [0, 0, 1, 1], "score": 0.9,
                       "caption": "a cat"}]).encode()
DIGEST = "sha256:" + hashlib.sha256(PAYLOAD).hexdigest()


def _zip(path, members):
    """members: list of (ZipInfo-or-name, bytes)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, data in members:
            zf.writestr(info, data)
    return path


def test_json_gz_and_zip_give_the_same_checksum(tmp_path):
    plain = tmp_path / "a.json"
    plain.write_bytes(PAYLOAD)
    gz = tmp_path / "a.json.gz"
    gz.write_bytes(gzip.compress(PAYLOAD))
    zipped = _zip(tmp_path / "a.zip", [("results/results.json", PAYLOAD), ("__MACOSX/._x", b"junk")])
    subs = [read_submission(p) for p in (plain, gz, zipped)]
    assert {s.checksum for s in subs} == {DIGEST}
    assert subs[2].member == "results/results.json"
    assert subs[2].source == "a.zip:results/results.json"
    assert subs[0].parse()[0]["caption"] == "a cat"


def test_malformed_json_names_line_and_column(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('[\n {"image_id": 1,\n  "score": }\n]')
    with pytest.raises(InputError, match=r"bad.json: not valid JSON: Expecting value at line 3, column 12"):
        read_submission(path).parse()


def test_non_utf8_is_refused(tmp_path):
    path = tmp_path / "latin1.json"
    path.write_bytes('[{"caption": "caf\xe9"}]'.encode("latin-1"))
    with pytest.raises(InputError, match="not UTF-8"):
        read_submission(path).parse()


@pytest.mark.parametrize("members, message", [
    ([("a.json", PAYLOAD), ("b/b.json", PAYLOAD)], r"exactly one JSON file.*\['a.json', 'b/b.json'\]"),
    ([("a.json", PAYLOAD), ("README.txt", b"hi")], r"other files \['README.txt'\]"),
    ([("notes.txt", b"hi")], r"holds 0 JSON file"),
    ([("../evil.json", PAYLOAD)], r"'../evil.json' has a path that leaves the archive folder"),
    ([("/etc/evil.json", PAYLOAD)], r"path traversal"),
    ([("C:\\evil.json", PAYLOAD)], r"path traversal"),
    ([("inner.zip", b"PK\x03\x04whatever")], r"'inner.zip' is a nested archive"),
    ([("inner.json", gzip.compress(PAYLOAD))], r"is an archive inside the zip"),
])
def test_bad_zip_layouts_are_refused(tmp_path, members, message):
    path = _zip(tmp_path / "sub.zip", members)
    with pytest.raises(InputError, match=message) as info:
        read_submission(path)
    assert str(info.value).startswith("sub.zip")


def test_symlink_member_is_refused(tmp_path):
    info = zipfile.ZipInfo("results.json")
    info.create_system = 3  # unix, so that the mode bits are honoured
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    path = _zip(tmp_path / "link.zip", [(info, b"/etc/passwd")])
    with pytest.raises(InputError, match="'results.json' is a symbolic link"):
        read_submission(path)


def test_encrypted_member_is_refused(tmp_path):
    path = _zip(tmp_path / "enc.zip", [("results.json", PAYLOAD)])
    # zipfile cannot write encrypted members: set the "encrypted" flag bit in the central
    # directory record (offset 8 of the PK\x01\x02 header), which is what readers check.
    raw = bytearray(path.read_bytes())
    central = raw.index(b"PK\x01\x02")
    raw[central + 8] |= 0x1
    path.write_bytes(bytes(raw))
    with pytest.raises(InputError, match="is encrypted"):
        read_submission(path)


def test_symlinked_upload_is_refused(tmp_path):
    target = tmp_path / "real.json"
    target.write_bytes(PAYLOAD)
    link = tmp_path / "link.json"
    os.symlink(target, link)
    with pytest.raises(InputError, match="symbolic link"):
        read_submission(link)


def test_oversized_upload_is_refused_before_reading(tmp_path):
    path = tmp_path / "big.json"
    path.write_bytes(b" " * 5000 + PAYLOAD)
    with pytest.raises(InputError, match=r"big.json: is 0.0 MiB, above the 0 MiB upload limit"):
        read_submission(path, limits=Limits(max_upload_bytes=4000))


def test_zip_bomb_ratio_is_stopped_while_streaming(tmp_path):
    # 256 MiB of spaces compress to about 250 KiB: a ratio of ~1000.
    data = b" " * (256 * MiB)
    path = _zip(tmp_path / "bomb.zip", [("results.json", data)])
    del data
    assert path.stat().st_size < 2 * MiB
    start = time.perf_counter()
    with pytest.raises(InputError, match=r"bomb.zip:results.json: compression ratio above 200:1"):
        read_submission(path)
    assert time.perf_counter() - start < 5


def test_gzip_bomb_total_size_is_stopped(tmp_path):
    # Written in chunks: never holds the 1 GiB in memory.
    path = tmp_path / "bomb.json.gz"
    with gzip.open(path, "wb", compresslevel=1) as handle:
        chunk = b"0" * (16 * MiB)
        for _ in range(64):
            handle.write(chunk)
    with pytest.raises(InputError, match=r"decompresses to more than 8 MiB"):
        read_submission(path, limits=Limits(max_json_bytes=8 * MiB, max_ratio=1e9))


def test_declared_size_above_limit_is_refused_without_decompressing(tmp_path):
    path = _zip(tmp_path / "big.zip", [("results.json", b"[" + b" " * (3 * MiB) + b"]")])
    with pytest.raises(InputError, match="declares .* bytes uncompressed"):
        read_submission(path, limits=Limits(max_json_bytes=2 * MiB))


def test_not_a_zip_despite_magic(tmp_path):
    path = tmp_path / "broken.zip"
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 30)
    with pytest.raises(InputError, match="not a readable zip file"):
        read_submission(path)


def test_compression_ratio_floor_lets_small_repetitive_files_through(tmp_path):
    data = json.dumps([{"caption": "a"}] * 20000).encode()  # ratio > 200, but < 4 MiB
    assert len(data) / len(zlib.compress(data)) > 200
    path = _zip(tmp_path / "ok.zip", [("r.json", data)])
    assert read_submission(path).data == data


def test_zip_member_with_a_bad_crc_names_archive_and_member(tmp_path):
    path = tmp_path / "crc.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("results/results.json", PAYLOAD)
    raw = bytearray(path.read_bytes())
    at = raw.index(b'"caption"')  # stored: the member's bytes appear as is
    raw[at + 1] ^= 0x20  # "caption" -> "Caption": still JSON, wrong CRC-32
    path.write_bytes(bytes(raw))
    with pytest.raises(InputError, match=r"^crc.zip: zip member 'results/results.json' is "
                                         r"corrupt or unreadable \(Bad CRC-32"):
        read_submission(path)


def test_zip_member_with_corrupt_deflate_data_is_an_input_error(tmp_path):
    path = _zip(tmp_path / "bad.zip", [("results.json", PAYLOAD * 50)])
    raw = bytearray(path.read_bytes())
    start = 30 + len("results.json")  # local header, then the deflate stream
    for k in range(start + 2, start + 40):
        raw[k] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(InputError, match=r"^bad.zip: zip member 'results.json' is corrupt"):
        read_submission(path)


@pytest.mark.parametrize("depth", [10_000, 200_000])
def test_deeply_nested_json_is_an_input_error_not_a_recursion_error(tmp_path, depth):
    path = tmp_path / "deep.json"
    path.write_bytes(b"[" * depth + b"]" * depth)
    with pytest.raises(InputError, match=r"^deep.json: JSON nested too deeply"):
        read_submission(path).parse()


def _json_values(obj) -> int:
    """Values as the counter bounds them: one plus commas plus opened containers, which
    counts an empty list or object twice."""
    if isinstance(obj, (dict, list)):
        items = list(obj.values()) if isinstance(obj, dict) else obj
        return 1 + (not items) + sum(_json_values(v) for v in items)
    return 1


def _random_json(rng: random.Random, depth: int = 0):
    # Strings full of what a naive count trips on: brackets, commas, quotes, backslashes.
    alphabet = ['"', "\\", "{", "[", ",", "}", "]", "a", " ", "é", "\n"]
    kind = rng.randrange(6 if depth < 3 else 3)
    if kind == 0:
        return rng.choice([0, -1.5, True, None, 10**20])
    if kind in (1, 2):
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(8)))
    if kind == 3:
        return [_random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {"".join(rng.choice(alphabet) for _ in range(rng.randrange(4))):
            _random_json(rng, depth + 1) for _ in range(rng.randrange(4))}


def test_records_and_values_are_counted_exactly_across_any_chunking():
    from leaderboard.submission import _JsonCounter

    rng = random.Random(0)
    for trial in range(300):
        records = [_random_json(rng, 1) if rng.random() < 0.3 else
                   {"k": _random_json(rng, 2)} for _ in range(rng.randrange(6))]
        doc = records if trial % 2 else {"annotations": records}
        data = json.dumps(doc, ensure_ascii=trial % 3 == 0, indent=trial % 4 or None).encode()
        counter = _JsonCounter(Limits(max_records=0, max_values=0), "x.json")
        counter.exact = True  # as after the crude count passed its limit
        limit_hit = False
        step = rng.choice([1, 2, 3, 5, 64])
        for i in range(0, len(data), step):
            try:
                counter._count(data[i:i + step])
            except InputError:
                limit_hit = True
        assert counter.records == sum(isinstance(r, dict) for r in records), data
        assert counter.values + 1 == _json_values(doc), data
        assert limit_hit == (counter.values + 1 > 0)


@pytest.mark.parametrize("suffix, limits, message", [
    (".json.gz", Limits(max_records=1000, max_ratio=1e9), "more than 1000 predictions"),
    (".json", Limits(max_records=1000), "more than 1000 predictions"),
    (".json.gz", Limits(max_values=5000, max_ratio=1e9), "more than 5000 JSON values"),
])
def test_record_and_value_limits_stop_the_stream_before_parsing(tmp_path, suffix, limits, message):
    # A caption full of braces does not count: only real records do.
    record = b'{"image_id": 1, "track_id": 2, "bbox": [1, 2, 3, 4], "score": 0.9, "caption": "{{{,,,"}'
    ok = b"[" + b",".join([record] * 300) + b"]"
    path = tmp_path / f"ok{suffix}"
    path.write_bytes(gzip.compress(ok) if suffix.endswith(".gz") else ok)
    assert len(json.loads(read_submission(path, limits=limits).data)) == 300
    big = b"[" + b",".join([record] * 5000) + b"]"
    path = tmp_path / f"big{suffix}"
    path.write_bytes(gzip.compress(big) if suffix.endswith(".gz") else big)
    with pytest.raises(InputError, match=message + r" \(the limit\), counted before parsing"):
        read_submission(path, limits=limits)


def test_a_record_bomb_is_stopped_at_the_record_limit(tmp_path):
    # 60 MiB of empty records (20 million) behind 60 KiB of gzip: the default record limit
    # stops the read after about 6 MiB, before any parsing.
    path = tmp_path / "records.json.gz"
    with gzip.open(path, "wb", compresslevel=1) as handle:
        handle.write(b"[")
        for _ in range(60):
            handle.write(b"{}," * (MiB // 3))
        handle.write(b"{}]")
    with pytest.raises(InputError, match="more than 2000000 predictions"):
        read_submission(path, limits=Limits(max_ratio=1e9))
