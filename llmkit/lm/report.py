"""What a pretraining run reports: perplexity in the logs, throughput, metrics.json, a curve, samples."""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch
from transformers import Trainer, TrainerCallback

from llmkit import record
from llmkit.lm.divergence import diverged
from llmkit.lm.generate import Sampling, generate_text
from llmkit.lm.model import count_parameters, flops_per_token
from llmkit.lm.throughput import utilisation, warmup_steps_for
from llmkit.log import get_logger
from llmkit.plots import plot_loss_curves

logger = get_logger(__name__)


def perplexity(loss: float) -> float:
    """exp(loss), capped so a diverged run reports a large number instead of overflowing."""
    return math.exp(min(loss, 50.0))


def _trainer_counts_tokens(args) -> bool:
    return args.include_num_input_tokens_seen not in ("no", False)


class ReportCallback(TrainerCallback):
    """Adds eval perplexity, tokens/s and MFU to the logs and times the optimizer steps (eval and saving excluded).

    A step's time runs from the end of the step before it (so loading its batches and logging count, as they do
    in the wall clock), or from its own start after an evaluation or a save. Step times are host wall-clock. On CUDA the host runs ahead of the GPU, so the clock is
    synchronised only at steps where the Trainer waits for the GPU anyway (logging reads the loss,
    evaluation, saving, the last step): the callback adds no host-device sync of its own. The steady
    window starts at the first such step after warm-up, so compilation never counts in it.
    """

    def __init__(self, tokens_per_step: int, flops_per_token: float = 0.0, peak_flops: float = 0.0):
        self.tokens_per_step = tokens_per_step
        self.flops_per_token = flops_per_token
        self.peak_flops = peak_flops
        self.step_seconds = 0.0
        self.steps = 0
        self.steady_seconds, self.steady_steps = 0.0, 0
        self.warmup_end = 0
        self._steady = False
        self._interval_seconds, self._interval_steps = 0.0, 0
        self._t = 0.0
        self._last_end: float | None = None
        self._cuda = False

    def on_train_begin(self, args, state, control, **kwargs):
        self._cuda = args.device.type == "cuda"
        self.warmup_end = state.global_step + warmup_steps_for(state.max_steps - state.global_step)
        # The tokens of every run of this output_dir, kept in trainer_state.json's num_input_tokens_seen: a resume
        # with another batch size, accumulation or world size counts its own steps at its own size. A checkpoint
        # saved without the tally gets the estimate at this run's size.
        if not _trainer_counts_tokens(args) and state.global_step and not state.num_input_tokens_seen:
            state.num_input_tokens_seen = state.global_step * self.tokens_per_step

    def on_step_begin(self, args, state, control, **kwargs):
        self._t = self._last_end if self._last_end is not None else time.perf_counter()

    def on_save(self, args, state, control, **kwargs):
        self._last_end = None  # the save's time is not a training step's

    def on_step_end(self, args, state, control, **kwargs):
        waits_anyway = (
            control.should_log
            or control.should_evaluate
            or control.should_save
            or state.global_step >= state.max_steps
        )
        if waits_anyway and self._cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - self._t
        self.step_seconds += seconds
        self.steps += 1
        if not _trainer_counts_tokens(args):  # read each step: a callback may switch the Trainer's count on
            state.num_input_tokens_seen += self.tokens_per_step
        self._interval_seconds += seconds
        self._interval_steps += 1
        if self._steady:
            self.steady_seconds += seconds
            self.steady_steps += 1
        elif waits_anyway and state.global_step >= self.warmup_end:
            self._steady = True
        self._last_end = time.perf_counter()

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or "loss" not in logs or not self._interval_seconds:
            return
        rate = self._interval_steps * self.tokens_per_step / self._interval_seconds
        logs["tokens_per_second"] = round(rate)
        mfu = self.mfu(rate)
        if mfu is not None:
            logs["mfu"] = round(mfu, 4)
        if state.log_history and "loss" in state.log_history[-1]:
            state.log_history[-1].update({k: logs[k] for k in ("tokens_per_second", "mfu") if k in logs})
        self._interval_seconds, self._interval_steps = 0.0, 0

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        self._last_end = None  # evaluation's time is not a training step's
        if metrics and "eval_loss" in metrics:
            metrics["eval_perplexity"] = perplexity(metrics["eval_loss"])
            if state.log_history and "eval_loss" in state.log_history[-1]:
                state.log_history[-1]["eval_perplexity"] = metrics["eval_perplexity"]
            logger.info(
                f"step {state.global_step}: eval loss {metrics['eval_loss']:.4f}, perplexity {metrics['eval_perplexity']:.2f}"
            )

    @property
    def tokens_per_second(self) -> float:
        """Training tokens per second over every optimizer step of this run (compilation and warm-up included)."""
        return self.steps * self.tokens_per_step / self.step_seconds if self.step_seconds else 0.0

    @property
    def steady_tokens_per_second(self) -> float:
        """Training tokens per second after warm-up (the whole-run average when the run was too short to tell)."""
        if not self.steady_steps:
            return self.tokens_per_second
        return self.steady_steps * self.tokens_per_step / self.steady_seconds

    def mfu(self, tokens_per_second: float) -> float | None:
        """Model FLOPs utilisation of all processes at this rate (tokens_per_step counts every rank); None if unknown."""
        return utilisation(tokens_per_second * self.flops_per_token, self.peak_flops)


def prompts_from(blocks, tokenizer, count: int = 4, words: int = 3) -> list[str]:
    """The first whole words of `count` validation blocks spread over the split: prompts in the corpus's own language."""
    prompts = []
    for i in range(count):
        ids = [int(t) for t in blocks[i * len(blocks) // count]["input_ids"][:16]]
        text = tokenizer.decode(ids).replace(tokenizer.eos_token or "\x00", " ")
        first = text.split()[1 : words + 1]  # the block may start mid-word: skip its first word
        if first:
            prompts.append(" ".join(first))
    return prompts or ["The"]


def check_finite(model: torch.nn.Module, step: int, eval_loss: float, learning_rate: float) -> None:
    """Refuse to report on a model whose weights hold NaN or inf (training diverged): sampling from it was a
    multinomial traceback, and its metrics.json would describe a model that cannot be used."""
    if all(torch.isfinite(p).all() for p in model.parameters()):
        return
    raise diverged(
        f"step {step}",
        f"the model's weights hold NaN or infinite values (eval loss {eval_loss}), so it cannot generate text "
        "(loss_curve.png shows where the loss broke)",
        learning_rate,
        also=" or raise --warmup_steps",
    )


def write_report(
    trainer: Trainer, report: ReportCallback, extra: dict, *, prompts: list[str] | None, max_new_tokens: int
) -> dict:
    """Evaluate, then write metrics.json, loss_curve.png and samples.txt into the output dir (main process)."""
    step = trainer.state.global_step
    history = trainer.state.log_history
    last_eval = [e for e in history if "eval_loss" in e and e.get("step") == step]
    # the final step may have evaluated already
    eval_metrics = last_eval[-1] if last_eval else trainer.evaluate()
    if not trainer.is_world_process_zero():
        return {}
    out = Path(trainer.args.output_dir)
    model = trainer.model
    train_summary = next((e for e in reversed(history) if "train_loss" in e), {})
    block_size = extra["block_size"]
    eval_loss = eval_metrics["eval_loss"]
    mfu = report.mfu(report.steady_tokens_per_second)
    # a run resumed at its last step measured no speed: report none, not 0 tokens/s
    trained = report.steps > 0
    metrics = {
        **extra,
        "parameters": count_parameters(model),
        "world_size": trainer.args.world_size,
        "global_step": step,
        "steps_this_run": report.steps,
        "tokens_seen": trainer.state.num_input_tokens_seen,  # every run's steps at their own batch size
        "train_loss": train_summary.get("train_loss"),
        "final_train_loss": next((e["loss"] for e in reversed(history) if "loss" in e), None),
        "eval_loss": eval_loss,
        "eval_perplexity": perplexity(eval_loss),
        "headline": {"eval_loss": round(eval_loss, 4), "eval_perplexity": round(perplexity(eval_loss), 2)},
        "train_tokens_per_second": round(report.tokens_per_second, 1) if trained else None,
        # a run too short to step past warm-up has no figure after it (it wrote the whole-run one under this name)
        "steady_tokens_per_second": round(report.steady_tokens_per_second, 1)
        if report.steady_steps
        else None,
        "steady_steps": report.steady_steps,
        "warmup_steps_excluded": report.steps - report.steady_steps,
        "model_flops_per_second": round(
            report.steady_tokens_per_second * flops_per_token(model.config, block_size)
        )
        if trained
        else None,
        "mfu": None if mfu is None or not trained else round(mfu, 4),
    }
    plot_loss_curves(
        history, out / "loss_curve.png", title=f"{extra.get('preset', 'GPT-2')} on {extra.get('corpus', '')}"
    )
    check_finite(model, step, eval_loss, trainer.args.learning_rate)
    model.eval()
    tokenizer = trainer.processing_class
    prompts = prompts or prompts_from(trainer.eval_dataset, tokenizer)
    samples = [
        generate_text(model, tokenizer, p, Sampling(max_new_tokens=max_new_tokens, seed=i))
        for i, p in enumerate(prompts)
    ]
    record.write_atomic(
        out / "samples.txt",
        "".join(
            f"--- sample {i + 1} (prompt: {p!r})\n{s}\n\n" for i, (p, s) in enumerate(zip(prompts, samples))
        ),
    )
    metrics = record.write_metrics(out, "pretrain", metrics)
    return {**metrics, "samples": samples}
