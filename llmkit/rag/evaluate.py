"""Retrieval quality and latency: hit@1/5/10, MRR@10 and p50/p95 latency per retrieval mode."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from llmkit.errors import UserError
from llmkit.rag.retrieval import MODES, Retriever
from llmkit.rag.serve import MAX_QUESTION_CHARS
from llmkit.sentences import is_text


def load_qa(path: str | Path) -> list[dict]:
    """Read a JSONL file of {"question": ..., "doc_id": ...} (or "doc_ids": [...]) lines."""
    path = Path(path)
    if not path.is_file():
        problem = "is a folder" if path.is_dir() else "does not exist"
        raise UserError(f"{path} {problem}; pass a JSONL file of question/doc_id pairs.")
    rows = []
    for n, raw in enumerate(path.read_bytes().splitlines(), start=1):
        try:
            line = raw.decode("utf-8-sig" if n == 1 else "utf-8")
        except UnicodeDecodeError:  # it was read with U+FFFD in place of the bytes: other questions, silently
            raise UserError(
                f"{path}:{n} is not UTF-8 text; convert the file, e.g. iconv -f latin1 -t utf-8 {path.name} > fixed"
            ) from None
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            relevant = _relevant(row)
            question = row["question"]
            # a number or list crashed retrieval; an empty question counted as a miss in the figures
            if not isinstance(question, str) or not question.strip():
                raise TypeError
            rows.append({"question": question, "relevant": relevant})
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
            raise UserError(
                f'{path}:{n}: expected {{"question": "a question", "doc_id": "an id"}} '
                f'(or "doc_ids": ["an id", ...]), got {line[:80]!r}'
            ) from None
        if not is_text(question):  # a "\ud800" escape: a TypeError traceback from the tokenizer
            raise UserError(
                f"{path}:{n}: the question holds an unpaired surrogate escape (such as \\ud800), which is not "
                "text; write the character itself, or its escaped pair."
            )
        if len(question) > MAX_QUESTION_CHARS:  # `ask` and `serve` refuse it; eval ran it and scored it
            raise UserError(
                f"{path}:{n}: the question is {len(question):,} characters long; keep each under "
                f"{MAX_QUESTION_CHARS:,}, as `llmkit rag ask` does."
            )
    if not rows:
        raise UserError(f"{path} holds no questions.")
    return rows


def _relevant(row: dict) -> set[str]:
    """The ids a qa line names: "doc_id", "doc_ids" or both (a "doc_id" beside "doc_ids" was ignored, and a
    string as "doc_ids" was read letter by letter); TypeError when neither is there or one is not ids."""
    ids = row.get("doc_ids", [])
    if not isinstance(ids, list):
        raise TypeError
    if "doc_id" in row:
        ids = [*ids, row["doc_id"]]
    if not ids or not all(isinstance(d, str) and d for d in ids):
        raise TypeError
    return set(ids)


def check_doc_ids(qa: list[dict], ids: set[str], path: str | Path) -> None:
    """Refuse questions whose documents the store lacks: every one would count as a miss, and the figures lie."""
    unknown = sorted({d for row in qa for d in row["relevant"]} - ids)
    if unknown:
        names = ", ".join(map(repr, unknown[:3])) + (
            f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""
        )
        example = f" (its ids look like {min(ids)!r})" if ids else ""
        raise UserError(
            f"{path} names doc_ids the store does not have: {names}{example}; "
            "`llmkit rag ask --json` shows each source's doc_id."
        )


def evaluate(retriever: Retriever, qa: list[dict], modes: tuple[str, ...] = MODES) -> dict:
    """For each mode: hit@1/5/10 (a relevant document among the top k), MRR@10 and latency percentiles."""
    results = {}
    for mode in modes:
        ranks, latencies = [], []
        for row in qa:
            t = time.perf_counter()
            hits = retriever.search(row["question"], k=10, mode=mode)
            latencies.append((time.perf_counter() - t) * 1000)
            docs = list(dict.fromkeys(h.doc_id for h in hits))  # rank documents, not chunks
            ranks.append(next((i + 1 for i, d in enumerate(docs) if d in row["relevant"]), None))
        results[mode] = {
            **{
                f"hit@{k}": round(sum(r is not None and r <= k for r in ranks) / len(ranks), 4)
                for k in (1, 5, 10)
            },
            "mrr@10": round(sum(1 / r for r in ranks if r) / len(ranks), 4),
            "latency_ms_p50": round(float(np.percentile(latencies, 50)), 2),
            "latency_ms_p95": round(float(np.percentile(latencies, 95)), 2),
            "questions": len(qa),
        }
    return results
