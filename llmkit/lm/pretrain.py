"""Pretrain a GPT-2-style model from scratch: corpus -> tokenizer -> packed blocks -> Trainer -> outputs.

`recipes/pretrain_gpt2.py`, `llmkit pretrain` and the tests all call `pretrain()`.
"""

from __future__ import annotations

import contextlib
import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import torch
from datasets import Dataset, DatasetDict
from transformers import Trainer, TrainerCallback, set_seed

from llmkit import record
from llmkit.checkpoints import train_resumable
from llmkit.data import DataArguments, collate_blocks, get_tokenizer, load_corpus, pack, pack_stream
from llmkit.data.corpus import short_split_error
from llmkit.data.streaming import KeepRankShards
from llmkit.data.tokenized import check_tokenized, load_tokenized
from llmkit.data.tokenizer import tokenizer_training_texts
from llmkit.errors import UserError
from llmkit.launch import check_launch, configure_threads, one_run_per_output_dir, prepare_output_dir
from llmkit.lm.loss import use_fast_loss
from llmkit.lm.model import (
    GPU_MICRO_BATCH,
    ModelArguments,
    build_gpt2,
    check_model_fits,
    count_parameters,
    flops_per_token,
)
from llmkit.lm.report import ReportCallback, write_report
from llmkit.lm.resume import (
    check_resume_tokenizer,
    checkpoint_to_resume,
    read_tokenizer_request,
    saved_tokenizer_dir,
    write_tokenizer_request,
)
from llmkit.lm.throughput import describe_mfu, device_peak, precision_of
from llmkit.log import configure_logging, get_logger
from llmkit.runtime import LlmkitTrainingArguments, output_dir_field

logger = get_logger(__name__)


@dataclass
class PretrainingArguments(LlmkitTrainingArguments):
    """TrainingArguments with defaults for pretraining (AdamW, cosine, warmup, weight decay 0.1)."""

    output_dir: str | None = output_dir_field("runs/gpt2-tiny")
    min_train_batch_size: ClassVar[int] = 0  # 0: the device's default micro-batch
    learning_rate: float = 1e-3
    weight_decay: float = 0.1
    adam_beta2: float = 0.95
    lr_scheduler_type: str = "cosine"
    warmup_steps: float = 0.05
    num_train_epochs: float = 4.0
    per_device_train_batch_size: int = field(
        default=0,
        metadata={
            "help": "Blocks per device per step (default 0: 16 on CPU, the preset's GPU_MICRO_BATCH on a GPU)."
        },
    )
    per_device_eval_batch_size: int = 16
    eval_strategy: str = "steps"
    eval_steps: float | None = 200
    save_steps: float = 200
    save_total_limit: int | None = 2
    logging_steps: float = 20
    logging_first_step: bool = True
    dataloader_drop_last: bool = True  # every step sees a full batch, so steps and tokens stay comparable
    # GPT-2 uses every parameter in every step: without this Trainer asks DDP to search for unused ones each
    # step (a wasted graph traversal, and a warning from every rank)
    ddp_find_unused_parameters: bool | None = False
    # GPU defaults: compile the model, feed it from worker processes (pinned memory is transformers' default)
    torch_compile: bool | None = field(
        default=None,
        metadata={
            "help": "Compile the model with torch.compile (default: on with CUDA; --torch_compile false turns it off)."
        },
    )
    dataloader_num_workers: int | None = field(
        default=None,
        metadata={
            "help": "Data-loader worker processes (default: 2 with CUDA for an in-memory corpus, else 0)."
        },
    )
    loss_implementation: str = field(
        default="auto",
        metadata={
            "help": "LM loss: auto (liger-kernel's fused kernel on CUDA when installed, else chunked), chunked, liger or hf (logits + labels, as transformers does)."
        },
    )

    def __post_init__(self) -> None:
        # decided when the arguments are made, not when llmkit is imported (CUDA may be set up in between)
        if self.torch_compile is None:
            self.torch_compile = torch.cuda.is_available()
        if self.tf32 is None and torch.cuda.is_available() and torch.cuda.get_device_capability()[0] >= 8:
            self.tf32 = True  # fp32 matmuls (the parts outside bf16 autocast) on tensor cores
        self._default_workers = self.dataloader_num_workers is None
        if self._default_workers:
            self.dataloader_num_workers = 2 if torch.cuda.is_available() else 0
        super().__post_init__()


@one_run_per_output_dir
def pretrain(
    data_args: DataArguments,
    model_args: ModelArguments,
    training_args: PretrainingArguments,
    callbacks: list[TrainerCallback] | None = None,
) -> dict:
    """Train a GPT-2-style model from scratch and write it, its tokenizer and reports to output_dir."""
    check_launch()
    configure_threads()
    args = training_args
    configure_logging(args.log_level, args.log_level_replica)  # other ranks print warnings only
    fresh = not Path(args.output_dir).exists()
    out = prepare_output_dir(args.output_dir)
    try:
        run = _prepare(data_args, model_args, args, out)
    except UserError:
        # a refused run leaves no folder it made (empty: nothing is lost)
        if fresh and args.process_index == 0:
            with contextlib.suppress(OSError):
                out.rmdir()
        raise
    if args.process_index == 0:  # every check passed: only now does output_dir get the run's tokenizer
        _save_tokenizer(out, run.tokenizer, model_args, data_args, run.resume)
    if args.hp_search_trials:
        return _search(run, (data_args, model_args, args))
    if data_args.streaming:
        callbacks = [KeepRankShards(), *(callbacks or [])]
    return _train(run, (data_args, model_args, args), callbacks or [])


def _trainer(run: _Run, args: PretrainingArguments, **model_and_callbacks) -> Trainer:
    """A Trainer over the run's packed blocks (a model, or a model_init for a search)."""
    return Trainer(
        args=args,
        train_dataset=run.train,
        eval_dataset=run.val,
        data_collator=collate_blocks,
        processing_class=run.tokenizer,
        **model_and_callbacks,
    )


def _search(run: _Run, arguments: tuple) -> dict:
    """Hyperparameter search: fresh models from the same seed, scored by eval loss."""
    from llmkit.hpsearch import PRETRAIN_SPACE, run_search

    data_args, model_args, args = arguments

    def model_init(trial=None):
        set_seed(args.seed)
        return build_gpt2(model_args, run.tokenizer)

    def make_trainer(init):
        return _trainer(run, args, model_init=init)

    return run_search(
        make_trainer,
        model_init,
        arguments,
        args,
        default_space=PRETRAIN_SPACE,
        objective="eval_loss",
        direction="minimize",
        command="llmkit pretrain",
    )


def _train(run: _Run, arguments: tuple, callbacks: list[TrainerCallback]) -> dict:
    """Train (resuming when there is a checkpoint), save the model, write the report and print the summary."""
    data_args, model_args, args = arguments
    model, block_size = run.model, run.block_size
    loss_impl = use_fast_loss(model, args.loss_implementation, args.device)
    tokens_per_step = (
        args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size * block_size
    )
    precision = precision_of(args)
    peak, peak_source = device_peak(args.device, precision)
    logger.info(
        f"speed: {loss_impl} loss, {precision}, torch.compile {'on' if args.torch_compile else 'off'}, "
        f"{args.per_device_train_batch_size} x {args.gradient_accumulation_steps} blocks per device per step; MFU vs {peak / 1e12:.3g} TFLOP/s ({peak_source})"
    )
    report = ReportCallback(
        tokens_per_step, flops_per_token(model.config, block_size), peak * args.world_size
    )
    trainer = _trainer(run, args, model=model, callbacks=[report, *callbacks])
    train_resumable(trainer, run.resume)
    # a busy machine measures too low a peak: keep the better of two measurements
    if "measured" in peak_source:
        peak = max(peak, device_peak(args.device, precision)[0])
        report.peak_flops = peak * args.world_size
    if args.process_index == 0:
        record.clear_reports(args.output_dir)
    trainer.save_model()  # safetensors weights + config (+ tokenizer) at the top of output_dir
    extra = {
        "preset": model_args.preset_label(),
        "corpus": data_args.source,
        "block_size": block_size,
        "resumed_from": run.resume,
        "vocab_size": model.config.vocab_size,
        "tokenizer_size": len(run.tokenizer),
        "loss_implementation": loss_impl,
        "precision": precision,
        "torch_compile": args.torch_compile,
        "peak_flops_per_device": peak,
        "peak_source": peak_source,
    }
    metrics = write_report(
        trainer,
        report,
        extra,
        prompts=model_args.sample_prompts,
        max_new_tokens=model_args.sample_max_new_tokens,
    )
    if args.process_index == 0:
        _print_summary(metrics, args.output_dir, f"GPT-2 {model_args.preset_label()} on {data_args.source}")
    return metrics


def _print_summary(metrics: dict, out: str, what: str) -> None:
    speed = "no speed measured: this run trained no step"
    if metrics["train_tokens_per_second"] is not None:
        rate = (
            f"{metrics['train_tokens_per_second']:,.0f} tokens/s over the whole run, warm-up included "
            f"(too few steps, {metrics['warmup_steps_excluded']}, to measure after it)"
        )
        if metrics["steady_tokens_per_second"] is not None:
            rate = (
                f"{metrics['steady_tokens_per_second']:,.0f} tokens/s after warm-up "
                f"({metrics['train_tokens_per_second']:,.0f} over the whole run)"
            )
        speed = f"{rate}, {describe_mfu(metrics['mfu'], metrics['peak_source'])}"
    record.print_summary(
        metrics,
        title=f"pretrain: {what}",
        use=[
            f'pipeline("text-generation", model="{out}")',
            f'llmkit generate --model {shlex.quote(str(out))} --prompt "..."',
            f"llmkit app models --causal {shlex.quote(str(out))}",
        ],
        notes=[speed, *(f"sample {s!r}" for s in metrics["samples"])],
    )


@dataclass
class _Run:
    resume: str | None
    tokenizer: object
    model: object
    block_size: int
    train: object
    val: object


def _prepare(
    data_args: DataArguments, model_args: ModelArguments, args: PretrainingArguments, out: Path
) -> _Run:
    """Everything a run checks before it writes a file: the checkpoint to resume, tokenizer, model and blocks."""
    is_main = args.process_index == 0
    resume = checkpoint_to_resume(data_args, model_args, args, out)
    if args.per_device_train_batch_size <= 0:
        args.per_device_train_batch_size = (
            GPU_MICRO_BATCH[model_args.preset] if args.device.type == "cuda" else 16
        )
    if data_args.streaming and getattr(args, "_default_workers", False):
        args.dataloader_num_workers = 0  # a streamed corpus is read in order by one process

    if data_args.tokenized_dataset:  # blocks made by `llmkit tokenize`: memory-mapped, with their tokenizer
        splits, tokenizer, tokenized_meta = load_tokenized(data_args.tokenized_dataset)
        if resume:
            check_resume_tokenizer(resume, out, tokenizer, data_args.tokenized_dataset)
    else:
        with args.main_process_first(desc="loading the corpus"):
            corpus = load_corpus(data_args, seed=args.seed)
        with args.main_process_first(desc="preparing the tokenizer", local=False):
            # Rank 0 trains or loads the tokenizer; with several processes it saves it now and the other
            # ranks load that copy (a single process saves it only once every check has passed).
            texts = tokenizer_training_texts(corpus["train"], data_args.streaming)
            tokenizer = get_tokenizer(
                model_args.tokenizer_name,
                model_args.bpe_vocab_size,
                texts,
                saved_dir=saved_tokenizer_dir(out, resume, is_main),
            )
            if is_main and args.world_size > 1:
                _save_tokenizer(out, tokenizer, model_args, data_args, resume)
    source = (
        f"saved in {data_args.tokenized_dataset}"
        if data_args.tokenized_dataset
        else (read_tokenizer_request(out) if resume else None) or model_args.tokenizer_name
    )
    logger.info(f"tokenizer: {len(tokenizer)} tokens ({source or 'byte-level BPE trained on the corpus'})")

    set_seed(args.seed)  # the same seed gives the same initial weights, on every rank and every run
    model = build_gpt2(model_args, tokenizer)
    block_size = data_args.block_size or model.config.n_positions
    if data_args.tokenized_dataset:
        block_size = check_tokenized(
            tokenized_meta,
            data_args.tokenized_dataset,
            tokenizer,
            model,
            block_size=data_args.block_size,
            tokenizer_name=model_args.tokenizer_name,
            vocab_size=model_args.vocab_size,
        )
    check_model_fits(model, tokenizer, block_size)
    _check_checkpoint_vocab(resume, model.config.vocab_size)
    shape = model_args.config_fields()
    logger.info(
        f"model: {model_args.preset_label()} ({shape['n_layer']} layers x {shape['n_embd']} wide, {shape['n_head']} heads), "
        f"{count_parameters(model) / 1e6:.2f}M parameters, vocabulary {model.config.vocab_size}, block size {block_size}"
    )

    with args.main_process_first(desc="packing"):
        if data_args.tokenized_dataset:
            train, val = splits["train"], splits["validation"]
        elif data_args.streaming:
            if args.max_steps <= 0:
                raise UserError("--streaming has no known length: pass --max_steps N.")
            # Each rank (and each of its data-loader workers) reads and tokenizes its own documents;
            # rank 0 must not read and dispatch every batch (see llmkit/data/streaming.py).
            args.accelerator_config.dispatch_batches = False
            train = pack_stream(
                corpus["train"], tokenizer, block_size, rank=args.process_index, world_size=args.world_size
            )
            val = pack(Dataset.from_list(list(corpus["validation"])), tokenizer, block_size)
        else:
            train = pack(corpus["train"], tokenizer, block_size, data_args.preprocessing_num_workers)
            val = pack(corpus["validation"], tokenizer, block_size, data_args.preprocessing_num_workers)
    source = splits if data_args.tokenized_dataset else corpus  # how the splits were made names the fix
    _check_blocks(train, val, block_size, args, streaming=data_args.streaming, corpus=source)
    return _Run(resume, tokenizer, model, block_size, train, val)


def _check_blocks(
    train, val, block_size: int, args: PretrainingArguments, *, streaming: bool, corpus: DatasetDict
) -> None:
    """Refuse data that gives no training block or less than one evaluation batch."""
    if not streaming and len(train) == 0:
        raise short_split_error("train", corpus, block_size)
    if len(val) == 0:
        raise short_split_error("validation", corpus, block_size)
    if args.dataloader_drop_last and len(val) < args.per_device_eval_batch_size * args.world_size:
        raise UserError(
            f"the validation split has {len(val)} blocks, less than one evaluation batch "
            f"({args.per_device_eval_batch_size} x {args.world_size} processes), so it would be skipped; "
            "lower --per_device_eval_batch_size or give more validation text."
        )
    if not streaming:
        logger.info(
            f"data: {len(train)} training blocks ({len(train) * block_size:,} tokens), {len(val)} validation blocks; no padding"
        )


def _save_tokenizer(
    out: Path, tokenizer, model_args: ModelArguments, data_args: DataArguments, resume: str | None
) -> None:
    """Save the run's tokenizer in output_dir and, for a new run, what it was asked to be."""
    tokenizer.save_pretrained(out)
    if resume:
        return
    tokenized = None
    if data_args.tokenized_dataset:
        tokenized = {"tokenized_dataset": str(data_args.tokenized_dataset), "vocab_size": len(tokenizer)}
    write_tokenizer_request(out, model_args, tokenized=tokenized)


def _check_checkpoint_vocab(checkpoint: str | None, vocab_size: int) -> None:
    """A checkpoint trained with another tokenizer cannot be resumed with this one."""
    config = Path(checkpoint or "") / "config.json"
    if checkpoint and config.is_file():
        saved = json.loads(config.read_text()).get("vocab_size")
        if saved != vocab_size:
            raise UserError(
                f"checkpoint {checkpoint} has a {saved}-token vocabulary but this run's tokenizer gives {vocab_size}; "
                "resume with the tokenizer saved in output_dir (drop --tokenizer_name/--vocab_size) and the run's --pad_vocab_multiple, "
                "or use a new --output_dir."
            )
