"""What a pretraining run reports: perplexity in the logs, throughput, metrics.json, a curve, samples."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from transformers import Trainer, TrainerCallback

from llmkit.lm.generate import generate_text
from llmkit.lm.model import count_parameters, flops_per_token
from llmkit.plots import plot_loss_curves


def perplexity(loss: float) -> float:
    """exp(loss), capped so a diverged run reports a large number instead of overflowing."""
    return math.exp(min(loss, 50.0))


class ReportCallback(TrainerCallback):
    """Adds eval perplexity to the logs and times the optimizer steps (eval and saving excluded)."""

    def __init__(self, tokens_per_step: int):
        self.tokens_per_step = tokens_per_step
        self.step_seconds = 0.0
        self.steps = 0
        self._t = 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        self._t = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.step_seconds += time.perf_counter() - self._t
        self.steps += 1

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if metrics and "eval_loss" in metrics:
            metrics["eval_perplexity"] = perplexity(metrics["eval_loss"])
            if state.log_history and "eval_loss" in state.log_history[-1]:
                state.log_history[-1]["eval_perplexity"] = metrics["eval_perplexity"]
            if state.is_world_process_zero:
                print(f"step {state.global_step}: eval loss {metrics['eval_loss']:.4f}, perplexity {metrics['eval_perplexity']:.2f}")

    @property
    def tokens_per_second(self) -> float:
        """Training tokens per second over the optimizer steps of this run."""
        return self.steps * self.tokens_per_step / self.step_seconds if self.step_seconds else 0.0


def write_report(
    trainer: Trainer, report: ReportCallback, extra: dict, prompts: list[str], max_new_tokens: int, wall_seconds: float
) -> dict:
    """Evaluate, then write metrics.json, loss_curve.png and samples.txt into the output dir (main process)."""
    step = trainer.state.global_step
    last_eval = [e for e in trainer.state.log_history if "eval_loss" in e and e.get("step") == step]
    eval_metrics = last_eval[-1] if last_eval else trainer.evaluate()  # the final step may have evaluated already
    if not trainer.is_world_process_zero():
        return {}
    out = Path(trainer.args.output_dir)
    model = trainer.model
    train_losses = [e["loss"] for e in trainer.state.log_history if "loss" in e]
    block_size = extra["block_size"]
    metrics = {
        **extra,
        "parameters": count_parameters(model),
        "world_size": trainer.args.world_size,
        "global_step": trainer.state.global_step,
        "steps_this_run": report.steps,
        "tokens_seen": trainer.state.global_step * report.tokens_per_step,
        "train_loss": train_losses[-1] if train_losses else None,
        "eval_loss": eval_metrics["eval_loss"],
        "eval_perplexity": perplexity(eval_metrics["eval_loss"]),
        "train_tokens_per_second": round(report.tokens_per_second, 1),
        "model_flops_per_second": round(report.tokens_per_second * flops_per_token(model.config, block_size)),
        "wall_time_seconds": round(wall_seconds, 1),
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    plot_loss_curves(trainer.state.log_history, out / "loss_curve.png", title=f"{extra.get('preset', 'GPT-2')} on {extra.get('corpus', '')}")

    model.eval()
    tokenizer = trainer.processing_class
    samples = [generate_text(model, tokenizer, p, max_new_tokens=max_new_tokens, seed=i) for i, p in enumerate(prompts)]
    (out / "samples.txt").write_text("".join(f"--- sample {i + 1} (prompt: {p!r})\n{s}\n\n" for i, (p, s) in enumerate(zip(prompts, samples))))
    metrics["samples"] = samples
    return metrics
