"""Scoring extractive QA while it trains: answers rebuilt from the windows' logits, then exact match and F1.

Exact match and F1 are torchmetrics' SQuAD metric (the official script's normalisation: lower case, no punctuation,
no articles). torchmetrics implements SQuAD v1, where every question has an answer; SQuAD v2's rule for the others,
that an unanswerable question's one right answer is the empty string, is applied here around it (its F1 already
gives 1 when both are empty), and the scores are also given for the answerable (HasAns) and unanswerable (NoAns)
questions apart, as the official v2 script does. `evaluate`'s squad_v2 metric would need the Hub to load.

Where questions may have no answer, the scores also give `best_f1` and `best_f1_thresh`, as the official v2 script
and `evaluate`'s squad_v2 do: the F1 reached with the null-score threshold that suits these questions best, and
that threshold (a span answers when its margin over "no answer" is above it; the trained rule is 0).
"""

from __future__ import annotations

from collections import defaultdict

from transformers import Trainer

from llmkit.errors import require
from llmkit.finetune.qa_spans import QuestionAnsweringArguments, Span, best_spans, decide, predict_spans


def _squad():
    return require("torchmetrics.functional.text.squad", "finetune").squad


def _pair(row, text: str) -> tuple[dict, dict]:
    """A (prediction, target) pair for torchmetrics, with v2's rule: no answer's one right answer is ""."""
    target = {"id": row["id"], "answers": {"text": row["answers"]["text"] or [""], "answer_start": [0]}}
    return {"id": row["id"], "prediction_text": text}, target


def squad_scores(predictions: dict[str, str], examples) -> dict:
    """Exact match and F1 (0-100, torchmetrics' SQuAD metric), overall and for HasAns / NoAns questions."""
    groups: dict[str, list] = {"": [], "HasAns_": [], "NoAns_": []}
    for row in examples:
        pair = _pair(row, predictions.get(row["id"], ""))
        for group in ("", "HasAns_" if row["answers"]["text"] else "NoAns_"):
            groups[group].append(pair)
    scores = {}
    for group, pairs in groups.items():
        if pairs:
            result = _squad()([p for p, _ in pairs], [t for _, t in pairs])
            scores[f"{group}exact_match"] = float(result["exact_match"])
            scores[f"{group}f1"] = float(result["f1"])
        scores[f"{group}total"] = len(pairs)
    return scores


def best_threshold(spans: dict[str, Span | None], examples) -> dict:
    """The null-score threshold with the best overall F1 on these questions, and that F1 (the official v2 search).

    Questions are answered in falling order of margin: an answerable one gains its span's F1, an unanswerable one
    loses the point its empty answer held. The threshold lies halfway between the last margin answered and the next.
    """
    rows = sorted(
        ((spans[r["id"]], r) for r in examples if spans.get(r["id"]) is not None),
        key=lambda pair: -pair[0].score,
    )
    score = best = float(sum(not r["answers"]["text"] for r in examples))  # answering nothing
    best_k = 0
    for k, (span, row) in enumerate(rows, start=1):
        score += _f1(row, span.text) if row["answers"]["text"] else -1.0
        if score > best:
            best, best_k = score, k
    margins = [span.score for span, _ in rows]
    if best_k == 0:
        thresh = margins[0] if margins else 0.0  # answer nothing
    elif best_k == len(rows):
        thresh = margins[-1] - 1.0  # answer everything that has a span
    else:
        thresh = (margins[best_k - 1] + margins[best_k]) / 2
    return {"best_f1": 100 * best / max(len(examples), 1), "best_f1_thresh": thresh}


def _f1(row, text: str) -> float:
    """One answer's F1 (0-1) against the row's answers."""
    pred, target = _pair(row, text)
    return float(_squad()([pred], [target])["f1"]) / 100


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
        spans = answer_spans(start, end, features, examples, qa_args=self.qa_args)
        return score_spans(spans, examples, self.qa_args.null_score_diff_threshold, self.allow_null)


def score_spans(spans: dict[str, Span | None], examples, threshold: float, allow_null: bool = True) -> dict:
    """EM/F1 of each question's best span decided against `threshold`; with no answer allowed, the best threshold."""
    chosen = {i: decide(span, threshold, allow_null) for i, span in spans.items()}
    scores = squad_scores({i: span.text if span else "" for i, span in chosen.items()}, examples)
    return scores | (best_threshold(spans, examples) if allow_null else {})


def answer_spans(start, end, features, examples, *, qa_args: QuestionAnsweringArguments) -> dict:
    """{question id: its best span (scored by its margin over no answer) or None} from its windows' logits."""
    by_id = defaultdict(list)
    for w, example_id in enumerate(features["example_id"]):
        by_id[example_id].append(w)
    results = best_spans(
        start, end, features["offset_mapping"], windows=[by_id[i] for i in examples["id"]],
        contexts=examples["context"],
        n_best_size=qa_args.n_best_size, max_answer_length=qa_args.max_answer_length,
    )  # fmt: skip
    return {example_id: span for example_id, (span, _) in zip(examples["id"], results)}


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
    by_id = {r["id"]: s for r, s in zip(rows, spans)}
    return score_spans(by_id, rows, qa_args.null_score_diff_threshold)
