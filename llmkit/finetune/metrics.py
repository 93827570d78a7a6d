"""Task metrics: accuracy and macro-F1, entity-level F1 for tags, ROUGE and BLEU, a confusion matrix."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from llmkit.errors import require
from llmkit.plots import plt


def accuracy_f1(pred: np.ndarray, gold: np.ndarray, n_labels: int) -> dict:
    """Accuracy and macro-averaged F1 over the labels."""
    f1s = []
    for c in range(n_labels):
        tp = np.sum((pred == c) & (gold == c))
        fp, fn = np.sum((pred == c) & (gold != c)), np.sum((pred != c) & (gold == c))
        if tp + fp + fn:
            f1s.append(2 * tp / (2 * tp + fp + fn))
    return {"accuracy": float(np.mean(pred == gold)), "macro_f1": float(np.mean(f1s)) if f1s else 0.0}


def multilabel_scores(probs: np.ndarray, gold: np.ndarray, threshold: float = 0.5) -> dict:
    """Exact-match accuracy and micro-F1 for multi-label predictions."""
    pred = probs >= threshold
    gold = gold.astype(bool)
    tp, fp, fn = np.sum(pred & gold), np.sum(pred & ~gold), np.sum(~pred & gold)
    return {"accuracy": float(np.mean(np.all(pred == gold, axis=1))), "micro_f1": float(2 * tp / max(1, 2 * tp + fp + fn))}


def entity_spans(tags: list[str]) -> set[tuple[int, int, str]]:
    """(start, end, type) spans of a BIO/IOB2 tag sequence; a stray I- starts a new entity (seqeval's default)."""
    spans, start, kind = set(), None, None
    for i, tag in enumerate([*tags, "O"]):
        prefix, _, label = tag.partition("-")
        if start is not None and (prefix != "I" or label != kind):
            spans.add((start, i, kind))
            start = None
        if prefix in ("B", "I") and start is None:
            start, kind = i, label
    return spans


def entity_f1(pred_tags: list[list[str]], gold_tags: list[list[str]]) -> dict:
    """Entity-level precision, recall and F1 (an entity counts only if its span and type match exactly)."""
    tp = n_pred = n_gold = 0
    for p, g in zip(pred_tags, gold_tags):
        ps, gs = entity_spans(p), entity_spans(g)
        tp += len(ps & gs)
        n_pred += len(ps)
        n_gold += len(gs)
    precision, recall = tp / max(1, n_pred), tp / max(1, n_gold)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    token_acc = np.mean([a == b for p, g in zip(pred_tags, gold_tags) for a, b in zip(p, g)])
    return {"precision": precision, "recall": recall, "f1": f1, "token_accuracy": float(token_acc)}


def text_scores(predictions: list[str], references: list[str]) -> dict:
    """ROUGE-1/2/L F-measures (rouge-score) and corpus BLEU (sacrebleu), plus exact match."""
    rouge_scorer = require("rouge_score.rouge_scorer", "finetune")
    corpus_bleu = require("sacrebleu", "finetune").corpus_bleu
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    rouge = {k: 0.0 for k in ("rouge1", "rouge2", "rougeL")}
    for p, r in zip(predictions, references):
        for k, v in scorer.score(r, p).items():
            rouge[k] += v.fmeasure / max(1, len(predictions))
    bleu = corpus_bleu(predictions, [references]).score
    exact = float(np.mean([p.strip() == r.strip() for p, r in zip(predictions, references)]))
    return {**rouge, "bleu": bleu, "exact_match": exact}


def plot_confusion(pred: np.ndarray, gold: np.ndarray, labels: list[str], path: str | Path) -> Path:
    """Save a confusion-matrix PNG (rows: true label, columns: predicted)."""
    n = len(labels)
    matrix = np.zeros((n, n), dtype=int)
    np.add.at(matrix, (gold, pred), 1)
    fig, ax = plt.subplots(figsize=(1.2 + 0.6 * n, 1 + 0.6 * n), dpi=110)
    ax.imshow(matrix, cmap="Blues")
    ax.set(xticks=range(n), yticks=range(n), xticklabels=labels, yticklabels=labels, xlabel="predicted", ylabel="true")
    plt.setp(ax.get_xticklabels(), rotation=45, ha="right")
    for i in range(n):
        for j in range(n):
            ax.text(j, i, matrix[i, j], ha="center", va="center", color="white" if matrix[i, j] > matrix.max() / 2 else "black")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
