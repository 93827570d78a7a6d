"""The corpus flags that cannot go together, or that the run would not read: each is refused with one line
naming the flag and the fix (a flag read nowhere used to be ignored in silence)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmkit.errors import UserError

if TYPE_CHECKING:
    from llmkit.data.corpus import DataArguments


def check_data_flags(args: DataArguments) -> None:
    """UserError for a corpus flag that conflicts with another or that this run would not read."""
    if args.dataset_name and args.train_files:
        raise UserError("pass either --dataset_name or --train_files, not both.")
    # else ignored: the files or the built-in corpus trained
    if args.dataset_config_name and not args.dataset_name:
        raise UserError(
            "--dataset_config_name names a configuration of --dataset_name; pass both, or neither."
        )
    # read only beside --train_files: with a Hub dataset, the built-in corpus or a tokenized dataset the run
    # scored its own validation split instead, in silence
    if args.validation_files and not args.train_files:
        raise UserError(
            "--validation_files goes with --train_files; a --dataset_name, a --tokenized_dataset or the "
            "built-in corpus brings its own validation split (or holds out --validation_split_percentage)."
        )
    if args.validation_split_percentage is not None:
        _check_validation_split_percentage(args)
    # else ignored: a loaded corpus held out --validation_split_percentage, given files were the split
    if args.streaming_validation_documents is not None and not args.streaming:
        raise UserError(
            "--streaming_validation_documents is read only with --streaming; without it, "
            "--validation_split_percentage sizes the validation split."
        )
    if args.streaming_validation_documents is not None and args.validation_files:
        raise UserError(
            "--streaming_validation_documents holds out the stream's first documents; --validation_files "
            "already give the validation split: drop one of the two."
        )
    if args.sample_by not in (None, "line", "paragraph", "document"):
        raise UserError(f"--sample_by must be 'line', 'paragraph' or 'document', got {args.sample_by!r}.")
    # else ignored: a Hub dataset, a tokenized one or the built-in corpus comes as documents already
    if args.sample_by and not args.train_files:
        raise UserError(
            "--sample_by splits .txt/.md --train_files into documents; a --dataset_name, a "
            "--tokenized_dataset or the built-in corpus is documents already: drop --sample_by."
        )
    if args.tokenized_dataset and (args.dataset_name or args.train_files or args.streaming):
        raise UserError(
            "--tokenized_dataset already holds the corpus; drop --dataset_name/--train_files/--streaming."
        )
    if args.preprocessing_num_workers is not None and args.preprocessing_num_workers < 1:
        # datasets' "num_proc must be >= 0 or None" traceback after the tokenizer had trained
        raise UserError(
            f"--preprocessing_num_workers must be at least 1 (leave it out for one process), got "
            f"{args.preprocessing_num_workers}."
        )
    # else ignored: a stream is tokenized as it is read, a tokenized dataset is packed already
    if args.preprocessing_num_workers is not None and (args.streaming or args.tokenized_dataset):
        raise UserError(
            "--preprocessing_num_workers tokenizes a loaded corpus in parallel; "
            + (
                "a --streaming corpus is tokenized as it is read"
                if args.streaming
                else "a --tokenized_dataset is packed already"
            )
            + ": drop it."
        )
    if args.block_size is not None and args.block_size < 2:
        raise UserError(f"--block_size must be at least 2, got {args.block_size}.")


def _check_validation_split_percentage(args: DataArguments) -> None:
    """Refuse a share that cannot work, or one the run would not read."""
    if not 0 < args.validation_split_percentage < 100:
        raise UserError(
            f"--validation_split_percentage must be above 0 and below 100, got {args.validation_split_percentage}."
        )
    # else ignored: the given files (or the stream's first documents) were the validation split
    if args.validation_files:
        raise UserError(
            "--validation_split_percentage carves a validation split off the training data; --validation_files "
            "already give one: drop one of the two."
        )
    if args.streaming:
        raise UserError(
            "--validation_split_percentage is not read when streaming; pass --streaming_validation_documents N "
            "to hold out the stream's first N documents."
        )
