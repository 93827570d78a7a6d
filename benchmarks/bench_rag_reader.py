"""Where a reader helps a RAG answer: its "no answer", at several null-score thresholds, or its choice of sentence.

    python benchmarks/bench_rag_reader.py --reader runs/qa-reader --cache runs/rag-collections

For each collection of benchmarks/rag_collections.py (default settings, hybrid, k=5), each question is
answered by the pipeline without a reader, then the reader reads the kept sources and its best margin over "no
answer" is kept. Per threshold (the model's own, its validation best_f1_thresh when metrics.json has one, and
--thresholds), a reader answers when that margin is above it. Reported per threshold: answerable questions answered
without and with the reader, on-topic unanswerable ones abstained without and with it, and, on the answerable
questions both answer, how often the first quoted unit holds the answer when it is

    ranker   the default ranking's first unit (what `rag ask --reader` quotes)
    reader   the sentence holding the reader's span
    top3     the reader's unit if the ranker put it in its first three, else the ranker's first

The per-question records are written too, so another threshold can be read off without rerunning.
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


def question_rows(rag: RAG, reader: Reader, rows: list[dict]) -> list[dict]:
    """Per question: answerable, the pipeline's abstention, the reader's best margin over "no answer" across the
    kept sources (None: no span, or the pipeline abstained), and whether each policy's first unit holds the answer.
    """
    out = []
    for row in rows:
        answer = rag.ask(row["question"])
        kept = [answer.sources[n - 1].text for n in answer.evidence.kept] if answer.evidence else []
        found = None if answer.abstained else reader.best(row["question"], kept)
        record = {
            "answerable": row.get("answerable", True),
            "abstained": answer.abstained,
            "margin": None if found is None else round(found[1].score, 3),
        }
        if found is not None and record["answerable"]:
            units = _first_units(answer, found)
            record.update({p: _norm(row["answer"]) in _norm(u) for p, u in units.items()})
        out.append(record)
    return out


def summary(records: list[dict], threshold: float) -> dict:
    """Answered/abstained shares without and with a reader answering above `threshold`, and first-unit accuracy."""
    answerable = [r for r in records if r["answerable"]]
    unanswerable = [r for r in records if not r["answerable"]]
    read = [r for r in answerable if r["margin"] is not None and r["margin"] > threshold]

    def share(part: list, whole: list) -> float | None:
        return round(len(part) / len(whole), 3) if whole else None

    def reader_abstains(r: dict) -> bool:
        return r["margin"] is None or r["margin"] <= threshold

    return {
        "answerable_answered": share([r for r in answerable if not r["abstained"]], answerable),
        "answerable_answered_with_reader": share(read, answerable),
        "unanswerable_abstained": share([r for r in unanswerable if r["abstained"]], unanswerable),
        "unanswerable_abstained_with_reader": share(
            [r for r in unanswerable if reader_abstains(r)], unanswerable
        ),
        "first_unit_holds_answer": {
            p: share([r for r in read if r[p]], read) for p in ("ranker", "reader", "top3")
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
    parser.add_argument(
        "--out", default=str(Path(__file__).parent / "results" / "rag_reader_thresholds.json")
    )
    parser.add_argument(
        "--thresholds", nargs="+", type=float, default=[-2.0, -1.0, 0.0, 1.0, 2.0],
        help="null-score thresholds to report besides the model's own (and its validation best_f1_thresh)",
    )  # fmt: skip
    args = parser.parse_args()
    # Read with no threshold: each question's best margin is kept, and every threshold is applied afterwards.
    reader, embedder, results = Reader(args.reader, threshold=float("-inf")), None, {}
    own = _model_thresholds(Path(args.reader))
    thresholds = sorted(set(args.thresholds) | set(own.values()))
    for name in args.collections:
        store, rows = open_collection(name, Path(args.cache), embedder)
        embedder = store.embedder
        ensure_calibrated(store)
        records = question_rows(RAG(store, k=5, mode="hybrid"), reader, rows)
        results[name] = {
            "model_thresholds": own,
            "by_threshold": {str(t): summary(records, t) for t in thresholds},
            "questions": records,
        }
        print(name, json.dumps(results[name]["by_threshold"]), flush=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print("wrote", args.out)


def _model_thresholds(reader_dir: Path) -> dict[str, float]:
    """The threshold the model was trained with and its validation best_f1_thresh, from its metrics.json."""
    try:
        metrics = json.loads((reader_dir / "metrics.json").read_text())
    except (OSError, ValueError):
        return {}
    keys = {"trained": "null_score_diff_threshold", "validation_best": "eval_best_f1_thresh"}
    return {name: float(metrics[key]) for name, key in keys.items() if key in metrics}


if __name__ == "__main__":
    main()
