"""The files of a store folder: which ones llmkit writes, and a half-made store.

A new store is made in steps (folder, database, index, manifest). A kill between them leaves a
folder with a database but no manifest. Such a folder is recognised, and started over, only when
every file in it is one llmkit writes and either the marker file says llmkit was still creating it
or its database holds no document; anything else (a user's own folder) is refused, never deleted.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from llmkit.record import TEMPORARY

DATABASE = "store.sqlite"
INDEX = "index.faiss"
MANIFEST = "manifest.json"
# Written before anything else of a new store and removed once its manifest exists.
CREATING = ".llmkit-creating"
STORE_FILES = {
    DATABASE,
    f"{DATABASE}-wal",
    f"{DATABASE}-shm",
    f"{DATABASE}-journal",
    INDEX,
    CREATING,
    f"{INDEX}.tmp",  # the temporary names of earlier llmkit versions, which a killed save may have left
    f"{MANIFEST}.tmp",
}
# The tables of the schema (FTS5 adds its shadow tables chunks_fts_*).
OUR_TABLES = {"documents", "chunks", "chunks_fts", "info", "sqlite_sequence"}


def ours(name: str) -> bool:
    """Whether a file of this name in a store folder is one llmkit writes (or was writing when killed)."""
    writing = TEMPORARY.fullmatch(name)
    return name in STORE_FILES or bool(writing and writing.group(1) in (INDEX, MANIFEST))


def half_made(folder: Path) -> bool:
    """Whether `folder` (which has no manifest) is a store llmkit began to create and never finished."""
    names = {p.name for p in folder.iterdir()}
    if not names or not all(map(ours, names)):
        return False
    if CREATING in names:
        return True
    return _empty_database(folder / DATABASE)


def _empty_database(path: Path) -> bool:
    """No database yet, a 0-byte one, or one with llmkit's tables only and no document in them."""
    if not path.is_file() or path.stat().st_size == 0:
        return True
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not {t for t in tables if not t.startswith("chunks_fts_")} <= OUR_TABLES:
                return False
            return "documents" not in tables or not db.execute("SELECT 1 FROM documents LIMIT 1").fetchone()
        finally:
            db.close()
    except sqlite3.DatabaseError:
        return False  # not a database we can read: not ours to delete


def start_over(folder: Path) -> None:
    """Delete the files of a half-made store (only names llmkit writes; the folder itself stays)."""
    for path in folder.iterdir():
        if ours(path.name):
            path.unlink()
