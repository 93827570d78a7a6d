"""Labelled data for fine-tuning: a Hub dataset, local csv/jsonl/parquet files, or a built-in sample."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from datasets import Dataset, DatasetDict

from llmkit.data.corpus import expand_files, load_source
from llmkit.errors import UserError


@dataclass
class FinetuneDataArguments:
    """Where the examples come from and which columns hold what (defaults depend on the recipe)."""

    dataset_name: str | None = field(default=None, metadata={"help": "A dataset on the Hub, e.g. 'imdb', 'conll2003', 'cnn_dailymail'."})
    dataset_config_name: str | None = field(default=None, metadata={"help": "The dataset's configuration."})
    train_file: str | None = field(default=None, metadata={"help": "A local .csv/.jsonl/.json/.parquet training file."})
    validation_file: str | None = field(default=None, metadata={"help": "A local validation file (default: split one off)."})
    text_column: str | None = field(default=None, metadata={"help": "The input column (text, or a list of words for tagging)."})
    label_column: str | None = field(default=None, metadata={"help": "The label column (a label, a list of labels, or a list of tags)."})
    target_column: str | None = field(default=None, metadata={"help": "The target text column (text-to-text, prompt/response)."})
    max_length: int | None = field(default=None, metadata={"help": "Truncate inputs to this many tokens (truncation is reported)."})
    max_target_length: int = field(default=64, metadata={"help": "Truncate targets to this many tokens (text-to-text)."})
    validation_split_percentage: float = field(default=10.0, metadata={"help": "Share held out when there is no validation split."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Use at most this many training examples."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Use at most this many validation examples."})

    @property
    def source(self) -> str:
        """A short name of the data, for logs and the model card."""
        return self.dataset_name or self.train_file or "builtin"


def load_table(args: FinetuneDataArguments, builtin: Callable[[], list[dict]], columns: list[str], seed: int = 42) -> DatasetDict:
    """Load {"train", "validation"} and check that every needed column exists."""
    if args.dataset_name and args.train_file:
        raise UserError("pass either --dataset_name or --train_file, not both.")
    if len(set(columns)) < len(columns):
        raise UserError(f"the input, label and target must be different columns, got {columns}.")
    if args.dataset_name:
        raw = load_source(args.dataset_name, args.dataset_config_name)
    elif args.train_file:
        files = {"train": expand_files([args.train_file])}
        if args.validation_file:
            files["validation"] = expand_files([args.validation_file])
        raw = load_source(data_files=files)
    else:
        raw = DatasetDict({"train": Dataset.from_list(builtin())})
    if "train" not in raw:
        raise UserError(f"the dataset has no 'train' split (it has: {', '.join(raw)}).")
    missing = [c for c in columns if c not in raw["train"].column_names]
    if missing:
        raise UserError(
            f"column(s) {missing} not found; the data has {raw['train'].column_names}. "
            "Name the right ones with --text_column/--label_column/--target_column."
        )
    if len(raw["train"]) == 0:
        raise UserError(f"the training data {args.source} is empty.")
    validation = raw.get("validation") or raw.get("test")
    if validation is None:
        split = raw["train"].train_test_split(test_size=args.validation_split_percentage / 100, seed=seed)
        raw = DatasetDict({"train": split["train"], "validation": split["test"]})
    else:
        raw = DatasetDict({"train": raw["train"], "validation": validation})
    if args.max_train_samples:
        raw["train"] = raw["train"].select(range(min(args.max_train_samples, len(raw["train"]))))
    if args.max_eval_samples:
        raw["validation"] = raw["validation"].select(range(min(args.max_eval_samples, len(raw["validation"]))))
    return raw.select_columns(columns)


def drop_empty(ds: DatasetDict, column: str) -> tuple[DatasetDict, int]:
    """Remove rows whose `column` is missing or blank; return the data and how many were removed."""
    before = sum(len(d) for d in ds.values())
    ds = ds.filter(lambda values: [v is not None and (str(v).strip() if isinstance(v, str) else len(v) > 0) for v in values],
                   input_columns=column, batched=True)
    return ds, before - sum(len(d) for d in ds.values())
