"""What a store answers once written: counts, vectors, chunks by id, term frequencies, its documents.

Store (llmkit.rag.store) inherits these; they only read the database through `self._db()`.
"""

from __future__ import annotations

import json

import numpy as np


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
