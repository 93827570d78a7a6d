"""A RAG store: one directory with a SQLite database (the source of truth) and a FAISS index.

    store.sqlite    documents, chunks with their metadata and embeddings, and an FTS5 index (BM25)
    index.faiss     the vector index, derived from the embeddings in SQLite
    manifest.json   embedding model, dimension, index type, llmkit version, save generation

Saves are atomic: SQLite commits a transaction or nothing, and the index and manifest are
written to a temporary file and renamed over the old one. If a crash lands between the two,
the index's generation disagrees with the database's and the index is rebuilt from the stored
embeddings on open, without re-embedding anything.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import faiss
import numpy as np

import llmkit
from llmkit.errors import UserError
from llmkit.rag.chunking import check_chunking, chunk_document, in_context
from llmkit.rag.documents import Document, only_display_changed, under_folders
from llmkit.rag.embeddings import DEFAULT_EMBEDDING_MODEL, Embedder
from llmkit.rag.index import build_index, index_kind
from llmkit.rag.layout import (
    CREATING,
    DATABASE,
    INDEX,
    LOCK,
    MANIFEST,
    SCHEMA,
    being_written,
    check_database,
    database_problem,
    half_made,
    read_manifest,
    same_model,
    start_over,
    writer_lock,
)
from llmkit.rag.queries import StoreReading, relabel_rows, replace_rows
from llmkit.record import write_atomic

# While indexing, SQLite commits at least this often (and every `batch_chunks` chunks), so a kill loses
# seconds of work; the FAISS file, derived from the database, is rewritten at most every SAVE_EVERY_S.
COMMIT_EVERY_S = 2.0
SAVE_EVERY_S = 10.0


class Store(StoreReading):
    """Documents, chunks, embeddings and a FAISS index in one directory; safe for concurrent readers."""

    def __init__(
        self,
        path: str | Path,
        embedder: Embedder | None = None,
        embedding_model: str | None = None,
        index: str = "auto",
        chunk_tokens: int = 160,
        chunk_overlap: int = 32,
        batch_chunks: int = 256,
    ):
        self.path = Path(path).expanduser()
        if self.path.exists() and not self.path.is_dir():
            raise UserError(
                f"--store {self.path} is a file; a store is a directory: pass a new or existing store folder."
            )
        # before anything is written: bad settings never reach a manifest
        check_chunking(chunk_tokens, chunk_overlap)
        if batch_chunks < 1:
            raise UserError(f"batch_chunks must be at least 1, got {batch_chunks}.")
        manifest = self._read_manifest()
        if manifest is None and self.path.is_dir() and any(self.path.iterdir()) and not half_made(self.path):
            raise UserError(
                f"{self.path} is not an llmkit store (no manifest.json); pass an empty or new --store folder."
            )
        if manifest:
            check_database(self.path)
        wanted = embedder.name if embedder else embedding_model
        if manifest and wanted and manifest["embedding_model"] != wanted:
            raise UserError(
                f"store {self.path} was built with embedding model {manifest['embedding_model']!r}, not {wanted!r}; "
                "open it with that model (or leave the model out) or index into a new --store."
            )
        # The manifest names the model: a store built with --embedding_model X opens with X.
        self.embedder = embedder or Embedder(
            manifest["embedding_model"] if manifest else (embedding_model or DEFAULT_EMBEDDING_MODEL)
        )
        if manifest and manifest["dim"] != self.embedder.dim:  # searching it was a faiss AssertionError
            raise UserError(
                f"{self.path / MANIFEST} says its vectors have {manifest['dim']} dimensions, but "
                f"{self.embedder.name} makes {self.embedder.dim}: the manifest was edited or is another store's; "
                f"restore it, or move {self.path} aside and index its documents again."
            )
        self.config = manifest or {
            "embedding_model": self.embedder.name,
            "dim": self.embedder.dim,
            "index": index,
            "chunk_tokens": min(chunk_tokens, self.embedder.max_tokens),
            "chunk_overlap": chunk_overlap,
            # chunks embedded as read in place (chunking.in_context); stores made before embed their bare text
            "chunk_context": True,
        }
        self.batch_chunks = batch_chunks
        self.path.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._read_lock = threading.Lock()
        if manifest is None:
            with writer_lock(self.path):  # a second process creating it at once waits, then opens the first's
                self._create()
        else:
            self._open()

    def _create(self) -> None:
        """Make the store's files (a half-made store's started over), or open what another process just made."""
        made = self._read_manifest()
        if made and made["embedding_model"] != self.embedder.name:
            raise UserError(f"{self.path} was just made with {made['embedding_model']!r}; pass that model.")
        if made:
            self.config = made
            return self._open()
        if {p.name for p in self.path.iterdir()} - {LOCK}:
            # A kill while this store was first created: nothing was indexed into it yet, so start over.
            warnings.warn(
                f"{self.path} was left half-created by an interrupted run; starting it over.", stacklevel=3
            )
            start_over(self.path)
        (self.path / CREATING).touch()  # removed once the manifest exists: until then it is half-made
        self._open()
        self._save()  # a new store is a valid (empty) store from the start
        (self.path / CREATING).unlink(missing_ok=True)

    def _open(self) -> None:
        with self._db() as db:
            db.executescript(SCHEMA)
        self.index = self._load_index()
        self.loaded_generation = self._generation()

    @property
    def anchor(self) -> Path:
        """The folder that document paths are stored relative to: the store's parent (moves with it)."""
        return self.path.resolve().parent

    # -- persistence ------------------------------------------------------------------------------
    def _db(self) -> sqlite3.Connection:
        """This thread's connection: SQLite connections must not be shared between threads."""
        db = getattr(self._local, "db", None)
        if db is None:
            try:
                db = sqlite3.connect(self.path / DATABASE, timeout=30)
                db.execute("PRAGMA journal_mode=WAL")
            except sqlite3.DatabaseError as err:  # a truncated or overwritten store.sqlite
                raise database_problem(self.path, err) from None
            self._local.db = db
        return db

    def _read_manifest(self) -> dict | None:
        return read_manifest(self.path)

    def _generation(self) -> int:
        row = self._db().execute("SELECT value FROM info WHERE key='generation'").fetchone()
        return int(row[0]) if row else 0

    def _load_index(self, quiet: bool = False) -> faiss.Index:
        file = self.path / INDEX
        problem = "is behind its database (interrupted save?)"
        if file.is_file() and self.config.get("generation") == self._generation():
            try:
                index = faiss.read_index(str(file))
                if index.ntotal == len(self) and index.d == self.config["dim"]:
                    return index
                if index.d != self.config["dim"]:  # another store's index: searching it was an AssertionError
                    problem = f"has {index.d}-dimensional vectors, not the store's {self.config['dim']}"
            except RuntimeError:  # truncated or overwritten: the database holds every vector to rebuild it
                problem = "is unreadable (truncated or damaged)"
        if len(self) and not quiet and not being_written(self.path):  # a running `rag index` is no fault
            warnings.warn(
                f"the index in {self.path} {problem}; rebuilding it from the stored embeddings.",
                stacklevel=3,
            )
        return self._rebuild_index()

    def refresh(self) -> bool:
        """Reload the index if another process (or thread) changed the store on disk; True if it did."""
        if self._generation() == self.loaded_generation:
            return False  # one indexed SELECT: cheap enough to run before every query
        with self._read_lock, self._write_lock:
            return self._catch_up()

    def _catch_up(self) -> bool:
        """Reload the manifest and index if another process changed the store; True if it had."""
        generation = self._generation()
        if generation == self.loaded_generation:
            return False
        self.config = same_model(self.path, self._read_manifest() or self.config, self.embedder.name)
        # The writer may still be indexing (its manifest lags the database): rebuild from the stored vectors.
        self.index = self._load_index(quiet=True)
        self.loaded_generation = generation
        return True

    @contextlib.contextmanager
    def _writing(self, wait: bool = True) -> Iterator[None]:
        """Write alone: other threads and processes wait; what another process wrote before is loaded first."""
        with self._write_lock, writer_lock(self.path, wait):
            self._catch_up()
            yield

    def _rebuild_index(self) -> faiss.Index:
        ids, vectors = self.vectors()
        self.index = build_index(vectors, ids, self.config["index"])
        return self.index

    def _save(self) -> None:
        """Write the index, then the manifest, each to a temporary file renamed into place."""
        self.config.update(
            generation=self._generation(),
            n_chunks=len(self),
            index_type=index_kind(self.index),
            llmkit_version=llmkit.__version__,
        )
        write_atomic(self.path / INDEX, lambda tmp: faiss.write_index(self.index, str(tmp)))
        write_atomic(self.path / MANIFEST, json.dumps(self.config, indent=2))

    def save_manifest_entry(self, key: str, value, generation: int | None = None) -> bool:
        """Record derived information (e.g. the calibration) in the manifest; False, writing nothing, when the store
        has changed since the `generation` it was derived at (a fit of fewer documents overwrote the store's)."""
        with self._writing():
            if generation is not None and generation != self.loaded_generation:
                return False
            self.config[key] = value
            write_atomic(self.path / MANIFEST, json.dumps(self.config, indent=2))
        return True

    # -- writing ----------------------------------------------------------------------------------
    def add_documents(
        self,
        docs: list[Document],
        prune_prefixes: set[str] | None = None,
        progress: bool = False,
        wait: bool = True,
    ) -> dict:
        """Add new and changed documents (by content hash), embedding only their chunks.

        Stored documents whose id starts with one of `prune_prefixes` (a re-indexed folder, say
        "notes/") and that are absent from `docs` are deleted. Documents are committed every
        `batch_chunks` chunks and at least every COMMIT_EVERY_S seconds, so an interrupted run
        keeps what it finished and a re-run embeds only the rest. A document whose only change is
        its shown path (metadata "source") is updated in place, without re-embedding. While another
        process writes the store this waits for it (wait=False: raises UserError). Returns counts of
        what changed.
        """
        with self._writing(wait):
            known = {
                r[0]: (r[1], r[2]) for r in self._db().execute("SELECT id, hash, metadata FROM documents")
            }
            present = {d.id for d in docs}
            removed = [
                i for i in known if prune_prefixes and i not in present and under_folders(i, prune_prefixes)
            ]
            latest = {d.id: d for d in docs}
            changed = [d for d in latest.values() if known.get(d.id, ("",))[0] != d.content_hash]
            relabelled = [d for d in changed if d.id in known and only_display_changed(d, *known[d.id])]
            changed = [d for d in changed if d not in relabelled]
            updated = [d.id for d in changed if d.id in known]
            if removed:
                self._write([], [], removed)
            if relabelled:
                self._relabel(relabelled)
            embedded = self._write_in_batches(changed, set(updated), progress)
        return {
            "documents_added": len(changed) - len(updated),
            "documents_updated": len(updated),
            "documents_removed": len(removed),
            "documents_unchanged": len(latest) - len(changed),  # a document given twice counts once
            "chunks_embedded": embedded,
        }

    def delete_documents(self, doc_ids: list[str]) -> int:
        """Delete documents and their chunks; returns how many were in the store."""
        with self._writing():
            known = {r[0] for r in self._db().execute("SELECT id FROM documents")}
            gone = [i for i in dict.fromkeys(doc_ids) if i in known]
            if gone:
                self._write([], [], gone)
        return len(gone)

    def _relabel(self, docs: list[Document]) -> None:
        """Store new display metadata (and hash) of documents whose text is unchanged: no re-embedding."""
        db = self._db()
        with db:
            relabel_rows(db, docs)
            db.execute("INSERT OR REPLACE INTO info VALUES ('generation', ?)", (str(self._generation() + 1),))
        self.loaded_generation = self._generation()
        self._save()

    def _write_in_batches(self, docs: list[Document], updated: set[str], progress: bool) -> int:
        """Chunk, embed and commit documents; each commit is one transaction of whole documents.

        Chunks are embedded in groups of about one embedding batch, and what is embedded is
        committed every `batch_chunks` chunks or COMMIT_EVERY_S seconds, whichever comes first.
        """
        bar = None
        if progress and docs:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(docs), desc="indexing", unit="doc")
        embedded = 0

        def count(n: int) -> None:
            # chunks shown beside documents: one long document (a book) is minutes of embedding at 0/1 doc
            nonlocal embedded
            embedded += n
            if bar is not None:
                bar.set_postfix_str(f"{embedded:,} chunks embedded")

        size, overlap = self.config["chunk_tokens"], self.config["chunk_overlap"]
        group_size = max(1, min(self.embedder.batch_size, self.batch_chunks))
        total, last_commit, last_save = 0, time.monotonic(), time.monotonic()
        group: list = []  # (document, its chunks) not embedded yet
        pending: list = []  # (documents, chunks, vectors) embedded, not committed yet
        for i, doc in enumerate(docs):
            last = i == len(docs) - 1
            group.append((doc, chunk_document(doc, self.embedder.tokenizer, size, overlap)))
            chunks = [c for _, cs in group for c in cs]
            if len(chunks) < group_size and not last:
                continue
            pending.append(
                (
                    [d for d, _ in group],
                    chunks,
                    self.embedder.encode(self._embedded_texts(chunks), on_batch=count),
                )
            )
            group = []
            n_pending = sum(len(p[1]) for p in pending)
            now = time.monotonic()
            if not (last or n_pending >= self.batch_chunks or now - last_commit >= COMMIT_EVERY_S):
                continue
            batch = [d for p in pending for d in p[0]]
            save = last or now - last_save > SAVE_EVERY_S
            vectors = np.concatenate([p[2] for p in pending])
            stale = [d.id for d in batch if d.id in updated]
            self._write(batch, [c for p in pending for c in p[1]], stale, vectors, save=save)
            last_commit = time.monotonic()
            last_save = last_commit if save else last_save
            total += n_pending
            if bar is not None:
                bar.update(len(batch))
            pending = []
        if bar is not None:
            bar.close()
        return total

    def _embedded_texts(self, chunks: list) -> list[str]:
        """What is embedded of each chunk: read in place, or its bare text in a store made before that."""
        if not self.config.get("chunk_context"):
            return [c.text for c in chunks]
        return [in_context(c.doc_id, c.metadata, c.text, c.metadata.get("heading", "")) for c in chunks]

    def _write(
        self,
        docs: list[Document],
        chunks: list,
        stale: list[str],
        vectors: np.ndarray | None = None,
        save: bool = True,
    ) -> None:
        """Replace the chunks of `stale` documents by `docs` and their `chunks` in one transaction.

        Between saves the FAISS file lags the database; opening the store then rebuilds the
        index from the stored embeddings (the database is the source of truth).
        """
        db = self._db()
        vectors = np.zeros((0, self.config["dim"]), np.float32) if vectors is None else vectors
        with db:  # one transaction: all of it lands, or none of it
            old, new_ids = replace_rows(db, docs, chunks, stale, vectors)
            db.execute("INSERT OR REPLACE INTO info VALUES ('generation', ?)", (str(self._generation() + 1),))
        self._update_index(old, new_ids, vectors)
        self.loaded_generation = self._generation()
        if save:
            self._save()

    def _update_index(self, old: np.ndarray, new_ids: np.ndarray, vectors: np.ndarray) -> None:
        kind = index_kind(self.index)
        if kind == "hnsw" and len(old) or self.index.ntotal == 0 or not self.index.is_trained:
            self._rebuild_index()  # HNSW cannot delete; an empty IVF index has no training yet
            return
        if len(old):
            self.index.remove_ids(old)
        if len(new_ids):
            self.index.add_with_ids(vectors, new_ids)
