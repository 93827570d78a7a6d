"""The arguments every classic recipe shares, named as transformers' TrainingArguments names them, and the
image and generative families built on them; a recipe adds its own fields in a subclass."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from llmkit.errors import UserError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


EPOCHS_HELP = "Passes over the training data."


def epochs(default: int) -> int:
    """A recipe's own default for --num_train_epochs, keeping its help and its old name --epochs."""
    return field(default=default, metadata={"help": EPOCHS_HELP, "aliases": ["--epochs"]})


COUNTS = ("num_train_epochs", "per_device_train_batch_size", "logging_steps", "save_total_limit")


@dataclass
class ClassicArguments:
    """Arguments every classic recipe shares, named as transformers' TrainingArguments names them."""

    # A recipe's class names its command (metrics.json, the summary), the `llmkit app classic` flag serving
    # its result (None: no page) and its own counts and widths (`sizes`: ints or lists of ints, each refused
    # below 1) as class keywords: `class CNNArguments(ImageArguments, recipe="train-cnn", ...)`.
    recipe: ClassVar[str] = "classic"
    app_flag: ClassVar[str | None] = None
    sizes: ClassVar[tuple[str, ...]] = COUNTS

    def __init_subclass__(
        cls, *, recipe: str | None = None, app_flag: str | None = None, sizes: tuple = (), **kwargs
    ) -> None:
        super().__init_subclass__(**kwargs)
        cls.recipe, cls.app_flag = recipe or cls.recipe, app_flag or cls.app_flag
        cls.sizes = (*cls.sizes, *sizes)

    output_dir: str = field(
        default="runs/classic", metadata={"help": "Where checkpoints, weights, metrics and pictures go."}
    )
    num_train_epochs: int = field(default=10, metadata={"help": EPOCHS_HELP, "aliases": ["--epochs"]})
    per_device_train_batch_size: int = field(
        default=64, metadata={"help": "Examples per batch and process.", "aliases": ["--batch_size"]}
    )
    learning_rate: float = field(default=1e-3, metadata={"help": "Adam learning rate."})
    seed: int = field(default=0, metadata={"help": "Random seed: initial weights, shuffling, sampling."})
    precision: str = field(
        default="auto",
        metadata={
            "help": "auto (bf16/fp16 on GPUs, fp32 on CPU), fp32, bf16 or fp16.",
            "choices": PRECISIONS,
        },
    )
    report_to: list[str] = field(
        default_factory=lambda: ["none"],
        metadata={"help": "Experiment trackers accelerate logs to: none, tensorboard, wandb, ..."},
    )
    max_grad_norm: float = field(
        default=1.0, metadata={"help": "Clip gradients to this norm (0: no clipping)."}
    )
    logging_steps: int = field(default=10, metadata={"help": "Log the training loss every this many steps."})
    save_total_limit: int = field(default=2, metadata={"help": "Checkpoints kept for resuming."})
    log_level: str = field(
        default="passive",
        metadata={
            "help": "llmkit's messages: debug, info, warning, error (passive: info on the main process)."
        },
    )
    log_level_replica: str = field(default="warning", metadata={"help": "The same for the other processes."})

    def __post_init__(self) -> None:
        # `report_to: tensorboard` in a config file, as TrainingArguments allows
        if isinstance(self.report_to, str):
            self.report_to = [t.strip() for t in self.report_to.split(",") if t.strip()]
        _check_trackers([t for t in self.report_to if t not in ("none", "all")])
        for name in self.sizes:
            value = getattr(self, name)
            if value is None:  # an optional size left to its default
                continue
            if min(value if isinstance(value, list) else [value]) < 1:
                raise UserError(
                    f"--{name} must be at least 1{' each' * isinstance(value, list)}, got {value}."
                )
        if not 0 < self.learning_rate < float("inf"):
            raise UserError(
                f"--learning_rate must be positive{' and finite' * (self.learning_rate > 0)}, got {self.learning_rate}."
            )
        # Adam's first step (10x it) overflowed float32: a RuntimeError traceback
        if self.learning_rate > 3.4e37:
            raise UserError(f"--learning_rate must be at most 3.4e+37, got {self.learning_rate:g}.")
        if not 0 <= self.seed < 2**32:
            raise UserError(f"--seed must be between 0 and 2**32 - 1, got {self.seed}.")
        if not 0 <= self.max_grad_norm < float("inf"):  # NaN compares false: it silently turned clipping off
            raise UserError(
                f"--max_grad_norm must be 0 (no clipping) or positive and finite, got {self.max_grad_norm}."
            )
        if self.precision not in PRECISIONS:
            raise UserError(f"--precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}.")


def _check_trackers(names: list[str]) -> None:
    """Refuse a tracker accelerate does not know (a traceback at start) or that is not installed (ignored)."""
    from accelerate import utils

    for name in names:
        available = getattr(utils, f"is_{name}_available", None)
        if available is None:
            known = ", ".join(t for t in utils.LoggerType.list() if t != "all")
            raise UserError(f"--report_to {name} is not a tracker; choose none, all, or some of {known}.")
        if not available():
            raise UserError(
                f"--report_to {name}: {name} is not installed; `pip install {name}`, or pass --report_to none."
            )


@dataclass
class ImageArguments(ClassicArguments):
    """Classic recipes that train on images."""

    dataset: str = field(
        default="digits",
        metadata={"help": "digits (built in), mnist, fashion_mnist, cifar10, a .npz file or a folder."},
    )


@dataclass
class GenerativeArguments(ImageArguments):
    """Classic recipes that generate images, scored by a classifier (the judge)."""

    judge: str | None = field(
        default="runs/cnn",
        metadata={"help": "A CNN folder that scores samples (trained on the fly if missing)."},
    )
