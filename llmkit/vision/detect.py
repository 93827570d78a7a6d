"""Object detection: any AutoModelForObjectDetection checkpoint (DETR, Conditional DETR, RT-DETR, YOLOS, ...) or,
offline, a tiny RT-DETR built in code, fine-tuned on COCO folders or a Hub dataset in the cppe-5 layout."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import torch
from datasets import DatasetDict
from transformers import AutoModelForObjectDetection, set_seed
from transformers.models.auto.modeling_auto import MODEL_FOR_OBJECT_DETECTION_MAPPING_NAMES

from llmkit.errors import UserError
from llmkit.finetune.common import FinetuneModelArguments, start_run
from llmkit.finetune.data import FinetuneDataArguments
from llmkit.finetune.trainer import build_trainer
from llmkit.launch import one_run_per_output_dir
from llmkit.log import get_logger
from llmkit.runtime import learning_rate_field, output_dir_field
from llmkit.vision.common import VisionCard, VisionTrainingArguments, finish, log_data, train_resumed
from llmkit.vision.detect_data import DetectionDataArguments, load_detection
from llmkit.vision.detect_eval import (
    DetectionTrainer,
    draw_detections,
    metrics_function,
    save_prediction_grid,
)
from llmkit.vision.detect_transforms import collate_detection, make_detection_transform
from llmkit.vision.models import has_trained_head, label_fields, load_labelled_model, pil_processor_class
from llmkit.vision.synthetic import cached_mask_folders

logger = get_logger(__name__)

CARD = VisionCard(
    recipe="finetune-detection",
    task="Object detection",
    pipeline_tag="object-detection",
    tiny="tiny RT-DETR (built in code, random weights)",
    headline=("map", "map_50"),
)
PICTURE = "predictions.png"
GENERATED = "generated digit canvases (COCO)"


@dataclass
class DetectionModelArguments:
    """Augmentation, and the offline defaults (the tiny model and the generated digit canvases)."""

    augment: bool = field(
        default=True,
        metadata={"help": "Randomly zoom, shift and recolour training images, moving their boxes along."},
    )
    flip_probability: float | None = field(
        default=None,
        metadata={
            "help": "Mirror training images (and boxes) left-right this often (default: 0.5 for your images, "
            "0 for the generated digits, which a mirror would turn into other shapes)."
        },
    )
    image_size: int = field(
        default=128,
        metadata={
            "help": "Input side of the tiny model built when no --model_name_or_path is given (the 64-pixel "
            "canvases are enlarged: its finer feature maps find and name the digits better)."
        },
    )
    generated_images: int = field(
        default=400, metadata={"help": "Generated training canvases when no data is given."}
    )
    generated_max_per_canvas: int = field(
        default=1,
        metadata={
            "help": "At most this many digits on each generated canvas (1-3; more are smaller and harder)."
        },
    )

    def __post_init__(self) -> None:
        if self.image_size < 32 or self.image_size % 32:  # the tiny RT-DETR's coarsest feature map: 1/32
            raise UserError(
                f"--image_size must be a multiple of 32 (32, 64, 128, ...), got {self.image_size}."
            )
        if self.generated_images < 1:  # else the message named an empty temporary folder
            raise UserError(f"--generated_images must be at least 1, got {self.generated_images}.")


@dataclass
class DetectionTrainingArguments(VisionTrainingArguments):
    """Fine-tuning defaults for detection: the images and boxes reach the transform, batches are kept apart."""

    scratch_learning_rate: ClassVar[float] = 1e-3
    full_learning_rate: ClassVar[float] = 5e-5

    output_dir: str | None = output_dir_field("runs/finetune-detection")
    learning_rate: float | None = learning_rate_field(
        "5e-5 fine-tuning a pretrained detector, 1e-3 for the tiny model from scratch"
    )
    num_train_epochs: float = 40.0
    per_device_eval_batch_size: int = 16
    max_grad_norm: float = 0.1  # the DETR family's training recipes clip this hard
    eval_do_concat_batches: bool = False  # each image has its own number of boxes


@one_run_per_output_dir
def finetune_detection(
    parsed: tuple[
        FinetuneDataArguments,
        DetectionDataArguments,
        FinetuneModelArguments,
        DetectionModelArguments,
        DetectionTrainingArguments,
    ],
) -> dict:
    """Fine-tune an object detector; write it, its processor, metrics, curves, a predictions picture and a card."""
    data_args, box_args, model_args, vision_args, args = parsed
    start_run(args)
    if vision_args.flip_probability is not None and not 0 <= vision_args.flip_probability <= 1:
        raise UserError(
            f"--flip_probability is a probability between 0 and 1, got {vision_args.flip_probability}."
        )
    source = _choose_data(data_args, box_args, vision_args, args)
    data, labels = load_detection(data_args, box_args, seed=args.seed)
    log_data(data, labels)
    name = model_args.model_name_or_path
    logger.info(
        args.choose_learning_rate(False, from_scratch="training from scratch" if name is None else None)
    )
    flip = vision_args.flip_probability
    if flip is None:
        flip = 0.0 if source == GENERATED else 0.5

    set_seed(args.seed)
    model, processor = load_detector(name, labels, model_args, image_size=vision_args.image_size)
    splits = DatasetDict(
        {
            k: v.with_transform(
                make_detection_transform(
                    processor, train=k == "train", augment_images=vision_args.augment, flip_probability=flip
                )
            )
            for k, v in data.items()
        }
    )
    args.refine_best_metric("map")
    trainer = build_trainer(
        args,
        splits,
        processor,
        collate_detection,
        model=model,
        compute_metrics=metrics_function(processor, labels),
        trainer_cls=DetectionTrainer,
    )
    metrics = train_resumed(trainer, splits, labels)
    if trainer.is_world_process_zero():
        draw_validation(
            trainer.model, processor, data["validation"], labels, path=Path(args.output_dir) / PICTURE
        )
    extra = {
        "labels": labels,
        "flip_probability": flip,
        "predictions_picture": PICTURE,
        "test_dir": box_args.test_dir,
    }
    return finish(trainer, data, CARD, base=name, source=source, metrics=metrics, extra=extra)


def _choose_data(
    data_args: FinetuneDataArguments,
    box_args: DetectionDataArguments,
    vision_args: DetectionModelArguments,
    args: DetectionTrainingArguments,
) -> str:
    """With no data flags, generate the digit canvases (once, shared by every process); return the data's name."""
    if box_args.train_dir or data_args.dataset_name:
        return box_args.train_dir or data_args.dataset_name
    if not 1 <= vision_args.generated_max_per_canvas <= 3:
        raise UserError(
            f"--generated_max_per_canvas must be 1, 2 or 3, got {vision_args.generated_max_per_canvas}."
        )
    with args.main_process_first(desc="generating the digit canvases"):
        root = cached_mask_folders(  # write_coco's canvases: annotations.json beside the images (and masks)
            train_images=vision_args.generated_images,
            test_images=60,
            max_per_canvas=vision_args.generated_max_per_canvas,
        )
    box_args.train_dir, box_args.test_dir = str(root / "train"), str(root / "test")
    logger.info(f"no data given: training on generated digit canvases in {root} (COCO annotations.json)")
    return GENERATED


def load_detector(
    name: str | None, labels: list[str], model_args: FinetuneModelArguments, *, image_size: int = 128
):
    """The detector and its image processor: from a checkpoint, or the tiny RT-DETR built here."""
    if name is None:
        config, processor = tiny_detector_config_and_processor(labels, image_size)
        return AutoModelForObjectDetection.from_config(config), processor

    def check(config) -> bool:
        if config.model_type not in MODEL_FOR_OBJECT_DETECTION_MAPPING_NAMES:
            raise UserError(
                f"{name} is a {config.model_type} model, not an object detector; pass a checkpoint of "
                f"AutoModelForObjectDetection ({', '.join(sorted(MODEL_FOR_OBJECT_DETECTION_MAPPING_NAMES)[:6])}, ...)."
            )
        head, trained_head = config.id2label, has_trained_head(config)
        same = [str(v) for _, v in sorted(head.items())] == labels
        if trained_head and not same and not model_args.ignore_mismatched_sizes:
            raise UserError(
                f"{name} detects {len(head)} other classes ({_preview(head.values())}) than the data's "
                f"{len(labels)} ({_preview(labels)}); pass --ignore_mismatched_sizes to train a new class head."
            )
        return trained_head

    return load_labelled_model(
        AutoModelForObjectDetection,
        name,
        labels,
        kind="an object detector",
        tiny=CARD.tiny,
        check=check,
        ignore_mismatched_sizes=model_args.ignore_mismatched_sizes,
    )


def _preview(names) -> str:
    names = [str(n) for n in names]
    return ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")


def tiny_detector_config_and_processor(labels: list[str], image_size: int = 128):
    """A ~1M-parameter RT-DETR config for `labels` and a processor resizing to `image_size` square.

    RT-DETR because it learns boxes in a few hundred CPU steps where DETR, Conditional DETR and YOLOS of the same
    size barely moved (its denoising queries and IoU-aware class loss); a small ResNet backbone, 8 queries.
    """
    from transformers import RTDetrConfig, RTDetrResNetConfig

    backbone = RTDetrResNetConfig(
        embedding_size=16,
        hidden_sizes=[16, 32, 64, 128],
        depths=[1, 1, 1, 1],
        layer_type="basic",
        out_features=["stage2", "stage3", "stage4"],
    )
    config = RTDetrConfig(
        backbone_config=backbone,
        encoder_in_channels=[32, 64, 128],
        encoder_hidden_dim=64,
        encoder_ffn_dim=128,
        d_model=64,
        decoder_in_channels=[64, 64, 64],
        decoder_layers=2,
        decoder_ffn_dim=128,
        num_queries=8,
        num_denoising=8,
        **label_fields(labels),
    )
    return config, pil_processor_class("RTDetr")(size={"height": image_size, "width": image_size})


@torch.no_grad()
def draw_validation(model, processor, validation, labels: list[str], *, path: Path, count: int = 8) -> Path:
    """Predictions (red) and the true boxes (green) on the first `count` validation images, in one picture."""
    model.eval()
    rows = validation.select(range(min(count, len(validation))))
    images = [row["image"].convert("RGB") for row in rows]
    encoded = processor(images=images, return_tensors="pt").to(model.device)
    outputs = model(**encoded)
    sizes = [(image.height, image.width) for image in images]
    found = processor.post_process_object_detection(outputs, threshold=0.0, target_sizes=sizes)
    drawn = [
        draw_detections(
            image,
            detections,
            labels,
            truth={"boxes": [[x, y, x + w, y + h] for x, y, w, h in row["objects"]["bbox"]]},
        )
        for image, detections, row in zip(images, found, rows)
    ]
    return save_prediction_grid(drawn, path)
