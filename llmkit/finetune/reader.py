"""An extractive reader: the span of each passage that answers a question, or None when the passage does not.

    from llmkit.finetune.reader import Reader   # also llmkit.rag.reader, which RAG uses

    reader = Reader("runs/qa-reader")      # a `llmkit finetune-qa` output dir (or any extractive QA model)
    reader.read("How long do refunds take?", ["Refunds take 5 days.", "Shipping is free."])
    # [Span(text='5 days', start=13, end=19, score=7.1), None]
    reader.best("How long do refunds take?", passages)   # (0, Span(...)): the passage and its span, or None

A `Span`'s `start`/`end` are character offsets in its passage (`passage[start:end] == text`), and its `score` is
how far the span's logits beat the model's "no answer" score: a passage gets None when that margin is not above
`threshold` (0 by default, the SQuAD v2 rule; raise it to abstain more often). Scores compare across passages.

Passages are read in batches; one longer than the model's window is read in overlapping windows, with the
windowing and post-processing of `llmkit.finetune.qa_spans` (the code that scores the model during fine-tuning).
The window length, stride and threshold default to those the model was fine-tuned with (its metrics.json).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import AutoModelForQuestionAnswering, AutoTokenizer

from llmkit.errors import UserError, require
from llmkit.finetune.qa_spans import Span, decide, predict_spans
from llmkit.loading import load_pretrained

__all__ = ["Reader", "Span"]


class Reader:
    """An extractive QA model that reads passages for a question (see the module docstring)."""

    def __init__(
        self,
        model_dir_or_name: str | Path,
        *,
        threshold: float | None = None,
        max_length: int | None = None,
        doc_stride: int | None = None,
        max_answer_length: int = 30,
        batch_size: int = 32,
    ):
        trained = _training_settings(model_dir_or_name)
        self.tokenizer = load_pretrained(AutoTokenizer, model_dir_or_name)
        self.model = _load_model(model_dir_or_name).eval()
        self.threshold = threshold if threshold is not None else trained.get("null_score_diff_threshold", 0.0)
        self.max_length = min(max_length or trained.get("max_length", 384), self.tokenizer.model_max_length)
        self.doc_stride = min(doc_stride or trained.get("doc_stride", 128), self.max_length // 4)
        self.max_answer_length, self.batch_size = max_answer_length, batch_size

    def read(self, question: str, passages: list[str]) -> list[Span | None]:
        """Per passage, its best answer span, or None when the passage does not answer the question."""
        if not passages or not question.strip():
            return [None] * len(passages)
        with torch.inference_mode():
            spans = predict_spans(
                self.model,
                self.tokenizer,
                [question] * len(passages),
                list(passages),
                max_length=self.max_length,
                doc_stride=self.doc_stride,
                max_answer_length=self.max_answer_length,
                batch_size=self.batch_size,
            )
        return [decide(span, self.threshold) if p.strip() else None for span, p in zip(spans, passages)]

    def best(self, question: str, passages: list[str]) -> tuple[int, Span] | None:
        """The best answer over all passages as (passage index, span), or None when no passage answers."""
        found = [(i, s) for i, s in enumerate(self.read(question, passages)) if s is not None]
        return max(found, key=lambda pair: pair[1].score, default=None)


def _load_model(model: str | Path):
    """The QA model; a LoRA run's adapter folder through peft, which also restores its trained QA head."""
    if (Path(model) / "adapter_config.json").is_file():
        # transformers' own adapter loading leaves the head (peft's modules_to_save) freshly initialised
        return require("peft", "finetune").AutoPeftModelForQuestionAnswering.from_pretrained(str(model))
    loaded, info = load_pretrained(AutoModelForQuestionAnswering, model, output_loading_info=True)
    if info["missing_keys"]:
        # A plain encoder (or a causal LM) gets a random QA head: its "no answer" would be noise, shown as fact.
        raise UserError(
            f"{model} is not a question-answering model: {', '.join(sorted(info['missing_keys']))} would start "
            f"untrained. Fine-tune it first (`llmkit finetune-qa --model_name_or_path {model}`) and pass the "
            "output dir, or pass an extractive QA model."
        )
    return loaded


def _training_settings(model: str | Path) -> dict:
    """max_length, doc_stride and threshold from a finetune-qa output dir's metrics.json (empty for others)."""
    path = Path(model) / "metrics.json"
    try:
        metrics = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    keys = ("max_length", "doc_stride", "null_score_diff_threshold")
    return {k: metrics[k] for k in keys if isinstance(metrics.get(k), (int, float))}
