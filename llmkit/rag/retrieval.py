"""Retrieval over a Store: dense (FAISS), lexical (BM25 via FTS5), hybrid (reciprocal-rank fusion), rerank.

Filters are applied *before* ranking, in every mode: a filter that matches at least k chunks
always yields k results (ranking the whole store and filtering afterwards can leave none).
"""

from __future__ import annotations

import math
import re
import threading
from dataclasses import dataclass, field

import numpy as np

from llmkit.errors import UserError
from llmkit.loading import check_exists_if_path
from llmkit.rag.index import search_index
from llmkit.rag.queries import marks
from llmkit.rag.store import Store

MODES = ("dense", "lexical", "hybrid")
FUSIONS = ("relative", "rrf")
FUSION = "relative"
DENSE_WEIGHT = 0.5
RRF_K = 60  # the constant of reciprocal-rank fusion (Cormack et al.); damps the weight of top ranks
# Words that match nearly every chunk: they add nothing to BM25's ranking but make FTS5 score
# every row (40 ms instead of a few at 100k chunks).
STOPWORDS = frozenset(
    "a an and are as at be but by can do does did for from has have how i if in into is it its me my of on or our "
    "so than that the their them then there these they this those to was we were what when where which who why will "
    "with would you your "
    # function words that say nothing of a topic ("Why would I prefer X over Y?")
    "about above after against all am any been before being below between both could during each further had he "
    "her here him his more most other over own same she should some such through under until up very while whom "
    "might must may shall also just itself himself herself themselves myself yourself ourselves".split()
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
    similarity: float = (
        0.0  # cosine between the question and the chunk, whatever the mode: the abstention signal
    )

    @property
    def source(self) -> str:
        """Where the chunk came from, e.g. a file path, with its page or heading when known."""
        where = self.metadata.get("source", self.doc_id)
        if self.page:
            where += f", {self.page}"
        return where

    @property
    def page(self) -> str | None:
        """ "page 3", or "pages 3-4" for a chunk that runs over a page break; None outside PDFs."""
        first, last = self.metadata.get("page"), self.metadata.get("page_end")
        if first is None:
            return None
        return f"pages {first}-{last}" if last and last != first else f"page {first}"


class Retriever:
    """Search a store by meaning, by words, or both; optionally rerank with a cross-encoder."""

    def __init__(self, store: Store, reranker: str | None = None, fusion: str = FUSION):
        if fusion not in FUSIONS:
            raise UserError(f"unknown fusion {fusion!r}; choose one of {', '.join(FUSIONS)}.")
        self.store = store
        self.reranker_name = reranker
        self.fusion = fusion
        self._reranker = None
        # HF fast tokenizers are not safe to call from several threads at once
        self._encode_lock = threading.Lock()

    def search(self, query: str, k: int = 5, mode: str = "hybrid", **options) -> list[Hit]:
        """Top-k chunks for `query`; `retrieve`'s keyword options (source glob, where, rerank) apply."""
        return self.retrieve(query, k, mode, **options)[0]

    def retrieve(
        self,
        query: str,
        k: int = 5,
        mode: str = "hybrid",
        *,
        source: str | None = None,
        where: dict | None = None,
        rerank: bool | None = None,
    ) -> tuple[list[Hit], np.ndarray | None]:
        """Top-k chunks for `query` and its embedding (None when empty); `source` globs the source path,
        `where` matches metadata values, `rerank` overrides the retriever's cross-encoder setting."""
        if mode not in MODES:
            raise UserError(f"unknown retrieval mode {mode!r}; choose one of {', '.join(MODES)}.")
        if k < 1:
            raise UserError(f"k must be at least 1, got {k}.")
        if not query.strip():
            return [], None
        self.store.refresh()  # another process may have indexed since: never answer from a stale index
        # more than the store holds is all of it: a k of 2**63 overflowed SQLite's LIMIT (HTTP 500 from `rag serve`)
        k = min(k, max(self.store.index.ntotal, 1))
        allowed = self._allowed(source, where)
        vector = self.embed(query)
        if allowed is not None and len(allowed) == 0:
            return [], vector
        rerank = bool(self.reranker_name) if rerank is None else rerank
        pool = max(k, 4 * k if (mode == "hybrid" or rerank) else k, 20 if rerank else 0)
        if mode == "dense":
            ranked = self.dense(query, pool, allowed, vector)
        elif mode == "lexical":
            ranked = self.lexical(query, pool, allowed)
        else:
            ranked = self.hybrid(query, pool, allowed, vector)
        records = self.store.chunks([i for i, _ in ranked])
        hits = [Hit(id=i, score=s, **records[i]) for i, s in ranked if i in records]
        if rerank and hits:
            hits = self._rerank(query, hits)
        hits = hits[:k]
        sims = self._similarities(vector, [h.id for h in hits])
        for hit in hits:
            hit.similarity = sims.get(hit.id, 0.0)
        return hits, vector

    def embed(self, query: str) -> np.ndarray:
        """The query's normalized embedding."""
        with self._encode_lock:
            return self.store.embedder.encode([query])[0]

    def dense(
        self, query: str, k: int, allowed: np.ndarray | None = None, vector: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """(chunk id, cosine similarity) of the k nearest chunks."""
        vector = self.embed(query) if vector is None else vector
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
        match = _match_expression(query)
        if match is None:  # punctuation or emoji only: no word to look up
            return []
        sql = "SELECT rowid, -bm25(chunks_fts) AS score FROM chunks_fts WHERE chunks_fts MATCH ?"
        params: list = [match]
        if allowed is not None:
            sql += f" AND rowid IN ({marks(allowed)})"
            params += [int(i) for i in allowed]
        rows = self.store._db().execute(sql + " ORDER BY bm25(chunks_fts) LIMIT ?", [*params, k]).fetchall()
        return [(int(r[0]), float(r[1])) for r in rows]

    def hybrid(
        self, query: str, k: int, allowed: np.ndarray | None = None, vector: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """Both legs, fused (see FUSION)."""
        vector = self.embed(query) if vector is None else vector
        dense, lexical = self.dense(query, k, allowed, vector), self.lexical(query, k, allowed)
        if self.fusion == "rrf":
            return _rrf([dense, lexical])
        # Score the union of both candidate lists on both legs, so no candidate gets a made-up zero.
        union = list(dict.fromkeys([i for i, _ in dense] + [i for i, _ in lexical]))
        cos = self._similarities(vector, union)
        bm25 = dict(lexical)
        missing = [i for i in union if i not in bm25]
        if missing and lexical:
            bm25.update(self._bm25(query, missing))
        return _fuse_scores(union, cos, bm25)

    def _similarities(self, vector: np.ndarray, ids: list[int]) -> dict[int, float]:
        if not ids:
            return {}
        ids_, vectors = self.store.vectors(np.array(ids, np.int64))
        return {int(i): float(s) for i, s in zip(ids_, vectors @ vector)}

    def _bm25(self, query: str, ids: list[int]) -> dict[int, float]:
        """BM25 of given chunks (0 for chunks that share no word with the query)."""
        match = _match_expression(query)
        rows = (
            self.store._db()
            .execute(
                f"SELECT rowid, -bm25(chunks_fts) FROM chunks_fts WHERE chunks_fts MATCH ? AND rowid IN ({marks(ids)})",
                [match, *ids],
            )
            .fetchall()
        )
        return {int(r[0]): float(r[1]) for r in rows}

    def _allowed(self, source: str | None, where: dict | None) -> np.ndarray | None:
        """Chunk ids that pass the filters (None: no filter)."""
        if not source and not where:
            return None
        clauses, params = [], []
        if source:
            clauses.append("source GLOB ?")  # shell-style pattern, like the include/exclude globs
            params.append(source)
        for key, value in (where or {}).items():
            # IS, not =: a null value matches chunks without that key (= NULL matched nothing, ever)
            clauses.append("json_extract(metadata, ?) IS ?")
            params += [_json_path(key), _where_value(key, value)]
        rows = self.store._db().execute(f"SELECT rowid FROM chunks WHERE {' AND '.join(clauses)}", params)
        return np.array([r[0] for r in rows], np.int64)

    def filter_problem(self, source: str | None = None, where: dict | None = None) -> str | None:
        """What is wrong with filters that no chunk passes (None when some do): a glob that misses every path was
        answered "The documents hold nothing about that", as if the documents had been searched."""
        allowed = self._allowed(source, where)
        if allowed is None or len(allowed):
            return None
        if source and not len(self._allowed(source, None)):
            row = self.store._db().execute("SELECT source FROM chunks ORDER BY source LIMIT 1").fetchone()
            example = f" such as {row[0]!r}" if row else ""
            return (
                f"the source filter {source!r} matches no document: it is matched against the whole source path{example} "
                f"(`rag ask --json` shows each one); try {'*' + source.lstrip('*')!r}."
            )
        return f"no chunk{' of those sources' if source else ''} has the metadata {where}."

    def _rerank(self, query: str, hits: list[Hit]) -> list[Hit]:
        if self._reranker is None:
            from sentence_transformers import CrossEncoder

            check_exists_if_path(self.reranker_name, " Check --rerank.")
            try:
                self._reranker = CrossEncoder(self.reranker_name)
            except (
                OSError,
                ValueError,
            ) as err:  # offline, not found, not a cross-encoder; out of memory propagates
                raise UserError(
                    f"could not load cross-encoder {self.reranker_name!r} ({type(err).__name__}: {err})."
                ) from None
        with self._encode_lock:
            scores = self._reranker.predict([(query, h.text) for h in hits], show_progress_bar=False)
        for hit, score in zip(hits, scores):
            hit.score = float(score)
        return sorted(hits, key=lambda h: -h.score)


def _json_path(key: str) -> str:
    """SQLite's JSON path of a metadata key, quoted unless a plain name: "a b" or "x[0" matched nothing or were
    a JSON path error (HTTP 500 from `rag serve`)."""
    if not key or '"' in key:
        raise UserError(f"a metadata filter's name must be non-empty text without '\"', got {key!r}.")
    return f"$.{key}" if re.fullmatch(r"[A-Za-z_]\w*", key) else f'$."{key}"'


def _where_value(key: str, value):
    """A metadata filter's value as SQLite can compare it; UserError for one it cannot hold."""
    if isinstance(value, float) and not math.isfinite(value):
        raise UserError(
            f"the metadata filter {key!r} is {value}; give a finite number, text, a boolean or null."
        )
    # SQLite's INTEGER holds 64 bits: a larger number was an OverflowError (HTTP 500)
    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        raise UserError(
            f"the metadata filter {key!r} is a number too large to compare ({str(value)[:20]}...)."
        )
    return value


def _match_expression(query: str) -> str | None:
    """An FTS5 query OR-ing the query's words, each quoted (no FTS5 syntax from user input); None if no words."""
    words = re.findall(r"\w+", query.lower())
    words = [w for w in words if w not in STOPWORDS] or words  # a query of stopwords only keeps them
    return " OR ".join(f'"{w}"' for w in dict.fromkeys(words)) or None


def _rrf(rankings: list[list[tuple[int, float]]]) -> list[tuple[int, float]]:
    """Reciprocal-rank fusion: score = sum over rankings of 1 / (RRF_K + rank)."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, (i, _) in enumerate(ranking, start=1):
            fused[i] = fused.get(i, 0.0) + 1.0 / (RRF_K + rank)
    return sorted(fused.items(), key=lambda x: -x[1])


def _fuse_scores(ids: list[int], cos: dict[int, float], bm25: dict[int, float]) -> list[tuple[int, float]]:
    """Score-normalised fusion: each leg min-max scaled over the candidates, weighted by how sure it is."""
    d = np.array([cos.get(i, 0.0) for i in ids])
    lex = np.array([bm25.get(i, 0.0) for i in ids])
    fused = DENSE_WEIGHT * _minmax(d) + (1 - DENSE_WEIGHT) * _minmax(lex)
    order = np.argsort(-fused, kind="stable")  # the ranking, from the scaled legs alone
    # The shown score: a leg on which every candidate ties counts as the best for each (min-max gave them 0, so
    # one candidate, or a filter that left one, showed "score 0.000" for the chunk it showed as 1.000 unfiltered).
    shown = fused + DENSE_WEIGHT * _tied_best(d) + (1 - DENSE_WEIGHT) * _tied_best(lex)
    return [(ids[j], float(shown[j])) for j in order]


def _minmax(x: np.ndarray) -> np.ndarray:
    span = x.max() - x.min() if len(x) else 0.0
    return (x - x.min()) / span if span > 0 else np.zeros_like(x)


def _tied_best(x: np.ndarray) -> float:
    """1.0 when all of `x` ties on a sign of a match (BM25 or cosine above 0), where `_minmax` gives each 0 though
    each is the best; 0.0 otherwise (no shared word is no keyword match, whatever the ties)."""
    return 1.0 if len(x) and x.max() == x.min() and x.max() > 0 else 0.0
