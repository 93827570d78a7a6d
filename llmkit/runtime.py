"""Device and precision set-up shared by every Trainer recipe (launch checks live in llmkit.launch)."""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from transformers import TrainingArguments

from llmkit.launch import resolve_precision
from llmkit.secrets import move_token_to_environment


def output_dir_field(default: str) -> Any:
    """The --output_dir field of a training recipe, with its default folder."""
    return field(default=default, metadata={"help": "Where the model, checkpoints and reports go."})


def learning_rate_field(defaults: str) -> Any:
    """The --learning_rate field: unset until the recipe picks one (choose_learning_rate); `defaults` says which."""
    return field(default=None, metadata={"help": f"Peak learning rate (default: {defaults})."})


@dataclass
class LlmkitTrainingArguments(TrainingArguments):
    """TrainingArguments that pick the device and precision the hardware supports."""

    # The smallest --per_device_train_batch_size a recipe takes (pretraining reads 0 as "the device's default").
    min_train_batch_size: ClassVar[int] = 1

    precision: str = field(
        default="auto",
        metadata={
            "help": "auto (bf16 on GPUs that have it, fp16 on other GPUs, fp32 on CPU), fp32, bf16 or fp16."
        },
    )
    hp_search_trials: int = field(
        default=0,
        metadata={
            "help": "Run an Optuna hyperparameter search of this many trials instead of one training run."
        },
    )
    hp_search_space: str | None = field(
        default=None,
        metadata={"help": "A YAML search space (default: the recipe's; see llmkit/hpsearch.py)."},
    )

    def __post_init__(self) -> None:
        self._check_numbers()  # its ranges name the rule (NaN fails them too); _check_finite catches the rest
        _check_finite(self)
        # without this, found only after the model loads
        if self.output_dir and Path(self.output_dir).expanduser().is_file():
            raise ValueError(
                f"--output_dir {self.output_dir} is a file; pass a folder (new, or an earlier run's)."
            )
        precision = resolve_precision(self.precision)
        if not torch.cuda.is_available():
            # Without this a MULTI_GPU accelerate config on a CPU machine trains N independent copies.
            self.use_cpu = True
        if not (self.bf16 or self.fp16):  # --bf16 / --fp16 given as Trainer flags win
            self.bf16, self.fp16 = precision == "bf16", precision == "fp16"
        super().__post_init__()
        _check_trackers(self.report_to)
        self.started_at = time.perf_counter()  # arguments are parsed first thing: metrics' wall_time_seconds
        # Trainer pickles its arguments into every checkpoint: keep the token out of them.
        move_token_to_environment(self)

    def _check_numbers(self) -> None:
        """Refuse a learning rate or batch size that torch would only reject mid-run, with a traceback."""
        if self.learning_rate is not None and not 0 < self.learning_rate < float("inf"):
            raise ValueError(
                f"--learning_rate must be positive{' and finite' * (self.learning_rate > 0)}, got {self.learning_rate}."
            )
        if not 0 <= self.label_smoothing_factor < 1:  # 2 trained on, its loss and scores meaningless
            raise ValueError(
                f"--label_smoothing_factor must be 0 or more and below 1, got {self.label_smoothing_factor}."
            )
        if not 0 <= self.seed < 2**32:  # NumPy's seeding took a traceback
            raise ValueError(f"--seed must be between 0 and 2**32 - 1, got {self.seed}.")
        if self.per_device_train_batch_size < self.min_train_batch_size:
            default = " (or 0: the device's default)" if self.min_train_batch_size == 0 else ""
            raise ValueError(
                f"--per_device_train_batch_size must be at least 1{default}, got {self.per_device_train_batch_size}."
            )
        if self.max_steps == 0:  # transformers trains one step for 0 and saves it as a finished run
            raise ValueError(
                "--max_steps must be at least 1, got 0; leave it out to train --num_train_epochs instead."
            )
        if self.max_steps <= 0 and not self.num_train_epochs > 0:  # else 0 steps are trained, and exit 0
            raise ValueError(
                f"--num_train_epochs must be positive (or give --max_steps), got {self.num_train_epochs}."
            )
        for name in ("per_device_eval_batch_size", "gradient_accumulation_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be at least 1, got {getattr(self, name)}.")
        self._check_optimizer_numbers()
        self._check_intervals()

    def _check_optimizer_numbers(self) -> None:
        """Refuse optimizer settings that torch rejects with a traceback (a beta of 2), or that train to NaN
        weights and a traceback at the end (a NaN weight decay), or that are silently skipped (a NaN clip norm)."""
        rules = (
            ("weight_decay", 0 <= self.weight_decay < math.inf, "0 or more and finite"),
            ("adam_beta1", 0 <= self.adam_beta1 < 1, "0 or more and below 1"),
            ("adam_beta2", 0 <= self.adam_beta2 < 1, "0 or more and below 1"),
            ("adam_epsilon", 0 < self.adam_epsilon < math.inf, "positive and finite"),
            ("warmup_steps", 0 <= self.warmup_steps < math.inf, "0 or more and finite (below 1: a share)"),
            ("max_grad_norm", self.max_grad_norm is None or 0 <= self.max_grad_norm < math.inf, "0 or more"),
        )
        for name, ok, rule in rules:
            if not ok:  # NaN compares false: refused too
                raise ValueError(f"--{name} must be {rule}, got {getattr(self, name)}.")

    def _check_intervals(self) -> None:
        """Refuse a step interval of 0 or below: transformers reads it as "never" (no checkpoint a kill could
        resume from, no evaluation, no log line) and the run exits 0."""
        for kind, what in (("save", "checkpoints"), ("eval", "evaluations"), ("logging", "log lines")):
            steps, strategy = getattr(self, f"{kind}_steps"), getattr(self, f"{kind}_strategy")
            if strategy == "steps" and steps is not None and steps <= 0:
                raise ValueError(
                    f"--{kind}_steps must be positive (steps between {what}, or below 1 a fraction of the run), "
                    f"got {steps:g}; for no {what} during the run, pass --{kind}_strategy no."
                )


def _check_trackers(report_to: list[str]) -> None:
    """Refuse an experiment tracker that is not installed, before any work (Trainer raised it after the model
    and data were loaded, with a traceback)."""
    from transformers import integrations
    from transformers.integrations.integration_utils import INTEGRATION_TO_CALLBACK

    wanted = {"azure_ml": "azureml", "comet_ml": "comet", "flyte": "flytekit"}
    for name in [n for n in report_to or [] if n not in ("none", "all")]:
        if name not in INTEGRATION_TO_CALLBACK:
            known = ", ".join(INTEGRATION_TO_CALLBACK)
            raise ValueError(f"--report_to {name} is not a tracker; choose none, all, or some of {known}.")
        available = getattr(integrations, f"is_{wanted.get(name, name)}_available", None)
        if available is not None and not available():
            package = {"azure_ml": "azureml-core", "flyte": "flytekit"}.get(name, name)
            raise ValueError(
                f"--report_to {name}: {package} is not installed; `pip install {package}`, or pass "
                "--report_to none (or another tracker)."
            )


def _check_finite(args: TrainingArguments) -> None:
    """Refuse NaN in any number flag the range checks do not cover: a NaN (`--weight_decay nan` before its range
    was checked) trains every weight to NaN and exits 0, its eval_loss NaN and its model useless."""
    for f in dataclasses.fields(args):
        value = getattr(args, f.name, None)
        if isinstance(value, float) and math.isnan(value):
            raise ValueError(f"--{f.name} must be a number, got nan.")
