"""Packing: documents joined with end-of-text and cut into equal blocks, so no token is padding.

Classic walkthroughs pad every document to the block size; on short documents most of each
batch is then padding that costs compute and teaches nothing. Packing drops at most
`block_size - 1` tokens of the whole corpus (its very end) and pads nothing.
"""

from __future__ import annotations

from itertools import chain

import torch
from datasets import Dataset, concatenate_datasets
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
        desc="Tokenizing",
    )


def cut_blocks(docs: list[list[int]], block_size: int) -> tuple[list[list[int]], list[int]]:
    """Concatenate token lists and cut them into full blocks; return (blocks, leftover tail)."""
    flat = list(chain.from_iterable(docs))  # chain, not sum(): sum of lists is quadratic
    n = len(flat) - len(flat) % block_size
    return [flat[i : i + block_size] for i in range(0, n, block_size)], flat[n:]


def pack(
    ds: Dataset, tokenizer: PreTrainedTokenizerBase, block_size: int, num_proc: int | None = None
) -> Dataset:
    """Tokenize and pack a text dataset into an "input_ids" dataset of `block_size`-token blocks."""
    tokenized = tokenize(ds, tokenizer, num_proc)

    def pack_batch(docs: list[list[int]]) -> dict:
        blocks, tail = cut_blocks(docs, block_size)
        return {"input_ids": blocks + ([tail] if tail else [])}  # the tail is re-packed below, not dropped

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
    if extra:
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
