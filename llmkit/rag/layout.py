"""The files of a store folder: which ones llmkit writes, and a half-made store.

A new store is made in steps (folder, database, index, manifest). A kill between them leaves a
folder with a database but no manifest. Such a folder is recognised, and started over, only when
every file in it is one llmkit writes and either the marker file says llmkit was still creating it
or its database holds no document; anything else (a user's own folder) is refused, never deleted.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sqlite3
import warnings
from collections.abc import Iterator
from pathlib import Path

from llmkit.errors import UserError
from llmkit.record import TEMPORARY

DATABASE = "store.sqlite"
INDEX = "index.faiss"
MANIFEST = "manifest.json"
# Written before anything else of a new store and removed once its manifest exists.
CREATING = ".llmkit-creating"
# Held (flock) by the process writing the store: a second `llmkit rag index`, or an app's upload, waits its turn.
LOCK = ".llmkit-lock"
STORE_FILES = {
    LOCK,
    DATABASE,
    f"{DATABASE}-wal",
    f"{DATABASE}-shm",
    f"{DATABASE}-journal",
    INDEX,
    CREATING,
    f"{INDEX}.tmp",  # the temporary names of earlier llmkit versions, which a killed save may have left
    f"{MANIFEST}.tmp",
}
SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (id TEXT PRIMARY KEY, hash TEXT NOT NULL, metadata TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS chunks (
    rowid INTEGER PRIMARY KEY AUTOINCREMENT,  -- AUTOINCREMENT: ids of deleted chunks are never reused
    id TEXT UNIQUE NOT NULL, doc_id TEXT NOT NULL REFERENCES documents(id), text TEXT NOT NULL,
    start INTEGER NOT NULL, end INTEGER NOT NULL, source TEXT, metadata TEXT NOT NULL, vector BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);
CREATE INDEX IF NOT EXISTS chunks_source ON chunks(source);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(text, tokenize='porter unicode61');
CREATE TABLE IF NOT EXISTS info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# The tables of the schema (FTS5 adds its shadow tables chunks_fts_*).
OUR_TABLES = {"documents", "chunks", "chunks_fts", "info", "sqlite_sequence"}


class StoreRebuilt(UserError):
    """The store was made anew, with another embedding model, while this process held it open."""

    http_status = 503  # the server's state, not the request, is what is wrong


def read_manifest(folder: Path) -> dict | None:
    """A store's manifest, or None if it has none; UserError naming what is wrong with an edited or damaged one.

    A manifest that was not an object, or lacked its model or dimension, was a TypeError/KeyError traceback on
    every command; an unreadable calibration (derived data) is dropped with a warning, to be refitted.
    """
    file = folder / MANIFEST
    if not file.is_file():
        return None
    fix = f"restore it, or move {folder} aside and index its documents again with `llmkit rag index`."
    try:
        manifest = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UserError(f"{file} is corrupt (not JSON); {fix}") from None
    if not isinstance(manifest, dict):
        raise UserError(f"{file} is not a store manifest (a JSON object); {fix}")
    model = manifest.get("embedding_model")
    bad = [] if isinstance(model, str) and model.strip() else ["embedding_model"]
    # (key, least value, whether every manifest has it): stores made before some keys existed lack them
    for key, least, always in (("dim", 1, True), ("chunk_tokens", 1, False), ("chunk_overlap", 0, False)):
        value = manifest.get(key)
        whole = isinstance(value, int) and not isinstance(value, bool) and value >= least
        if not whole and (always or value is not None):
            bad.append(key)
    if bad:
        found = ", ".join(f"{k}: {json.dumps(manifest.get(k))[:60]}" for k in bad)
        raise UserError(f"{file} has no valid {' or '.join(bad)} ({found}); {fix}")
    if "calibration" in manifest and not _calibration_ok(manifest["calibration"]):
        warnings.warn(
            f"{file}: its abstention calibration is unreadable; the default threshold applies until "
            "`llmkit rag index` refits it.",
            stacklevel=3,
        )
        del manifest["calibration"]
    return manifest


def same_model(folder: Path, manifest: dict, model: str) -> dict:
    """`manifest`, reloaded by a process holding `model`; StoreRebuilt if the store now has another model's vectors."""
    if manifest["embedding_model"] != model:  # its vectors are not comparable with this process's questions
        raise StoreRebuilt(
            f"the store {folder} was rebuilt with embedding model {manifest['embedding_model']!r}; this "
            f"process holds {model!r}: restart it (`llmkit rag serve`, the app) to use the store."
        )
    return manifest


def empty_store(folder: Path | str) -> str:
    """What to tell a user asking a store that holds no chunks (it answered "the documents hold nothing")."""
    return f"the store {folder} is empty; add documents with `llmkit rag index PATH --store {folder}`."


def check_database(folder: Path) -> None:
    """UserError if the database of a store with a manifest is gone: SQLite would make a new, empty one ("the store
    is empty", its index rebuilt from nothing)."""
    if not (folder / DATABASE).is_file():
        raise UserError(
            f"{folder / DATABASE} is missing (deleted?); it holds the store's documents and chunks: restore "
            f"it, or move {folder} aside and index the documents again with `llmkit rag index`."
        )


def _calibration_ok(calibration) -> bool:
    """Whether a manifest's calibration has the shape llmkit writes: min_score None or {mode: score in [-1, 1]}."""
    if not isinstance(calibration, dict):
        return False
    scores = calibration.get("min_score")
    return scores is None or (
        isinstance(scores, dict)
        and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and -1 <= v <= 1
            for v in scores.values()
        )
    )


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
        if ours(path.name) and path.name != LOCK:  # another process may be waiting on the lock
            path.unlink()


@contextlib.contextmanager
def writer_lock(folder: Path, wait: bool = True) -> Iterator[None]:
    """Hold the store's writer lock; if another process holds it, wait (saying so) or, with wait=False, refuse."""
    try:
        import fcntl
    except ImportError:  # Windows: SQLite's own locking still keeps each transaction whole
        yield
        return
    with open(folder / LOCK, "a") as file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            busy = f"another process is writing to the store {folder} (a running `llmkit rag index`?)"
            if not wait:
                raise UserError(f"{busy}; try again when it has finished.") from None
            # stacklevel 1: a deeper one named contextlib's frame, whose warnings the CLI hides, so it never said so
            warnings.warn(f"{busy}; waiting for it to finish.", stacklevel=1)
            fcntl.flock(file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(file, fcntl.LOCK_UN)


def being_written(folder: Path) -> bool:
    """Whether another process holds the store's writer lock now (a `rag index` running)."""
    try:
        import fcntl

        with open(folder / LOCK, "a") as file:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(file, fcntl.LOCK_UN)
    except BlockingIOError:
        return True
    except (ImportError, OSError):  # Windows, or a folder we cannot write: no way to tell
        return False
    return False


def database_problem(store: Path, err: sqlite3.DatabaseError) -> UserError:
    """What to tell the user when the store's SQLite database cannot be used: busy, or damaged."""
    if "locked" in str(err):
        return UserError(
            f"the store {store} stayed locked by another process (a running `llmkit rag index`?) for 30 s; "
            "run this again when it has finished."
        )
    read_only = _cannot_write(store)
    if read_only:
        # not damaged: indexing it again (the advice below) would lose nothing but time, and fail the same way
        return UserError(
            f"the store {store} cannot be written ({read_only}), and SQLite writes beside its database even to "
            f"read it; make {store} and its files writable, or copy the store to a writable folder and pass that "
            "as --store."
        )
    damaged = any(word in str(err) for word in ("malformed", "not a database", "corrupt"))
    return UserError(
        f"the store's database {store / DATABASE} is {'damaged' if damaged else 'unusable'} ({err}); its "
        f"documents must be indexed again: move {store} aside, then run `llmkit rag index PATH --store {store}`."
    )


def _cannot_write(store: Path) -> str | None:
    """Why the store's folder or database cannot be written (a read-only mount, another owner), or None."""
    try:
        probe = store / f".llmkit-write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
        if (store / DATABASE).exists():
            with open(store / DATABASE, "ab"):
                pass
    except OSError as err:
        return f"{err.strerror}: {err.filename}"
    return None
