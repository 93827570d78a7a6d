"""Peak memory of packing one huge document (a one-line corpus) in `pretrain`/`finetune-gpt2`'s in-memory path.

    python benchmarks/bench_packing_memory.py                 # 4M words on one line (26 MB, ~12M tokens)
    python benchmarks/bench_packing_memory.py --words 1000000

The corpus is random words drawn at run time (never committed). A 2,000-token BPE is trained on its first
2 MB, then `llmkit.data.pack` tokenizes and packs the one document into blocks of 256 in a fresh datasets
cache. Printed: blocks, tokens, the peak resident memory above what the loaded text and tokenizer already took
(ru_maxrss), and that per token.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--words", type=int, default=4_000_000)
    parser.add_argument("--block_size", type=int, default=256)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        os.environ["HF_DATASETS_CACHE"] = cache  # read before datasets is imported
        from datasets import Dataset

        from llmkit.data.packing import pack
        from llmkit.data.tokenizer import get_tokenizer

        rng = random.Random(0)
        letters = "abcdefghijklmnopqrstuvwxyz"
        vocab = ["".join(rng.choice(letters) for _ in range(rng.randint(2, 9))) for _ in range(5000)]
        text = " ".join(rng.choice(vocab) for _ in range(args.words))
        tokenizer = get_tokenizer(None, 2000, [text[:2_000_000]])
        ds = Dataset.from_dict({"text": [text]})
        del text
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        started = time.perf_counter()
        packed = pack(ds, tokenizer, args.block_size)
        seconds = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    tokens = len(packed) * args.block_size
    above = peak - before
    print(
        json.dumps(
            {
                "blocks": len(packed),
                "tokens": tokens,
                "peak_mb_above_loaded": round(above),
                "bytes_per_token": round(above * 2**20 / tokens, 1),
                "seconds": round(seconds, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
