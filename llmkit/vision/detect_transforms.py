"""From images with boxes to detector inputs: box-aware augmentation, then the checkpoint's image processor."""

from __future__ import annotations

import random
from collections.abc import Callable

import torch

from llmkit.errors import require

# A box cut by the augmentation's crop keeps its object only if this much of its area is still in the image.
MIN_VISIBLE = 0.4


def augment_with_boxes(
    image, boxes: list[list[float]], categories: list[int], *, flip_probability: float, rng=random
):
    """Mirror (with `flip_probability`), zoom 80-120% and shift the image, moving its COCO boxes the same way.

    Boxes are clipped to the image; one left with too little of its object visible is dropped with its category.
    Returns (image, boxes, categories).
    """
    pil = require("PIL.Image", "vision")
    enhance = require("PIL.ImageEnhance", "vision")
    width, height = image.size
    if rng.random() < flip_probability:
        image = image.transpose(pil.Transpose.FLIP_LEFT_RIGHT)
        boxes = [[width - x - w, y, w, h] for x, y, w, h in boxes]
    scale = rng.uniform(0.8, 1.2)
    sw, sh = max(1, round(width * scale)), max(1, round(height * scale))
    dx = rng.randint(min(0, width - sw), max(0, width - sw))
    dy = rng.randint(min(0, height - sh), max(0, height - sh))
    canvas = pil.new("RGB", (width, height), image.getpixel((0, 0)))  # the corner's colour fills the border
    canvas.paste(image.resize((sw, sh), pil.Resampling.BILINEAR), (dx, dy))
    kept_boxes, kept_categories = [], []
    for (x, y, w, h), category in zip(boxes, categories):
        moved = [x * sw / width + dx, y * sh / height + dy, w * sw / width, h * sh / height]
        clipped = clip_box(moved, width, height)
        if clipped and clipped[2] * clipped[3] >= MIN_VISIBLE * moved[2] * moved[3]:
            kept_boxes.append(clipped)
            kept_categories.append(category)
    canvas = enhance.Brightness(canvas).enhance(rng.uniform(0.8, 1.2))
    canvas = enhance.Contrast(canvas).enhance(rng.uniform(0.8, 1.2))
    return canvas, kept_boxes, kept_categories


def clip_box(box: list[float], width: float, height: float) -> list[float] | None:
    """A COCO [x, y, w, h] box cut to the image, or None when nothing of it is inside."""
    x0, y0 = max(0.0, box[0]), max(0.0, box[1])
    x1, y1 = min(float(width), box[0] + box[2]), min(float(height), box[1] + box[3])
    if x1 - x0 < 1 or y1 - y0 < 1:
        return None
    return [x0, y0, x1 - x0, y1 - y0]


def make_detection_transform(
    processor, *, train: bool, augment_images: bool = True, flip_probability: float = 0.0
) -> Callable[[dict], dict]:
    """A datasets transform: rows with image/objects -> {"pixel_values", "labels"} (and "pixel_mask" if padded)."""

    def transform(batch: dict) -> dict:
        images, annotations = [], []
        for image, image_id, objects in zip(batch["image"], batch["image_id"], batch["objects"]):
            image = image.convert("RGB")
            boxes, categories = objects["bbox"], objects["category"]
            if train and augment_images:  # seeded by set_seed
                image, boxes, categories = augment_with_boxes(
                    image, boxes, categories, flip_probability=flip_probability
                )
            else:
                kept = [(clip_box(b, *image.size), c) for b, c in zip(boxes, categories)]
                boxes, categories = [b for b, _ in kept if b], [c for b, c in kept if b]
            images.append(image)
            annotations.append(
                {
                    "image_id": image_id,
                    "annotations": [
                        {"bbox": b, "category_id": c, "area": b[2] * b[3], "iscrowd": 0}
                        for b, c in zip(boxes, categories)
                    ],
                }
            )
        encoded = processor(images=images, annotations=annotations, return_tensors="pt")
        out = {"pixel_values": list(encoded["pixel_values"]), "labels": list(encoded["labels"])}
        if "pixel_mask" in encoded:
            out["pixel_mask"] = list(encoded["pixel_mask"])
        return out

    return transform


def collate_detection(examples: list[dict]) -> dict:
    """Stack the images (and pixel masks); the labels stay a list, one dict of boxes and classes per image."""
    batch = {
        "pixel_values": torch.stack([e["pixel_values"] for e in examples]),
        "labels": [e["labels"] for e in examples],
    }
    if "pixel_mask" in examples[0]:
        batch["pixel_mask"] = torch.stack([e["pixel_mask"] for e in examples])
    return batch
