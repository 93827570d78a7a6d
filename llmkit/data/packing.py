"""Packing: documents joined with end-of-text and cut into equal blocks, so no token is padding.

Classic walkthroughs pad every document to the block size; on short documents most of each
batch is then padding that costs compute and teaches nothing. Packing drops at most
`block_size - 1` tokens of the whole corpus (its very end) and pads nothing.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import torch
from datasets import Dataset, Features, List, Value, concatenate_datasets
from transformers import PreTrainedTokenizerBase

from llmkit.data.tokenizer import encode_documents

PACK_BATCH = 1000  # documents per packing batch; each batch leaves one short tail, re-packed at the end


def tokenize(ds: Dataset, tokenizer: PreTrainedTokenizerBase, num_proc: int | None = None) -> Dataset:
    """Tokenize the "text" column in batches, appending end-of-text to every document."""

    def encode(texts: list[str]) -> dict:
        return {"input_ids": encode_documents(tokenizer, texts)}

    return ds.map(
        encode,
        input_columns="text",
        batched=True,
        remove_columns=ds.column_names,
        num_proc=num_proc,
        # stated, not inferred: a batch of Python lists beside the long documents' arrays was stored as JSON
        features=Features({"input_ids": List(Value("int32"))}),
        desc="Tokenizing",
    )


def cut_blocks(docs: list, block_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate token sequences and cut them into full blocks; return (blocks as rows, leftover tail)."""
    flat = np.concatenate([np.asarray(d) for d in docs]) if len(docs) else np.zeros(0, np.int64)
    n = len(flat) - len(flat) % block_size
    return flat[:n].reshape(-1, block_size), flat[n:]


def pack(
    ds: Dataset, tokenizer: PreTrainedTokenizerBase, block_size: int, num_proc: int | None = None
) -> Dataset:
    """Tokenize and pack a text dataset into an "input_ids" dataset of `block_size`-token blocks."""
    # Arrow in, Arrow out: a Python list of ints costs 36 bytes a token, so a corpus that is one huge document
    # took several times its token count in bytes to pack.
    tokenized = tokenize(ds, tokenizer, num_proc).with_format("arrow")

    def pack_batch(docs: pa.ChunkedArray) -> pa.Table:
        # One NumPy array over the batch's tokens, cut into Arrow rows of block_size tokens without a copy;
        # the last, shorter row is re-packed below, not dropped.
        flat = np.concatenate([c.flatten().to_numpy() for c in getattr(docs, "chunks", [docs])])
        ends = np.append(np.arange(0, len(flat), block_size), len(flat))
        return pa.table({"input_ids": pa.ListArray.from_arrays(pa.array(ends), pa.array(flat))})

    packed = tokenized.map(
        pack_batch,
        input_columns="input_ids",
        batched=True,
        batch_size=PACK_BATCH,
        num_proc=num_proc,
        desc=f"Packing into blocks of {block_size}",
    )
    full = packed.filter(
        lambda ids: [len(x) == block_size for x in ids],
        input_columns="input_ids",
        batched=True,
        num_proc=num_proc,
    )
    tails = packed.filter(
        lambda ids: [len(x) < block_size for x in ids],
        input_columns="input_ids",
        batched=True,
        num_proc=num_proc,
    )
    extra, _ = cut_blocks(tails["input_ids"], block_size)  # one batch's tail can exceed the others' gaps
    if len(extra):
        full = concatenate_datasets([full, Dataset.from_dict({"input_ids": extra}, features=full.features)])
    return full.with_format("torch")


def collate_blocks(features: list[dict]) -> dict:
    """Stack packed blocks; the labels are the inputs (the model shifts them).

    transformers' DataCollatorForLanguageModeling would mask every end-of-text label when the pad
    token is end-of-text, so the model would never learn where documents end.
    """
    # .long(): blocks saved by `llmkit tokenize` are uint16 on disk; embeddings need int64 indices.
    ids = torch.stack([torch.as_tensor(f["input_ids"]) for f in features]).long()
    return {"input_ids": ids, "labels": ids}
