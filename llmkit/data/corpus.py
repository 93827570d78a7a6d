"""Where the text comes from: the Hub (optionally streamed), local files, or the built-in corpus."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from datasets import Dataset, DatasetDict, IterableDatasetDict, load_dataset

from llmkit.data.builtin import builtin_texts
from llmkit.data.filecheck import check_encoding, find_bad_file, has_nul
from llmkit.data.flags import check_data_flags
from llmkit.errors import UserError
from llmkit.folders import visible_files
from llmkit.log import get_logger, is_main_process

logger = get_logger(__name__)
# File suffix -> `datasets` builder that reads it.
BUILDERS = {
    ".txt": "text",
    ".md": "text",
    ".json": "json",
    ".jsonl": "json",
    ".parquet": "parquet",
    ".csv": "csv",
}

DEFAULT_VALIDATION_PERCENTAGE = 5.0
DEFAULT_STREAMING_VALIDATION_DOCUMENTS = 1000


@dataclass
class DataArguments:
    """Which corpus to train on and how to cut it into blocks."""

    dataset_name: str | None = field(
        default=None, metadata={"help": "A dataset on the Hub, e.g. 'wikitext' or 'HuggingFaceFW/fineweb'."}
    )
    dataset_config_name: str | None = field(
        default=None, metadata={"help": "The dataset's configuration, e.g. 'wikitext-103-raw-v1'."}
    )
    train_files: list[str] | None = field(
        default=None, metadata={"help": "Local .txt/.md/.jsonl/.json/.parquet/.csv files or folders."}
    )
    validation_files: list[str] | None = field(
        default=None,
        metadata={"help": "Local validation files (default: carve a split off the training data)."},
    )
    text_column: str = field(default="text", metadata={"help": "The column holding the text."})
    streaming: bool = field(
        default=False,
        metadata={
            "help": "Stream the dataset instead of downloading it (for corpora larger than disk); needs --max_steps."
        },
    )
    validation_split_percentage: float | None = field(
        default=None,  # not 5: an explicit value beside --validation_files must be told from the default
        metadata={
            "help": f"Share of documents held out for validation when the source has no validation split "
            f"(default {DEFAULT_VALIDATION_PERCENTAGE:g})."
        },
    )
    streaming_validation_documents: int | None = field(
        default=None,  # not 1000: an explicit value without --streaming must be told from the default
        metadata={
            "help": f"Documents held out for validation when streaming a source with no validation split "
            f"(default {DEFAULT_STREAMING_VALIDATION_DOCUMENTS})."
        },
    )
    sample_by: str | None = field(
        default=None,  # not "paragraph": an explicit value with a Hub dataset must be told from the default
        metadata={
            "help": "How .txt/.md files split into documents: 'line', 'paragraph' (the default) or 'document'."
        },
    )
    block_size: int | None = field(
        default=None,
        metadata={
            "help": "Tokens per training block (default: pretrain uses the model's context length, tokenize 1024)."
        },
    )
    preprocessing_num_workers: int | None = field(
        default=None, metadata={"help": "Processes for tokenizing and packing."}
    )
    tokenized_dataset: str | None = field(
        default=None,
        metadata={
            "help": "Train from a folder written by `llmkit tokenize` (memory-mapped, no re-tokenizing) instead of a text corpus."
        },
    )

    def __post_init__(self) -> None:
        check_data_flags(self)

    @property
    def held_out_share(self) -> float:
        """The share of documents held out when the source has no validation split."""
        if self.validation_split_percentage is None:
            return DEFAULT_VALIDATION_PERCENTAGE
        return self.validation_split_percentage

    @property
    def source(self) -> str:
        """A short human-readable name of the corpus, for logs and metrics."""
        if self.tokenized_dataset:
            return f"tokenized:{self.tokenized_dataset}"
        if self.dataset_name:
            return self.dataset_name + (f"/{self.dataset_config_name}" if self.dataset_config_name else "")
        if self.train_files:
            return ", ".join(self.train_files)
        return "builtin:cpython-docs"


class HeldOutSplits(DatasetDict):
    """A corpus whose validation split is whole training documents drawn at random: when a split proves too short
    for one block, the fix differs from a validation split that was given."""


def short_split_error(name: str, corpus: DatasetDict | IterableDatasetDict, block_size: int) -> UserError:
    """The error for a split (train or validation) of fewer than block_size tokens, with a fix that can work for
    how that split was made: "raise --validation_split_percentage" did not help a corpus of 3 documents."""
    lower = f"or lower --block_size (now {block_size})"
    if not isinstance(corpus, HeldOutSplits):
        if name == "train":
            return UserError(
                f"the corpus has fewer than {block_size} tokens, not one training block; add text {lower}."
            )
        return UserError(
            f"the validation split has fewer than {block_size} tokens, not one block; give more validation text "
            f"(--validation_files, or --streaming_validation_documents when streaming), {lower}."
        )
    held, documents = len(corpus["validation"]), len(corpus["train"]) + len(corpus["validation"])
    split = "training" if name == "train" else "validation"
    what = (
        f"the {split} split has fewer than {block_size} tokens: it got {len(corpus[name])} of the corpus's "
        f"{documents} documents (whole ones, drawn at random)"
    )
    # at least one document is held out, and at most all but one
    if (held + 1 >= documents) if name == "validation" else (held <= 1):
        return UserError(
            f"{what}, and the corpus has too few documents to give both splits a block of text; pass --validation_files "
            f"with at least {block_size} tokens of text, {lower}."
        )
    change = "raise" if name == "validation" else "lower"
    return UserError(
        f"{what}; {change} --validation_split_percentage (which may not help when a few documents hold most of "
        f"the text), pass --validation_files, {lower}."
    )


def load_corpus(args: DataArguments, seed: int = 42) -> DatasetDict | IterableDatasetDict:
    """Load the corpus as {"train", "validation"} splits with one "text" column of non-empty documents."""
    if args.dataset_name:
        raw = _load_hub(args)
    elif args.train_files:
        raw = _load_files(args)
    else:
        if args.streaming:
            raise UserError(
                "--streaming needs --dataset_name or --train_files; the built-in corpus is small enough to load."
            )
        raw = DatasetDict({"train": Dataset.from_dict({"text": builtin_texts()})})

    if "train" not in raw:
        raise UserError(f"the dataset {args.source} has no 'train' split (it has: {', '.join(raw)}).")
    columns = raw["train"].column_names
    if columns is not None and args.text_column not in columns:
        raise UserError(
            f"the dataset has no column {args.text_column!r}; its columns are {columns}. Pass --text_column NAME."
        )

    kind = next(filter(None, (_not_text(split.features, args.text_column) for split in raw.values())), None)
    if kind:  # the empty-document filter below called .strip() on them: an AttributeError traceback
        raise UserError(
            f"the column {args.text_column!r} of {args.source} holds {kind}, not text: each record's "
            f"{args.text_column!r} must be a string. Fix those records, or pass --text_column NAME."
        )
    raw = (
        raw.select_columns([args.text_column])
        if args.text_column == "text"
        else raw.rename_column(args.text_column, "text").select_columns(["text"])
    )
    # Records (JSON, CSV, parquet, Hub rows) without text are worth a word; a text file's blank lines are not.
    records = (
        {} if args.streaming else {n: s.num_rows for n, s in raw.items() if s.info.builder_name != "text"}
    )
    raw = raw.filter(lambda text: [bool(t and t.strip()) for t in text], input_columns="text", batched=True)
    for name, before in records.items():
        split = raw[name]
        if before and split.num_rows < before and is_main_process():  # every rank reads the same corpus
            logger.warning(
                f"{args.source}: {before - split.num_rows:,} of {before:,} {name} records have no "
                f"text in {args.text_column!r} (missing, null or blank) and were left out."
            )

    validation = raw.get("validation")
    if args.streaming:
        if validation is None:
            n = args.streaming_validation_documents
            n = DEFAULT_STREAMING_VALIDATION_DOCUMENTS if n is None else n
            validation, train = raw["train"].take(n), raw["train"].skip(n)
        else:
            train = raw["train"]
        # an empty train split: without this, a tokenizer trained on nothing, then a generator's traceback
        if next(iter(train), None) is None:
            held = f" after the first {n:,} held out for validation" if raw.get("validation") is None else ""
            raise UserError(
                f"the streamed corpus {args.source} has no documents left to train on{held}; lower "
                "--streaming_validation_documents, or leave --streaming out for a corpus this small."
            )
        return IterableDatasetDict({"train": train, "validation": validation})

    if len(raw["train"]) == 0:
        raise UserError(f"the corpus {args.source} has no non-empty documents; pass files that contain text.")
    if validation is None or len(validation) == 0:
        if len(raw["train"]) < 2:
            raise UserError(
                f"the corpus {args.source} has a single document; give at least two, or pass --validation_files."
            )
        documents = len(raw["train"])
        held = math.ceil(documents * args.held_out_share / 100)  # as train_test_split rounds
        if held >= documents:  # else scikit-learn's "the resulting train set will be empty" traceback
            raise UserError(
                f"--validation_split_percentage {args.held_out_share:g} of {documents} documents "
                f"holds out {held}, leaving none to train on; lower it, or pass --validation_files."
            )
        split = raw["train"].train_test_split(test_size=args.held_out_share / 100, seed=seed)
        return HeldOutSplits({"train": split["train"], "validation": split["test"]})
    return DatasetDict({"train": raw["train"], "validation": validation})


def _not_text(features, column: str) -> str | None:
    """What a column holds when it is not strings ("int64 values", "lists", ...); None for text or unknown features."""
    from datasets import Json, Value

    feature = (features or {}).get(column)
    if feature is None or isinstance(feature, Value) and feature.dtype in ("string", "large_string"):
        return None
    if isinstance(feature, Value):
        return f"{feature.dtype} values"
    if isinstance(feature, Json):  # mixed JSON types in one field
        return "a mix of strings and other JSON values (numbers, lists or objects)"
    return f"{type(feature).__name__.lower()}s"


def _load_hub(args: DataArguments) -> DatasetDict | IterableDatasetDict:
    return load_source(args.dataset_name, args.dataset_config_name, streaming=args.streaming)


def _load_files(args: DataArguments) -> DatasetDict | IterableDatasetDict:
    data_files = {"train": expand_files(args.train_files)}
    if args.validation_files:
        data_files["validation"] = expand_files(args.validation_files)
    if args.sample_by and not any(
        BUILDERS.get(Path(f).suffix.lower()) == "text" for f in data_files["train"]
    ):
        # else ignored: each record was a document
        raise UserError(
            f"--sample_by splits .txt/.md files into documents; {args.source} holds records (one document "
            "each): drop --sample_by."
        )
    return load_source(
        data_files=data_files, streaming=args.streaming, sample_by=args.sample_by or "paragraph"
    )


def load_source(
    dataset_name: str | None = None,
    dataset_config_name: str | None = None,
    *,
    data_files: dict[str, list[str]] | None = None,
    streaming: bool = False,
    sample_by: str = "paragraph",
) -> DatasetDict | IterableDatasetDict:
    """Load a Hub dataset by name, or local files of one type; any failure becomes one clear UserError."""
    if dataset_name:
        try:
            return load_dataset(dataset_name, dataset_config_name, streaming=streaming)
        except Exception as err:  # the Hub raises many types: not found, gated, offline, bad config
            name = dataset_name + (f"/{dataset_config_name}" if dataset_config_name else "")
            raise UserError(
                f"could not load dataset {name!r} ({type(err).__name__}: {err}). Check the name and config, "
                "your network or HF_HUB_OFFLINE, or pass local files instead."
            ) from None
    suffixes = {Path(f).suffix.lower() for files in data_files.values() for f in files}
    builders = {BUILDERS[s] for s in suffixes}
    if len(builders) > 1:
        raise UserError(
            f"mixed file types {sorted(suffixes)}; pass files of one kind (.txt/.md, .json/.jsonl, .parquet or .csv)."
        )
    builder = builders.pop()
    kwargs = {}
    if builder == "text":
        # UTF-16 without a byte-order mark decodes as UTF-8 text full of NULs: one odd document, trained on
        for file in (f for fs in data_files.values() for f in fs):
            if has_nul(file):
                raise UserError(check_encoding(file))
        # utf-8-sig: a byte-order mark (Windows editors write one) would otherwise start the first document
        kwargs = {"sample_by": sample_by, "encoding": "utf-8-sig"}
    try:
        return load_dataset(builder, data_files=data_files, streaming=streaming, **kwargs)
    except Exception as err:  # malformed JSON/parquet/csv surfaces as several exception types
        problem = find_bad_file([f for fs in data_files.values() for f in fs], builder)
        if problem:
            raise UserError(problem) from None
        files = ", ".join(f for fs in data_files.values() for f in fs)
        raise UserError(f"could not read {files} as {builder} ({type(err).__name__}: {err}).") from None


def expand_files(paths: list[str], flag: str = "--train_files/--validation_files") -> list[str]:
    """Resolve files and folders (recursively, hidden ones left out: llmkit.folders) to the data files they hold;
    `flag` is the one a missing path was given to, for the message."""
    files: list[str] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            visible = visible_files(path)
            found = [str(p) for p in visible if p.suffix.lower() in BUILDERS]
            if not found:
                raise UserError(f"folder {path} holds no {'/'.join(BUILDERS)} files.")
            _say_left_out(path, [p for p in visible if p.suffix.lower() not in BUILDERS])
            files.extend(found)
        elif path.is_file():
            if path.suffix.lower() not in BUILDERS:
                raise UserError(
                    f"{path}: unsupported file type {path.suffix!r}; use one of {', '.join(BUILDERS)}."
                )
            files.append(str(path))
        elif path.exists():  # a named pipe, a device or a socket: the loader must read a file twice
            raise UserError(
                f"{path} is not a regular file (a pipe or a device); save its text to a file and pass that."
            )
        else:
            raise UserError(f"{path} does not exist; check the path given to {flag}.")
    empty = [f for f in files if Path(f).stat().st_size == 0]
    if len(empty) == len(files):
        raise UserError(f"every input file is empty: {', '.join(empty)}.")
    if empty and is_main_process():  # every rank expands the same paths: say it once
        logger.warning(f"left out {len(empty)} empty file(s): {_some(empty)}.")
    return [f for f in files if f not in empty]


def _say_left_out(folder: Path, others: list[Path]) -> None:
    """Warn about a folder's files of other types, which are not read: a compressed corpus (.jsonl.gz) or a
    README left out without a word looked like the whole folder had been trained on."""
    if not others or not is_main_process():  # every rank expands the same paths: say it once
        return
    kinds = sorted({p.suffix.lower() or "no suffix" for p in others})
    packed = [p for p in others if p.suffix.lower() in (".gz", ".bz2", ".xz", ".zst", ".zip")]
    hint = f"; decompress {_some(packed)} to train on them" if packed else ""
    logger.warning(
        f"{folder}: left out {len(others)} file(s) that are not {'/'.join(BUILDERS)} "
        f"({', '.join(kinds)}: {_some(others)}){hint}."
    )


def _some(paths: list, shown: int = 3) -> str:
    """The first few names of a list, and how many more."""
    names = ", ".join(str(p) for p in paths[:shown])
    return names + (f" and {len(paths) - shown} more" if len(paths) > shown else "")
