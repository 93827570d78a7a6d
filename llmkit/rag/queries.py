"""The store's SQL: what a store answers once written (counts, vectors, chunks by id, term frequencies, its
documents), and the rows a write replaces or relabels.

Store (llmkit.rag.store) inherits the reading; it calls the writing inside its own transaction and lock.
"""

from __future__ import annotations

import json
import sqlite3

import numpy as np

from llmkit.rag.documents import DISPLAY_KEYS, Document


def marks(values) -> str:
    """SQL placeholders for `values`: "?,?,?"."""
    return ",".join("?" * len(values))


class StoreReading:
    """The read-only queries of a Store."""

    def __len__(self) -> int:
        return self._db().execute("SELECT COUNT(*) FROM chunks").fetchone()[0]

    def count_documents(self) -> int:
        """Number of documents in the store."""
        return self._db().execute("SELECT COUNT(*) FROM documents").fetchone()[0]

    def vectors(self, ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of all chunks, or of the given chunk ids."""
        sql = "SELECT rowid, vector FROM chunks"
        rows = (
            self._db()
            .execute(
                sql + (f" WHERE rowid IN ({marks(ids)})" if ids is not None else ""),
                [] if ids is None else [int(i) for i in ids],
            )
            .fetchall()
        )
        dim = self.config["dim"]
        vectors = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), dim)
        return np.array([r[0] for r in rows], np.int64), vectors

    def chunks(self, ids: list[int]) -> dict[int, dict]:
        """Chunk records by FAISS id: chunk_id, doc_id, text, start, end, metadata."""
        rows = self._db().execute(
            f"SELECT rowid, id, doc_id, text, start, end, metadata FROM chunks WHERE rowid IN ({marks(ids)})",
            [int(i) for i in ids],
        )
        return {
            r[0]: {
                "chunk_id": r[1],
                "doc_id": r[2],
                "text": r[3],
                "start": r[4],
                "end": r[5],
                "metadata": json.loads(r[6]),
            }
            for r in rows
        }

    def chunk_frequency(self, expression: str) -> int:
        """How many chunks match an FTS5 expression (a quoted phrase or prefix): a term's document frequency."""
        return (
            self._db()
            .execute("SELECT COUNT(*) FROM chunks_fts WHERE chunks_fts MATCH ?", (expression,))
            .fetchone()[0]
        )

    def document_titles(self) -> dict[str, str]:
        """{document id: its title, or ""} for every document."""
        rows = self._db().execute("SELECT id, metadata FROM documents")
        return {i: json.loads(meta).get("title", "") for i, meta in rows}

    def document_ids(self) -> list[str]:
        """Every document id in the store."""
        return [r[0] for r in self._db().execute("SELECT id FROM documents ORDER BY id")]

    def sources(self) -> dict[str, str]:
        """{document id: its shown source path} for every document."""
        rows = self._db().execute("SELECT id, metadata FROM documents ORDER BY id")
        return {i: json.loads(meta).get("source", i) for i, meta in rows}


def replace_rows(
    db: sqlite3.Connection, docs: list[Document], chunks: list, stale: list[str], vectors: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Delete the `stale` documents' rows, insert `docs` and their `chunks`; return (old, new) chunk rowids."""
    old = [r[0] for r in db.execute(f"SELECT rowid FROM chunks WHERE doc_id IN ({marks(stale)})", stale)]
    db.execute(f"DELETE FROM chunks_fts WHERE rowid IN ({marks(old)})", old)
    db.execute(f"DELETE FROM chunks WHERE doc_id IN ({marks(stale)})", stale)
    db.execute(f"DELETE FROM documents WHERE id IN ({marks(stale)})", stale)
    db.executemany(
        "INSERT INTO documents VALUES (?, ?, ?)",
        [(d.id, d.content_hash, json.dumps(d.metadata)) for d in docs],
    )
    new = []
    for chunk, vector in zip(chunks, vectors):
        cur = db.execute(
            "INSERT INTO chunks (id, doc_id, text, start, end, source, metadata, vector) VALUES (?,?,?,?,?,?,?,?)",
            (
                chunk.id,
                chunk.doc_id,
                chunk.text,
                chunk.start,
                chunk.end,
                chunk.metadata.get("source"),
                json.dumps(chunk.metadata),
                vector.tobytes(),
            ),
        )
        new.append(cur.lastrowid)
    db.executemany(
        "INSERT INTO chunks_fts (rowid, text) VALUES (?, ?)", [(i, c.text) for i, c in zip(new, chunks)]
    )
    return np.array(old, np.int64), np.array(new, np.int64)


def relabel_rows(db: sqlite3.Connection, docs: list[Document]) -> None:
    """Write documents' new hash and display metadata (a moved file: its text unchanged) into their rows."""
    for doc in docs:
        shown = {k: doc.metadata[k] for k in DISPLAY_KEYS if k in doc.metadata}
        db.execute(
            "UPDATE documents SET hash = ?, metadata = ? WHERE id = ?",
            (doc.content_hash, json.dumps(doc.metadata), doc.id),
        )
        rows = db.execute("SELECT rowid, metadata FROM chunks WHERE doc_id = ?", (doc.id,)).fetchall()
        db.executemany(
            "UPDATE chunks SET source = ?, metadata = ? WHERE rowid = ?",
            [(shown.get("source"), json.dumps({**json.loads(meta), **shown}), rowid) for rowid, meta in rows],
        )
