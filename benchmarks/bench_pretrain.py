"""Pretraining speed: llmkit's model and Trainer path against a minimal GPT, interleaved A/B.

    python benchmarks/bench_pretrain.py                      # CPU: the issue's small shape and the tiny preset
    python benchmarks/bench_pretrain.py --shapes gpt2 --steps 10
    python benchmarks/bench_pretrain.py --device cuda --shapes gpt2 --batch 16

Every variant trains on the very same batches (taken from the Trainer's own dataloader), in
rounds that alternate the variants, so the machine's noise hits all of them alike. Reported:
median tokens/s per variant, the ratios, MFU against a measured matmul peak, validation loss at
equal steps, and packing against padding every document.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from datasets import Dataset
from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainerCallback, TrainingArguments

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mingpt import MinGPT  # noqa: E402

from llmkit.data import builtin_texts, collate_blocks, load_corpus, pack, train_bpe_tokenizer  # noqa: E402
from llmkit.data.corpus import DataArguments  # noqa: E402
from llmkit.lm.model import ModelArguments, build_gpt2, flops_per_token  # noqa: E402

# name: (n_layer, n_head, n_embd, block_size, batch)
SHAPES = {
    "small": (4, 4, 128, 64, 12),  # the shape measured in issue 2 (1.5x slower out of the box)
    "tiny": (4, 4, 256, 128, 16),  # llmkit's default preset and batch
    "gpt2": (12, 12, 768, 1024, 1),
}


def matmul_peak(device: str, dtype: torch.dtype = torch.float32, n: int = 2048, reps: int = 10) -> float:
    """Measured FLOP/s of a large square matmul: the practical peak MFU is quoted against."""
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    _sync(device)
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    _sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - t)


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


class LoopRunner:
    """A plain training loop (AdamW, cosine-free constant LR) over given batches."""

    def __init__(self, model: torch.nn.Module, device: str, hf: bool, lr: float):
        self.model, self.device, self.hf = model.to(device).train(), device, hf
        decay = [p for p in model.parameters() if p.dim() >= 2]
        no_decay = [p for p in model.parameters() if p.dim() < 2]
        self.opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                                     lr=lr, betas=(0.9, 0.95), fused=True)

    def run(self, batches: list[dict]) -> float:
        _sync(self.device)
        t = time.perf_counter()
        for batch in batches:
            ids = batch["input_ids"].to(self.device, non_blocking=True)
            loss = self.model(input_ids=ids, labels=ids).loss if self.hf else self.model(ids, ids)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
            self.opt.step()
            self.opt.zero_grad(set_to_none=True)
        _sync(self.device)
        return time.perf_counter() - t

    @torch.no_grad()
    def eval_loss(self, batches: list[dict]) -> float:
        self.model.eval()
        losses = []
        for batch in batches:
            ids = batch["input_ids"].to(self.device)
            losses.append(float(self.model(input_ids=ids, labels=ids).loss if self.hf else self.model(ids, ids)))
        self.model.train()
        return sum(losses) / len(losses)


class _StepTimer(TrainerCallback):
    def __init__(self):
        self.seconds, self._t = 0.0, 0.0

    def on_step_begin(self, args, state, control, **kw):
        self._t = time.perf_counter()

    def on_step_end(self, args, state, control, **kw):
        self.seconds += time.perf_counter() - self._t


def trainer_for(model, train: Dataset, steps: int, batch: int, lr: float, device: str, out: str) -> tuple[Trainer, _StepTimer]:
    """llmkit's Trainer path: the same arguments the recipe uses, without eval/save/logging noise."""
    args = TrainingArguments(
        output_dir=out, max_steps=steps, per_device_train_batch_size=batch, learning_rate=lr,
        lr_scheduler_type="constant", weight_decay=0.1, adam_beta2=0.95, max_grad_norm=1.0, save_strategy="no",
        eval_strategy="no", logging_steps=10_000, report_to="none", disable_tqdm=True, dataloader_drop_last=True,
        use_cpu=device == "cpu", seed=0, bf16=device == "cuda" and torch.cuda.is_bf16_supported(),
    )
    timer = _StepTimer()
    return Trainer(model=model, args=args, train_dataset=train, data_collator=collate_blocks, callbacks=[timer]), timer


def bench_shape(name: str, train: Dataset, val: list[dict], vocab: int, device: str, steps: int, rounds: int, peak: float) -> dict:
    """Time the four variants on one shape over identical batches, interleaved round by round."""
    n_layer, n_head, n_embd, block, batch = SHAPES[name]
    shape = dict(n_layer=n_layer, n_head=n_head, n_embd=n_embd, n_positions=block)
    lr = 1e-3
    # Identical batches for everyone: drawn once from the Trainer's own (seeded) dataloader.
    probe, _ = trainer_for(GPT2LMHeadModel(GPT2Config(vocab_size=vocab, **shape)), train, steps, batch, lr, device, "/tmp/bench-probe")
    loader = iter(probe.get_train_dataloader())
    batches = [next(loader) for _ in range(steps)]

    def fresh(kind: str):
        torch.manual_seed(0)
        if kind == "reference":
            return MinGPT(vocab, **shape)
        if kind == "hf-default":  # GPT2LMHeadModel as a walkthrough builds it: gelu_new, default attention
            return GPT2LMHeadModel(GPT2Config(vocab_size=vocab, **shape, resid_pdrop=0, embd_pdrop=0, attn_pdrop=0))
        tokenizer = type("Tok", (), {"eos_token_id": 0, "pad_token_id": 0, "__len__": lambda s: vocab})()
        return build_gpt2(ModelArguments(**shape), tokenizer)

    times: dict[str, list[float]] = {k: [] for k in ("reference", "hf-default", "llmkit-loop", "llmkit-trainer")}
    finals: dict[str, float] = {}
    for r in range(rounds):
        for kind in times:
            model = fresh(kind)
            if kind == "llmkit-trainer":
                trainer, timer = trainer_for(model, train, steps, batch, lr, device, f"/tmp/bench-{name}")
                trainer.train()
                seconds = timer.seconds
                runner = LoopRunner(trainer.model, device, True, lr)  # for eval only
            else:
                runner = LoopRunner(model, device, kind != "reference", lr)
                seconds = runner.run(batches)
            times[kind].append(seconds)
            if r == rounds - 1:
                finals[kind] = runner.eval_loss(val)
            print(f"  {name} round {r + 1} {kind:15s} {steps * batch * block / seconds:9.0f} tokens/s", flush=True)

    tokens = steps * batch * block
    tps = {k: tokens / statistics.median(v) for k, v in times.items()}
    cfg = GPT2Config(vocab_size=vocab, **shape)
    fpt = flops_per_token(cfg, block)
    return {
        "shape": dict(zip(("n_layer", "n_head", "n_embd", "block_size", "batch"), SHAPES[name])),
        "tokens_per_second": {k: round(v) for k, v in tps.items()},
        "trainer_vs_reference": round(tps["llmkit-trainer"] / tps["reference"], 3),
        "llmkit_model_vs_reference": round(tps["llmkit-loop"] / tps["reference"], 3),
        "hf_default_vs_reference": round(tps["hf-default"] / tps["reference"], 3),
        "trainer_overhead_vs_loop": round(tps["llmkit-loop"] / tps["llmkit-trainer"] - 1, 3),
        "mfu_vs_matmul_peak": {k: round(v * fpt / peak, 3) for k, v in tps.items()},
        "val_loss_after_equal_steps": {k: round(v, 4) for k, v in finals.items()},
        "steps": steps,
        "rounds": rounds,
    }


def packing_vs_padding(tokenizer, block: int = 512) -> dict:
    """Useful-token share when packing vs padding (and truncating) every document to `block` tokens."""
    lengths = [len(ids) + 1 for ids in tokenizer(builtin_texts(), add_special_tokens=False)["input_ids"]]
    total = sum(lengths)
    padded_useful = sum(min(n, block) for n in lengths)
    return {
        "block_size": block,
        "documents": len(lengths),
        "corpus_tokens": total,
        "padding": {"slots": len(lengths) * block, "useful_fraction": round(padded_useful / (len(lengths) * block), 3),
                    "tokens_truncated_away": total - padded_useful},
        "packing": {"slots": total // block * block, "useful_fraction": 1.0, "tokens_dropped": total % block},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shapes", nargs="+", default=["small", "tiny"], choices=list(SHAPES))
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=None, help="override every shape's batch size")
    parser.add_argument("--eval_batches", type=int, default=20, help="validation batches (of 8 blocks) for the loss check")
    parser.add_argument("--out", default="benchmarks/results/pretrain.json")
    args = parser.parse_args()
    if args.batch:
        for k, v in SHAPES.items():
            SHAPES[k] = (*v[:4], args.batch)

    corpus = load_corpus(DataArguments())
    tokenizer = train_bpe_tokenizer(corpus["train"]["text"], vocab_size=8192)
    peak = matmul_peak(args.device, torch.bfloat16 if args.device == "cuda" else torch.float32)
    results = {
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "device": torch.cuda.get_device_name() if args.device == "cuda" else f"CPU, {torch.get_num_threads()} threads",
                    "torch": torch.__version__, "matmul_peak_tflops": round(peak / 1e12, 3)},
        "packing_vs_padding": packing_vs_padding(tokenizer),
    }
    print(json.dumps(results, indent=2), flush=True)
    for name in args.shapes:
        block = SHAPES[name][3]
        train = pack(corpus["train"], tokenizer, block)
        val_blocks = pack(corpus["validation"], tokenizer, block)
        val = [collate_blocks([val_blocks[i] for i in range(j, min(j + 8, len(val_blocks)))])
               for j in range(0, min(8 * args.eval_batches, len(val_blocks)), 8)]
        results[name] = bench_shape(name, train, val, len(tokenizer), args.device, args.steps, args.rounds, peak)
        print(json.dumps(results[name], indent=2), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
