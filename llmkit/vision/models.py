"""What the three image recipes share when they start from a checkpoint: its label maps, whether its head is trained,
its image processor, and the PIL-backed processor classes the tiny models built in code use."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import transformers
from transformers import AutoConfig, AutoImageProcessor

from llmkit.errors import UserError
from llmkit.loading import load_pretrained, looks_like_path


def label_maps(labels: list[str]) -> tuple[dict[int, str], dict[str, int]]:
    """id2label and label2id for a list of class names, in order."""
    return dict(enumerate(labels)), {label: i for i, label in enumerate(labels)}


def label_fields(labels: list[str]) -> dict:
    """The config keywords giving a model a head for these class names, in order."""
    id2label, label2id = label_maps(labels)
    return {"num_labels": len(labels), "id2label": id2label, "label2id": label2id}


def load_labelled_model(
    auto_class,
    name: str,
    labels: list[str],
    *,
    kind: str,
    tiny: str,
    check: Callable[..., bool],
    ignore_mismatched_sizes: bool,
):
    """A checkpoint as `auto_class` with a head for `labels`, and its image processor.

    `check(config)` refuses a checkpoint the recipe cannot use and says whether its head is trained for these
    labels; an untrained (or, with `ignore_mismatched_sizes`, any mismatched) head is replaced. `tiny` names the
    model the recipe builds in code when no checkpoint is given: the way to train without the Hub.
    """
    trained_head = check(load_checkpoint_config(name, kind, tiny))
    processor = load_image_processor(name)
    model = load_pretrained(
        auto_class,
        name,
        **label_fields(labels),
        ignore_mismatched_sizes=ignore_mismatched_sizes or not trained_head,
    )
    return model, processor


def load_checkpoint_config(name: str, kind: str, tiny: str):
    """The checkpoint's config; a failure's hint names the kind of folder expected, and for a Hub name (which
    fails offline or when the name is wrong) the model built in code, which needs no download."""
    if Path(name).expanduser().exists() or looks_like_path(name):
        hint = f"The folder must hold {kind} (config.json and weights)."
    else:
        hint = f"Without the Hub, leave out --model_name_or_path: the recipe then trains a {tiny}."
    return load_pretrained(AutoConfig, name, hint=hint)


def has_trained_head(config) -> bool:
    """Whether the checkpoint's classes are named (a trained head), not transformers' placeholders LABEL_0...."""
    head = getattr(config, "id2label", None) or {}
    return bool(head) and not all(str(v).startswith("LABEL_") for v in head.values())


def load_image_processor(name: str):
    """The checkpoint's image processor; a folder without one is named with what it lacks."""
    try:
        return AutoImageProcessor.from_pretrained(name)
    except (OSError, ValueError) as err:
        raise UserError(
            f"{name} has no image processor (preprocessor_config.json) to resize and normalise images: {err}"
        ) from None


def pil_processor_class(prefix: str):
    """`<prefix>ImageProcessorPil` where transformers 5 has it (it needs no torchvision), else the plain class."""
    return getattr(transformers, f"{prefix}ImageProcessorPil", None) or getattr(
        transformers, f"{prefix}ImageProcessor"
    )
