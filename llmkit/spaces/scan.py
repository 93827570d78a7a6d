"""Find secrets in every file a Space would upload: text, binaries of any size, archives and SQLite databases.

A file is read as bytes in chunks (so a multi-GB weight file costs memory of one chunk) and each
chunk is matched together with the tail of the one before it, so a token cut by a chunk boundary is
still found. SQLite databases are also read through SQL, because a long document is spread over
overflow pages and never appears contiguously in the file; zip/npz members and gzip, bzip2 and xz
files are read decompressed. Tokens are found as plain text, as UTF-16 text and inside base64 runs. Findings name the file (and table/row or member), never the secret itself.
"""

from __future__ import annotations

import base64
import binascii
import bz2
import contextlib
import gzip
import lzma
import shutil
import sqlite3
import tempfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from llmkit.secrets import PREFIXES as SECRET_PREFIXES
from llmkit.secrets import SECRETS, find_tokens

CHUNK = 4 * 2**20
# Bytes kept from one chunk for the next, and the most read to confirm a candidate: longer than any secret.
OVERLAP = 4096
SQLITE_MAGIC = b"SQLite format 3\x00"
# Compressed streams read decompressed: gzip, bzip2, xz.
STREAM_OPENERS = {b"\x1f\x8b": gzip.open, b"BZh": bz2.open, b"\xfd7zXZ\x00": lzma.open}
# The shortest token (an AWS key, 20 characters) is 28 characters of base64.
BASE64_MIN = 28
_B64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_"
BASE64_MASK = bytes(1 if c in _B64 else 0 for c in range(256))
URLSAFE_TO_STANDARD = bytes.maketrans(b"-_", b"+/")


# What deploy never uploads (upload_folder's ignore_patterns; its `*` crosses folders): git's own folders, and
# the bytecode Python writes beside the Space's llmkit when the app runs there (by hand, or an older check).
NOT_UPLOADED = [".git/*", "*/.git/*", "__pycache__/*", "*/__pycache__/*", "*.pyc"]


def upload_files(folder: Path) -> list[Path]:
    """The files `upload_folder` would send: everything but git's own folders and Python's bytecode caches."""
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and not {".git", "__pycache__"} & set(p.relative_to(folder).parts)
        and p.suffix != ".pyc"
    )


PREFIXES = {kind: prefix.encode() for kind, prefix in SECRET_PREFIXES.items()}


def _confirmed(data: bytes, at: int, kind: str, encoding: str) -> bool:
    """Whether the candidate at `at` (the prefix's first byte) is a whole token of `kind` in that encoding.

    The character before it is decoded too: a pattern may look behind (a key glued to a word is not one).
    """
    width = 1 if encoding == "latin-1" else 2
    start = at - width if at >= width else at
    window = data[start : at + OVERLAP * width]
    window = window[: len(window) - len(window) % width]  # UTF-16: a stray odd byte at the end is dropped
    # latin-1: one char per byte, never fails
    return bool(SECRETS[kind].match(window.decode(encoding, errors="replace"), (at - start) // width))


def _plain_kinds(data: bytes) -> set[str]:
    """Secrets written as ASCII/UTF-8 or UTF-16 (either byte order) anywhere in the bytes."""
    kinds: set[str] = set()
    # UTF-16 of ASCII is half NUL bytes; without many NULs (random weights: 1 in 256) no search for it is needed.
    encodings = ("latin-1", "utf-16-le", "utf-16-be") if data.count(0) * 8 > len(data) else ("latin-1",)
    for kind, prefix in PREFIXES.items():
        text = prefix.decode()
        for encoding in encodings:
            needle = text.encode(encoding)
            at = data.find(needle)
            while at >= 0 and kind not in kinds:
                if _confirmed(data, at, kind, encoding):
                    kinds.add(kind)
                at = data.find(needle, at + 1)
    return kinds


def _base64_runs(data: bytes) -> Iterator[bytes]:
    """Runs of base64 (or URL-safe base64) characters long enough to hold an encoded token."""
    mask = data.translate(BASE64_MASK)
    at = mask.find(b"\x01" * BASE64_MIN)
    while at >= 0:
        end = mask.find(b"\x00", at)
        end = len(data) if end < 0 else end
        yield data[at:end]
        at = mask.find(b"\x01" * BASE64_MIN, end)


def _decoded(run: bytes) -> Iterator[bytes]:
    """A base64 run decoded from each of its 4 possible alignments (where it starts is not known)."""
    run = run.translate(URLSAFE_TO_STANDARD)
    for shift in range(4):
        piece = run[shift:]
        piece = piece[: len(piece) - len(piece) % 4]
        with contextlib.suppress(binascii.Error, ValueError):
            yield base64.b64decode(piece, validate=True)


def text_kinds(data: bytes) -> set[str]:
    """The kinds of secret in a piece of bytes: as text, as UTF-16 text, or base64-encoded.

    Each literal prefix is found with `bytes.find` (memory speed; `re` over every position is about
    8 MB/s) and each candidate confirmed with the full pattern on at most OVERLAP bytes. Base64 runs
    are located through a translated mask, also at memory speed; random binary data almost never
    holds BASE64_MIN base64 characters in a row, so weights cost next to nothing.
    """
    kinds = _plain_kinds(data)
    if len(kinds) < len(SECRETS):
        for run in _base64_runs(data):
            for decoded in _decoded(run):
                kinds |= _plain_kinds(decoded)
    return kinds


def stream_kinds(stream: BinaryIO) -> set[str]:
    """The kinds of secret in a byte stream, read chunk by chunk with an overlap between chunks."""
    kinds: set[str] = set()
    tail = b""
    while chunk := stream.read(CHUNK):
        data = tail + chunk
        kinds |= text_kinds(data)
        tail = data[-OVERLAP:]
    return kinds


def _values_in_sqlite(path: Path) -> Iterator[tuple[str, int, bytes]]:
    """(table, row number, bytes) for every text or blob value of every ordinary table."""
    with tempfile.TemporaryDirectory() as tmp:
        wal = path.with_name(path.name + "-wal")
        if wal.is_file() and wal.stat().st_size:
            # Rows not yet checkpointed live in the -wal file; open a copy so the folder itself is never touched.
            shutil.copy2(path, Path(tmp) / "db")
            shutil.copy2(wal, Path(tmp) / "db-wal")
            uri = f"{(Path(tmp) / 'db').as_uri()}?mode=ro"
        else:
            uri = f"{path.resolve().as_uri()}?mode=ro&immutable=1"  # immutable: no -shm/-wal created in the folder
        db = sqlite3.connect(uri, uri=True)
        try:
            listed = db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'").fetchall()
            # A virtual table (FTS5) keeps its text in ordinary shadow tables, which are read instead.
            tables = [name for name, sql in listed if not (sql or "").upper().startswith("CREATE VIRTUAL")]
            db.text_factory = bytes  # TEXT values as stored: no decoding error can stop the scan
            for table in tables:
                quoted = '"' + table.replace('"', '""') + '"'
                for row_number, row in enumerate(db.execute(f"SELECT * FROM {quoted}"), start=1):
                    for value in row:
                        if isinstance(value, bytes):
                            yield table, row_number, value
        finally:
            db.close()


def _sqlite_places(path: Path) -> dict[str, str]:
    places: dict[str, str] = {}
    for table, row, value in _values_in_sqlite(path):
        for kind in text_kinds(value):
            places.setdefault(kind, f" (table {table!r}, row {row})")
    return places


def _archive_places(path: Path) -> dict[str, str]:
    places: dict[str, str] = {}
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            for member in archive.infolist():
                with archive.open(member) as stream:
                    for kind in stream_kinds(stream):
                        places.setdefault(kind, f" (member {member.filename})")
    else:
        with open(path, "rb") as raw:
            head = raw.read(8)
        opener = next((o for magic, o in STREAM_OPENERS.items() if head.startswith(magic)), None)
        if opener is not None:
            with opener(path, "rb") as stream:
                places.update(dict.fromkeys(stream_kinds(stream), " (once decompressed)"))
    return places


def file_findings(path: Path, name: str) -> list[str]:
    """What looks like a secret in one file: in its name, its raw bytes, its SQLite rows or archive members."""
    with open(path, "rb") as stream:
        is_sqlite = stream.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
        stream.seek(0)
        raw = stream_kinds(stream)
    places = {kind: "" for kind in raw}
    if is_sqlite:
        try:
            places.update(_sqlite_places(path))  # the table and row say where to delete it
        except sqlite3.DatabaseError as err:
            return [
                f"{name} starts like a SQLite database but cannot be read ({err}); rebuild it or remove it"
            ]
        # Only in the raw bytes: a deleted row still lying in a free page, uploaded all the same.
        places.update(
            {kind: " (in deleted or unused pages: run VACUUM on it)" for kind in raw if not places[kind]}
        )
    else:
        # Not a readable archive after all (corrupt, encrypted): its raw bytes were scanned already.
        with contextlib.suppress(
            OSError, EOFError, zipfile.BadZipFile, zlib.error, RuntimeError, lzma.LZMAError, ValueError
        ):
            places.update(_archive_places(path))
    found = [f"{name}: its file name holds what looks like a {kind}" for kind in find_tokens(name)]
    return found + [f"{name}{where} holds what looks like a {kind}" for kind, where in sorted(places.items())]


def secret_findings(folder: Path, files: Iterable[Path] | None = None) -> list[str]:
    """A problem line per secret found in the files (default: every file the folder would upload)."""
    problems = []
    for path in files if files is not None else upload_files(folder):
        name = str(path.relative_to(folder)) if path.is_relative_to(folder) else str(path)
        try:
            lines = file_findings(path, name)
        except (
            FileNotFoundError
        ):  # gone since listed (SQLite's -wal/-shm as a connection closes): not uploaded
            continue
        except OSError as err:  # it would fail to upload too
            problems.append(f"{name} cannot be read ({err.strerror}); fix its permissions or remove it.")
            continue
        problems += [f"{line}; remove it (a Space reads credentials from its secrets)." for line in lines]
    return problems
