"""Fine-tune an encoder (BERT family) for sequence classification (single- or multi-label) or token tagging."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from datasets import DatasetDict
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
    DataCollatorForTokenClassification,
    DataCollatorWithPadding,
    PreTrainedTokenizerBase,
    set_seed,
)

from llmkit.errors import UserError
from llmkit.finetune.builtin import classification_sample, tagging_sample
from llmkit.finetune.common import (
    FinetuneModelArguments,
    FinetuneParsed,
    FinetuneTrainingArguments,
    start_run,
)
from llmkit.finetune.data import FinetuneDataArguments, drop_empty, load_table
from llmkit.finetune.encoder import default_encoder, display_name, encoder_tokenizer
from llmkit.finetune.labels import (
    align,
    check_word_tags,
    keep_every_class_in_training,
    key,
    label_names,
    multi_hot,
)
from llmkit.finetune.lora import LoraArguments, apply_lora
from llmkit.finetune.metrics import accuracy_f1, entity_f1, multilabel_scores, plot_confusion
from llmkit.finetune.outputs import finish_run
from llmkit.finetune.trainer import (
    build_trainer,
    report_truncation,
    resume_checkpoint,
    train_and_evaluate,
    warn_if_too_small,
    weights_from_checkpoint,
)
from llmkit.launch import one_run_per_output_dir
from llmkit.loading import load_pretrained
from llmkit.log import get_logger

logger = get_logger(__name__)


@dataclass
class ClassificationArguments:
    """What to predict."""

    task: str = field(
        default="sequence",
        metadata={
            "help": "'sequence' (a label per text; lists of labels mean multi-label) or 'token' (a tag per word)."
        },
    )

    def __post_init__(self) -> None:
        if self.task not in ("sequence", "token"):
            raise UserError(f"--task must be 'sequence' or 'token', got {self.task!r}.")


@one_run_per_output_dir
def finetune_classifier(parsed: FinetuneParsed) -> dict:
    """Fine-tune a classifier and write it, its metrics, curves, confusion matrix and model card to output_dir."""
    task_args, args = parsed[0], parsed[-1]
    start_run(args, hp_search=True)
    run = _tag_tokens if task_args.task == "token" else _classify_sequences
    return run(parsed)


def _classify_sequences(arguments: tuple) -> dict:
    """A label per text; lists of labels make it multi-label."""
    _, data_args, model_args, lora_args, args = arguments
    text_col, label_col = data_args.text_column or "text", data_args.label_column or "label"
    prep = _prepare(data_args, model_args, lora_args, args, token_task=False, columns=(text_col, label_col))
    tokenizer, label2id, multi, max_length = prep.tokenizer, prep.label2id, prep.multi, prep.max_length

    def encode(batch):
        enc = tokenizer(batch[text_col], truncation=True, max_length=max_length)
        enc["labels"] = [multi_hot(v, label2id) if multi else label2id[key(v)] for v in batch[label_col]]
        enc["truncated"] = [len(ids) > max_length for ids in tokenizer(batch[text_col])["input_ids"]]
        return enc

    data, truncated = _tokenize(prep, encode, args)
    args.refine_best_metric("micro_f1" if multi else "accuracy")
    fit = _Fit(
        prep,
        data,
        *arguments[2:],  # model, LoRA and training arguments
        auto=AutoModelForSequenceClassification,
        peft_task="SEQ_CLS",
        collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=lambda p: _sequence_metrics(p, len(prep.labels), multi),
        keep_predictions=not multi,  # for the confusion matrix
    )
    if args.hp_search_trials:
        return fit.search(arguments)
    trainer, metrics = fit.train()
    if not multi and trainer.is_world_process_zero():
        out = trainer.kept_validation  # the pass that gave the scores (gathered across processes)
        plot_confusion(
            out.predictions.argmax(-1), out.label_ids, prep.labels, f"{args.output_dir}/confusion_matrix.png"
        )
    return _finish(
        trainer,
        arguments,
        prep,
        metrics,
        task="Multi-label classification" if multi else "Text classification",
        pipeline_tag="text-classification",
        example=prep.raw["validation"][0][text_col][:200],
        headline=["accuracy", "macro_f1", "micro_f1"],
        truncated=truncated,
    )


def _tag_tokens(arguments: tuple) -> dict:
    """A tag per word: the texts are lists of words, the labels lists of tags."""
    _, data_args, model_args, lora_args, args = arguments
    text_col, label_col = data_args.text_column or "tokens", data_args.label_column or "tags"
    prep = _prepare(data_args, model_args, lora_args, args, token_task=True, columns=(text_col, label_col))
    check_word_tags(prep.raw, (text_col, label_col), data_args)  # else an IndexError in align
    tokenizer, label2id, max_length = prep.tokenizer, prep.label2id, prep.max_length

    def encode(batch):
        words = batch[text_col]
        enc = tokenizer(words, is_split_into_words=True, truncation=True, max_length=max_length)
        enc["labels"] = [align(enc.word_ids(i), tags, label2id) for i, tags in enumerate(batch[label_col])]
        enc["truncated"] = [
            len(ids) > max_length for ids in tokenizer(words, is_split_into_words=True)["input_ids"]
        ]
        return enc

    data, truncated = _tokenize(prep, encode, args)
    args.refine_best_metric("f1")
    fit = _Fit(
        prep,
        data,
        *arguments[2:],  # model, LoRA and training arguments
        auto=AutoModelForTokenClassification,
        peft_task="TOKEN_CLS",
        collator=DataCollatorForTokenClassification(tokenizer),
        compute_metrics=lambda p: _tag_metrics(p, prep.labels),
        keep_predictions=False,
    )
    if args.hp_search_trials:
        return fit.search(arguments)
    trainer, metrics = fit.train()
    return _finish(
        trainer,
        arguments,
        prep,
        metrics,
        task="Token classification",
        pipeline_tag="token-classification",
        example=" ".join(prep.raw["validation"][0][text_col]),
        headline=["f1", "accuracy"],
        truncated=truncated,
    )


def _finish(trainer, arguments: tuple, prep: _Prepared, metrics: dict, *, truncated: int, **card) -> dict:
    """The run record, model card and summary both tasks write (`card`: task, pipeline_tag, example, headline)."""
    _, data_args, _, lora_args, _ = arguments
    return finish_run(
        trainer,
        lora_args,
        recipe="finetune-bert",
        base=display_name(prep.model_name),
        data=data_args.source,
        eval_metrics=metrics,
        extra={"labels": prep.labels, "truncated_examples": truncated},
        **card,
    )


@dataclass
class _Prepared:
    """What both tasks share once the data is read: the table, its labels, and the base model's tokenizer."""

    raw: DatasetDict
    labels: list[str]
    multi: bool
    model_name: str
    hint: str
    tokenizer: PreTrainedTokenizerBase
    trained_head: bool  # the base model's head already has real labels (not LABEL_0, LABEL_1, ...)
    max_length: int

    @property
    def label2id(self) -> dict[str, int]:
        return {label: i for i, label in enumerate(self.labels)}


def _prepare(
    data_args: FinetuneDataArguments,
    model_args: FinetuneModelArguments,
    lora_args: LoraArguments,
    args: FinetuneTrainingArguments,
    *,
    token_task: bool,
    columns: tuple[str, str],
) -> _Prepared:
    """Read the table, find its labels, load the tokenizer; refuse a trained head of another size."""
    text_col, label_col = columns
    model_name = model_args.model_name_or_path or default_encoder()  # the same whether or not data is given
    logger.info(args.choose_learning_rate(lora_args.use_lora))
    sample = tagging_sample if token_task else classification_sample
    raw = load_table(data_args, sample, [text_col, label_col], seed=args.seed)
    raw, empty = drop_empty(raw, text_col, data_args)
    if empty:
        logger.info(f"dropped {empty} example(s) with an empty {text_col!r}")
    if not token_task:
        raw = keep_every_class_in_training(raw, label_col)
    labels, multi = label_names(raw, label_col, token_task, data_args)
    logger.info(
        f"{'tags' if token_task else 'labels'} ({len(labels)}{', multi-label' if multi else ''}): {labels}"
    )
    hint, tokenizer = encoder_tokenizer(model_name)
    config = load_pretrained(AutoConfig, model_name, hint=hint)
    head = getattr(config, "id2label", None) or {}
    trained_head = bool(head) and not all(str(v).startswith("LABEL_") for v in head.values())
    if trained_head and len(head) != len(labels) and not model_args.ignore_mismatched_sizes:
        raise UserError(
            f"{model_name} has a {len(head)}-label head but the data has {len(labels)} labels; "
            "pass --ignore_mismatched_sizes to train a new head."
        )
    max_length = min(data_args.max_length or 256, tokenizer.model_max_length)
    return _Prepared(raw, labels, multi, model_name, hint, tokenizer, trained_head, max_length)


def _tokenize(prep: _Prepared, encode: Callable, args: FinetuneTrainingArguments) -> tuple[DatasetDict, int]:
    """Encode every split; report the texts cut at max_length and a training set too small to learn from."""
    raw = prep.raw
    with args.main_process_first(desc="tokenizing"):
        data = raw.map(encode, batched=True, remove_columns=raw["train"].column_names, desc="Tokenizing")
    limit = prep.tokenizer.model_max_length
    data, truncated = report_truncation(data, prep.max_length, "texts", model_limit=limit)
    warn_if_too_small(args, len(data["train"]), len(data["validation"]))
    return data, truncated


@dataclass
class _Fit:
    """The training step both tasks share: a model (re)built per trial, one run, or a search."""

    prep: _Prepared
    data: DatasetDict
    model_args: FinetuneModelArguments
    lora_args: LoraArguments
    args: FinetuneTrainingArguments
    auto: type
    peft_task: str
    collator: Callable
    compute_metrics: Callable
    keep_predictions: bool

    def model_init(self, trial=None):
        """A fresh model with the data's labels (and the trial's LoRA settings in a search)."""
        prep = self.prep
        set_seed(self.args.seed)
        model = load_pretrained(
            self.auto,
            prep.model_name,
            hint=prep.hint,
            num_labels=len(prep.labels),
            id2label=dict(enumerate(prep.labels)),
            label2id=prep.label2id,
            problem_type="multi_label_classification" if prep.multi else None,
            ignore_mismatched_sizes=self.model_args.ignore_mismatched_sizes or not prep.trained_head,
        )
        if self.lora_args.use_lora:
            params = trial.params if trial else {}
            lora = replace(self.lora_args, **{k: v for k, v in params.items() if k.startswith("lora_")})
            model = apply_lora(model, lora, self.peft_task, trainable_heads=["classifier", "score"])
        return model

    def make_trainer(self, init=None):
        """A trainer on this model, or (in a search) on models built by `init`."""
        return build_trainer(
            self.args,
            self.data,
            self.prep.tokenizer,
            self.collator,
            model=None if init else self.model_init(),
            model_init=init,
            compute_metrics=self.compute_metrics,
            keep_predictions=self.keep_predictions,
        )

    def train(self):
        """Train (resuming a checkpoint on the same labels) and evaluate; the trainer and its metrics."""
        resume = resume_checkpoint(self.args, use_lora=self.lora_args.use_lora)
        _check_resumed_labels(resume, self.prep.labels)
        with weights_from_checkpoint(resume):
            trainer = self.make_trainer()
        return trainer, train_and_evaluate(trainer, resume, self.data.get("test"))

    def search(self, arguments: tuple) -> dict:
        """The --hp_search_trials path: the best trial and the config that trains with it."""
        from llmkit.hpsearch import FINETUNE_SPACE, LORA_SPACE, run_search

        args = self.args
        objective = f"eval_{(args.metric_for_best_model or 'accuracy').removeprefix('eval_')}"
        return run_search(
            self.make_trainer,
            self.model_init,
            arguments,
            args,
            default_space=LORA_SPACE if self.lora_args.use_lora else FINETUNE_SPACE,
            objective=objective,
            direction="maximize" if args.greater_is_better is not False else "minimize",
            command="llmkit finetune-bert",
        )


def _check_resumed_labels(resume: str | None, labels: list[str]) -> None:
    """A checkpoint trained on other labels cannot be continued with these ones."""
    config = Path(resume or "") / "config.json"
    if resume and config.is_file():
        saved = list(json.loads(config.read_text()).get("id2label", {}).values())
        if saved and saved != labels:
            raise UserError(
                f"{resume} was trained with the labels {saved}, but the data has {labels}; use a new "
                "--output_dir (or --resume_from_checkpoint from a run on the same labels)."
            )


def _sequence_metrics(pred, n_labels: int, multi: bool) -> dict:
    logits, gold = pred.predictions, pred.label_ids
    if multi:
        return multilabel_scores(1 / (1 + np.exp(-logits)), gold)
    return accuracy_f1(logits.argmax(-1), gold, n_labels)


def _tag_metrics(pred, labels: list[str]) -> dict:
    predicted, gold = pred.predictions.argmax(-1), pred.label_ids
    pred_tags = [[labels[p] for p, g in zip(ps, gs) if g != -100] for ps, gs in zip(predicted, gold)]
    gold_tags = [[labels[g] for g in gs if g != -100] for gs in gold]
    return entity_f1(pred_tags, gold_tags)


def label_probabilities(model_dir: str, text: str) -> dict[str, float]:
    """Class probabilities of a text under a saved classifier (the app's classification tab)."""
    tokenizer, model = _classifier(str(model_dir), _saved_at(model_dir))
    with torch.no_grad():
        logits = model(**tokenizer(text, return_tensors="pt", truncation=True)).logits[0]
    multi = model.config.problem_type == "multi_label_classification"
    probs = torch.sigmoid(logits) if multi else logits.softmax(-1)
    return {model.config.id2label[i]: float(p) for i, p in enumerate(probs)}


@functools.lru_cache(maxsize=4)
def _classifier(model_dir: str, saved_at: tuple) -> tuple:
    """A classifier folder's tokenizer and model, loaded once per folder and version: the app's every click
    reloaded them from disk."""
    tokenizer = load_pretrained(AutoTokenizer, model_dir)
    return tokenizer, load_pretrained(AutoModelForSequenceClassification, model_dir).eval()


def _saved_at(model_dir: str) -> tuple:
    """When a local folder's config, tokenizer and weights were written: a folder trained again is reloaded."""
    folder = Path(model_dir)
    if not folder.is_dir():
        return ()  # a Hub name
    files = sorted(p for p in folder.iterdir() if p.suffix in (".json", ".safetensors", ".bin", ".txt"))
    return tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in files)
