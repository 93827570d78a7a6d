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

Windowing and post-processing live in `llmkit.finetune.qa_spans`; they also serve `predict_spans`, which
`llmkit.finetune.reader.Reader` uses at question time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from datasets import DatasetDict
from transformers import (
    AutoModelForQuestionAnswering,
    DataCollatorWithPadding,
    set_seed,
)

from llmkit.errors import UserError
from llmkit.finetune.common import (
    FinetuneParsed,
    FinetuneTrainingArguments,
    start_run,
)
from llmkit.finetune.data import FinetuneDataArguments
from llmkit.finetune.encoder import default_encoder, display_name, encoder_tokenizer
from llmkit.finetune.lora import apply_lora
from llmkit.finetune.outputs import finish_run
from llmkit.finetune.qa_data import has_unanswerable, load_qa
from llmkit.finetune.qa_eval import AnswerScorer, QuestionAnsweringTrainer
from llmkit.finetune.qa_spans import (
    MAX_QUESTION_TOKENS,
    NULL_INDEX,
    QuestionAnsweringArguments,
    encode_windows,
)
from llmkit.finetune.trainer import (
    build_trainer,
    resume_checkpoint,
    train_and_evaluate,
    weights_from_checkpoint,
)
from llmkit.launch import one_run_per_output_dir
from llmkit.loading import load_pretrained
from llmkit.log import get_logger
from llmkit.runtime import output_dir_field

logger = get_logger(__name__)

HEADLINE = ["exact_match", "f1", "HasAns_f1", "NoAns_exact_match"]
MIN_WINDOW = 32  # tokens: room for [CLS], a question, [SEP], some context and [SEP]


def encode_features(batch: dict, tokenizer, max_length: int, stride: int) -> dict:
    """Windows of a batch of SQuAD rows with their labels (answer tokens, or NULL_INDEX), example ids and offsets."""
    enc = encode_windows(tokenizer, batch["question"], batch["context"], max_length=max_length, stride=stride)
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


@dataclass
class QuestionAnsweringTrainingArguments(FinetuneTrainingArguments):
    """The fine-tuning defaults, keeping the checkpoint with the best validation F1."""

    default_best_metric = "f1"
    output_dir: str | None = output_dir_field("runs/finetune-qa")


@one_run_per_output_dir
def finetune_qa(parsed: FinetuneParsed) -> dict:
    """Fine-tune an encoder for extractive QA; report EM/F1 (HasAns/NoAns); save it so pipeline() loads it."""
    qa_args, data_args, model_args, lora_args, args = parsed
    from llmkit.finetune.qa_builtin import builtin_qa

    start_run(args)
    _refuse_column_flags(data_args)
    logger.info(args.choose_learning_rate(lora_args.use_lora))
    model_name = model_args.model_name_or_path or default_encoder()
    raw = load_qa(data_args, lambda: builtin_qa(qa_args.generated_questions, args.seed), seed=args.seed)
    allow_null = qa_args.version_2_with_negative
    allow_null = has_unanswerable(raw) if allow_null is None else allow_null
    hint, tokenizer = encoder_tokenizer(model_name)
    max_length = _check_lengths(tokenizer, data_args, qa_args)
    _warn_if_many_windows(raw, tokenizer, max_length, qa_args.doc_stride)
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
    resume = resume_checkpoint(args, use_lora=lora_args.use_lora)
    with weights_from_checkpoint(resume):
        model = load_pretrained(AutoModelForQuestionAnswering, model_name, hint=hint)
    if lora_args.use_lora:
        model = apply_lora(model, lora_args, "QUESTION_ANS", trainable_heads=["qa_outputs"])
    scorer = AnswerScorer(qa_args, allow_null)
    scorer.sets = {name: (features[name], raw[name]) for name in ("validation", "test") if name in raw}
    scorer.sets["eval"] = scorer.sets.pop("validation")
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
    if data_args.max_length is not None and data_args.max_length < MIN_WINDOW:
        # Shorter windows crashed the tokenizer (4) or trained on a token or two of each context (2, 8).
        raise UserError(
            f"--max_length {data_args.max_length} leaves no room for a question and its context; "
            f"give at least {MIN_WINDOW} tokens (384 is usual)."
        )
    max_length = min(data_args.max_length or 384, tokenizer.model_max_length)
    if data_args.max_length and data_args.max_length > max_length:
        logger.info(
            f"--max_length {data_args.max_length} is above the model's limit: windows of {max_length} tokens"
        )
    if qa_args.doc_stride < 0:
        raise UserError(
            f"--doc_stride {qa_args.doc_stride} must be 0 or more; try --doc_stride {max_length // 4}."
        )
    if qa_args.doc_stride >= max_length // 2:
        raise UserError(
            f"--doc_stride {qa_args.doc_stride} must be below half of --max_length {max_length}; "
            f"try --doc_stride {max_length // 4}."
        )
    return max_length


# More windows than this for one context: a book-length context, which makes the run slow with no other sign why.
MANY_WINDOWS = 100


def _warn_if_many_windows(raw: DatasetDict, tokenizer, max_length: int, stride: int) -> None:
    """Before windowing, say how many windows very long contexts make (each one is a training example and a
    forward pass at evaluation) and which flags decide that; the windowing itself is left as it is."""
    contexts = [c for split in raw.values() for c in split["context"]]
    longest = max(contexts, key=len, default="")
    if len(longest) < MANY_WINDOWS * (max_length - stride):  # even at one character a token: few windows
        return
    sample = longest[:20_000]  # tokens per character, measured on a slice: tokenizing it all is what is slow
    per_char = len(tokenizer(sample, add_special_tokens=False)["input_ids"]) / max(len(sample), 1)
    questions = [q for split in raw.values() for q in split["question"][:100]]
    asked = tokenizer(questions, add_special_tokens=False)["input_ids"]
    question = min(sum(map(len, asked)) / max(len(asked), 1), MAX_QUESTION_TOKENS)
    room = max_length - question - 3  # a window holds the question, the context and three special tokens
    counts = [1 + max(0, math.ceil((len(c) * per_char - room) / max(room - stride, 1))) for c in contexts]
    if max(counts) <= MANY_WINDOWS:
        return
    logger.warning(
        f"warning: long contexts: the longest is about {max(counts)} windows, and the {len(contexts)} questions "
        f"make about {sum(counts)} windows in all, each trained on and scored as one example, so windowing and "
        f"every epoch will take long. --max_length {max_length} (tokens per window) and --doc_stride {stride} "
        "(tokens shared by neighbouring windows) decide the count; cutting each context to the passage around "
        "its answer makes it small."
    )
