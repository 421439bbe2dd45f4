"""Reading a participant's upload safely: ``.json``, ``.json.gz`` or a ``.zip`` with one JSON.

Archives are opened defensively: sizes and compression ratios are checked while streaming
(a zip bomb is stopped before it fills memory), and zip members that are symlinks, escape
the archive folder, are nested archives or are encrypted are refused, as is a zip holding
zero or several JSON files (existing scorers silently score such layouts 0).

Example:
    >>> sub = read_submission("results.zip")                     # doctest: +SKIP
    >>> sub.checksum[:7], sub.member                              # doctest: +SKIP
    ('sha256:', 'results/results.json')
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import os
import stat
import sys
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import IO, Any

import numpy as np

from benchmark.errors import InputError

MiB = 1024 * 1024
_CHUNK = MiB
_ZIP_MAGIC = b"PK\x03\x04"
_EMPTY_ZIP_MAGIC = b"PK\x05\x06"
_GZIP_MAGIC = b"\x1f\x8b"
_ARCHIVE_SUFFIXES = (".zip", ".gz", ".tgz", ".tar", ".bz2", ".xz", ".7z", ".rar")
# Files that archivers add on their own; ignored rather than counted as "another file".
_JUNK_PREFIXES = ("__MACOSX/",)
_JUNK_NAMES = (".DS_Store", "Thumbs.db")


@dataclasses.dataclass(frozen=True)
class Limits:
    """Size limits for one submission; all keyword-configurable.

    ``max_ratio`` applies once more than ``ratio_floor_bytes`` have been decompressed, so
    that a tiny, very compressible file is not refused. ``max_records`` (predictions) and
    ``max_values`` (JSON values of any kind, which is what parsing costs memory for) are
    counted on the bytes as they stream in, before anything is parsed.

    Example:
        >>> Limits(max_upload_bytes=10 * MiB).max_records
        2000000
    """

    max_upload_bytes: int = 300 * MiB
    max_json_bytes: int = 2048 * MiB
    max_ratio: float = 200.0
    ratio_floor_bytes: int = 4 * MiB
    max_records: int = 2_000_000
    max_values: int = 50_000_000
    max_caption_chars: int = 2000


@dataclasses.dataclass(frozen=True)
class Submission:
    """A decompressed submission: its JSON bytes, a content checksum and where they came from.

    ``checksum`` is the SHA-256 of the JSON bytes, so the same predictions uploaded as
    ``.json`` or zipped are recognised as the same submission.
    """

    path: Path
    member: str | None
    data: bytes
    checksum: str

    @property
    def source(self) -> str:
        """A name for error messages: the file, and the member inside an archive."""
        return f"{self.path.name}:{self.member}" if self.member else self.path.name

    def parse(self) -> Any:
        """Parse the JSON, with line and column on a syntax error."""
        try:
            text = self.data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InputError(f"not UTF-8 text (byte {exc.start}); save the JSON as UTF-8",
                             source=self.source) from exc
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
                             source=self.source) from exc
        except RecursionError:
            # json's parser checks its depth (no stack overflow): report it as bad input.
            raise InputError("JSON nested too deeply (lists or objects nested about "
                             f"{sys.getrecursionlimit()} levels or more); a valid submission "
                             "nests only a few levels", source=self.source) from None


class _JsonCounter:
    """Counts a JSON document's records and values as its bytes stream in, so that a file
    of too many is refused before parsing (which costs tens of bytes per value).

    Records are objects one level inside the top-level list (two inside a top-level
    object, as ``{"annotations": [...]}``); values are bounded by one plus the commas and
    the opened lists and objects. Both are first counted crudely (characters inside
    strings too, which only overcounts) and exactly, with strings and escapes followed
    across chunks, only once the crude counts pass a limit.
    """

    def __init__(self, limits: Limits, source: str) -> None:
        self.limits, self.source = limits, source
        self.crude_records = self.crude_values = 0
        self.exact = False
        self.held: list[bytes] = []  # chunks seen before counting exactly
        self.records = self.values = 0
        self.record_depth = 0  # unknown until the first bracket
        self.depth = 0
        self.in_string = False
        self.backslashes = 0  # trailing backslashes of the previous chunk

    def feed(self, chunk: bytes) -> None:
        if not self.exact:
            self.crude_records += chunk.count(b"{")
            self.crude_values += chunk.count(b",") + chunk.count(b"[") + chunk.count(b"{")
            self.held.append(chunk)
            if self.crude_records <= self.limits.max_records \
                    and self.crude_values <= self.limits.max_values:
                return
            self.exact = True
            held, self.held = self.held, []
            for part in held:
                self._count(part)
        else:
            self._count(chunk)

    def _count(self, chunk: bytes) -> None:
        b = np.frombuffer(chunk, dtype=np.uint8)
        if not self.record_depth:
            first = np.flatnonzero((b == ord("[")) | (b == ord("{")))
            if len(first):
                self.record_depth = 1 if b[first[0]] == ord("[") else 2
        # A quote ends or starts a string unless an odd run of backslashes precedes it.
        quotes = np.flatnonzero(b == ord('"'))
        slashes = np.flatnonzero(b == ord("\\"))
        run = np.zeros(len(quotes), dtype=np.int64)  # backslashes right before each quote
        if len(slashes):
            run_key = slashes - np.arange(len(slashes))  # constant along a run of them
            before = np.searchsorted(slashes, quotes) - 1
            ends_run = (before >= 0) & (slashes[np.maximum(before, 0)] == quotes - 1)
            j = before[ends_run]
            run[ends_run] = j - np.searchsorted(run_key, run_key[j]) + 1
        run[run == quotes] += self.backslashes  # the run began in the previous chunk
        real = quotes[run % 2 == 0]
        marks = np.flatnonzero((b == ord(",")) | (b == ord("[")) | (b == ord("{"))
                               | (b == ord("]")) | (b == ord("}")))
        outside = (np.searchsorted(real, marks) + self.in_string) % 2 == 0
        marks = marks[outside]
        kind = b[marks]
        step = np.where((kind == ord("[")) | (kind == ord("{")), 1,
                        np.where(kind == ord(","), 0, -1))
        depth_before = self.depth + np.cumsum(step) - step
        self.records += int(np.count_nonzero((kind == ord("{"))
                                             & (depth_before == self.record_depth)))
        self.values += int(np.count_nonzero(step >= 0))
        self.depth += int(step.sum())
        self.in_string ^= bool(len(real) % 2)
        tail = len(chunk) - len(chunk.rstrip(b"\\"))
        self.backslashes = tail + (self.backslashes if tail == len(chunk) else 0)
        if self.records > self.limits.max_records:
            raise InputError(f"holds more than {self.limits.max_records} predictions (the "
                             "limit), counted before parsing", source=self.source)
        if self.values + 1 > self.limits.max_values:
            raise InputError(f"holds more than {self.limits.max_values} JSON values (the "
                             "limit), counted before parsing; a prediction needs about 15",
                             source=self.source)


def _read_limited(stream: IO[bytes], *, source: str, compressed_size: int, limits: Limits) -> bytes:
    """Read a decompressing stream chunk by chunk, stopping as soon as a limit is passed."""
    chunks: list[bytes] = []
    counter = _JsonCounter(limits, source)
    total = 0
    while True:
        chunk = stream.read(_CHUNK)
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > limits.max_json_bytes:
            raise InputError(f"decompresses to more than {limits.max_json_bytes // MiB} MiB "
                             "(the limit); refused as a possible zip bomb", source=source)
        if total > limits.ratio_floor_bytes and total > limits.max_ratio * max(compressed_size, 1):
            raise InputError(f"compression ratio above {limits.max_ratio:g}:1 "
                             f"({total} bytes from {compressed_size}); refused as a possible "
                             "zip bomb", source=source)
        counter.feed(chunk)
        chunks.append(chunk)


def _unsafe_member_reason(info: zipfile.ZipInfo) -> str | None:
    name = info.filename
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return "is a symbolic link"
    posix = PurePosixPath(name.replace("\\", "/"))
    if posix.is_absolute() or (len(name) > 1 and name[1] == ":") or ".." in posix.parts:
        return "has a path that leaves the archive folder (path traversal)"
    if info.flag_bits & 0x1:
        return "is encrypted"
    if name.lower().endswith(_ARCHIVE_SUFFIXES):
        return "is a nested archive; put the JSON itself in the zip"
    return None


def _is_junk(name: str) -> bool:
    return name.startswith(_JUNK_PREFIXES) or PurePosixPath(name).name in _JUNK_NAMES


def _read_zip(path: Path, *, limits: Limits) -> tuple[str, bytes]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"not a readable zip file: {exc}", source=path.name) from exc
    with archive:
        json_members: list[zipfile.ZipInfo] = []
        others: list[str] = []
        for info in archive.infolist():
            reason = _unsafe_member_reason(info)
            if reason:
                raise InputError(f"zip member {info.filename!r} {reason}", source=path.name)
            if info.is_dir() or _is_junk(info.filename):
                continue
            if info.filename.lower().endswith(".json"):
                json_members.append(info)
            else:
                others.append(info.filename)
        if len(json_members) != 1 or others:
            names = [m.filename for m in json_members]
            raise InputError(
                f"the zip must hold exactly one JSON file and nothing else; it holds "
                f"{len(names)} JSON file(s) {names}"
                + (f" and other files {others}" if others else ""),
                source=path.name)
        member = json_members[0]
        source = f"{path.name}:{member.filename}"
        if member.file_size > limits.max_json_bytes:
            raise InputError(f"declares {member.file_size} bytes uncompressed, above the "
                             f"{limits.max_json_bytes // MiB} MiB limit", source=source)
        # The declared sizes can lie: the limits are enforced again on the bytes read.
        try:
            with archive.open(member) as stream:
                data = _read_limited(stream, source=source, compressed_size=member.compress_size,
                                     limits=limits)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as exc:
            # A bad CRC-32, corrupt deflate data, a truncated member, an unsupported method.
            raise InputError(f"zip member {member.filename!r} is corrupt or unreadable ({exc}); "
                             "re-create the zip", source=path.name) from exc
        if data.startswith((_ZIP_MAGIC, _GZIP_MAGIC)):
            raise InputError("is an archive inside the zip; put the JSON itself in the zip",
                             source=source)
        return member.filename, data


def read_submission(path: str | os.PathLike[str], *, limits: Limits = Limits()) -> Submission:
    """Read and decompress a submission file, enforcing ``limits``; does not parse it.

    The format is told from the file's first bytes, not its name (a ``.json`` that is really
    a zip is read as a zip).

    Example:
        >>> read_submission("pred.json").checksum.startswith("sha256:")   # doctest: +SKIP
        True
    """
    path = Path(path)
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise InputError(f"cannot read the submission: {exc.strerror}", source=str(path)) from exc
    if stat.S_ISLNK(st.st_mode):
        raise InputError("is a symbolic link; upload the file itself", source=path.name)
    if not stat.S_ISREG(st.st_mode):
        raise InputError("is not a regular file", source=path.name)
    if st.st_size > limits.max_upload_bytes:
        raise InputError(f"is {st.st_size / MiB:.1f} MiB, above the "
                         f"{limits.max_upload_bytes // MiB} MiB upload limit; compress it "
                         "(.json.gz or .zip)", source=path.name)
    if st.st_size == 0:
        raise InputError("is empty", source=path.name)
    with open(path, "rb") as handle:
        head = handle.read(4)
    member: str | None = None
    if head.startswith((_ZIP_MAGIC, _EMPTY_ZIP_MAGIC)):
        member, data = _read_zip(path, limits=limits)
    elif head.startswith(_GZIP_MAGIC):
        try:
            with gzip.open(path, "rb") as stream:
                data = _read_limited(stream, source=path.name, compressed_size=st.st_size,
                                     limits=limits)
        except (OSError, EOFError) as exc:
            raise InputError(f"not a readable gzip file: {exc}", source=path.name) from exc
    else:
        if st.st_size > limits.max_json_bytes:
            raise InputError(f"is above the {limits.max_json_bytes // MiB} MiB JSON limit",
                             source=path.name)
        with open(path, "rb") as stream:
            data = _read_limited(stream, source=path.name, compressed_size=st.st_size,
                                 limits=limits)
    checksum = "sha256:" + hashlib.sha256(data).hexdigest()
    return Submission(path=path, member=member, data=data, checksum=checksum)
