"""Pretraining speed: llmkit's recipe path against a compiled minimal GPT, interleaved, on identical batches.

    python benchmarks/bench_pretrain.py                    # CPU: the small and tiny shapes
    python benchmarks/bench_pretrain.py --device cuda      # GPU: GPT-2 124M, bf16, context 1024,
                                                           # micro-batch 12 x 8 and 32 x 3 (98,304 tokens per step)

Variants, each built fresh per round and timed after its warm-up (compilation) steps:
- `reference`: benchmarks/mingpt.py (nanoGPT's architecture, vocabulary padded to a multiple of 64),
  a plain loop with fused AdamW, bf16 autocast and torch.compile on CUDA;
- `llmkit`: the recipe's path: build_gpt2 + the chunked/fused loss + Trainer with PretrainingArguments'
  defaults (compile, bf16, TF32, fused AdamW on CUDA) and llmkit's ReportCallback;
- `hf-default` (CPU only unless --hf_default): GPT2LMHeadModel as a walkthrough builds it, `labels=` loss;
- `llmkit-<impl>` (with --loss_implementations chunked liger hf, instead of the above): the recipe's path with
  each loss implementation, side by side; liger is skipped (and said so) where it cannot be imported.
Every variant sees the very same micro-batches (drawn once from the Trainer's own seeded sampler) with
the same constant learning rate, so the loss after equal steps is comparable. Reported per variant:
median ms/step and tokens/s, MFU (dense peak of the GPU for bf16 from llmkit's table, or a measured
matmul peak), peak memory, validation loss, and for llmkit the steady tokens/s its own metrics report
next to the benchmark's wall clock of the same steps.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
from pathlib import Path

import torch
from datasets import Dataset
from transformers import GPT2Config, GPT2LMHeadModel, Trainer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mingpt import MinGPT  # noqa: E402
from pretrain_variants import llmkit_args, run_hf_default, run_llmkit, run_reference  # noqa: E402

from llmkit.data import builtin_texts, collate_blocks, load_corpus, pack, train_bpe_tokenizer  # noqa: E402
from llmkit.data.corpus import DataArguments  # noqa: E402
from llmkit.lm.loss import liger_available  # noqa: E402
from llmkit.lm.model import flops_per_token, padded_vocab_size  # noqa: E402
from llmkit.lm.throughput import device_peak  # noqa: E402

# name: (n_layer, n_head, n_embd, block_size, vocab, [(micro_batch, accumulation), ...])
SHAPES = {
    "small": (4, 4, 128, 64, 8192, [(12, 1)]),
    "tiny": (4, 4, 256, 128, 8192, [(16, 1)]),  # llmkit's default preset and CPU batch
    "gpt2": (12, 12, 768, 1024, 50257, [(12, 8), (32, 3)]),  # 124M at 98,304 tokens per optimizer step
}


@torch.no_grad()
def eval_loss(model: torch.nn.Module, val: list[dict], device: str) -> float:
    """Mean next-token loss on the validation batches (bf16 autocast on CUDA, like training)."""
    model.eval()
    losses = []
    for batch in val:
        ids = batch["input_ids"].to(device)
        with torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda"):
            out = model(ids, ids) if isinstance(model, MinGPT) else model(input_ids=ids, labels=ids).loss
        losses.append(float(out))
    return sum(losses) / len(losses)


def bench(
    name: str,
    blocks: Dataset,
    val: list[dict],
    device: str,
    steps: int,
    warmup: int,
    rounds: int,
    peak: float,
    variants: list[str],
    only: list[tuple[int, int]] | None = None,
) -> list[dict]:
    """Every (micro-batch, accumulation) setting of one shape, variants interleaved round by round."""
    n_layer, n_head, n_embd, block, vocab, settings = SHAPES[name]
    settings = only or settings
    shape = dict(n_layer=n_layer, n_head=n_head, n_embd=n_embd, n_positions=block)
    results = []
    for micro, accum in settings:
        need = (warmup + steps) * micro * accum
        train = Dataset.from_dict({"input_ids": [blocks[i % len(blocks)]["input_ids"] for i in range(need)]})
        probe = Trainer(
            model=GPT2LMHeadModel(GPT2Config(n_layer=1, n_head=1, n_embd=8, vocab_size=8, n_positions=block)),
            args=llmkit_args(device, micro, accum, steps, warmup, "/tmp/bench-probe"),
            train_dataset=train,
            data_collator=collate_blocks,
        )
        micro_batches = list(probe.get_train_dataloader())  # the Trainer's own (seeded) order, for everyone
        times: dict[str, list[float]] = {v: [] for v in variants}
        memory, losses, steady = {}, {}, {}
        for r in range(rounds):
            for v in variants:
                if device == "cuda":
                    torch.cuda.empty_cache()
                    torch.cuda.reset_peak_memory_stats()
                if v == "reference":
                    seconds, model = run_reference(vocab, shape, micro_batches, accum, warmup, device)
                elif v.startswith("llmkit"):
                    loss = v.partition("-")[2] or "auto"
                    seconds, model, own = run_llmkit(
                        vocab, shape, train, micro, accum, steps, warmup, device, block, peak, loss
                    )
                    steady[v] = (own, steps * micro * accum * block / seconds)
                else:
                    seconds, model = run_hf_default(vocab, shape, micro_batches, accum, warmup, device)
                times[v].append(seconds)
                memory[v] = round(torch.cuda.max_memory_allocated() / 2**30, 2) if device == "cuda" else None
                if r == rounds - 1:
                    losses[v] = round(eval_loss(model, val, device), 4)
                del model
                print(
                    f"  {name} {micro}x{accum} round {r + 1} {v:10s} {1000 * seconds / steps:8.1f} ms/step",
                    flush=True,
                )
        row = _summary(
            name, shape, vocab, (micro, accum, steps, warmup, rounds), peak, times, memory, losses, steady
        )
        print(json.dumps(row, indent=2), flush=True)
        results.append(row)
    return results


def _summary(
    name: str,
    shape: dict,
    vocab: int,
    setting: tuple,
    peak: float,
    times: dict,
    memory: dict,
    losses: dict,
    steady: dict,
) -> dict:
    """One setting's row: median ms/step, tokens/s, MFU, memory and loss per variant, and llmkit's ratios."""
    micro, accum, steps, warmup, rounds = setting
    block, variants = shape["n_positions"], list(times)
    tokens = micro * accum * block
    fpt = flops_per_token(GPT2Config(vocab_size=padded_vocab_size(vocab, 64), **shape), block)
    row = {
        "shape": name,
        "micro_batch": micro,
        "accumulation": accum,
        "tokens_per_step": tokens,
        "steps": steps,
        "warmup_steps": warmup,
        "rounds": rounds,
        "variants": {},
    }
    for v in variants:
        ms = 1000 * statistics.median(times[v]) / steps
        tps = tokens / (ms / 1000)
        row["variants"][v] = {
            "ms_per_step": round(ms, 1),
            "tokens_per_second": round(tps),
            "mfu": round(tps * fpt / peak, 4),
            "peak_memory_gib": memory[v],
            "val_loss_after_equal_steps": losses[v],
        }
    if "reference" in variants and "llmkit" in variants:
        row["llmkit_vs_reference"] = round(
            row["variants"]["llmkit"]["tokens_per_second"]
            / row["variants"]["reference"]["tokens_per_second"],
            3,
        )
    for v, (own, wall) in steady.items():  # the last round's
        row["variants"][v]["metrics_vs_wall_clock"] = round(own / wall, 3)
    if "llmkit" in steady:
        own, wall = steady["llmkit"]
        row["llmkit_metrics_vs_wall_clock"] = {
            "metrics_steady_tokens_per_second": round(own),
            "wall_clock_tokens_per_second": round(wall),
            "ratio": round(own / wall, 3),
        }
    return row


def packing_vs_padding(tokenizer, block: int = 512) -> dict:
    """Useful-token share when packing vs padding (and truncating) every document to `block` tokens."""
    lengths = [len(ids) + 1 for ids in tokenizer(builtin_texts(), add_special_tokens=False)["input_ids"]]
    total, padded_useful = sum(lengths), sum(min(n, block) for n in lengths)
    return {
        "block_size": block,
        "documents": len(lengths),
        "corpus_tokens": total,
        "padding": {
            "useful_fraction": round(padded_useful / (len(lengths) * block), 3),
            "tokens_truncated_away": total - padded_useful,
        },
        "packing": {"useful_fraction": 1.0, "tokens_dropped": total % block},
    }


def parse_args() -> argparse.Namespace:
    """The benchmark's flags (devices, shapes, steps, variants)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"]
    )
    parser.add_argument(
        "--shapes",
        nargs="+",
        default=None,
        choices=list(SHAPES),
        help="default: gpt2 on cuda, small and tiny on cpu",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="timed optimizer steps per run (default 20 on cuda, 30 on cpu)",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=None,
        help="untimed steps first (compilation; default 10 on cuda, 3 on cpu)",
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--hf_default", action="store_true", help="also time the tutorial-style GPT2LMHeadModel on CUDA"
    )
    parser.add_argument(
        "--eval_batches", type=int, default=8, help="validation batches (of 8 blocks) for the loss check"
    )
    parser.add_argument(
        "--loss_implementations",
        nargs="+",
        default=None,
        choices=["auto", "chunked", "liger", "hf"],
        help="time the recipe's path once per loss implementation instead (liger skipped where not importable)",
    )
    parser.add_argument(
        "--micro_batches",
        nargs="+",
        default=None,
        help="only these micro-batch x accumulation settings, e.g. 32x3 (default: the shape's own)",
    )
    parser.add_argument("--out", default=None, help="default: benchmarks/results/pretrain-<device>.json")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    cuda = args.device == "cuda"
    shapes = args.shapes or (["gpt2"] if cuda else ["small", "tiny"])
    steps, warmup = (
        args.steps or (20 if cuda else 30),
        args.warmup if args.warmup is not None else (10 if cuda else 3),
    )
    variants = ["reference", "llmkit"] + (["hf-default"] if args.hf_default or not cuda else [])
    skipped = {}
    if args.loss_implementations:
        impls = list(dict.fromkeys(args.loss_implementations))
        if "liger" in impls and not (cuda and liger_available()):
            impls.remove("liger")
            skipped["llmkit-liger"] = (
                "liger-kernel needs CUDA and `pip install liger-kernel` (not importable here)"
            )
        variants = [f"llmkit-{impl}" for impl in impls]
    only = [tuple(int(n) for n in m.split("x")) for m in args.micro_batches] if args.micro_batches else None

    corpus = load_corpus(DataArguments())
    tokenizer = train_bpe_tokenizer(corpus["train"]["text"], vocab_size=8192)
    precision = "bf16" if cuda else "fp32"
    peak, source = device_peak(args.device, precision)
    results = {
        "machine": {
            "platform": platform.platform(),
            "device": torch.cuda.get_device_name() if cuda else f"CPU, {torch.get_num_threads()} threads",
            "torch": torch.__version__,
            "peak_tflops": round(peak / 1e12, 3),
            "peak_source": source,
        },
        "variants_skipped": skipped,
        "packing_vs_padding": packing_vs_padding(tokenizer),
        "runs": [],
    }
    print(json.dumps(results, indent=2), flush=True)
    for name in shapes:
        block = SHAPES[name][3]
        blocks = pack(corpus["train"], tokenizer, block)
        val_blocks = pack(corpus["validation"], tokenizer, block)
        val = [
            collate_blocks([val_blocks[i] for i in range(j, min(j + 8, len(val_blocks)))])
            for j in range(0, min(8 * args.eval_batches, len(val_blocks)), 8)
        ]
        results["runs"] += bench(
            name, blocks, val, args.device, steps, warmup, args.rounds, peak, variants, only
        )
    out = Path(args.out or f"benchmarks/results/pretrain-{args.device}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
