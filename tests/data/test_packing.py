"""Packing keeps every token and pads nothing."""

from collections import Counter
from itertools import chain

import pytest
from datasets import Dataset

from llmkit.data import collate_blocks, pack, pack_stream, train_bpe_tokenizer
from llmkit.data import packing as packing_module

DOCS = [f"Document {i} says {'many words ' * (i % 7)}and ends." for i in range(40)]


@pytest.fixture(scope="module")
def tokenizer():
    return train_bpe_tokenizer(DOCS * 3, vocab_size=300)


def _token_stream(tokenizer):
    return [ids + [tokenizer.eos_token_id] for ids in tokenizer(DOCS, add_special_tokens=False)["input_ids"]]


@pytest.mark.parametrize("pack_batch", [3, 1000])
def test_pack_keeps_every_token(tokenizer, monkeypatch, pack_batch):
    # small batches exercise the tail re-packing
    monkeypatch.setattr(packing_module, "PACK_BATCH", pack_batch)
    block = 16
    packed = pack(Dataset.from_dict({"text": DOCS}), tokenizer, block)
    blocks = [row.tolist() for row in packed["input_ids"]]
    expected = list(chain.from_iterable(_token_stream(tokenizer)))

    assert all(len(b) == block for b in blocks)  # no short block, so no padding anywhere
    kept = len(blocks) * block
    assert len(expected) - block < kept <= len(expected)  # only the corpus' final partial block is dropped
    assert not Counter(chain.from_iterable(blocks)) - Counter(expected)  # nothing invented
    assert sum(b.count(tokenizer.eos_token_id) for b in blocks) >= len(DOCS) - 1  # documents stay separated


def test_stream_packing_carries_tokens_across_documents(tokenizer):
    block = 16
    stream = pack_stream(Dataset.from_dict({"text": DOCS}).to_iterable_dataset(), tokenizer, block)
    blocks = [b["input_ids"].tolist() for b in stream]
    expected = list(chain.from_iterable(_token_stream(tokenizer)))
    assert list(chain.from_iterable(blocks)) == expected[: len(blocks) * block]  # exact order, no gaps
    assert len(expected) - len(blocks) * block < block


def test_collate_uses_inputs_as_labels_including_end_of_text(tokenizer):
    packed = pack(Dataset.from_dict({"text": DOCS}), tokenizer, 16)
    batch = collate_blocks([packed[0], packed[1]])
    assert batch["input_ids"].shape == (2, 16)
    assert (batch["labels"] == batch["input_ids"]).all()  # end-of-text is learned, not masked as padding
