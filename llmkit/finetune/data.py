"""Labelled data for fine-tuning: a Hub dataset, local csv/jsonl/parquet files, or a built-in sample."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from datasets import Dataset, DatasetDict, Json, Value

from llmkit.data.corpus import expand_files, load_source
from llmkit.errors import UserError
from llmkit.finetune.jsonfiles import quiet_json_loader, refuse_one_object
from llmkit.log import get_logger

logger = get_logger(__name__)

SOURCE, ROW = "__source__", "__row__"  # where each example came from (see load_table)


@dataclass
class FinetuneDataArguments:
    """Where the examples come from and which columns hold what (defaults depend on the recipe)."""

    dataset_name: str | None = field(
        default=None, metadata={"help": "A dataset on the Hub, e.g. 'imdb', 'conll2003', 'cnn_dailymail'."}
    )
    dataset_config_name: str | None = field(default=None, metadata={"help": "The dataset's configuration."})
    train_file: str | None = field(
        default=None, metadata={"help": "A local .csv/.jsonl/.json/.parquet training file."}
    )
    validation_file: str | None = field(
        default=None, metadata={"help": "A local validation file (default: split one off)."}
    )
    test_file: str | None = field(
        default=None,
        metadata={"help": "A local test file: scored once with the kept model, never used to choose it."},
    )
    text_column: str | None = field(
        default=None, metadata={"help": "The input column (text, or a list of words for tagging)."}
    )
    label_column: str | None = field(
        default=None, metadata={"help": "The label column (a label, a list of labels, or a list of tags)."}
    )
    target_column: str | None = field(
        default=None, metadata={"help": "The target text column (text-to-text, prompt/response)."}
    )
    max_length: int | None = field(
        default=None, metadata={"help": "Truncate inputs to this many tokens (truncation is reported)."}
    )
    max_target_length: int = field(
        default=64, metadata={"help": "Truncate targets to this many tokens (text-to-text)."}
    )
    validation_split_percentage: float = field(
        default=10.0, metadata={"help": "Share held out when there is no validation split."}
    )
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Use at most this many training examples."}
    )
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Use at most this many validation examples."}
    )

    def __post_init__(self) -> None:
        # 0 (or unset) --max_length is the recipe's default; a negative one crashed the tokenizer or was kept
        if self.max_length is not None and self.max_length < 0:
            raise UserError(f"--max_length must be 0 (the recipe's default) or more, got {self.max_length}.")
        if self.max_target_length < 1:
            raise UserError(f"--max_target_length must be at least 1, got {self.max_target_length}.")
        for name in ("max_train_samples", "max_eval_samples"):  # 0 used them all, -1 dropped the last one
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise UserError(
                    f"--{name} must be at least 1 (or left out: every example), got {getattr(self, name)}."
                )
        # else ignored: the files or the built-in data trained
        if self.dataset_config_name and not self.dataset_name:
            raise UserError(
                "--dataset_config_name names a configuration of --dataset_name; pass both, or neither."
            )
        # image recipes silently held out 1 image, or all but 1
        if not 0 < self.validation_split_percentage < 100:
            raise UserError(
                f"--validation_split_percentage must be between 0 and 100 (e.g. 10), got "
                f"{self.validation_split_percentage:g}; or pass a validation file or folder."
            )

    @property
    def source(self) -> str:
        """A short name of the data, for logs and the model card."""
        return self.dataset_name or self.train_file or "builtin"


def load_table(
    args: FinetuneDataArguments,
    builtin: Callable[[], list[dict]],
    columns: list[str],
    *,
    seed: int = 42,
    asked_by: dict[str, str] | None = None,
) -> DatasetDict:
    """Load {"train", "validation"} (+ "test" with --test_file) and check that every needed column exists.

    Each row keeps where it came from (SOURCE: "train", "validation" or "test"; ROW: its position there), so a
    message can name the file and line of a bad example whatever the shuffling. `asked_by` names the flag that
    asked for each column (default: --text_column/--label_column/--target_column), for the message when one is missing.
    """
    if args.dataset_name and args.train_file:
        raise UserError("pass either --dataset_name or --train_file, not both.")
    if (args.validation_file or args.test_file) and not args.train_file:
        raise UserError("--validation_file and --test_file go with --train_file.")
    if len(set(columns)) < len(columns):
        raise UserError(f"the input, label and target must be different columns, got {columns}.")
    if args.dataset_name:
        raw = load_source(args.dataset_name, args.dataset_config_name)
    elif args.train_file:
        files = {"train": expand_files([args.train_file], "--train_file")}
        for split, path in (("validation", args.validation_file), ("test", args.test_file)):
            if path:
                files[split] = expand_files([path], f"--{split}_file")
        for split, paths in files.items():
            if not any(_has_rows(Path(f)) for f in paths):
                # datasets' own message for this ("Instruction 'train' corresponds to no data") names no file
                raise UserError(
                    f"{', '.join(paths)} has no examples (a header or nothing at all): add rows to it"
                    + ("." if split == "train" else ", or leave it out.")
                )
        for split, paths in files.items():
            for path in paths:
                refuse_one_object(path, training=split == "train")
        _warn_if_scored_on_training_data(files)
        with quiet_json_loader():
            raw = load_source(data_files=files)
    else:
        raw = DatasetDict({"train": Dataset.from_list(builtin())})
    if "train" not in raw:
        raise UserError(f"the dataset has no 'train' split (it has: {', '.join(raw)}).")
    for split in ("train", "validation", "test") if args.train_file else ("train",):
        if split in raw:
            missing = [c for c in columns if c not in raw[split].column_names]
            if missing:
                flags = sorted(
                    {(asked_by or {}).get(c, "--text_column/--label_column/--target_column") for c in missing}
                )
                found = raw[split].column_names
                odd = next((sep for sep in ";\t|" if len(found) == 1 and sep in found[0]), None)
                hint = f" It looks {odd!r}-separated: save it with commas." if odd else ""
                raise UserError(
                    f"column(s) {missing} not found in {describe(args, split)}; the data has {found}. "
                    f"Name existing ones with {' and '.join(flags)}.{hint}"
                )
    if len(raw["train"]) == 0:
        raise UserError(f"the training data {args.source} is empty.")
    validation = raw.get("validation") if args.train_file else (raw.get("validation") or raw.get("test"))
    validation_name = "validation" if args.train_file or "validation" in raw else "test"
    test = raw.get("test") if args.test_file else None
    train = _tag(raw["train"], "train")
    if validation is None:  # held out of the training data: its rows keep the training file's positions
        split = _hold_out(train, args, seed)
        out = DatasetDict({"train": split["train"], "validation": split["test"]})
    else:
        out = DatasetDict({"train": train, "validation": _tag(validation, validation_name)})
    if test is not None:
        out["test"] = _tag(test, "test")
    for split in ("validation", "test"):
        if split in out and len(out[split]) == 0:
            raise UserError(
                f"the {split} data ({describe(args, split)}) has no examples; give it some, or leave it out."
            )
    return cap_samples(out, args).select_columns([*columns, SOURCE, ROW])


def cap_samples(data: DatasetDict, args) -> DatasetDict:
    """Keep the first --max_train_samples training and --max_eval_samples validation rows (all when unset)."""
    for split, cap in (("train", args.max_train_samples), ("validation", args.max_eval_samples)):
        if cap:
            data[split] = data[split].select(range(min(cap, len(data[split]))))
    return data


def _hold_out(train: Dataset, args: FinetuneDataArguments, seed: int) -> DatasetDict:
    """Split a validation share off the training data, or say why these rows cannot be split."""
    if len(train) < 2:
        raise UserError(
            f"{describe(args, 'train')} has only {len(train)} example: too few to train on and hold out a "
            "validation split. Add examples (a few per class at least), or pass a --validation_file."
        )
    try:
        return train.train_test_split(test_size=args.validation_split_percentage / 100, seed=seed)
    except ValueError:  # datasets/scikit-learn's message names parameters, not flags
        raise UserError(
            f"--validation_split_percentage {args.validation_split_percentage:g} of {len(train)} examples "
            f"({describe(args, 'train')}) leaves no training or no validation example; use a share between "
            "1 and 50, add examples, or pass a --validation_file."
        ) from None


def _has_rows(path: Path) -> bool:
    """Whether a local data file holds at least one example (a CSV needs a line after its header)."""
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".tsv", ".json", ".jsonl"):
        return True  # parquet and the like: their reader says what is wrong
    with path.open(errors="replace") as f:
        lines = list(itertools.islice((line for line in f if line.strip()), 2))
    if suffix in (".csv", ".tsv"):
        return len(lines) > 1
    return bool(lines) and "".join(line.strip() for line in lines) not in ("[]", "{}")


def _tag(ds: Dataset, source: str) -> Dataset:
    return ds.add_column(SOURCE, [source] * len(ds)).add_column(ROW, list(range(len(ds))))


def describe(args: FinetuneDataArguments, source: str) -> str:
    """The file (or dataset split) a SOURCE value stands for."""
    path = {"train": args.train_file, "validation": args.validation_file, "test": args.test_file}.get(source)
    return path or (f"{args.dataset_name} ({source} split)" if args.dataset_name else "the built-in sample")


def locate(args: FinetuneDataArguments, source: str, row: int) -> str:
    """Where an example is, for a message: 'data.csv line 7' for a single local file, else 'split row N'."""
    path = {"train": args.train_file, "validation": args.validation_file, "test": args.test_file}.get(source)
    files = expand_files([path], f"--{source}_file") if path else []
    if len(files) != 1:
        return f"{describe(args, source)}, row {row + 1}"
    file = Path(files[0])
    suffix = file.suffix.lower()
    if suffix in (".csv", ".tsv"):
        return f"{file} line {row + 2}"  # after the header (a quoted field spanning lines shifts this)
    if suffix == ".jsonl" or (
        suffix == ".json" and not file.read_text(errors="replace").lstrip().startswith("[")
    ):
        with file.open(errors="replace") as f:  # blank lines are skipped by the reader, so count the others
            lines = (n for n, text in enumerate(f, 1) if text.strip())
            return f"{file} line {next(itertools.islice(lines, row, None), row + 1)}"
    return f"{file} record {row + 1}"


def _warn_if_scored_on_training_data(files: dict[str, list[str]]) -> None:
    """Say so when the validation or test files are training files: their scores measure memorisation."""
    train = {Path(f).resolve() for f in files["train"]}
    for split in ("validation", "test"):
        same = [f for f in files.get(split, []) if Path(f).resolve() in train]
        same += [f for f in files.get(split, []) if f not in same and _same_bytes(Path(f), train)]
        if same:
            logger.warning(
                f"warning: the {split} file {same[0]} is also training data, so its scores measure how well the "
                "model remembers, not how well it generalises; pass examples the model does not train on."
            )


def _same_bytes(path: Path, others: set[Path]) -> bool:
    """Whether one of `others` has exactly the bytes of `path` (a copy of a training file)."""
    size = path.stat().st_size
    return any(o.stat().st_size == size and o.read_bytes() == path.read_bytes() for o in others)


def drop_empty(
    ds: DatasetDict, column: str, data_args: FinetuneDataArguments | None = None
) -> tuple[DatasetDict, int]:
    """Remove rows whose `column` is missing or blank; return the data and how many were removed.

    A column of numbers (a JSON answer 4, a CSV of digits) is read as their text. A split left with no row
    is refused, naming its file (`data_args`) and the columns it has."""
    before = sum(len(d) for d in ds.values())
    ds = DatasetDict(ds)  # the caller's splits stay as they were
    for split, part in ds.items():
        feature = part.features.get(column)
        if isinstance(feature, Json):  # numbers or objects beside text: a TypeError traceback further on
            odd = next((v for v in part[column] if v is not None and not isinstance(v, (str, list))), None)
            if odd is not None:  # strings beside lists of words are located by the tagging checks
                raise UserError(
                    f"the {column!r} column of the {split} data holds {type(odd).__name__} values such as "
                    f"{odd!r:.60} beside text; each {column!r} must be text (or a list of words): fix or remove "
                    "those records."
                )
        if isinstance(feature, Value) and feature.dtype not in ("string", "large_string"):
            logger.info(
                f"the {column!r} column of the {split} data holds {feature.dtype} values: read as text"
            )
            ds[split] = part.cast_column(column, Value("string"))
    ds = ds.filter(
        lambda values: [
            v is not None and (str(v).strip() if isinstance(v, str) else len(v) > 0) for v in values
        ],
        input_columns=column,
        batched=True,
    )
    for split, part in ds.items():
        if len(part) == 0:  # every row dropped: a traceback further on ("Column 'input_ids' doesn't exist")
            own_file = data_args and (split == "train" or getattr(data_args, f"{split}_file", None))
            where = describe(data_args, split) if own_file else f"the {split} data"
            raise UserError(
                f"every example in {where} has an empty {column!r}, so none is left to "
                f"{'train on' if split == 'train' else 'score'}: fill that column in, or name the one that "
                "holds the text with its flag (--text_column, --target_column)."
            )
    return ds, before - sum(len(d) for d in ds.values())
