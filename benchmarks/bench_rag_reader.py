"""Where a reader helps a RAG answer: its "no answer", or its choice of the sentence to quote.

    python benchmarks/bench_rag_reader.py --reader runs/qa-reader --cache runs/rag-collections

For each collection of benchmarks/rag_collections.py (default settings, hybrid, k=5), each question is
answered by the pipeline without a reader, then the reader reads the kept sources. Reported: answerable
questions answered without and with the reader, on-topic unanswerable ones abstained without and with it, and,
on the answerable questions both answer, how often the first quoted unit holds the answer when it is

    ranker   the default ranking's first unit (what `rag ask --reader` quotes)
    reader   the sentence holding the reader's span
    top3     the reader's unit if the ranker put it in its first three, else the ranker's first
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rag_collections import COLLECTIONS, open_collection

from llmkit.rag import RAG
from llmkit.rag.calibration import ensure_calibrated
from llmkit.rag.reader import Reader
from llmkit.sentences import sentence_spans


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def _first_units(answer, found) -> dict[str, str]:
    """The unit each policy quotes first, given the pipeline's answer and the reader's (source index, span)."""
    evidence, hits = answer.evidence, answer.sources
    ranker = evidence.sentences[0].text if evidence.sentences else ""
    i, span = found
    n = evidence.kept[i]
    text = hits[n - 1].text
    start, end = next(
        ((a, b) for a, b in sentence_spans(text) if a <= span.start < b), (span.start, span.end)
    )
    holders = [k for k, s in enumerate(evidence.sentences) if s.n == n and s.start <= span.start < s.end]
    top3 = evidence.sentences[holders[0]].text if holders and holders[0] < 3 else ranker
    return {"ranker": ranker, "reader": " ".join(text[start:end].split()), "top3": top3}


def collection_report(rag: RAG, reader: Reader, rows: list[dict]) -> dict:
    """Answered/abstained counts and first-unit accuracy per policy (see the module docstring)."""
    counts = dict.fromkeys(["answerable", "answered", "answered_with_reader", "unanswerable"], 0)
    counts.update(abstained=0, abstained_with_reader=0, ranker=0, reader=0, top3=0)
    for row in rows:
        answer = rag.ask(row["question"])
        kept = [answer.sources[n - 1].text for n in answer.evidence.kept] if answer.evidence else []
        found = None if answer.abstained else reader.best(row["question"], kept)
        if not row.get("answerable", True):
            counts["unanswerable"] += 1
            counts["abstained"] += answer.abstained
            counts["abstained_with_reader"] += found is None
            continue
        counts["answerable"] += 1
        counts["answered"] += not answer.abstained
        if found is None:
            continue
        counts["answered_with_reader"] += 1
        for policy, unit in _first_units(answer, found).items():
            counts[policy] += _norm(row["answer"]) in _norm(unit)

    def share(part: str, whole: str) -> float | None:
        return round(counts[part] / counts[whole], 3) if counts[whole] else None

    return {
        "answerable_answered": share("answered", "answerable"),
        "answerable_answered_with_reader": share("answered_with_reader", "answerable"),
        "unanswerable_abstained": share("abstained", "unanswerable"),
        "unanswerable_abstained_with_reader": share("abstained_with_reader", "unanswerable"),
        "first_unit_holds_answer": {
            p: share(p, "answered_with_reader") for p in ("ranker", "reader", "top3")
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reader", required=True, help="a `llmkit finetune-qa` output dir")
    parser.add_argument(
        "--cache", default="runs/rag-collections", help="where the collections' stores are kept"
    )
    parser.add_argument("--collections", nargs="+", default=list(COLLECTIONS), choices=list(COLLECTIONS))
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "rag_reader.json"))
    args = parser.parse_args()
    reader, embedder, results = Reader(args.reader), None, {}
    for name in args.collections:
        store, rows = open_collection(name, Path(args.cache), embedder)
        embedder = store.embedder
        ensure_calibrated(store)
        results[name] = collection_report(RAG(store, k=5, mode="hybrid"), reader, rows)
        print(name, json.dumps(results[name]), flush=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print("wrote", args.out)


if __name__ == "__main__":
    main()
