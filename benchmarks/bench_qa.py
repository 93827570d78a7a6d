"""Extractive QA: the untrained vs the fine-tuned reader, on held-out questions and on a collection never trained on.

    python benchmarks/bench_qa.py --model runs/qa-reader     # after: llmkit finetune-qa --config recipes/configs/finetune-qa.yaml

1. The held-out passages of the built-in QA set (never trained on): exact match and F1, overall, HasAns, NoAns.
2. benchmarks/rag_bench (a collection the reader never saw): each question is read against the paragraphs of its
   document (as retrieved chunks would be), `Reader.best` picks one span or none. For answerable questions: how often
   it answers, and how often the sentence holding its span contains the expected answer (what a RAG answer cites);
   for unanswerable ones (on topic: benchmarks/qa_unanswerable.jsonl; off topic: rag_bench's 30, read against
   every paragraph) how often it abstains.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
from transformers import AutoModelForQuestionAnswering, AutoTokenizer  # noqa: E402

from llmkit.finetune.common import default_encoder  # noqa: E402
from llmkit.finetune.qa_builtin import sample_rows  # noqa: E402
from llmkit.finetune.qa_eval import score_model  # noqa: E402
from llmkit.finetune.qa_spans import QuestionAnsweringArguments  # noqa: E402
from llmkit.rag.reader import Reader  # noqa: E402
from llmkit.sentences import sentence_spans  # noqa: E402

HERE = Path(__file__).parent
BENCH = HERE / "rag_bench"


def paragraphs(doc: Path) -> list[str]:
    """A document's prose paragraphs (headings dropped): the passages a retriever would return."""
    blocks = [" ".join(b.split()) for b in doc.read_text().split("\n\n")]
    return [b for b in blocks if b and not b.startswith("#")]


def rag_reading(reader: Reader) -> dict:
    """Answer rate and cited-sentence accuracy on answerable questions; abstention on unanswerable ones."""
    docs = {p.name: paragraphs(p) for p in sorted((BENCH / "docs").iterdir())}
    everything = [p for ps in docs.values() for p in ps]
    questions = [json.loads(line) for line in (BENCH / "questions.jsonl").read_text().splitlines() if line]
    on_topic = [
        json.loads(line) for line in (HERE / "qa_unanswerable.jsonl").read_text().splitlines() if line
    ]
    answered = cited = 0
    answerable = [q for q in questions if "doc_id" in q]
    for q in answerable:
        passages = docs[q["doc_id"]]
        found = reader.best(q["question"], passages)
        if found:
            answered += 1
            index, span = found
            sentence = next(
                passages[index][a:b] for a, b in sentence_spans(passages[index]) if a <= span.start < b
            )
            cited += q["answer"].lower() in sentence.lower()
    abstain_on = sum(reader.best(q["question"], docs[q["doc_id"]]) is None for q in on_topic)
    off_topic = [q for q in questions if "doc_id" not in q]
    abstain_off = sum(reader.best(q["question"], everything) is None for q in off_topic)
    return {
        "answerable": len(answerable),
        "answered": round(100 * answered / len(answerable), 1),
        "cited_sentence_has_answer_of_answered": round(100 * cited / max(1, answered), 1),
        "cited_sentence_has_answer_of_all": round(100 * cited / len(answerable), 1),
        "unanswerable_on_topic": len(on_topic),
        "abstained_on_topic": round(100 * abstain_on / len(on_topic), 1),
        "unanswerable_off_topic": len(off_topic),
        "abstained_off_topic": round(100 * abstain_off / len(off_topic), 1),
    }


def untrained_reader(max_length: int, doc_stride: int) -> Reader:
    """The encoder with a freshly initialised QA head (seed 0): the baseline every figure is compared with."""
    reader = Reader.__new__(Reader)
    torch.manual_seed(0)
    reader.model = AutoModelForQuestionAnswering.from_pretrained(default_encoder()).eval()
    reader.tokenizer = AutoTokenizer.from_pretrained(default_encoder())
    reader.threshold, reader.max_length, reader.doc_stride = 0.0, max_length, doc_stride
    reader.max_answer_length, reader.batch_size = 30, 32
    return reader


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="runs/qa-reader", help="a finetune-qa output dir")
    parser.add_argument("--output", default=str(HERE / "results" / "qa.json"))
    parser.add_argument("--max_length", type=int, help="window (default: as trained, from metrics.json)")
    parser.add_argument("--doc_stride", type=int, help="window overlap (default: as trained)")
    args = parser.parse_args()
    torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
    trained = Reader(args.model, max_length=args.max_length, doc_stride=args.doc_stride)
    held = sample_rows()[1]
    results = {"model": args.model, "held_out_questions": len(held)}
    for name, reader in (
        ("untrained", untrained_reader(trained.max_length, trained.doc_stride)),
        ("trained", trained),
    ):
        started = time.perf_counter()
        qa_args = QuestionAnsweringArguments(doc_stride=reader.doc_stride)
        scores = score_model(
            reader.model, reader.tokenizer, held, qa_args=qa_args, max_length=reader.max_length
        )
        results[name] = {
            "held_out": {k: round(v, 1) for k, v in scores.items() if not k.endswith("total")},
            "rag_bench": rag_reading(reader),
            "seconds": round(time.perf_counter() - started, 1),
        }
        print(name, json.dumps(results[name], indent=1))
    Path(args.output).write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
