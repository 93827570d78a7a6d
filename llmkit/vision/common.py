"""What the image recipes (classification, detection, segmentation) share: their training defaults, and the end of
a run (resume, train, keep example inputs, write the model and its card)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from datasets import DatasetDict
from transformers import Trainer

from llmkit.errors import UserError
from llmkit.finetune.classify import _check_resumed_labels
from llmkit.finetune.common import FinetuneTrainingArguments
from llmkit.finetune.lora import LoraArguments
from llmkit.finetune.outputs import finish_run
from llmkit.finetune.trainer import resume_checkpoint, train_and_evaluate
from llmkit.log import get_logger
from llmkit.vision.examples import EXAMPLES, save_examples

logger = get_logger(__name__)


@dataclass
class VisionTrainingArguments(FinetuneTrainingArguments):
    """Fine-tuning defaults for images: the image column reaches the transform, so no column is removed."""

    remove_unused_columns: bool = False


@dataclass(frozen=True)
class VisionCard:
    """What an image recipe's outputs say of it: command, task, pipeline tag, the model built offline, headline."""

    recipe: str
    task: str
    pipeline_tag: str
    tiny: str
    headline: tuple[str, ...]


def log_data(data: DatasetDict, names: list[str], *, what: str = "labels") -> None:
    """One line naming the classes and the images in each split."""
    sizes = ", ".join(f"{k} {len(v)}" for k, v in data.items())
    logger.info(f"{what} ({len(names)}): {names}; images: {sizes}")


def train_resumed(
    trainer: Trainer, splits: DatasetDict, labels: list[str], *, use_lora: bool | None = None
) -> dict:
    """Train on from the run's checkpoint, if any and of the same labels and kind; the kept model's scores."""
    resume = resume_checkpoint(trainer.args, use_lora=use_lora)
    _check_resumed_labels(resume, labels)
    _check_resumed_size(resume, getattr(trainer.processing_class, "size", None))
    return train_and_evaluate(trainer, resume, splits.get("test"))


def _check_resumed_size(resume: str | None, size: dict | None) -> None:
    """A checkpoint resumed at another input size (--image_size) went on training at the new one, in silence,
    and the saved processor named the last size only."""
    saved = Path(resume or "") / "preprocessor_config.json"
    if not resume or size is None or not saved.is_file():
        return
    before = json.loads(saved.read_text()).get("size")
    if before is not None and before != dict(size):
        raise UserError(
            f"{resume} was trained on images resized to {before}, but this run resizes them to {dict(size)} "
            "(--image_size or the model's processor); resume with the size the run started with, or use a new "
            "--output_dir."
        )


def finish(
    trainer: Trainer,
    data: DatasetDict,
    card: VisionCard,
    *,
    base: str | None,
    source: str,
    metrics: dict,
    extra: dict,
    lora_args: LoraArguments | None = None,
) -> dict:
    """Keep a few validation images (inputs for the image page and a Space), then save the model and its card."""
    if trainer.is_world_process_zero():
        save_examples(data["validation"], trainer.args.output_dir)
    # The usage snippet opens the run's own copy: the source image may be a temporary file (the built-in
    # data's canvases) or an in-memory Hub image with no path at all.
    example = Path(trainer.args.output_dir) / EXAMPLES / "example-0.png"
    return finish_run(
        trainer,
        lora_args or LoraArguments(),
        recipe=card.recipe,
        task=card.task,
        pipeline_tag=card.pipeline_tag,
        base=base or card.tiny,
        data=source,
        eval_metrics=metrics,
        example=str(example),
        headline=list(card.headline),
        extra=extra,
    )
