"""The one Trainer set-up every fine-tuning recipe shares: output folder, early stopping, resume, Ctrl-C,
the truncation report, and the scores of the kept model on the validation and test sets."""

from __future__ import annotations

from collections.abc import Callable

from datasets import Dataset, DatasetDict
from transformers import EarlyStoppingCallback, Trainer

from llmkit.checkpoints import find_resume_checkpoint, train_resumable
from llmkit.finetune.common import FinetuneTrainingArguments
from llmkit.launch import prepare_output_dir
from llmkit.log import get_logger

logger = get_logger(__name__)

# Timing figures that say nothing about the model; kept out of the model card's results table.
TIMING = ("_runtime", "_samples_per_second", "_steps_per_second")


def report_truncation(data: DatasetDict, max_length: int, what: str = "inputs") -> tuple[DatasetDict, int]:
    """Count the examples whose `truncated` flag is set, say so once, and drop the flag column."""
    truncated = sum(sum(split["truncated"]) for split in data.values())
    if truncated:
        total = sum(len(split) for split in data.values())
        logger.info(
            f"{truncated} of {total} {what} were longer than {max_length} tokens and were truncated "
            "(raise --max_length to keep more)"
        )
    return data.remove_columns("truncated"), truncated


def build_trainer(
    args: FinetuneTrainingArguments,
    data: DatasetDict,
    tokenizer,
    collator,
    *,
    model=None,
    model_init: Callable | None = None,
    compute_metrics: Callable | None = None,
    trainer_cls: type[Trainer] = Trainer,
) -> Trainer:
    """A Trainer (or Seq2SeqTrainer) on data["train"] / data["validation"] with the run's callbacks."""
    prepare_output_dir(args.output_dir)
    callbacks = []
    if args.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(args.early_stopping_patience, args.early_stopping_threshold))
    return trainer_cls(
        model=model,
        model_init=model_init,
        args=args,
        train_dataset=data["train"],
        eval_dataset=data["validation"],
        processing_class=tokenizer,
        data_collator=collator,
        compute_metrics=compute_metrics,
        callbacks=callbacks,
    )


def resume_checkpoint(args: FinetuneTrainingArguments) -> str | None:
    """The checkpoint this run continues from: --resume_from_checkpoint, else the newest complete one in output_dir."""
    prepare_output_dir(args.output_dir)
    # the first process tidies, the rest read
    with args.main_process_first(desc="finding the checkpoint to resume"):
        resume = find_resume_checkpoint(args.output_dir, args.resume_from_checkpoint)
    if resume and args.process_index == 0:
        logger.info(f"resuming from {resume}")
    return resume


def train_and_evaluate(trainer: Trainer, resume: str | None, test: Dataset | None = None) -> dict:
    """Train (resumably), then score the kept model once on validation and, if given, test (`test_*`)."""
    train_resumable(trainer, resume)
    metrics = trainer.evaluate()
    if test is not None:  # scored once, after training: it never takes part in choosing the checkpoint
        metrics.update(trainer.evaluate(test, metric_key_prefix="test"))
    # evaluate() stamps the last epoch, not the kept checkpoint's: see kept_checkpoint()
    metrics.pop("epoch", None)
    return {**metrics, **kept_checkpoint(trainer), "resumed_from": resume}


def kept_checkpoint(trainer: Trainer) -> dict:
    """Which step and epoch the saved model (and so every reported figure) comes from."""
    state = trainer.state
    step = state.global_step
    if trainer.args.load_best_model_at_end and state.best_global_step:
        step = state.best_global_step
    epoch = next(
        (e["epoch"] for e in state.log_history if e.get("step") == step and "epoch" in e), state.epoch
    )
    return {
        "reported_step": step,
        "reported_epoch": round(float(epoch or 0), 4),
        "trained_steps": state.global_step,
        "trained_epochs": round(float(state.epoch or 0), 4),
    }
