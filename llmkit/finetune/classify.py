"""Fine-tune an encoder (BERT family) for sequence classification (single- or multi-label) or token tagging."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
    DataCollatorForTokenClassification,
    DataCollatorWithPadding,
    EarlyStoppingCallback,
    Trainer,
    set_seed,
)

from llmkit.errors import UserError
from llmkit.finetune.builtin import classification_sample, tagging_sample
from llmkit.finetune.common import (
    FinetuneModelArguments,
    FinetuneTrainingArguments,
    display_name,
    packaged_minilm,
    start_run,
)
from llmkit.finetune.data import FinetuneDataArguments, drop_empty, load_table
from llmkit.finetune.lora import LoraArguments, apply_lora
from llmkit.finetune.metrics import accuracy_f1, entity_f1, multilabel_scores, plot_confusion
from llmkit.finetune.outputs import finish_run
from llmkit.runtime import prepare_output_dir


@dataclass
class ClassificationArguments:
    """What to predict."""

    task: str = field(default="sequence", metadata={"help": "'sequence' (a label per text; lists of labels mean multi-label) or 'token' (a tag per word)."})

    def __post_init__(self) -> None:
        if self.task not in ("sequence", "token"):
            raise UserError(f"--task must be 'sequence' or 'token', got {self.task!r}.")


def finetune_classifier(task_args: ClassificationArguments, data_args: FinetuneDataArguments, model_args: FinetuneModelArguments,
                        lora_args: LoraArguments, args: FinetuneTrainingArguments) -> dict:
    """Fine-tune a classifier and write it, its metrics, curves, confusion matrix and model card to output_dir."""
    start_run(args, hp_search=True)
    token_task = task_args.task == "token"
    text_col = data_args.text_column or ("tokens" if token_task else "text")
    label_col = data_args.label_column or ("tags" if token_task else "label")
    builtin = tagging_sample if token_task else classification_sample
    model_name = model_args.model_name_or_path or (packaged_minilm() if not (data_args.dataset_name or data_args.train_file) else None) or "bert-base-uncased"

    raw = load_table(data_args, builtin, [text_col, label_col], seed=args.seed)
    raw, empty = drop_empty(raw, text_col)
    if empty:
        print(f"dropped {empty} example(s) with an empty {text_col!r}")
    missing = [i for i, v in enumerate(raw["train"][label_col]) if v is None or v == ""]
    if missing:
        raise UserError(f"{len(missing)} training example(s) have no {label_col!r} (rows {missing[:5]}...); label or remove them.")
    labels, multi = _labels(raw, label_col, token_task)
    label2id = {label: i for i, label in enumerate(labels)}
    print(f"{'tags' if token_task else 'labels'} ({len(labels)}{', multi-label' if multi else ''}): {labels}")

    tokenizer = _load(AutoTokenizer, model_name)
    config = _load(AutoConfig, model_name)
    head = getattr(config, "id2label", None) or {}
    trained_head = head and not all(str(v).startswith("LABEL_") for v in head.values())
    if trained_head and len(head) != len(labels) and not model_args.ignore_mismatched_sizes:
        raise UserError(f"{model_name} has a {len(head)}-label head but the data has {len(labels)} labels; "
                        "pass --ignore_mismatched_sizes to train a new head.")
    max_length = min(data_args.max_length or 256, tokenizer.model_max_length)

    def encode(batch):
        if token_task:
            enc = tokenizer(batch[text_col], is_split_into_words=True, truncation=True, max_length=max_length)
            enc["labels"] = [_align(enc.word_ids(i), tags, label2id) for i, tags in enumerate(batch[label_col])]
        else:
            enc = tokenizer(batch[text_col], truncation=True, max_length=max_length)
            enc["labels"] = [_multi_hot(v, label2id) if multi else label2id[_key(v)] for v in batch[label_col]]
        full = tokenizer(batch[text_col], is_split_into_words=token_task)["input_ids"]
        enc["truncated"] = [len(ids) > max_length for ids in full]
        return enc

    with args.main_process_first(desc="tokenizing"):
        data = raw.map(encode, batched=True, remove_columns=raw["train"].column_names, desc="Tokenizing")
    truncated = sum(sum(data[s]["truncated"]) for s in data)
    if truncated:
        print(f"{truncated} of {sum(len(d) for d in data.values())} texts were longer than {max_length} tokens and were truncated "
              "(raise --max_length to keep more)")
    data = data.remove_columns("truncated")

    auto = AutoModelForTokenClassification if token_task else AutoModelForSequenceClassification

    def model_init(trial=None):
        set_seed(args.seed)
        model = _load(auto, model_name, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=label2id,
                      problem_type="multi_label_classification" if multi else None,
                      ignore_mismatched_sizes=model_args.ignore_mismatched_sizes or not trained_head)
        if lora_args.use_lora:
            lora = replace(lora_args, **{k: v for k, v in (trial.params if trial else {}).items() if k.startswith("lora_")})
            model = apply_lora(model, lora, "TOKEN_CLS" if token_task else "SEQ_CLS", trainable_heads=["classifier", "score"])
        return model

    best = "f1" if token_task else ("micro_f1" if multi else "accuracy")
    if args.load_best_model_at_end and not args.metric_for_best_model:
        args.metric_for_best_model, args.greater_is_better = best, True
    callbacks = [EarlyStoppingCallback(args.early_stopping_patience)] if args.early_stopping_patience else []
    prepare_output_dir(args.output_dir)

    def make_trainer(init=None):
        return Trainer(
            model=None if init else model_init(), model_init=init, args=args, train_dataset=data["train"],
            eval_dataset=data["validation"], processing_class=tokenizer,
            data_collator=DataCollatorForTokenClassification(tokenizer) if token_task else DataCollatorWithPadding(tokenizer),
            compute_metrics=lambda p: _metrics(p, labels, token_task, multi), callbacks=callbacks,
        )

    if args.hp_search_trials:
        from llmkit.hpsearch import FINETUNE_SPACE, LORA_SPACE, run_search

        return run_search(make_trainer, model_init, (task_args, data_args, model_args, lora_args, args), args,
                          LORA_SPACE if lora_args.use_lora else FINETUNE_SPACE, f"eval_{best}", "maximize")
    trainer = make_trainer()
    trainer.train(resume_from_checkpoint=args.resume_from_checkpoint)
    eval_metrics = trainer.evaluate()
    if not token_task and not multi:
        out = trainer.predict(data["validation"])  # on every rank: prediction gathers across processes
        if trainer.is_world_process_zero():
            plot_confusion(out.predictions.argmax(-1), out.label_ids, labels, f"{args.output_dir}/confusion_matrix.png")
    task = "Token classification" if token_task else ("Multi-label classification" if multi else "Text classification")
    example = " ".join(raw["validation"][0][text_col]) if token_task else raw["validation"][0][text_col][:200]
    return finish_run(trainer, lora_args, task, "token-classification" if token_task else "text-classification",
                      display_name(model_name), data_args.source, eval_metrics, example, {"labels": labels, "truncated_examples": truncated})


def _load(cls, name: str, **kwargs):
    try:
        return cls.from_pretrained(name, **kwargs)
    except Exception as err:  # not found, offline, or not the right kind of model
        raise UserError(f"could not load {name!r} ({type(err).__name__}: {err}). Pass a Hub name or a local model folder "
                        "with --model_name_or_path.") from None


def _key(value) -> str:
    return str(value).strip()


def _labels(raw, column: str, token_task: bool) -> tuple[list[str], bool]:
    """The label names and whether the task is multi-label."""
    feature = raw["train"].features[column]
    inner = getattr(feature, "feature", None)
    names = getattr(inner, "names", None) or getattr(feature, "names", None)
    if names:  # a ClassLabel feature: integers with names
        return list(names), False
    values = list(raw["train"][column]) + list(raw["validation"][column])
    multi = not token_task and any(isinstance(v, list) for v in values)
    flat = {_key(x) for v in values if v is not None for x in (v if (token_task or multi) else [v])}
    if token_task and "O" in flat:
        return ["O", *sorted(flat - {"O"})], False
    return sorted(flat), multi


def _multi_hot(values, label2id: dict) -> list[float]:
    row = [0.0] * len(label2id)
    for v in values:
        row[label2id[_key(v)]] = 1.0
    return row


def _align(word_ids: list[int | None], tags: list, label2id: dict) -> list[int]:
    """Label each word's first sub-token; other sub-tokens and special tokens are ignored (-100)."""
    out, previous = [], None
    for w in word_ids:
        out.append(-100 if w is None or w == previous else label2id[_key(tags[w])] if isinstance(tags[w], str) else int(tags[w]))
        previous = w
    return out


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
    tokenizer = _load(AutoTokenizer, model_dir)
    model = _load(AutoModelForSequenceClassification, model_dir).eval()
    with torch.no_grad():
        logits = model(**tokenizer(text, return_tensors="pt", truncation=True)).logits[0]
    multi = model.config.problem_type == "multi_label_classification"
    probs = torch.sigmoid(logits) if multi else logits.softmax(-1)
    return {model.config.id2label[i]: float(p) for i, p in enumerate(probs)}


