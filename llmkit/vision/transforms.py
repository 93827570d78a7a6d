"""From decoded images to model inputs: the checkpoint's image processor, after light augmentation when training."""

from __future__ import annotations

import random
from collections.abc import Callable

import torch

from llmkit.errors import require


def augment(image, rng=random):
    """A random crop of 80-100% of the image (aspect kept near 1), a small rotation and a brightness/contrast change.

    No flips: they would turn some classes into others (digits, text, arrows); a user who wants them can add them.
    """
    enhance = require("PIL.ImageEnhance", "vision")
    width, height = image.size
    scale = rng.uniform(0.8, 1.0)
    w, h = max(1, int(width * scale)), max(1, int(height * scale * rng.uniform(0.9, 1.1)))
    h = min(h, height)
    x, y = rng.randint(0, width - w), rng.randint(0, height - h)
    image = image.crop((x, y, x + w, y + h)).rotate(rng.uniform(-10, 10), fillcolor=image.getpixel((0, 0)))
    image = enhance.Brightness(image).enhance(rng.uniform(0.8, 1.2))
    return enhance.Contrast(image).enhance(rng.uniform(0.8, 1.2))


def make_transform(processor, *, train: bool, augment_images: bool = True) -> Callable[[dict], dict]:
    """A datasets transform: {"image", "label"} rows -> {"pixel_values", "labels"}, augmented when training."""

    def transform(batch: dict) -> dict:
        images = [image.convert("RGB") for image in batch["image"]]
        if train and augment_images:
            images = [augment(image, random) for image in images]  # seeded by set_seed
        pixels = processor(images=images, return_tensors="pt")["pixel_values"]
        return {"pixel_values": list(pixels), "labels": batch["label"]}

    return transform


def collate(examples: list[dict]) -> dict:
    """Stack the processed images and their labels into a batch."""
    return {
        "pixel_values": torch.stack([e["pixel_values"] for e in examples]),
        "labels": torch.tensor([e["labels"] for e in examples]),
    }
