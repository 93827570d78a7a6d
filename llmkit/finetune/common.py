"""Arguments and set-up shared by the fine-tuning recipes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from transformers import Seq2SeqTrainingArguments

from llmkit.errors import UserError
from llmkit.finetune.data import FinetuneDataArguments

# Re-exported: tests and benchmarks import these from here.
from llmkit.finetune.encoder import MINILM as MINILM
from llmkit.finetune.encoder import default_encoder as default_encoder
from llmkit.finetune.encoder import packaged_minilm as packaged_minilm
from llmkit.finetune.lora import LoraArguments
from llmkit.launch import check_launch, configure_threads
from llmkit.log import configure_logging
from llmkit.runtime import LlmkitTrainingArguments, learning_rate_field, output_dir_field


@dataclass
class FinetuneModelArguments:
    """Which pretrained model to start from."""

    model_name_or_path: str | None = field(
        default=None, metadata={"help": "A Hub name or local folder (default depends on the recipe)."}
    )
    ignore_mismatched_sizes: bool = field(
        default=False,
        metadata={"help": "Replace a classification head whose label count differs from the data's."},
    )


@dataclass
class FinetuneTrainingArguments(LlmkitTrainingArguments):
    """TrainingArguments with fine-tuning defaults: evaluate and save each epoch, keep the best by the task's metric."""

    # The metric that picks the kept checkpoint (and drives early stopping) unless --metric_for_best_model is given
    # (a task refines it once its data is known: accuracy, entity F1, ...), and the learning rates used unless
    # --learning_rate is given (LoRA adapters need a larger one).
    default_best_metric: ClassVar[str] = "loss"
    full_learning_rate: ClassVar[float] = 5e-5
    lora_learning_rate: ClassVar[float] = 5e-4
    scratch_learning_rate: ClassVar[float | None] = None  # recipes that can build an untrained model set one

    output_dir: str | None = output_dir_field("runs/finetune")
    learning_rate: float | None = learning_rate_field("5e-5 for full fine-tuning, 5e-4 with --use_lora")
    num_train_epochs: float = 3.0
    per_device_train_batch_size: int = 16
    per_device_eval_batch_size: int = 32
    eval_strategy: str | None = field(
        default=None,
        metadata={
            "help": "When to evaluate: epoch (default), steps (default with --eval_steps or --save_steps) or no."
        },
    )
    save_strategy: str | None = field(
        default=None,
        metadata={
            "help": "When to save a checkpoint: epoch (default), steps (default with --save_steps or --eval_steps), best or no."
        },
    )
    save_steps: float | None = field(
        default=None,
        metadata={"help": "Save a checkpoint (and evaluate) every this many steps; without it, each epoch."},
    )
    save_total_limit: int | None = 2
    load_best_model_at_end: bool = True
    logging_steps: float = 10
    warmup_steps: float = 0.1
    weight_decay: float = 0.01
    # True (transformers' default) multiplies each rank's loss by the world size for models whose forward takes
    # num_items_in_batch; BERT's and T5's heads ignore it, so N ranks logged, and clipped, N times the loss.
    average_tokens_across_devices: bool = False
    early_stopping_patience: int | None = field(
        default=None, metadata={"help": "Stop after this many evaluations without improvement."}
    )
    early_stopping_threshold: float = field(
        default=0.0, metadata={"help": "How much the metric must improve to count as an improvement."}
    )

    def __post_init__(self) -> None:
        self._choose_strategies()
        # Decided before TrainingArguments.__post_init__, which would otherwise fill in "loss" for load_best_model_at_end.
        self.best_metric_is_default = self.metric_for_best_model is None
        if self.best_metric_is_default and (self.load_best_model_at_end or self.early_stopping_patience):
            self.metric_for_best_model = self.default_best_metric
        if self.early_stopping_patience is not None:
            if self.early_stopping_patience < 1:
                raise UserError(
                    f"--early_stopping_patience must be at least 1, got {self.early_stopping_patience}."
                )
            if str(getattr(self.eval_strategy, "value", self.eval_strategy)) == "no":
                raise UserError(
                    "--early_stopping_patience needs evaluations: set --eval_strategy epoch (or steps)."
                )
        super().__post_init__()

    def _choose_strategies(self) -> None:
        """--save_steps or --eval_steps alone means steps, for saving and evaluating both (the kept checkpoint is
        chosen by an evaluation at each save); they were ignored under the "epoch" strategies, so a run killed
        before its first epoch ended had no checkpoint, whatever --save_steps said."""
        by_steps = self.save_steps is not None or self.eval_steps is not None
        if self.eval_strategy is None:
            self.eval_strategy = "steps" if by_steps else "epoch"
        if self.save_strategy is None:
            self.save_strategy = "steps" if by_steps else "epoch"
        if self.save_steps is None:
            self.save_steps = self.eval_steps or 500  # transformers' default
        if self.eval_steps is None and str(self.eval_strategy) == "steps":
            self.eval_steps = self.save_steps

    def refine_best_metric(self, metric: str) -> None:
        """Use `metric` for the kept checkpoint when the user did not choose one (e.g. entity F1 for tagging)."""
        if self.best_metric_is_default and self.metric_for_best_model:
            self.metric_for_best_model, self.greater_is_better = metric, not metric.endswith("loss")

    def choose_learning_rate(self, use_lora: bool, *, from_scratch: str | None = None) -> str:
        """Fill in the learning rate when none was given; return a line saying which one is used and why.

        `from_scratch` says why weights start untrained (a model built in code, a new head alone): those take the
        recipe's `scratch_learning_rate`, unless LoRA is used.
        """
        if self.learning_rate is not None:
            return f"learning rate: {self.learning_rate:g} (--learning_rate)"
        if from_scratch and not use_lora and self.scratch_learning_rate:
            self.learning_rate, why = self.scratch_learning_rate, f"the default when {from_scratch}"
        else:
            self.learning_rate = self.lora_learning_rate if use_lora else self.full_learning_rate
            why = "the LoRA default" if use_lora else "the full fine-tuning default"
        return f"learning rate: {self.learning_rate:g} ({why}; pass --learning_rate to change it)"


@dataclass
class FinetuneCausalArguments(FinetuneTrainingArguments):
    """The fine-tuning defaults for finetune-gpt2, in its own folder (runs/finetune is finetune-bert's)."""

    output_dir: str | None = output_dir_field("runs/finetune-gpt2")


@dataclass
class FinetuneSeq2SeqArguments(FinetuneTrainingArguments, Seq2SeqTrainingArguments):
    """Seq2SeqTrainingArguments (generation during evaluation) with the fine-tuning defaults.

    FinetuneTrainingArguments comes first: a dataclass takes each field from the last base in
    reverse MRO order, and Seq2SeqTrainingArguments carries every TrainingArguments default.
    """

    default_best_metric: ClassVar[str] = "rougeL"
    full_learning_rate: ClassVar[float] = 1e-3
    lora_learning_rate: ClassVar[float] = 1e-3

    output_dir: str | None = output_dir_field("runs/finetune-t5")
    learning_rate: float | None = learning_rate_field("1e-3, with or without --use_lora")
    predict_with_generate: bool = True
    generation_max_length: int | None = 64

    def __post_init__(self) -> None:
        # else the run trains, then generate() raises at the first evaluation
        if self.generation_max_length is not None and self.generation_max_length < 1:
            raise ValueError(f"--generation_max_length must be at least 1, got {self.generation_max_length}.")
        super().__post_init__()


# What a text fine-tuning recipe's parser returns, in order: (its task's arguments, data, model, LoRA, training).
FinetuneParsed = tuple[
    Any, FinetuneDataArguments, FinetuneModelArguments, LoraArguments, FinetuneTrainingArguments
]


def start_run(args: LlmkitTrainingArguments, hp_search: bool = False) -> None:
    """What every fine-tuning run checks first: the launch, the CPU threads, and an HP search it cannot do."""
    check_launch()
    configure_threads()
    configure_logging(args.log_level, args.log_level_replica)
    if args.hp_search_trials and not hp_search:
        raise UserError(
            "--hp_search_trials is supported by recipes/pretrain_gpt2.py and recipes/finetune_bert.py; "
            "run this recipe with fixed settings."
        )
