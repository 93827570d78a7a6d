"""The three ways bench_pretrain.py trains the same GPT on the same micro-batches: a compiled minimal GPT in a
plain loop (`reference`), llmkit's recipe path through Trainer (`llmkit`), and GPT2LMHeadModel as tutorials
build it (`hf-default`). Each returns the wall seconds of its steps after warm-up and the trained model."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
from datasets import Dataset
from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainerCallback

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mingpt import MinGPT  # noqa: E402

from llmkit.data import collate_blocks  # noqa: E402
from llmkit.lm.loss import use_fast_loss  # noqa: E402
from llmkit.lm.model import ModelArguments, build_gpt2, flops_per_token, padded_vocab_size  # noqa: E402
from llmkit.lm.pretrain import PretrainingArguments  # noqa: E402
from llmkit.lm.report import ReportCallback  # noqa: E402

LR = 6e-4


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


class _Fake:
    """A stand-in tokenizer of a given length (build_gpt2 only asks for its size and special ids)."""

    def __init__(self, n: int):
        self.n, self.eos_token_id, self.pad_token_id = n, 0, 0

    def __len__(self) -> int:
        return self.n


def llmkit_args(
    device: str, micro: int, accum: int, steps: int, warmup: int, out: str
) -> PretrainingArguments:
    """The recipe's TrainingArguments, with a constant learning rate and no eval/save for the benchmark."""
    return PretrainingArguments(
        output_dir=out,
        max_steps=warmup + steps,
        per_device_train_batch_size=micro,
        gradient_accumulation_steps=accum,
        learning_rate=LR,
        lr_scheduler_type="constant",
        warmup_steps=0,
        save_strategy="no",
        eval_strategy="no",
        logging_steps=warmup,
        report_to="none",
        disable_tqdm=True,
        seed=0,
        use_cpu=device == "cpu",
        torch_compile=device == "cuda",
    )


class _WallClock(TrainerCallback):
    """The benchmark's own clock: synchronised wall time from the end of warm-up to the last step."""

    def __init__(self, warmup: int, device: str):
        self.warmup, self.device, self.start, self.seconds = warmup, device, 0.0, 0.0

    def on_step_end(self, args, state, control, **kw):
        if state.global_step == self.warmup:
            _sync(self.device)
            self.start = time.perf_counter()
        elif state.global_step == state.max_steps:
            _sync(self.device)
            self.seconds = time.perf_counter() - self.start


def run_reference(
    vocab: int, shape: dict, micro_batches: list, accum: int, warmup: int, device: str
) -> tuple[float, torch.nn.Module]:
    """nanoGPT-style loop; returns the wall seconds of the steps after warm-up."""
    torch.manual_seed(0)
    model = MinGPT(padded_vocab_size(vocab, 64), **shape).to(device).train()
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
        lr=LR,
        betas=(0.9, 0.95),
        fused=device == "cuda",
    )
    step_fn = torch.compile(model) if device == "cuda" else model
    autocast = torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda")

    def loss_of(ids: torch.Tensor) -> torch.Tensor:
        with autocast:
            return step_fn(ids, ids)

    return _timed_loop(model, opt, loss_of, micro_batches, accum, warmup, device), model


def _timed_loop(model, opt, loss_of, micro_batches: list, accum: int, warmup: int, device: str) -> float:
    """A plain training loop over the micro-batches; returns the wall seconds of the steps after warm-up."""
    start = 0.0
    for step in range(len(micro_batches) // accum):
        if step == warmup:
            _sync(device)
            start = time.perf_counter()
        for batch in micro_batches[step * accum : (step + 1) * accum]:
            (loss_of(batch["input_ids"].to(device, non_blocking=True)) / accum).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
    _sync(device)
    return time.perf_counter() - start


def run_llmkit(
    vocab: int,
    shape: dict,
    train: Dataset,
    micro: int,
    accum: int,
    steps: int,
    warmup: int,
    device: str,
    block: int,
    peak: float,
    loss: str = "auto",
) -> tuple[float, torch.nn.Module, float]:
    """The recipe's path; returns (wall seconds after warm-up, model, llmkit's own steady tokens/s)."""
    torch.manual_seed(0)
    model = build_gpt2(ModelArguments(**shape), _Fake(vocab))
    args = llmkit_args(device, micro, accum, steps, warmup, "/tmp/bench-pretrain-llmkit")
    use_fast_loss(model, loss, args.device)
    report = ReportCallback(micro * accum * block, flops_per_token(model.config, block), peak)
    clock = _WallClock(warmup, device)
    trainer = Trainer(
        model=model, args=args, train_dataset=train, data_collator=collate_blocks, callbacks=[report, clock]
    )
    trainer.train()
    return clock.seconds, trainer.model, report.steady_tokens_per_second


def run_hf_default(
    vocab: int, shape: dict, micro_batches: list, accum: int, warmup: int, device: str
) -> tuple[float, torch.nn.Module]:
    """GPT2LMHeadModel as tutorials build it (gelu_new, eager attention, labels= loss), in the same loop."""
    torch.manual_seed(0)
    model = (
        GPT2LMHeadModel(GPT2Config(vocab_size=vocab, **shape, resid_pdrop=0, embd_pdrop=0, attn_pdrop=0))
        .to(device)
        .train()
    )
    opt = torch.optim.AdamW(model.parameters(), lr=LR, betas=(0.9, 0.95), weight_decay=0.1)

    def loss_of(ids: torch.Tensor) -> torch.Tensor:
        return model(input_ids=ids, labels=ids).loss

    return _timed_loop(model, opt, loss_of, micro_batches, accum, warmup, device), model
