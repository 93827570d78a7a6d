"""The one Trainer set-up every fine-tuning recipe shares: output folder, early stopping, resume, Ctrl-C,
the truncation report, and the scores of the kept model on the validation and test sets."""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from datasets import Dataset, DatasetDict
from safetensors import safe_open
from transformers import EarlyStoppingCallback, Trainer
from transformers.trainer_utils import EvalLoopOutput

from llmkit.checkpoints import find_resume_checkpoint, refuse_to_replace_finished_run, train_resumable
from llmkit.errors import UserError
from llmkit.finetune.common import FinetuneTrainingArguments
from llmkit.launch import prepare_output_dir
from llmkit.lm.batch_shape import RecordBatchShape, check_batch_shape
from llmkit.log import get_logger, without_messages

logger = get_logger(__name__)

# Timing figures that say nothing about the model; kept out of the model card's results table.
TIMING = ("_runtime", "_samples_per_second", "_steps_per_second")

# Below these, a fine-tune from a pretrained start often predicts one class for everything, and a validation
# score cannot tell it from one that learned (seen: 20 rows with the defaults = 6 steps and a 2-row split).
MIN_STEPS, MIN_VALIDATION = 50, 20


def optimizer_steps(args: FinetuneTrainingArguments, n_train: int) -> int:
    """How many optimizer updates the run will make (--max_steps, else epochs x updates per epoch)."""
    if args.max_steps and args.max_steps > 0:
        return args.max_steps
    return math.ceil(args.num_train_epochs * _updates_per_epoch(args, n_train))


def _updates_per_epoch(args: FinetuneTrainingArguments, n_train: int) -> int:
    batches = math.ceil(n_train / (args.per_device_train_batch_size * args.world_size))
    return max(1, math.ceil(batches / args.gradient_accumulation_steps))


def warn_if_too_small(args: FinetuneTrainingArguments, n_train: int, n_validation: int) -> list[str]:
    """Warn (and return the warnings) when the run is too short to learn or its validation set too small to judge."""
    warnings = []
    steps = optimizer_steps(args, n_train)
    if steps < MIN_STEPS:
        if args.max_steps > 0:  # --num_train_epochs does nothing while --max_steps is set
            raise_it = f"Raise --max_steps (to {MIN_STEPS})"
        else:
            per_epoch = _updates_per_epoch(args, n_train)
            epochs = math.ceil(MIN_STEPS / per_epoch)
            raise_it = f"Raise --num_train_epochs (to {epochs}: {epochs * per_epoch} steps)"
        warnings.append(
            f"warning: this run makes only {steps} optimizer steps ({n_train} training examples, "
            f"{args.per_device_train_batch_size * args.world_size * args.gradient_accumulation_steps} per step): "
            f"too few to learn, it may predict one class for everything. {raise_it} or lower "
            "--per_device_train_batch_size, try a higher --learning_rate, or add data."
        )
    if n_validation < MIN_VALIDATION:
        warnings.append(
            f"warning: the validation set has only {n_validation} example(s): its scores move in steps of "
            f"{100 / max(n_validation, 1):.0f}% and cannot tell a model that learned from one that did not. "
            f"Give it at least {MIN_VALIDATION}: a --validation_file, a higher --validation_split_percentage, "
            "or more data."
        )
    for warning in warnings:
        logger.warning(warning)
    return warnings


def report_truncation(
    data: DatasetDict, max_length: int, what: str = "inputs", *, model_limit: int | None = None
) -> tuple[DatasetDict, int]:
    """Count the examples whose `truncated` flag is set, say so once, and drop the flag column.

    `model_limit`: the most tokens the model reads; a max_length there cannot be raised, so the hint says so."""
    truncated = sum(sum(split["truncated"]) for split in data.values())
    if truncated:
        total = sum(len(split) for split in data.values())
        fix = (
            "the most this model reads: shorten them, or use a model with a longer context"
            if model_limit is not None and max_length >= model_limit
            else "raise --max_length to keep more"
        )
        logger.info(
            f"{truncated} of {total} {what} were longer than {max_length} tokens and were truncated ({fix})"
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
    keep_predictions: bool = False,
) -> Trainer:
    """A Trainer (or Seq2SeqTrainer) on data["train"] / data["validation"] with the run's callbacks.

    It remembers its validation passes (see RemembersValidation); with keep_predictions, their predictions too.
    """
    prepare_output_dir(args.output_dir)
    callbacks = []
    if args.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(args.early_stopping_patience, args.early_stopping_threshold))
    trainer = _remembering(trainer_cls)(
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
    trainer.keep_predictions = keep_predictions
    return trainer


class RemembersValidation:
    """Trainer mixin: keeps the validation passes of the kept-model candidates (the best so far and the latest).

    A run that evaluates every epoch has already scored the model it keeps; the end of the run takes those scores
    (and, with `keep_predictions`, the predictions for a confusion matrix) instead of scoring the validation set
    again, which on a large set costs as much as an epoch's evaluation.
    """

    keep_predictions = False

    def evaluation_loop(self, *args, **kwargs) -> EvalLoopOutput:
        """The usual loop; a validation pass (prefix "eval") is remembered by the step it scored."""
        output = super().evaluation_loop(*args, **kwargs)
        if kwargs.get("metric_key_prefix", "eval") == "eval":
            kept = output if self.keep_predictions else output._replace(predictions=None, label_ids=None)
            self.last_validation = kept  # the same metrics dict: evaluate() adds its timing figures to it
            if self.is_in_train:
                passes = self.__dict__.setdefault("validation_passes", {})
                passes[self.state.global_step] = kept
                for step in set(passes) - {self.state.global_step, self.state.best_global_step}:
                    del passes[step]
        return output


class LoadsRenamedCheckpoints:
    """Trainer mixin: a checkpoint saved under other weight names is read back through from_pretrained.

    transformers 5 saves some models (SegFormer, RT-DETR, the MoE and LLaVA families...) under their Hub
    checkpoints' older weight names and converts them on `from_pretrained`, but Trainer reads its own
    checkpoints back with a non-strict `load_state_dict`: no name matches, nothing loads, and a resumed run (or
    the "best" model kept at the end) silently goes on with the weights in memory. When the saved names are
    not the model's, this loads through from_pretrained and copies the weights strictly. These are Trainer's
    private hooks: tests/vision/test_segmentation.py fails if a release changes them.
    """

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        target = model or self.model
        if not self._renamed(resume_from_checkpoint, target):
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        _copy_weights(resume_from_checkpoint, target)

    def _load_best_model(self) -> None:
        folder = self.state.best_model_checkpoint
        if not self._renamed(folder, self.model):
            return super()._load_best_model()
        logger.info(f"loading the best model from {folder}")
        _copy_weights(folder, self.model)

    def _renamed(self, folder: str | None, model) -> bool:
        """Whether a plain single-file checkpoint holds weight names the model does not have."""
        if (
            folder is None
            or self.is_deepspeed_enabled
            or self.is_fsdp_enabled
            or hasattr(model, "peft_config")
        ):
            return False
        weights, config = Path(folder) / "model.safetensors", Path(folder) / "config.json"
        if not (weights.is_file() and config.is_file()):
            return False
        with safe_open(weights, "pt") as f:
            saved = set(f.keys())
        return bool(saved - set(model.state_dict()))


def _copy_weights(folder: str, model) -> None:
    saved = type(model).from_pretrained(folder, config=model.config)  # converts the saved names
    model.load_state_dict(saved.state_dict(), strict=True)


@functools.cache
def _remembering(trainer_cls: type[Trainer]) -> type[Trainer]:
    mixins = (RemembersValidation, LoadsRenamedCheckpoints, trainer_cls)
    return type(trainer_cls.__name__, mixins, {"__doc__": trainer_cls.__doc__})


def resume_checkpoint(args: FinetuneTrainingArguments, *, use_lora: bool | None = None) -> str | None:
    """The checkpoint this run continues from: --resume_from_checkpoint, else the newest complete one in output_dir.

    With `use_lora` (given by the recipes that have --use_lora), a checkpoint of the other kind is refused."""
    prepare_output_dir(args.output_dir)
    # the first process tidies, the rest read
    with args.main_process_first(desc="finding the checkpoint to resume"):
        resume = find_resume_checkpoint(args.output_dir, args.resume_from_checkpoint)
    if not resume and not args.hp_search_trials:  # a search writes hp_search/ and leaves a finished run alone
        refuse_to_replace_finished_run(args.output_dir)
    if use_lora is not None:
        _check_resumed_kind(resume, use_lora)
    if resume and args.process_index == 0:
        logger.info(f"resuming from {resume}")
    return resume


@contextmanager
def weights_from_checkpoint(resume: str | None) -> Iterator[None]:
    """Build a resumed run's model without the load report, which would call its task head new and untrained:
    the checkpoint's trained weights replace the loaded ones before the first step."""
    if not resume:
        yield
        return
    # transformers' weight-loading report, whole or as llmkit's one line about a new task head
    with without_messages("transformers.modeling_utils", "LOAD REPORT", "new task head"):
        yield
    logger.info(f"the model's weights, task head included, are loaded from {resume}")


def _check_resumed_kind(resume: str | None, use_lora: bool) -> None:
    """A LoRA checkpoint holds adapters only, a full one every weight: neither continues as the other."""
    if resume and (Path(resume) / "adapter_config.json").is_file() != use_lora:
        kind, flag = (
            ("LoRA adapter", "with --use_lora") if not use_lora else ("full model", "without --use_lora")
        )
        raise UserError(
            f"{resume} is a {kind} checkpoint; continue it {flag}, or use a new --output_dir for this run."
        )


def _check_resumed_model(resume: str | None, model) -> None:
    """A checkpoint of another architecture (a BERT classifier's in a GPT-2 run's output_dir) cannot be continued."""
    if not resume or model is None:
        return
    try:
        saved = json.loads((Path(resume) / "config.json").read_text()).get("architectures") or []
    except (OSError, ValueError, AttributeError):
        return  # a LoRA checkpoint has no config.json; a damaged one is checkpoint_problem's to name
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if saved and type(base).__name__ not in saved:
        raise UserError(
            f"{resume} holds a {saved[0]}, not the {type(base).__name__} this run trains: its output_dir is "
            "another recipe's; pass a new --output_dir."
        )


def train_and_evaluate(trainer: Trainer, resume: str | None, test: Dataset | None = None) -> dict:
    """Train (resumably), then the kept model's validation scores and, if given, its test scores (`test_*`).

    The validation set is scored once per evaluation: when the kept model was scored during training, those scores
    are reported; only when it was not (no evaluation at its step) is it scored now. The pass reported is left in
    `trainer.kept_validation` (with predictions when the trainer keeps them).
    """
    _check_resumed_model(resume, trainer.model)
    check_batch_shape(resume, trainer.args)
    trainer.add_callback(RecordBatchShape())
    train_resumable(trainer, resume)
    kept = _scored_in_training(trainer, kept_checkpoint(trainer)["reported_step"])
    if kept is None:
        trainer.evaluate()
        kept = trainer.last_validation
    trainer.kept_validation = kept
    metrics = dict(kept.metrics)
    metrics.pop("step", None)
    if test is not None:  # scored once, after training: it never takes part in choosing the checkpoint
        metrics.update(trainer.evaluate(test, metric_key_prefix="test"))
    # evaluate() stamps the last epoch, not the kept checkpoint's: see kept_checkpoint()
    metrics.pop("epoch", None)
    return {**metrics, **kept_checkpoint(trainer), "resumed_from": resume}


def _scored_in_training(trainer: Trainer, step: int) -> EvalLoopOutput | None:
    """The validation pass that scored the model of `step` during training (this run, or the run it resumed)."""
    remembered = getattr(trainer, "validation_passes", {}).get(step)
    if remembered is not None:
        return remembered
    if getattr(trainer, "keep_predictions", False):  # predictions of an earlier process are not kept
        return None
    logged = next(
        (
            e
            for e in reversed(trainer.state.log_history)
            if e.get("step") == step and any(k.startswith("eval_") for k in e)
        ),
        None,
    )
    return None if logged is None else EvalLoopOutput(None, None, dict(logged), None)


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
