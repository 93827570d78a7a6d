"""Task metrics: accuracy and macro-F1, entity-level F1 for tags, ROUGE and BLEU, a confusion matrix (scikit-learn, seqeval, rouge-score, sacrebleu)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from llmkit.errors import require
from llmkit.plots import plt


def accuracy_f1(pred: np.ndarray, gold: np.ndarray, n_labels: int) -> dict:
    """Accuracy and macro-averaged F1 over the labels (scikit-learn)."""
    metrics = require("sklearn.metrics", "finetune")
    labels = list(range(n_labels))
    return {
        "accuracy": float(metrics.accuracy_score(gold, pred)),
        "macro_f1": float(metrics.f1_score(gold, pred, labels=labels, average="macro", zero_division=0)),
    }


def multilabel_scores(probs: np.ndarray, gold: np.ndarray, threshold: float = 0.5) -> dict:
    """Exact-match accuracy and micro-F1 for multi-label predictions (scikit-learn)."""
    metrics = require("sklearn.metrics", "finetune")
    pred, gold = (probs >= threshold).astype(int), gold.astype(int)
    return {
        "accuracy": float(metrics.accuracy_score(gold, pred)),
        "micro_f1": float(metrics.f1_score(gold, pred, average="micro", zero_division=0)),
    }


def entity_f1(pred_tags: list[list[str]], gold_tags: list[list[str]]) -> dict:
    """Entity-level precision, recall and F1 (seqeval: an entity counts only if its span and type match)."""
    seqeval = require("seqeval.metrics", "finetune")
    pred_tags = [[_bio(t) for t in tags] for tags in pred_tags]
    gold_tags = [[_bio(t) for t in tags] for tags in gold_tags]
    return {
        "precision": float(seqeval.precision_score(gold_tags, pred_tags, zero_division=0)),
        "recall": float(seqeval.recall_score(gold_tags, pred_tags, zero_division=0)),
        "f1": float(seqeval.f1_score(gold_tags, pred_tags, zero_division=0)),
        "token_accuracy": float(seqeval.accuracy_score(gold_tags, pred_tags)),
    }


def _bio(tag: str) -> str:
    """seqeval reads `B-X`/`I-X`/`O`; a tag without a prefix (e.g. `PER`) is taken as one entity of that type."""
    return tag if tag == "O" or tag[:2] in ("B-", "I-", "E-", "S-") else f"B-{tag}"


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
    matrix = require("sklearn.metrics", "finetune").confusion_matrix(gold, pred, labels=list(range(n)))
    fig, ax = plt.subplots(figsize=(1.2 + 0.6 * n, 1 + 0.6 * n), dpi=110)
    ax.imshow(matrix, cmap="Blues")
    ax.set(
        xticks=range(n),
        yticks=range(n),
        xticklabels=labels,
        yticklabels=labels,
        xlabel="predicted",
        ylabel="true",
    )
    plt.setp(ax.get_xticklabels(), rotation=45, ha="right")
    for i in range(n):
        for j in range(n):
            ax.text(
                j,
                i,
                matrix[i, j],
                ha="center",
                va="center",
                color="white" if matrix[i, j] > matrix.max() / 2 else "black",
            )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
