"""FAISS indexes over normalized embeddings (inner product = cosine), keyed by stable int64 ids."""

from __future__ import annotations

import math

import faiss
import numpy as np

from llmkit.errors import UserError

INDEX_KINDS = ("auto", "flat", "hnsw", "ivf", "ivfpq")
FLAT_UP_TO = 50_000  # exact search stays within a few ms below this many vectors


def resolve_kind(kind: str, n: int) -> str:
    """Pick the index type: `auto` means exact search for small stores and HNSW above FLAT_UP_TO."""
    if kind not in INDEX_KINDS:
        raise UserError(f"unknown index type {kind!r}; choose one of {', '.join(INDEX_KINDS)}.")
    if kind == "auto":
        return "flat" if n <= FLAT_UP_TO else "hnsw"
    return kind


def build_index(vectors: np.ndarray, ids: np.ndarray, kind: str = "auto") -> faiss.Index:
    """Build and fill an index of the given kind; IVF variants are trained on the vectors themselves."""
    n, d = vectors.shape
    kind = resolve_kind(kind, n)
    if kind == "flat":
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(d))
    elif kind == "hnsw":
        inner = faiss.IndexHNSWFlat(d, 32, faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction = 80
        inner.hnsw.efSearch = 64
        index = faiss.IndexIDMap2(inner)
    else:
        # ~4 sqrt(n) lists, with at least 39 training points per list (FAISS' own minimum).
        nlist = max(1, min(int(4 * math.sqrt(n)), n // 39))
        quantizer = faiss.IndexFlatIP(d)
        if kind == "ivf":
            index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
        else:
            m = next(m for m in (48, 32, 24, 16, 12, 8, 4, 2, 1) if d % m == 0)
            nbits = 8 if n >= 256 * 39 else max(1, int(math.log2(max(2, n // 39))))
            index = faiss.IndexIVFPQ(quantizer, d, nlist, m, nbits, faiss.METRIC_INNER_PRODUCT)
        if n:
            index.train(vectors)
        index.nprobe = max(1, nlist // 8)
    if n:
        index.add_with_ids(vectors, ids.astype(np.int64))
    return index


def index_kind(index: faiss.Index) -> str:
    """The kind of a built or loaded index."""
    inner = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap) else index
    return {"IndexFlatIP": "flat", "IndexHNSWFlat": "hnsw", "IndexIVFFlat": "ivf", "IndexIVFPQ": "ivfpq"}.get(
        type(inner).__name__, "flat"
    )


def search_index(
    index: faiss.Index, query: np.ndarray, k: int, allowed: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k (scores, ids) for one query vector; `allowed` restricts the search to those ids before ranking."""
    query = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
    if index.ntotal == 0 or k <= 0:
        return np.zeros(0, np.float32), np.zeros(0, np.int64)
    params = None
    if allowed is not None:
        selector = faiss.IDSelectorBatch(allowed.astype(np.int64))
        kind = index_kind(index)
        if kind == "hnsw":
            params = faiss.SearchParametersHNSW(sel=selector, efSearch=max(64, 2 * k))
        elif kind in ("ivf", "ivfpq"):
            params = faiss.SearchParametersIVF(sel=selector, nprobe=faiss.extract_index_ivf(index).nprobe)
        else:
            params = faiss.SearchParameters(sel=selector)
    scores, ids = index.search(query, min(k, index.ntotal), params=params)
    keep = ids[0] >= 0
    return scores[0][keep], ids[0][keep]
