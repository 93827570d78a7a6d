"""Semantic segmentation: any AutoModelForSemanticSegmentation checkpoint (SegFormer, BEiT, DPT, MobileViT, UperNet)
or, offline, a tiny SegFormer built in code, fine-tuned on image + mask folders or a Hub dataset."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from datasets import DatasetDict
from transformers import AutoModelForSemanticSegmentation, set_seed

from llmkit.errors import UserError
from llmkit.finetune.common import FinetuneModelArguments, start_run
from llmkit.finetune.trainer import build_trainer
from llmkit.launch import one_run_per_output_dir
from llmkit.log import get_logger
from llmkit.runtime import learning_rate_field, output_dir_field
from llmkit.vision.common import VisionCard, VisionTrainingArguments, finish, log_data, train_resumed
from llmkit.vision.models import has_trained_head, label_fields, load_labelled_model, pil_processor_class
from llmkit.vision.segment_data import IGNORE, LabelMap, SegmentDataArguments, load_segmentation
from llmkit.vision.segment_eval import IoUScores, per_class_iou, plot_overlays, upsampled_argmax
from llmkit.vision.segment_transforms import collate_masks, make_segment_transform
from llmkit.vision.synthetic import cached_mask_folders

logger = get_logger(__name__)

CARD = VisionCard(
    recipe="finetune-segmentation",
    task="Semantic segmentation",
    pipeline_tag="image-segmentation",
    tiny="tiny SegFormer (built in code, random weights)",
    headline=("mean_iou", "pixel_accuracy"),
)
OVERLAYS = 6  # validation images drawn in predictions.png


@dataclass
class SegmentModelArguments:
    """Augmentation, and the offline defaults (the tiny SegFormer and the generated digit canvases)."""

    augment: bool = field(
        default=True, metadata={"help": "Crop, rescale and flip each training image and its mask alike."}
    )
    flip_probability: float = field(
        default=0.5, metadata={"help": "Chance of a horizontal flip of a training image (0: never)."}
    )
    image_size: int = field(
        default=64,
        metadata={"help": "Input side of the tiny SegFormer built when no --model_name_or_path is given."},
    )
    generated_digits: str = field(
        default="014", metadata={"help": "Which digits the generated canvases hold when no data is given."}
    )
    generated_images: int = field(
        default=300,
        metadata={"help": "Generated training canvases when no data is given (a fifth as many test)."},
    )
    generated_per_canvas: int = field(
        default=1, metadata={"help": "At most this many digits per generated canvas (1: one large digit)."}
    )

    def __post_init__(self) -> None:
        if not 0 <= self.flip_probability <= 1:
            raise UserError(
                f"--flip_probability is a probability between 0 and 1, got {self.flip_probability}."
            )
        if self.image_size < 16:  # the tiny SegFormer's 4x4 kernels on a 1/4-size map
            raise UserError(f"--image_size must be at least 16, got {self.image_size}.")
        if self.generated_per_canvas < 1:
            raise UserError(f"--generated_per_canvas must be at least 1, got {self.generated_per_canvas}.")
        if self.generated_images < 1:
            raise UserError(f"--generated_images must be at least 1, got {self.generated_images}.")


@dataclass
class SegmentTrainingArguments(VisionTrainingArguments):
    """Fine-tuning defaults for segmentation: scores accumulate batch by batch, keep the best mean IoU."""

    scratch_learning_rate: ClassVar[float] = 3e-3

    output_dir: str | None = output_dir_field("runs/finetune-segmentation")
    learning_rate: float | None = learning_rate_field(
        "5e-5 fine-tuning a checkpoint, 3e-3 for the tiny model"
    )
    num_train_epochs: float = 20.0
    per_device_eval_batch_size: int = 16
    # A split's masks are scored as they come, never held whole in memory (2,000 ADE20k masks at 512 px are 4 GB).
    batch_eval_metrics: bool = True


@one_run_per_output_dir
def finetune_segmentation(
    parsed: tuple[
        SegmentDataArguments, FinetuneModelArguments, SegmentModelArguments, SegmentTrainingArguments
    ],
) -> dict:
    """Fine-tune a semantic segmentation model; write it, its processor, metrics, overlays and a model card."""
    data_args, model_args, seg_args, args = parsed
    start_run(args)
    source = _choose_data(data_args, seg_args, args)
    data, labels = load_segmentation(data_args, seed=args.seed)
    log_data(data, labels.names, what="classes")
    name = model_args.model_name_or_path
    logger.info(
        args.choose_learning_rate(False, from_scratch="training from scratch" if name is None else None)
    )

    set_seed(args.seed)
    model, processor = _load_model(name, labels, model_args, seg_args)
    splits = DatasetDict(
        {
            k: v.with_transform(
                make_segment_transform(
                    processor,
                    labels,
                    train=k == "train",
                    augment=seg_args.augment,
                    flip_probability=seg_args.flip_probability,
                )
            )
            for k, v in data.items()
        }
    )
    args.refine_best_metric("mean_iou")
    trainer = build_trainer(
        args,
        splits,
        processor,
        collate_masks,
        model=model,
        compute_metrics=IoUScores(labels.names),
    )
    trainer.preprocess_logits_for_metrics = upsampled_argmax
    metrics = train_resumed(trainer, splits, labels.names)
    scored = "test" if "test" in splits else "eval"
    if trainer.is_world_process_zero():
        _draw_predictions(
            trainer, splits["validation"], data["validation"], labels, title=f"{source}: validation"
        )
    extra = {
        "labels": labels.names,
        "per_class_iou": per_class_iou(metrics, labels.names, scored),
        "per_class_iou_split": "test" if scored == "test" else "validation",
        "reduce_labels": labels.reduce,
    }
    return finish(trainer, data, CARD, base=name, source=source, metrics=metrics, extra=extra)


def _draw_predictions(trainer, processed, raw, labels: LabelMap, *, title: str) -> None:
    """predictions.png: the first validation images with their true and predicted masks."""
    shown = processed.select(range(min(OVERLAYS, len(processed))))
    rows = [{**shown[i], "image": raw[i]["image"]} for i in range(len(shown))]
    plot_overlays(
        trainer.model, rows, labels.names, Path(trainer.args.output_dir) / "predictions.png", title=title
    )


def _choose_data(
    data_args: SegmentDataArguments, seg_args: SegmentModelArguments, args: SegmentTrainingArguments
) -> str:
    """With no data flags, generate the digit canvases with masks (once, shared by every process)."""
    if data_args.train_dir or data_args.dataset_name:
        return data_args.source
    try:
        digits = tuple(sorted({int(c) for c in seg_args.generated_digits}))
    except ValueError:
        raise UserError(
            f"--generated_digits takes digits such as 014, got {seg_args.generated_digits!r}."
        ) from None
    with args.main_process_first(desc="generating the digit canvases"):
        root = cached_mask_folders(
            digits=digits,
            train_images=seg_args.generated_images,
            test_images=max(2, seg_args.generated_images // 5),
            max_per_canvas=seg_args.generated_per_canvas,
        )
    data_args.train_dir, data_args.test_dir = str(root / "train"), str(root / "test")
    logger.info(f"no data given: training on generated digit canvases with masks in {root}")
    return "generated digit canvases"


def _load_model(
    name: str | None, labels: LabelMap, model_args: FinetuneModelArguments, seg_args: SegmentModelArguments
):
    """The segmentation model and its image processor: from a checkpoint, or the tiny SegFormer built here."""
    if name is None:
        config, processor = tiny_segformer(labels.names, seg_args.image_size)
        return AutoModelForSemanticSegmentation.from_config(config), processor
    ignore = model_args.ignore_mismatched_sizes
    # A backbone-only checkpoint (nvidia/mit-b0 carries an ImageNet classifier) has no segmentation head to keep.
    model, processor = load_labelled_model(
        AutoModelForSemanticSegmentation,
        name,
        labels.names,
        kind="a segmentation model",
        tiny=CARD.tiny,
        check=lambda config: _check_head(name, config, len(labels.names), ignore),
        ignore_mismatched_sizes=ignore,
    )
    if getattr(model.config, "semantic_loss_ignore_index", IGNORE) != IGNORE:
        model.config.semantic_loss_ignore_index = IGNORE  # the masks mark unlabelled pixels with it
    return model, processor


def _check_head(name: str, config, n_labels: int, ignore_mismatched_sizes: bool) -> bool:
    """Refuse a checkpoint of another kind, or a trained segmentation head with another number of classes.

    Returns whether the checkpoint has a trained segmentation head (its classes named, not LABEL_0...).
    """
    from transformers.models.auto.modeling_auto import MODEL_FOR_SEMANTIC_SEGMENTATION_MAPPING_NAMES as KINDS

    if config.model_type not in KINDS:
        raise UserError(
            f"{name} is a {config.model_type} model, which has no semantic segmentation head; start from one of "
            f"these kinds: {', '.join(sorted(KINDS))} (e.g. nvidia/mit-b0)."
        )
    head, named = config.id2label, has_trained_head(config)
    segments = any(
        a in KINDS.values() for a in getattr(config, "architectures", None) or [KINDS[config.model_type]]
    )
    if named and segments and len(head) != n_labels and not ignore_mismatched_sizes:
        raise UserError(
            f"{name} has a {len(head)}-class segmentation head but the data has {n_labels} classes; pass "
            "--ignore_mismatched_sizes to train a new head (or start from another checkpoint)."
        )
    return bool(named and segments)


def tiny_segformer(names: list[str], image_size: int = 64):
    """A ~100k-parameter SegFormer config for `names` and the processor that resizes to `image_size` and normalises.

    Three stages (strides 4, 2, 2) keep a digit several feature cells wide at 64 pixels; chosen by measuring mean IoU
    after a few hundred steps on the generated canvases (benchmarks/bench_vision_segmentation.py).
    """
    from transformers import SegformerConfig

    config = SegformerConfig(
        num_encoder_blocks=3,
        depths=[1, 1, 1],
        sr_ratios=[4, 2, 1],
        hidden_sizes=[16, 32, 64],
        patch_sizes=[7, 3, 3],
        strides=[4, 2, 2],
        num_attention_heads=[1, 2, 4],
        mlp_ratios=[2, 2, 2],
        decoder_hidden_size=64,
        drop_path_rate=0.0,
        classifier_dropout_prob=0.0,
        **label_fields(names),
        semantic_loss_ignore_index=IGNORE,
    )
    processor = pil_processor_class("Segformer")(
        size={"height": image_size, "width": image_size}, image_mean=[0.5] * 3, image_std=[0.5] * 3
    )
    return config, processor
