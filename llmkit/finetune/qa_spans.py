"""Reading answers off an extractive QA model: contexts cut into overlapping windows, the best span of each
question found over its windows' logits and weighed against "no answer" (SQuAD v2).

Fine-tuning (`llmkit.finetune.qa`), its scoring (`llmkit.finetune.qa_eval`) and the RAG reader
(`llmkit.finetune.reader`) all read answers through this one module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from llmkit.errors import UserError

NULL_INDEX = 0  # position of [CLS] / <s> in every window: the "no answer" label and score
# A longer question is cut to this many tokens (as BERT's SQuAD code did), so every window keeps room for context.
MAX_QUESTION_TOKENS = 64


@dataclass
class QuestionAnsweringArguments:
    """How contexts are windowed and how answers are read off the logits."""

    doc_stride: int = field(
        default=128,
        metadata={"help": "Tokens shared by consecutive windows of a context longer than --max_length."},
    )
    max_answer_length: int = field(default=30, metadata={"help": "The longest answer, in tokens."})
    n_best_size: int = field(default=20, metadata={"help": "Start and end candidates per window."})
    null_score_diff_threshold: float = field(
        default=0.0,
        metadata={"help": "Answer only when the best span beats 'no answer' by more than this (SQuAD v2)."},
    )
    version_2_with_negative: bool | None = field(
        default=None,
        metadata={"help": "Allow 'no answer' (default: when the data has unanswerable questions)."},
    )
    generated_questions: int = field(
        default=2000,
        metadata={
            "help": "Built-in data only: training questions generated at run time (0: the written ones only)."
        },
    )

    def __post_init__(self) -> None:
        # 0 found no span, so every question was scored "no answer"; NaN compared false with every margin
        for name in ("max_answer_length", "n_best_size"):
            if getattr(self, name) < 1:
                raise UserError(f"--{name} must be at least 1, got {getattr(self, name)}.")
        if not math.isfinite(self.null_score_diff_threshold):
            raise UserError(
                f"--null_score_diff_threshold must be a finite number, got {self.null_score_diff_threshold}."
            )


@dataclass
class Span:
    """An answer: its text, its character span in the context (`context[start:end] == text`), and its score.

    `score` is the span's logit sum minus the no-answer score: above the threshold (0 by default) it is an answer.
    """

    text: str
    start: int
    end: int
    score: float


def encode_windows(tokenizer, questions: list[str], contexts: list[str], *, max_length: int, stride: int):
    """Tokenize (question, context) pairs into overlapping windows; offsets outside the context become None."""
    enc = tokenizer(
        clip_questions(
            tokenizer, [q.lstrip() for q in questions], min(MAX_QUESTION_TOKENS, max_length - stride - 4)
        ),
        contexts,
        truncation="only_second",
        max_length=max_length,
        stride=stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
    )
    enc["offset_mapping"] = [
        [o if enc.sequence_ids(i)[k] == 1 else None for k, o in enumerate(offsets)]
        for i, offsets in enumerate(enc["offset_mapping"])
    ]
    return enc


def clip_questions(tokenizer, questions: list[str], limit: int) -> list[str]:
    """Each question cut after its first `limit` tokens (a question that fills the window leaves no room to read)."""
    offsets = tokenizer(questions, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    return [q[: spans[limit - 1][1]] if len(spans) > limit else q for q, spans in zip(questions, offsets)]


def best_spans(
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    offsets: list[list],
    *,
    windows: list[list[int]],
    contexts: list[str],
    n_best_size: int = 20,
    max_answer_length: int = 30,
) -> list[tuple[Span | None, float]]:
    """For each context (its windows' indexes in `windows`): the best span over its windows and the no-answer score.

    The no-answer score is the lowest [CLS] score over the context's windows (the window most sure an answer is
    there), as in the SQuAD v2 reference post-processing; a Span's score is its margin over it.
    """
    out = []
    for window_ids, context in zip(windows, contexts):
        best, best_score, null = None, -np.inf, np.inf
        for w in window_ids:
            off = offsets[w]  # logits may be padded past the window (batching): cut them to its length
            s, e = np.asarray(start_logits[w])[: len(off)], np.asarray(end_logits[w])[: len(off)]
            null = min(null, float(s[NULL_INDEX] + e[NULL_INDEX]))
            for i in np.argsort(s)[::-1][:n_best_size]:
                if off[i] is None:
                    continue
                for j in np.argsort(e)[::-1][:n_best_size]:
                    if off[j] is None or j < i or j - i + 1 > max_answer_length:
                        continue
                    score = float(s[i] + e[j])
                    if score > best_score:
                        best_score, best = score, (off[i][0], off[j][1])
        span = None
        if best is not None:
            span = Span(context[best[0] : best[1]], best[0], best[1], best_score - null)
        out.append((span, null))
    return out


def decide(span: Span | None, threshold: float, allow_null: bool = True) -> Span | None:
    """The answer: the span unless no-answer wins (its margin is not above `threshold`) and no-answer is allowed."""
    if span is None or (allow_null and span.score <= threshold):
        return None
    return span


@torch.inference_mode()
def predict_spans(
    model, tokenizer, questions: list[str], contexts: list[str], *, max_length: int = 384, doc_stride: int = 128,
    n_best_size: int = 20, max_answer_length: int = 30, batch_size: int = 32,
) -> list[Span | None]:  # fmt: skip
    """The best span (its score the margin over no-answer) of each (question, context) pair, windows batched."""
    enc = encode_windows(tokenizer, questions, contexts, max_length=max_length, stride=doc_stride)
    windows: list[list[int]] = [[] for _ in contexts]
    for w, row in enumerate(enc["overflow_to_sample_mapping"]):
        windows[row].append(w)
    names = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
    starts, ends = [], []
    device = next(model.parameters()).device
    for b in range(0, len(enc["input_ids"]), batch_size):
        batch = tokenizer.pad({k: enc[k][b : b + batch_size] for k in names}, return_tensors="pt").to(device)
        logits = model(**batch)
        starts += list(logits.start_logits.float().cpu().numpy())
        ends += list(logits.end_logits.float().cpu().numpy())
    results = best_spans(
        starts, ends, enc["offset_mapping"], windows=windows, contexts=contexts,
        n_best_size=n_best_size, max_answer_length=max_answer_length,
    )  # fmt: skip
    return [span for span, _ in results]
