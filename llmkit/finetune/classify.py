"""Fine-tune an encoder (BERT family) for sequence classification (single- or multi-label) or token tagging."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
    DataCollatorForTokenClassification,
    DataCollatorWithPadding,
    set_seed,
)

from llmkit.errors import UserError
from llmkit.finetune.builtin import classification_sample, tagging_sample
from llmkit.finetune.common import (
    FinetuneModelArguments,
    FinetuneTrainingArguments,
    default_encoder,
    display_name,
    encoder_hint,
    start_run,
)
from llmkit.finetune.data import FinetuneDataArguments, drop_empty, load_table
from llmkit.finetune.labels import align, key, label_names, multi_hot
from llmkit.finetune.lora import LoraArguments, apply_lora
from llmkit.finetune.metrics import accuracy_f1, entity_f1, multilabel_scores, plot_confusion
from llmkit.finetune.outputs import finish_run
from llmkit.finetune.trainer import (
    build_trainer,
    report_truncation,
    resume_checkpoint,
    train_and_evaluate,
    warn_if_too_small,
)
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


def finetune_classifier(
    task_args: ClassificationArguments,
    data_args: FinetuneDataArguments,
    model_args: FinetuneModelArguments,
    lora_args: LoraArguments,
    args: FinetuneTrainingArguments,
) -> dict:
    """Fine-tune a classifier and write it, its metrics, curves, confusion matrix and model card to output_dir."""
    start_run(args, hp_search=True)
    token_task = task_args.task == "token"
    text_col = data_args.text_column or ("tokens" if token_task else "text")
    label_col = data_args.label_column or ("tags" if token_task else "label")
    model_name = model_args.model_name_or_path or default_encoder()  # the same whether or not data is given
    logger.info(args.choose_learning_rate(lora_args.use_lora))

    raw = load_table(
        data_args,
        tagging_sample if token_task else classification_sample,
        [text_col, label_col],
        seed=args.seed,
    )
    raw, empty = drop_empty(raw, text_col)
    if empty:
        logger.info(f"dropped {empty} example(s) with an empty {text_col!r}")
    labels, multi = label_names(raw, label_col, token_task, data_args)
    label2id = {label: i for i, label in enumerate(labels)}
    logger.info(
        f"{'tags' if token_task else 'labels'} ({len(labels)}{', multi-label' if multi else ''}): {labels}"
    )

    hint = encoder_hint(model_name)
    tokenizer = load_pretrained(AutoTokenizer, model_name, hint=hint)
    config = load_pretrained(AutoConfig, model_name, hint=hint)
    head = getattr(config, "id2label", None) or {}
    trained_head = head and not all(str(v).startswith("LABEL_") for v in head.values())
    if trained_head and len(head) != len(labels) and not model_args.ignore_mismatched_sizes:
        raise UserError(
            f"{model_name} has a {len(head)}-label head but the data has {len(labels)} labels; "
            "pass --ignore_mismatched_sizes to train a new head."
        )
    max_length = min(data_args.max_length or 256, tokenizer.model_max_length)

    def encode(batch):
        if token_task:
            enc = tokenizer(batch[text_col], is_split_into_words=True, truncation=True, max_length=max_length)
            enc["labels"] = [
                align(enc.word_ids(i), tags, label2id) for i, tags in enumerate(batch[label_col])
            ]
        else:
            enc = tokenizer(batch[text_col], truncation=True, max_length=max_length)
            enc["labels"] = [multi_hot(v, label2id) if multi else label2id[key(v)] for v in batch[label_col]]
        full = tokenizer(batch[text_col], is_split_into_words=token_task)["input_ids"]
        enc["truncated"] = [len(ids) > max_length for ids in full]
        return enc

    with args.main_process_first(desc="tokenizing"):
        data = raw.map(encode, batched=True, remove_columns=raw["train"].column_names, desc="Tokenizing")
    data, truncated = report_truncation(data, max_length, "texts")
    warn_if_too_small(args, len(data["train"]), len(data["validation"]))
    auto = AutoModelForTokenClassification if token_task else AutoModelForSequenceClassification

    def model_init(trial=None):
        set_seed(args.seed)
        model = load_pretrained(
            auto,
            model_name,
            hint=hint,
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id=label2id,
            problem_type="multi_label_classification" if multi else None,
            ignore_mismatched_sizes=model_args.ignore_mismatched_sizes or not trained_head,
        )
        if lora_args.use_lora:
            lora = replace(
                lora_args,
                **{k: v for k, v in (trial.params if trial else {}).items() if k.startswith("lora_")},
            )
            model = apply_lora(
                model, lora, "TOKEN_CLS" if token_task else "SEQ_CLS", trainable_heads=["classifier", "score"]
            )
        return model

    args.refine_best_metric("f1" if token_task else ("micro_f1" if multi else "accuracy"))
    collator = (
        DataCollatorForTokenClassification(tokenizer) if token_task else DataCollatorWithPadding(tokenizer)
    )

    def make_trainer(init=None):
        return build_trainer(
            args,
            data,
            tokenizer,
            collator,
            model=None if init else model_init(),
            model_init=init,
            compute_metrics=lambda p: _metrics(p, labels, token_task, multi),
            keep_predictions=not token_task and not multi,  # for the confusion matrix
        )

    if args.hp_search_trials:
        from llmkit.hpsearch import FINETUNE_SPACE, LORA_SPACE, run_search

        objective = f"eval_{(args.metric_for_best_model or 'accuracy').removeprefix('eval_')}"
        return run_search(
            make_trainer,
            model_init,
            (task_args, data_args, model_args, lora_args, args),
            args,
            LORA_SPACE if lora_args.use_lora else FINETUNE_SPACE,
            objective,
            "maximize" if args.greater_is_better is not False else "minimize",
        )
    resume = resume_checkpoint(args)
    _check_resumed_labels(resume, labels)
    trainer = make_trainer()
    metrics = train_and_evaluate(trainer, resume, data.get("test"))
    if not token_task and not multi and trainer.is_world_process_zero():
        out = trainer.kept_validation  # the pass that gave the scores (gathered across processes)
        plot_confusion(
            out.predictions.argmax(-1), out.label_ids, labels, f"{args.output_dir}/confusion_matrix.png"
        )
    task = (
        "Token classification"
        if token_task
        else ("Multi-label classification" if multi else "Text classification")
    )
    example = " ".join(raw["validation"][0][text_col]) if token_task else raw["validation"][0][text_col][:200]
    return finish_run(
        trainer,
        lora_args,
        recipe="finetune-bert",
        task=task,
        pipeline_tag="token-classification" if token_task else "text-classification",
        base=display_name(model_name),
        data=data_args.source,
        eval_metrics=metrics,
        example=example,
        headline=["f1", "accuracy"] if token_task else ["accuracy", "macro_f1", "micro_f1"],
        extra={"labels": labels, "truncated_examples": truncated},
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


def _metrics(pred, labels: list[str], token_task: bool, multi: bool) -> dict:
    logits, gold = pred.predictions, pred.label_ids
    if multi:
        return multilabel_scores(1 / (1 + np.exp(-logits)), gold)
    if not token_task:
        return accuracy_f1(logits.argmax(-1), gold, len(labels))
    predicted = logits.argmax(-1)
    pred_tags = [[labels[p] for p, g in zip(ps, gs) if g != -100] for ps, gs in zip(predicted, gold)]
    gold_tags = [[labels[g] for g in gs if g != -100] for gs in gold]
    return entity_f1(pred_tags, gold_tags)


def label_probabilities(model_dir: str, text: str) -> dict[str, float]:
    """Class probabilities of a text under a saved classifier (the app's classification tab)."""
    tokenizer = load_pretrained(AutoTokenizer, model_dir)
    model = load_pretrained(AutoModelForSequenceClassification, model_dir).eval()
    with torch.no_grad():
        logits = model(**tokenizer(text, return_tensors="pt", truncation=True)).logits[0]
    multi = model.config.problem_type == "multi_label_classification"
    probs = torch.sigmoid(logits) if multi else logits.softmax(-1)
    return {model.config.id2label[i]: float(p) for i, p in enumerate(probs)}
