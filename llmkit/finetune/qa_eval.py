"""Scoring extractive QA while it trains: answers rebuilt from the windows' logits, then exact match and F1.

Exact match and F1 are torchmetrics' SQuAD metric (the official script's normalisation: lower case, no punctuation,
no articles). torchmetrics implements SQuAD v1, where every question has an answer; SQuAD v2's rule for the others,
that an unanswerable question's one right answer is the empty string, is applied here around it (its F1 already
gives 1 when both are empty), and the scores are also given for the answerable (HasAns) and unanswerable (NoAns)
questions apart, as the official v2 script does. `evaluate`'s squad_v2 metric would need the Hub to load.
"""

from __future__ import annotations

from collections import defaultdict

from transformers import Trainer

from llmkit.errors import require
from llmkit.finetune.qa_spans import QuestionAnsweringArguments, best_spans, decide, predict_spans


def squad_scores(predictions: dict[str, str], examples) -> dict:
    """Exact match and F1 (0-100, torchmetrics' SQuAD metric), overall and for HasAns / NoAns questions."""
    squad = require("torchmetrics.functional.text.squad", "finetune").squad
    groups: dict[str, list] = {"": [], "HasAns_": [], "NoAns_": []}
    for row in examples:
        # v2's rule: an unanswerable question's one right answer is the empty string
        target = {"id": row["id"], "answers": {"text": row["answers"]["text"] or [""], "answer_start": [0]}}
        pred = {"id": row["id"], "prediction_text": predictions.get(row["id"], "")}
        for group in ("", "HasAns_" if row["answers"]["text"] else "NoAns_"):
            groups[group].append((pred, target))
    scores = {}
    for group, pairs in groups.items():
        if pairs:
            result = squad([p for p, _ in pairs], [t for _, t in pairs])
            scores[f"{group}exact_match"] = float(result["exact_match"])
            scores[f"{group}f1"] = float(result["f1"])
        scores[f"{group}total"] = len(pairs)
    return scores


class AnswerScorer:
    """compute_metrics for QA: rebuild each question's answer from its windows' logits, then score it."""

    def __init__(self, qa_args: QuestionAnsweringArguments, allow_null: bool):
        self.qa_args, self.allow_null = qa_args, allow_null
        self.sets: dict[str, tuple] = {}  # metric prefix ("eval", "test") -> (features, examples)
        self.prefix = "eval"

    def __call__(self, pred) -> dict:
        """Score the predictions of the set being evaluated."""
        features, examples = self.sets[self.prefix]
        start, end = pred.predictions[:2] if isinstance(pred.predictions, tuple) else pred.predictions
        answers = answer_texts(
            start, end, features, examples, qa_args=self.qa_args, allow_null=self.allow_null
        )
        return squad_scores(answers, examples)


def answer_texts(
    start, end, features, examples, *, qa_args: QuestionAnsweringArguments, allow_null: bool
) -> dict:
    """{question id: answer text ("" for no answer)} from the logits of every window of `features`."""
    by_id = defaultdict(list)
    for w, example_id in enumerate(features["example_id"]):
        by_id[example_id].append(w)
    results = best_spans(
        start, end, features["offset_mapping"], windows=[by_id[i] for i in examples["id"]],
        contexts=examples["context"],
        n_best_size=qa_args.n_best_size, max_answer_length=qa_args.max_answer_length,
    )  # fmt: skip
    answers = {}
    for example_id, (span, _) in zip(examples["id"], results):
        chosen = decide(span, qa_args.null_score_diff_threshold, allow_null)
        answers[example_id] = chosen.text if chosen else ""
    return answers


class QuestionAnsweringTrainer(Trainer):
    """A Trainer whose evaluate() tells the scorer which set (validation or test) it is scoring."""

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict:
        """Evaluate as usual, with answers rebuilt from the windows of the set named by `metric_key_prefix`."""
        self.compute_metrics.prefix = metric_key_prefix
        return super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)


def score_model(model, tokenizer, rows, *, qa_args: QuestionAnsweringArguments, max_length: int) -> dict:
    """EM/F1 (overall, HasAns, NoAns) of any QA model on SQuAD rows, read as the Reader reads (e.g. an untrained one)."""
    spans = predict_spans(
        model,
        tokenizer,
        [r["question"] for r in rows],
        [r["context"] for r in rows],
        max_length=max_length,
        doc_stride=qa_args.doc_stride,
        n_best_size=qa_args.n_best_size,
        max_answer_length=qa_args.max_answer_length,
    )
    answers = {r["id"]: decide(s, qa_args.null_score_diff_threshold) for r, s in zip(rows, spans)}
    return squad_scores({k: s.text if s else "" for k, s in answers.items()}, rows)
