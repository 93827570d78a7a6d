"""Tokenize a corpus once into packed blocks on disk; train from them memory-mapped, without re-tokenizing.

The folder `llmkit tokenize` writes is a `datasets` DatasetDict (`load_from_disk` works on it) with:
- `train/` and `validation/`: one column `input_ids`, fixed-length blocks in the narrowest unsigned
  integer type that holds the vocabulary (uint16 below 65,536 tokens: 2 bytes per token, not 8);
- `tokenizer/`: the tokenizer the blocks were made with (the model must use this one);
- `llmkit_tokenized.json`: tokenizer, block size, token counts, source, dtype.

The folder appears only when complete (llmkit.data.publish).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasets import Dataset, DatasetDict, Features, List, Value, load_from_disk
from datasets.arrow_writer import ArrowWriter
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase

from llmkit import record
from llmkit.data.corpus import DataArguments, load_corpus, short_split_error
from llmkit.data.publish import fresh_work_dir, publish, recover_publish
from llmkit.data.tokenizer import (
    DEFAULT_BPE_VOCAB,
    check_vocab_size_flag,
    encode_documents,
    get_tokenizer,
    load_tokenizer,
    tokenizer_fingerprint,
    tokenizer_training_texts,
)
from llmkit.errors import UserError
from llmkit.folders import not_the_working_folder, writable_folder
from llmkit.log import configure_logging, get_logger

logger = get_logger(__name__)

METADATA = "llmkit_tokenized.json"
FORMAT = "llmkit-tokenized/1"
DEFAULT_BLOCK_SIZE = 1024
ENCODE_BATCH = 1000  # documents per tokenizer call


@dataclass
class TokenizeArguments:
    """Where the tokenized dataset goes and which tokenizer makes it."""

    output_dir: str = field(metadata={"help": "The folder to write (a datasets save_to_disk folder)."})
    tokenizer_name: str | None = field(
        default=None,
        metadata={
            "help": "A tokenizer on the Hub or a local folder (default: train a byte-level BPE on the corpus, as pretraining does)."
        },
    )
    vocab_size: int | None = field(
        default=None,  # not 8192: an explicit value beside --tokenizer_name must be told from the default
        metadata={
            "help": f"Vocabulary size of the BPE trained on the corpus (default {DEFAULT_BPE_VOCAB}; refused with a "
            "--tokenizer_name of another size)."
        },
    )
    num_proc: int | None = field(
        default=None, metadata={"help": "Processes that tokenize in parallel (default: one)."}
    )
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Replace output_dir if it already holds a tokenized dataset."}
    )
    seed: int = field(
        default=42,
        metadata={"help": "Seed of the train/validation split when the source has no validation split."},
    )

    def __post_init__(self) -> None:
        if self.num_proc is not None and self.num_proc < 1:
            raise UserError(f"--num_proc must be at least 1, got {self.num_proc}.")
        if not 0 <= self.seed < 2**32:  # NumPy's seeding took a traceback
            raise UserError(f"--seed must be between 0 and 2**32 - 1, got {self.seed}.")


def narrowest_dtype(vocab_size: int) -> str:
    """The smallest unsigned integer type that holds every token id."""
    for dtype in ("uint8", "uint16", "uint32"):
        if vocab_size <= np.iinfo(dtype).max + 1:
            return dtype
    return "uint64"


def tokenize_corpus(data_args: DataArguments, args: TokenizeArguments) -> Path:
    """Tokenize and pack a corpus into a memory-mappable dataset folder; return its path."""
    started = time.perf_counter()
    configure_logging()
    if data_args.tokenized_dataset:
        raise UserError(
            "--tokenized_dataset names a folder to train from; `llmkit tokenize` writes one with --output_dir."
        )
    if data_args.preprocessing_num_workers is not None:  # else read nowhere: one process tokenized
        raise UserError(
            "`llmkit tokenize` takes --num_proc N for parallel tokenizing; --preprocessing_num_workers is pretrain's."
        )
    # absolute: `.` has no name to make `.NAME.tmp-PID` of
    out = Path(os.path.abspath(Path(args.output_dir).expanduser()))
    not_the_working_folder(out, "--output_dir", "tokenized")
    recover_publish(out, METADATA)
    _check_replaceable(out, args.overwrite_output_dir)
    # the dataset is made beside it, then renamed into place
    writable_folder(out.parent, f"--output_dir {args.output_dir}")
    block_size = data_args.block_size or DEFAULT_BLOCK_SIZE
    work = fresh_work_dir(out)

    try:
        corpus = load_corpus(data_args, seed=args.seed)
        texts = tokenizer_training_texts(corpus["train"], data_args.streaming)
        tokenizer = get_tokenizer(args.tokenizer_name, args.vocab_size or DEFAULT_BPE_VOCAB, texts)
        check_vocab_size_flag(args.vocab_size, args.tokenizer_name, len(tokenizer), "the blocks hold its ids")
        dtype = narrowest_dtype(len(tokenizer))
        logger.info(
            f"tokenizer: {len(tokenizer)} tokens ({args.tokenizer_name or 'byte-level BPE trained on the corpus'}); "
            f"blocks of {block_size} tokens stored as {dtype}"
        )

        splits, counts = {}, {}
        for name, ds in corpus.items():
            if data_args.streaming:
                ds = Dataset.from_generator(
                    _stream_rows, gen_kwargs={"ds": ds}, cache_dir=str(work / "cache")
                )
            splits[name], counts[name] = _pack_split(
                ds, name, tokenizer, block_size, dtype, args.num_proc, work
            )
        for name in ("train", "validation"):
            if counts[name]["blocks"] == 0:
                raise short_split_error(name, corpus, block_size)

        DatasetDict(splits).save_to_disk(str(work / "data"), num_proc=None)
        data = work / "data"
        tokenizer.save_pretrained(data / "tokenizer")
        meta, metrics = _write_records(
            data, out, (data_args, args), counts, vocab_size=len(tokenizer), dtype=dtype, started=started
        )
        if not args.overwrite_output_dir and (out / METADATA).is_file():
            raise UserError(
                f"another `llmkit tokenize` wrote {out} while this one ran; its dataset is kept and this "
                "one's discarded. Pass --overwrite_output_dir true to replace it, or another --output_dir."
            )
        publish(data, out)
    except KeyboardInterrupt:
        # tokenize has no checkpoints: say what the interruption left, not what a training run would
        kept = f"{out} is unchanged" if out.exists() else f"nothing was written to {out}"
        raise KeyboardInterrupt(
            f"{kept}; the partial work is deleted; run the same command to start again."
        ) from None
    finally:
        shutil.rmtree(work, ignore_errors=True)  # after success its content was moved out
    record.print_summary(
        metrics,
        title=f"tokenize: {data_args.source}, blocks of {block_size} tokens ({meta['tokenizer']})",
        use=[
            f"llmkit pretrain --tokenized_dataset {shlex.quote(str(out))}",
            f'datasets.load_from_disk("{out}")',
        ],
    )
    return out


def _check_replaceable(out: Path, overwrite: bool) -> None:
    """An existing output_dir is used only if empty, or replaced with --overwrite_output_dir if tokenize wrote it."""
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return
    if (out / METADATA).is_file():
        if not overwrite:
            raise UserError(
                f"{out} already exists and holds a tokenized dataset; pass --overwrite_output_dir true or another "
                "--output_dir."
            )
        return
    what = "a folder of other files" if out.is_dir() else "a file"
    raise UserError(
        f"{out} is {what}, not a tokenized dataset; --overwrite_output_dir replaces only a dataset that "
        "`llmkit tokenize` wrote, so pass another --output_dir."
    )


def _write_records(
    data: Path, out: Path, arguments: tuple, counts: dict, *, vocab_size: int, dtype: str, started: float
) -> tuple[dict, dict]:
    """metrics.json (the run record every recipe leaves), then llmkit_tokenized.json, whose presence means complete."""
    data_args, args = arguments
    block_size = data_args.block_size or DEFAULT_BLOCK_SIZE
    meta = {
        "format": FORMAT,
        "tokenizer": args.tokenizer_name or "byte-level BPE trained on the corpus",
        "vocab_size": vocab_size,
        "block_size": block_size,
        "dtype": dtype,
        "source": data_args.source,
        "splits": counts,
        "seconds": round(time.perf_counter() - started, 1),
        "arguments": {
            "data": {k: v for k, v in asdict(data_args).items() if v is not None},
            "tokenize": asdict(args),
        },
    }
    figures = {
        "train_blocks": counts["train"]["blocks"],
        "train_tokens": counts["train"]["tokens"],
        "validation_blocks": counts["validation"]["blocks"],
    }
    # the run record every recipe leaves (no training here: no steps, no loss)
    common = {"global_step": 0, "train_loss": None, "final_train_loss": None, "headline": figures}
    metrics = record.write_metrics(data, "tokenize", {**common, "output_dir": str(out)})
    # written last: its presence means "complete"
    (data / METADATA).write_text(json.dumps(meta, indent=2))
    return meta, metrics


def _stream_rows(ds):
    yield from ds


def _pack_split(
    ds: Dataset,
    name: str,
    tokenizer: PreTrainedTokenizerBase,
    block_size: int,
    dtype: str,
    num_proc: int | None,
    work: Path,
) -> tuple[Dataset, dict]:
    """Tokenize one split (in parallel), then cut the token stream into blocks written as Arrow."""

    def encode(texts: list[str]) -> dict:
        return {"input_ids": encode_documents(tokenizer, texts)}

    cache = work / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    tokenized = ds.map(
        encode,
        input_columns="text",
        batched=True,
        batch_size=ENCODE_BATCH,
        remove_columns=ds.column_names,
        num_proc=num_proc if num_proc and num_proc > 1 else None,
        features=Features({"input_ids": List(Value(dtype))}),
        cache_file_name=str(cache / f"{name}-tokens.arrow"),
        desc=f"Tokenizing {name}",
    )
    features = Features({"input_ids": List(Value(dtype), length=block_size)})
    path = cache / f"{name}-blocks.arrow"
    column = tokenized.data.column("input_ids")  # memory-mapped; its flat values are the packed token stream
    carry = np.empty(0, dtype=dtype)
    blocks = 0
    with ArrowWriter(features=features, path=str(path)) as writer:
        for chunk in tqdm(column.chunks, desc=f"Packing {name} into blocks of {block_size}", unit="chunk"):
            stream = np.concatenate([carry, chunk.flatten().to_numpy(zero_copy_only=False)])
            n = len(stream) // block_size
            if n:
                values = pa.array(stream[: n * block_size])
                writer.write_table(
                    pa.table({"input_ids": pa.FixedSizeListArray.from_arrays(values, block_size)})
                )
                blocks += n
            # The tail waits for the next chunk; only the split's very end is dropped.
            carry = stream[n * block_size :]
        writer.finalize()
    documents = len(tokenized)
    tokens = int(pc.sum(pc.list_value_length(column)).as_py() or 0)
    del tokenized, column
    return Dataset.from_file(str(path)), {
        "documents": documents,
        "tokens": tokens,
        "blocks": blocks,
        "block_tokens": blocks * block_size,
    }


def load_tokenized(path: str | Path) -> tuple[DatasetDict, PreTrainedTokenizerBase, dict]:
    """Open a folder written by `llmkit tokenize`: memory-mapped splits, its tokenizer and its metadata."""
    root = Path(path).expanduser()
    meta_file = root / METADATA
    if not meta_file.is_file():
        hint = ""
        if root.is_dir():
            hint = " (an unfinished run leaves only a hidden .tmp folder; run `llmkit tokenize` again)"
        elif any(root.parent.glob(f".{root.name}.old-*")):
            hint = f" (a killed `llmkit tokenize --overwrite_output_dir` left it aside; run `llmkit tokenize --output_dir {root} ...` again, which puts it back first)"
        raise UserError(
            f"{root} is not a tokenized dataset: it has no {METADATA}{hint}. Create one with `llmkit tokenize --output_dir {root} ...`."
        )
    meta = json.loads(meta_file.read_text())
    if meta.get("format") != FORMAT:
        raise UserError(
            f"{root} was written in format {meta.get('format')!r}; this llmkit reads {FORMAT!r}. Tokenize it again."
        )
    splits = load_from_disk(str(root))
    tokenizer = load_tokenizer(str(root / "tokenizer"))
    if len(tokenizer) != meta["vocab_size"]:
        raise UserError(
            f"{root}/tokenizer has {len(tokenizer)} tokens but the blocks were made with {meta['vocab_size']}; tokenize again."
        )
    return splits.with_format("torch"), tokenizer, meta


def check_tokenized(
    meta: dict,
    root: str,
    tokenizer: PreTrainedTokenizerBase,
    model,
    *,
    block_size: int | None = None,
    tokenizer_name: str | None = None,
    vocab_size: int | None = None,
) -> int:
    """Check the training flags and the model against a tokenized dataset; return the block size to train with."""
    if tokenizer_name and not _same_tokenizer(tokenizer_name, tokenizer):
        raise UserError(
            f"--tokenizer_name {tokenizer_name!r} cannot apply to {root}: its blocks were made with the tokenizer "
            "saved in it, and this one differs. Drop --tokenizer_name, or run `llmkit tokenize` again with that tokenizer."
        )
    if vocab_size is not None and vocab_size != meta["vocab_size"]:
        raise UserError(
            f"--vocab_size {vocab_size} differs from {root}'s tokenizer of {meta['vocab_size']} tokens; drop --vocab_size "
            f"(the model is sized from the dataset's tokenizer), or run `llmkit tokenize --vocab_size {vocab_size}` again."
        )
    if block_size is not None and block_size != meta["block_size"]:
        raise UserError(
            f"--block_size {block_size} differs from {root}'s blocks of {meta['block_size']} tokens; "
            f"drop --block_size, or run `llmkit tokenize --block_size {block_size}` again."
        )
    if meta["block_size"] > model.config.n_positions:
        raise UserError(
            f"{root} holds blocks of {meta['block_size']} tokens but the model's context is {model.config.n_positions}; "
            f"pass --n_positions {meta['block_size']}, or run `llmkit tokenize --block_size {model.config.n_positions}` again."
        )
    if meta["vocab_size"] > model.config.vocab_size:
        raise UserError(
            f"{root}'s tokenizer has {meta['vocab_size']} tokens but the model's vocabulary is {model.config.vocab_size}; "
            "drop --vocab_size so the model is sized from the dataset's tokenizer."
        )
    return meta["block_size"]


def _same_tokenizer(name: str, tokenizer: PreTrainedTokenizerBase) -> bool:
    """Whether tokenizer `name` maps text to the same ids as `tokenizer` (content, not the name, decides)."""
    try:
        named = load_tokenizer(name)
    except UserError:
        return False  # one that cannot be loaded is not this one
    return tokenizer_fingerprint(named) == tokenizer_fingerprint(tokenizer)
