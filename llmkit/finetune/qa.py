"""Extractive question answering: fine-tune an encoder to point at the answer span in a context (SQuAD v1 and v2).

Data -> windows -> model -> answers, the shape of transformers' run_qa example:

- a long context is cut into windows of `max_length` tokens that overlap by `doc_stride` (`encode_windows`); each
  window keeps the character offsets of its context tokens, so a token span maps back to the exact text;
- training labels each window with the answer's first and last token, or position 0 ([CLS]) when the window
  holds no answer (an unanswerable question, or the answer lies in another window);
- post-processing (`best_spans`) takes the `n_best_size` best start and end logits of every window, keeps the
  valid spans of at most `max_answer_length` tokens, and compares the best with the "no answer" score (position 0);
  a span is the answer when it beats no-answer by more than `null_score_diff_threshold` (SQuAD v2), always otherwise.
- exact match and F1 come from torchmetrics' SQuAD metric (the official script's normalisation); v2's no-answer
  questions are scored against the empty answer, as the official v2 script does (`squad_scores`).

The same post-processing serves `predict_spans`, which `llmkit.rag.reader.Reader` uses at question time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from transformers import (
    AutoModelForQuestionAnswering,
    AutoTokenizer,
    DataCollatorWithPadding,
    set_seed,
)

from llmkit.errors import UserError
from llmkit.finetune.common import (
    FinetuneModelArguments,
    FinetuneTrainingArguments,
    default_encoder,
    display_name,
    encoder_hint,
    start_run,
)
from llmkit.finetune.data import FinetuneDataArguments
from llmkit.finetune.lora import LoraArguments, apply_lora
from llmkit.finetune.outputs import finish_run
from llmkit.finetune.qa_data import has_unanswerable, load_qa
from llmkit.finetune.trainer import build_trainer, resume_checkpoint, train_and_evaluate
from llmkit.loading import load_pretrained
from llmkit.log import get_logger

logger = get_logger(__name__)

NULL_INDEX = 0  # position of [CLS] / <s> in every window: the "no answer" label and score
HEADLINE = ["exact_match", "f1", "HasAns_f1", "NoAns_exact_match"]


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


@dataclass
class Span:
    """An answer: its text, its character span in the context (`context[start:end] == text`), and its score.

    `score` is the span's logit sum minus the no-answer score: above the threshold (0 by default) it is an answer.
    """

    text: str
    start: int
    end: int
    score: float


def encode_windows(tokenizer, questions: list[str], contexts: list[str], max_length: int, stride: int):
    """Tokenize (question, context) pairs into overlapping windows; offsets outside the context become None."""
    enc = tokenizer(
        [q.lstrip() for q in questions],
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


def encode_features(batch: dict, tokenizer, max_length: int, stride: int) -> dict:
    """Windows of a batch of SQuAD rows with their labels (answer tokens, or NULL_INDEX), example ids and offsets."""
    enc = encode_windows(tokenizer, batch["question"], batch["context"], max_length, stride)
    starts, ends, ids = [], [], []
    for i, offsets in enumerate(enc["offset_mapping"]):
        row = enc["overflow_to_sample_mapping"][i]
        answers = batch["answers"][row]
        ids.append(batch["id"][row])
        start, end = _answer_tokens(offsets, answers)
        starts.append(start)
        ends.append(end)
    enc["start_positions"], enc["end_positions"], enc["example_id"] = starts, ends, ids
    enc.pop("overflow_to_sample_mapping")
    return enc


def _answer_tokens(offsets: list, answers: dict) -> tuple[int, int]:
    """The first and last token of the (first) answer in this window, or NULL_INDEX twice when it is not inside."""
    if not answers["text"]:
        return NULL_INDEX, NULL_INDEX
    first = answers["answer_start"][0]
    last = first + len(answers["text"][0])
    inside = [k for k, o in enumerate(offsets) if o is not None]
    if offsets[inside[0]][0] > first or offsets[inside[-1]][1] < last:
        return NULL_INDEX, NULL_INDEX
    start = next(k for k in inside if offsets[k][1] > first)
    end = next(k for k in reversed(inside) if offsets[k][0] < last)
    return start, end


def best_spans(
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    offsets: list[list],
    windows: list[list[int]],
    contexts: list[str],
    *,
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
    enc = encode_windows(tokenizer, questions, contexts, max_length, doc_stride)
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
        starts, ends, enc["offset_mapping"], windows, contexts,
        n_best_size=n_best_size, max_answer_length=max_answer_length,
    )  # fmt: skip
    return [span for span, _ in results]


@dataclass
class QuestionAnsweringTrainingArguments(FinetuneTrainingArguments):
    """The fine-tuning defaults, keeping the checkpoint with the best validation F1."""

    default_best_metric = "f1"
    output_dir: str | None = field(
        default="runs/finetune-qa", metadata={"help": "Where the model, checkpoints and reports go."}
    )


def finetune_qa(
    qa_args: QuestionAnsweringArguments,
    data_args: FinetuneDataArguments,
    model_args: FinetuneModelArguments,
    lora_args: LoraArguments,
    args: FinetuneTrainingArguments,
) -> dict:
    """Fine-tune an encoder for extractive QA; report EM/F1 (HasAns/NoAns); save it so pipeline() loads it."""
    from llmkit.finetune.qa_builtin import builtin_qa
    from llmkit.finetune.qa_eval import AnswerScorer, QuestionAnsweringTrainer  # they import this module

    start_run(args)
    _refuse_column_flags(data_args)
    logger.info(args.choose_learning_rate(lora_args.use_lora))
    model_name = model_args.model_name_or_path or default_encoder()
    raw = load_qa(data_args, lambda: builtin_qa(qa_args.generated_questions, args.seed), seed=args.seed)
    allow_null = qa_args.version_2_with_negative
    allow_null = has_unanswerable(raw) if allow_null is None else allow_null
    hint = encoder_hint(model_name)
    tokenizer = load_pretrained(AutoTokenizer, model_name, hint=hint)
    max_length = _check_lengths(tokenizer, data_args, qa_args)
    with args.main_process_first(desc="tokenizing"):
        features = raw.map(
            encode_features,
            batched=True,
            remove_columns=raw["train"].column_names,
            fn_kwargs={"tokenizer": tokenizer, "max_length": max_length, "stride": qa_args.doc_stride},
            desc="Windowing",
        )
    features["train"] = features["train"].remove_columns(["example_id", "offset_mapping"])
    logger.info(
        ", ".join(f"{name}: {len(raw[name])} questions in {len(features[name])} windows" for name in raw)
        + f"; unanswerable questions {'allowed' if allow_null else 'not allowed'}"
    )
    set_seed(args.seed)
    model = load_pretrained(AutoModelForQuestionAnswering, model_name, hint=hint)
    if lora_args.use_lora:
        model = apply_lora(model, lora_args, "QUESTION_ANS", trainable_heads=["qa_outputs"])
    scorer = AnswerScorer(qa_args, allow_null)
    scorer.sets = {name: (features[name], raw[name]) for name in ("validation", "test") if name in raw}
    scorer.sets["eval"] = scorer.sets.pop("validation")
    resume = resume_checkpoint(args)
    trainer = build_trainer(
        args,
        features,
        tokenizer,
        DataCollatorWithPadding(tokenizer),
        model=model,
        compute_metrics=scorer,
        trainer_cls=QuestionAnsweringTrainer,
    )
    metrics = train_and_evaluate(trainer, resume, features.get("test"))
    example = raw["validation"][0]
    return finish_run(
        trainer,
        lora_args,
        recipe="finetune-qa",
        task="Extractive question answering",
        pipeline_tag="question-answering",
        base=display_name(model_name),
        data=data_args.source,
        eval_metrics=metrics,
        example={"question": example["question"], "context": example["context"][:300]},
        headline=HEADLINE if allow_null else HEADLINE[:2],
        extra={
            "version_2_with_negative": allow_null,
            "max_length": max_length,
            "doc_stride": qa_args.doc_stride,
            "null_score_diff_threshold": qa_args.null_score_diff_threshold,
            "train_questions": len(raw["train"]),
        },
    )


def _refuse_column_flags(data_args: FinetuneDataArguments) -> None:
    given = [f"--{n}" for n in ("text_column", "label_column", "target_column") if getattr(data_args, n)]
    if given:
        raise UserError(
            f"{', '.join(given)} do not apply to finetune-qa: its rows have the SQuAD columns "
            "id, title, context, question, answers{text, answer_start}."
        )


def _check_lengths(tokenizer, data_args: FinetuneDataArguments, qa_args: QuestionAnsweringArguments) -> int:
    """The window length (at most the model's), with a stride that leaves room for new context in each window."""
    if not tokenizer.is_fast:
        raise UserError("extractive QA needs a fast tokenizer (it maps tokens back to characters).")
    max_length = min(data_args.max_length or 384, tokenizer.model_max_length)
    if not 0 <= qa_args.doc_stride < max_length // 2:
        raise UserError(
            f"--doc_stride {qa_args.doc_stride} must be below half of --max_length {max_length}; "
            f"try --doc_stride {max_length // 4}."
        )
    return max_length
