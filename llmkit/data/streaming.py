"""Streaming a corpus into packed blocks: every rank and every data-loader worker reads its own part.

With N ranks x W data-loader workers, consumer `rank * W + worker` of `N * W` gets its part through
`datasets.distributed.split_dataset_by_node`: whole shards (files) when their count divides N * W,
otherwise every (N * W)-th document (each consumer then reads the stream but tokenizes only its
share). Tokenizing and packing run inside the workers, so no process feeds the others.

accelerate would otherwise undo this: for an iterable dataset it either dispatches every batch from
rank 0 (`dispatch_batches=True`) or wraps it in `IterableDatasetShard`, which keeps one batch in N
of what each rank reads. `pretrain()` turns dispatching off and `KeepRankShards` makes the wrapper
a pass-through, the same way transformers neutralises it for samplers that are already rank-aware.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from accelerate.data_loader import IterableDatasetShard
from datasets import IterableDataset
from datasets.distributed import split_dataset_by_node
from transformers import PreTrainedTokenizerBase, TrainerCallback

from llmkit.data.packing import cut_blocks


class PackedStream(torch.utils.data.IterableDataset):
    """Pack a streamed text dataset on the fly; tokens carry over from one document to the next."""

    def __init__(
        self,
        ds: IterableDataset,
        tokenizer: PreTrainedTokenizerBase,
        block_size: int,
        rank: int = 0,
        world_size: int = 1,
        batch: int = 256,
    ):
        self.ds, self.tokenizer, self.block_size, self.batch = ds, tokenizer, block_size, batch
        self.rank, self.world_size = rank, world_size

    def consumer_part(self) -> IterableDataset:
        """The documents this (rank, data-loader worker) pair reads: disjoint from every other pair's."""
        info = torch.utils.data.get_worker_info()
        workers, worker = (info.num_workers, info.id) if info else (1, 0)
        consumers = self.world_size * workers
        if consumers == 1:
            return self.ds
        return split_dataset_by_node(self.ds, rank=self.rank * workers + worker, world_size=consumers)

    def __iter__(self) -> Iterator[dict]:
        carry: list[int] = []
        eos = self.tokenizer.eos_token_id
        # .iter() applies no worker split of its own (only __iter__ does), so the split above is the only one.
        for rows in self.consumer_part().iter(batch_size=self.batch):
            ids = self.tokenizer(rows["text"], add_special_tokens=False)["input_ids"]
            blocks, carry = cut_blocks([carry, *(doc + [eos] for doc in ids)], self.block_size)
            for block in blocks:
                yield {"input_ids": torch.tensor(block)}


def pack_stream(
    ds: IterableDataset,
    tokenizer: PreTrainedTokenizerBase,
    block_size: int,
    *,
    rank: int = 0,
    world_size: int = 1,
) -> PackedStream:
    """Tokenize and pack a streamed text dataset into blocks as it is read, this rank's part only."""
    return PackedStream(ds, tokenizer, block_size, rank, world_size)


class KeepRankShards(TrainerCallback):
    """Make accelerate's IterableDatasetShard pass a rank-aware PackedStream through untouched."""

    def on_train_begin(self, args, state, control, train_dataloader=None, **kwargs):
        shard = getattr(train_dataloader, "dataset", None)
        if isinstance(shard, IterableDatasetShard) and isinstance(shard.dataset, PackedStream):
            # Each rank already reads only its own documents; keeping 1 batch in N would drop data.
            shard.num_processes, shard.process_index = 1, 0
            # Without drop_last the wrapper fills a short final batch with the pass's first blocks again.
            shard.drop_last = args.dataloader_drop_last
