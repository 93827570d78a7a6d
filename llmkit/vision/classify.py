"""Image classification by transfer learning: any AutoModelForImageClassification checkpoint (or, offline, a tiny
ResNet built in code) fine-tuned fully, as a frozen feature extractor with a new head, or with LoRA."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import ClassVar

from datasets import DatasetDict
from transformers import AutoModelForImageClassification, set_seed

from llmkit.errors import UserError
from llmkit.finetune.common import FinetuneModelArguments, start_run
from llmkit.finetune.data import FinetuneDataArguments
from llmkit.finetune.lora import LoraArguments, apply_lora
from llmkit.finetune.metrics import accuracy_f1, plot_confusion
from llmkit.finetune.trainer import build_trainer
from llmkit.launch import one_run_per_output_dir
from llmkit.log import get_logger
from llmkit.runtime import learning_rate_field, output_dir_field
from llmkit.vision.common import VisionCard, VisionTrainingArguments, finish, log_data, train_resumed
from llmkit.vision.data import ImageDataArguments, load_images
from llmkit.vision.models import has_trained_head, label_fields, load_labelled_model, pil_processor_class
from llmkit.vision.synthetic import cached_image_folders
from llmkit.vision.transforms import collate, make_transform

logger = get_logger(__name__)

CARD = VisionCard(
    recipe="finetune-image",
    task="Image classification",
    pipeline_tag="image-classification",
    tiny="tiny ResNet (built in code, random weights)",
    headline=("accuracy", "macro_f1"),
)
# Modules LoRA adapts, by model family: attention projections in transformers, the convolutions in CNNs.
VISION_LORA_TARGETS = {
    "vit": ["query", "value"],
    "deit": ["query", "value"],
    "beit": ["query", "value"],
    "dinov2": ["query", "value"],
    "swin": ["query", "value"],
    "resnet": ["convolution"],
    "convnext": ["pwconv1", "pwconv2"],
    "convnextv2": ["pwconv1", "pwconv2"],
}


@dataclass
class ImageModelArguments:
    """How to transfer, and the offline defaults (the tiny model and the generated digit canvases)."""

    freeze_backbone: bool = field(
        default=False,
        metadata={
            "help": "Feature extraction: keep the pretrained backbone fixed and train only the new head."
        },
    )
    augment: bool = field(
        default=True, metadata={"help": "Randomly crop, rotate and recolour training images a little."}
    )
    image_size: int = field(
        default=32,
        metadata={"help": "Input side of the tiny model built when no --model_name_or_path is given."},
    )
    generated_per_class: int = field(
        default=40, metadata={"help": "Generated training canvases per digit when no data is given."}
    )

    def __post_init__(self) -> None:
        if self.image_size < 1:
            raise UserError(f"--image_size must be at least 1, got {self.image_size}.")
        if self.generated_per_class < 1:  # else the message named an empty temporary folder
            raise UserError(f"--generated_per_class must be at least 1, got {self.generated_per_class}.")


@dataclass
class ImageTrainingArguments(VisionTrainingArguments):
    """Fine-tuning defaults for image classification."""

    scratch_learning_rate: ClassVar[float] = 3e-3

    output_dir: str | None = output_dir_field("runs/finetune-image")
    learning_rate: float | None = learning_rate_field(
        "5e-5 fine-tuning a pretrained model, 5e-4 with --use_lora, "
        "3e-3 for the tiny model from scratch or with --freeze_backbone"
    )
    num_train_epochs: float = 10.0
    per_device_train_batch_size: int = 32
    logging_steps: float = 5


@one_run_per_output_dir
def finetune_image(
    parsed: tuple[
        FinetuneDataArguments,
        ImageDataArguments,
        FinetuneModelArguments,
        ImageModelArguments,
        LoraArguments,
        ImageTrainingArguments,
    ],
) -> dict:
    """Fine-tune an image classifier; write it, its processor, metrics, curves, confusion matrix and model card."""
    data_args, image_args, model_args, vision_args, lora_args, args = parsed
    # without this, LoRA trained and the card said "frozen backbone"
    if vision_args.freeze_backbone and lora_args.use_lora:
        raise UserError(
            "--freeze_backbone and --use_lora are two ways to transfer (train only the new head, or adapters "
            "beside it); pass one of them."
        )
    start_run(args)
    source = _choose_data(data_args, image_args, vision_args, args)
    data, labels = load_images(data_args, image_args, seed=args.seed)
    log_data(data, labels)
    name = model_args.model_name_or_path
    new = (
        "training from scratch"
        if name is None
        else ("training only the new head" if vision_args.freeze_backbone else None)
    )
    logger.info(args.choose_learning_rate(lora_args.use_lora, from_scratch=new))

    set_seed(args.seed)
    model, processor = _load_model(name, labels, model_args, vision_args)
    if vision_args.freeze_backbone:
        backbone = getattr(model, model.base_model_prefix)
        backbone.requires_grad_(False)
    if lora_args.use_lora:
        targets = lora_args.lora_target_modules or VISION_LORA_TARGETS.get(model.config.model_type)
        model = apply_lora(model, replace(lora_args, lora_target_modules=targets), None, ["classifier"])

    splits = DatasetDict(
        {
            k: v.with_transform(
                make_transform(processor, train=k == "train", augment_images=vision_args.augment)
            )
            for k, v in data.items()
        }
    )
    args.refine_best_metric("accuracy")
    trainer = build_trainer(
        args,
        splits,
        processor,
        collate,
        model=model,
        compute_metrics=lambda p: accuracy_f1(p.predictions.argmax(-1), p.label_ids, len(labels)),
    )
    metrics = train_resumed(trainer, splits, labels, use_lora=lora_args.use_lora)
    scored = "test" if "test" in splits else "validation"
    out = trainer.predict(splits[scored])  # on every rank: prediction gathers across processes
    if trainer.is_world_process_zero():
        plot_confusion(
            out.predictions.argmax(-1), out.label_ids, labels, f"{args.output_dir}/confusion_matrix.png"
        )
    method = "frozen backbone" if vision_args.freeze_backbone else ("LoRA" if lora_args.use_lora else "full")
    extra = {"labels": labels, "transfer": method, "confusion_matrix_split": scored}
    return finish(
        trainer, data, CARD, base=name, source=source, metrics=metrics, extra=extra, lora_args=lora_args
    )


def _choose_data(
    data_args: FinetuneDataArguments,
    image_args: ImageDataArguments,
    vision_args: ImageModelArguments,
    args: ImageTrainingArguments,
) -> str:
    """With no data flags, generate the digit canvases (once, shared by every process); return the data's name."""
    if image_args.train_dir or data_args.train_file or data_args.dataset_name:
        return image_args.train_dir or data_args.source
    with args.main_process_first(desc="generating the digit canvases"):
        root = cached_image_folders(train_per_class=vision_args.generated_per_class, test_per_class=10)
    image_args.train_dir, image_args.test_dir = str(root / "train"), str(root / "test")
    logger.info(f"no data given: training on generated digit canvases in {root} (class folders)")
    return "generated digit canvases"


def _load_model(name: str | None, labels: list[str], model_args: FinetuneModelArguments, vision_args):
    """The classifier and its image processor: from a checkpoint, or the tiny ResNet built here."""
    if name is None:
        config, processor = tiny_config_and_processor(labels, vision_args.image_size)
        return AutoModelForImageClassification.from_config(config), processor

    def check(config) -> bool:
        trained_head = has_trained_head(config)
        if trained_head and len(config.id2label) != len(labels) and not model_args.ignore_mismatched_sizes:
            raise UserError(
                f"{name} has a {len(config.id2label)}-label classification head but the data has {len(labels)} "
                "labels; pass --ignore_mismatched_sizes to train a new head (or start from another checkpoint)."
            )
        return trained_head

    return load_labelled_model(
        AutoModelForImageClassification,
        name,
        labels,
        kind="an image classifier",
        tiny=CARD.tiny,
        check=check,
        ignore_mismatched_sizes=model_args.ignore_mismatched_sizes,
    )


def tiny_config_and_processor(labels: list[str], image_size: int = 32):
    """A ~80k-parameter ResNet config for `labels` and the processor that resizes to `image_size` and normalises.

    32 pixels keep a digit on a 64-pixel canvas legible and train four times faster than 64.
    """
    from transformers import ResNetConfig

    config = ResNetConfig(
        num_channels=3,
        embedding_size=16,
        hidden_sizes=[16, 32, 64],
        depths=[
            1,
            1,
            1,
        ],  # three stages: the last maps stay 2x2 at 32 pixels, so batch norm works for one image
        layer_type="basic",
        **label_fields(labels),
    )
    processor = pil_processor_class("ViT")(
        size={"height": image_size, "width": image_size}, image_mean=[0.5] * 3, image_std=[0.5] * 3
    )
    return config, processor
