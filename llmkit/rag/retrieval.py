"""Retrieval over a Store: dense (FAISS), lexical (BM25 via FTS5), hybrid (reciprocal-rank fusion), rerank.

Filters are applied *before* ranking, in every mode: a filter that matches at least k chunks
always yields k results (ranking the whole store and filtering afterwards can leave none).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field

import numpy as np

from llmkit.errors import UserError
from llmkit.rag.index import search_index
from llmkit.rag.store import Store, _marks

MODES = ("dense", "lexical", "hybrid")
RRF_K = 60  # the constant of reciprocal-rank fusion (Cormack et al.); damps the weight of top ranks
# Words that match nearly every chunk: they add nothing to BM25's ranking but make FTS5 score
# every row (40 ms instead of a few at 100k chunks).
STOPWORDS = frozenset(
    "a an and are as at be but by can do does did for from has have how i if in into is it its me my of on or our "
    "so than that the their them then there these they this those to was we were what when where which who why will "
    "with would you your".split()
)


@dataclass
class Hit:
    """One retrieved chunk."""

    id: int
    chunk_id: str
    doc_id: str
    text: str
    score: float
    start: int = 0
    end: int = 0
    metadata: dict = field(default_factory=dict)

    @property
    def source(self) -> str:
        """Where the chunk came from, e.g. a file path, with its page or heading when known."""
        where = self.metadata.get("source", self.doc_id)
        if "page" in self.metadata:
            where += f", page {self.metadata['page']}"
        return where


class Retriever:
    """Search a store by meaning, by words, or both; optionally rerank with a cross-encoder."""

    def __init__(self, store: Store, reranker: str | None = None):
        self.store = store
        self.reranker_name = reranker
        self._reranker = None
        self._encode_lock = threading.Lock()  # HF fast tokenizers are not safe to call from several threads at once

    def search(self, query: str, k: int = 5, mode: str = "hybrid", source: str | None = None,
               where: dict | None = None, rerank: bool | None = None) -> list[Hit]:
        """Top-k chunks for `query`; `source` is a glob on the source path, `where` matches metadata values."""
        if mode not in MODES:
            raise UserError(f"unknown retrieval mode {mode!r}; choose one of {', '.join(MODES)}.")
        if not query.strip():
            return []
        allowed = self._allowed(source, where)
        if allowed is not None and len(allowed) == 0:
            return []
        rerank = bool(self.reranker_name) if rerank is None else rerank
        pool = max(k, 4 * k if (mode == "hybrid" or rerank) else k, 20 if rerank else 0)
        if mode == "dense":
            ranked = self.dense(query, pool, allowed)
        elif mode == "lexical":
            ranked = self.lexical(query, pool, allowed)
        else:
            ranked = _fuse([self.dense(query, pool, allowed), self.lexical(query, pool, allowed)])
        records = self.store.chunks([i for i, _ in ranked])
        hits = [Hit(id=i, score=s, **records[i]) for i, s in ranked if i in records]
        if rerank and hits:
            hits = self._rerank(query, hits)
        return hits[:k]

    def dense(self, query: str, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """(chunk id, cosine similarity) of the k nearest chunks."""
        with self._encode_lock:
            vector = self.store.embedder.encode([query])[0]
        scores, ids = search_index(self.store.index, vector, k, allowed)
        if allowed is not None and len(ids) < min(k, len(allowed)):
            # An approximate index can miss when the filter is very selective: search exactly instead.
            ids_, vectors = self.store.vectors(allowed)
            sims = vectors @ vector
            top = np.argsort(-sims)[:k]
            scores, ids = sims[top], ids_[top]
        return [(int(i), float(s)) for i, s in zip(ids, scores)]

    def lexical(self, query: str, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """(chunk id, BM25 score) of the k best keyword matches (FTS5; higher is better)."""
        words = re.findall(r"\w+", query.lower())
        words = [w for w in words if w not in STOPWORDS] or words  # a query of stopwords only keeps them
        match = " OR ".join(f'"{w}"' for w in dict.fromkeys(words))  # quoted: no FTS5 syntax from user input
        sql = "SELECT rowid, -bm25(chunks_fts) AS score FROM chunks_fts WHERE chunks_fts MATCH ?"
        params: list = [match]
        if allowed is not None:
            sql += f" AND rowid IN ({_marks(allowed)})"
            params += [int(i) for i in allowed]
        rows = self.store._db().execute(sql + " ORDER BY bm25(chunks_fts) LIMIT ?", [*params, k]).fetchall()
        return [(int(r[0]), float(r[1])) for r in rows]

    def _allowed(self, source: str | None, where: dict | None) -> np.ndarray | None:
        """Chunk ids that pass the filters (None: no filter)."""
        if not source and not where:
            return None
        clauses, params = [], []
        if source:
            clauses.append("source GLOB ?")  # shell-style pattern, like the include/exclude globs
            params.append(source)
        for key, value in (where or {}).items():
            clauses.append("json_extract(metadata, ?) = ?")
            params += [f"$.{key}", value]
        rows = self.store._db().execute(f"SELECT rowid FROM chunks WHERE {' AND '.join(clauses)}", params)
        return np.array([r[0] for r in rows], np.int64)

    def _rerank(self, query: str, hits: list[Hit]) -> list[Hit]:
        if self._reranker is None:
            from sentence_transformers import CrossEncoder

            try:
                self._reranker = CrossEncoder(self.reranker_name)
            except Exception as err:
                raise UserError(f"could not load cross-encoder {self.reranker_name!r} ({type(err).__name__}: {err}).") from None
        with self._encode_lock:
            scores = self._reranker.predict([(query, h.text) for h in hits], show_progress_bar=False)
        for hit, score in zip(hits, scores):
            hit.score = float(score)
        return sorted(hits, key=lambda h: -h.score)


def _fuse(rankings: list[list[tuple[int, float]]]) -> list[tuple[int, float]]:
    """Reciprocal-rank fusion: score = sum over rankings of 1 / (RRF_K + rank)."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, (i, _) in enumerate(ranking, start=1):
            fused[i] = fused.get(i, 0.0) + 1.0 / (RRF_K + rank)
    return sorted(fused.items(), key=lambda x: -x[1])
