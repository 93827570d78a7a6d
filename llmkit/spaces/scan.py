"""Find secrets in every file a Space would upload: text, binaries of any size, archives and SQLite databases.

A file is read as bytes in chunks (so a multi-GB weight file costs memory of one chunk) and each
chunk is matched together with the tail of the one before it, so a token cut by a chunk boundary is
still found. SQLite databases are also read through SQL, because a long document is spread over
overflow pages and never appears contiguously in the file; zip/npz and gzip members are read
decompressed. Findings name the file (and table/row or member), never the secret itself.
"""

from __future__ import annotations

import contextlib
import gzip
import re
import shutil
import sqlite3
import tempfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from llmkit.secrets import SECRETS, find_tokens

CHUNK = 4 * 2**20
# Bytes kept from one chunk for the next, and the most read to confirm a candidate: longer than any secret.
OVERLAP = 4096
SQLITE_MAGIC = b"SQLite format 3\x00"
GZIP_MAGIC = b"\x1f\x8b"


def upload_files(folder: Path) -> list[Path]:
    """The files `upload_folder` would send: everything but git's own folders."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and ".git" not in p.relative_to(folder).parts)


def _literal_prefix(pattern: re.Pattern[str]) -> bytes:
    """The literal text every match starts with (b"hf_" for `\\bhf_[A-Za-z0-9]{30,}\\b`), or b"" if unsure."""
    body = pattern.pattern.removeprefix(r"\b")
    if pattern.flags & re.IGNORECASE or "|" in re.sub(r"\[[^\]]*\]|\([^)]*\)", "", body):
        return b""  # case-insensitive, or a top-level alternative: no single prefix
    prefix = re.match(r"[A-Za-z0-9_\- ]*", body).group()
    if body[len(prefix) : len(prefix) + 1] in ("?", "*", "{"):
        prefix = prefix[:-1]  # the last character is optional
    return prefix.encode()


PREFIXES = {kind: _literal_prefix(pattern) for kind, pattern in SECRETS.items()}


def text_kinds(data: bytes) -> set[str]:
    """The kinds of secret in a piece of bytes: find each literal prefix, then confirm with the full pattern.

    `re` tests a pattern that opens with `\\b` at every position (about 8 MB/s); `bytes.find` jumps from
    prefix to prefix at memory speed, and each confirmation reads at most OVERLAP bytes.
    """
    kinds: set[str] = set()
    for kind, prefix in PREFIXES.items():
        if len(prefix) < 2:  # no usable prefix: the whole text through the pattern
            kinds.update(find_tokens(data.decode("latin-1")))
            continue
        at = data.find(prefix)
        while at >= 0 and kind not in kinds:
            # From one byte before: the full pattern's word boundary looks at it.
            start = max(at - 1, 0)
            window = data[start : at + OVERLAP].decode("latin-1")  # one char per byte, never fails
            if SECRETS[kind].match(window, at - start):
                kinds.add(kind)
            at = data.find(prefix, at + 1)
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
            is_gzip = raw.read(2) == GZIP_MAGIC
        if is_gzip:
            with gzip.open(path, "rb") as stream:
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
        with contextlib.suppress(OSError, EOFError, zipfile.BadZipFile, zlib.error, RuntimeError):
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
        except OSError as err:  # it would fail to upload too
            problems.append(f"{name} cannot be read ({err.strerror}); fix its permissions or remove it.")
            continue
        problems += [f"{line}; remove it (a Space reads credentials from its secrets)." for line in lines]
    return problems
