"""From an image and its mask to model inputs: the same random crop, scale and flip for both, then the checkpoint's
image processor for the image and a nearest-neighbour resize (class ids are never blended) for the mask."""

from __future__ import annotations

import random
from collections.abc import Callable

import numpy as np
import torch

from llmkit.errors import UserError, require
from llmkit.vision.segment_data import LabelMap


def joint_augment(image, mask, rng=random, *, flip_probability: float = 0.5, min_scale: float = 0.6):
    """Crop the same random box (min_scale..100% of each side) out of the image and its mask, then maybe flip both."""
    pil = require("PIL.Image", "vision")
    width, height = image.size
    scale = rng.uniform(min_scale, 1.0)
    w = max(1, int(width * scale))
    h = min(height, max(1, int(height * scale * rng.uniform(0.9, 1.1))))
    x, y = rng.randint(0, width - w), rng.randint(0, height - h)
    box = (x, y, x + w, y + h)
    # Back to the full size: the processor would resize anyway, and a fixed size keeps the batch rectangular.
    image = image.crop(box).resize((width, height), pil.Resampling.BILINEAR)
    mask = mask.crop(box).resize((width, height), pil.Resampling.NEAREST)
    if rng.random() < flip_probability:
        image = image.transpose(pil.Transpose.FLIP_LEFT_RIGHT)
        mask = mask.transpose(pil.Transpose.FLIP_LEFT_RIGHT)
    return image, mask


def make_segment_transform(
    processor, labels: LabelMap, *, train: bool, augment: bool = True, flip_probability: float = 0.5
) -> Callable[[dict], dict]:
    """A datasets transform: {"image", "mask"} rows -> {"pixel_values", "labels"} (class indices, IGNORE kept)."""
    pil = require("PIL.Image", "vision")

    def transform(batch: dict) -> dict:
        pairs = [(image.convert("RGB"), mask) for image, mask in zip(batch["image"], batch["mask"])]
        for image, mask in pairs:  # folders are checked when loaded; a Hub dataset's rows only here
            if image.size != mask.size:
                raise UserError(
                    f"a mask {_where(mask)} is {mask.size[0]}x{mask.size[1]} but its image is "
                    f"{image.size[0]}x{image.size[1]}; a mask must have its image's size."
                )
        if train and augment:  # random is seeded by set_seed
            pairs = [joint_augment(i, m, random, flip_probability=flip_probability) for i, m in pairs]
        pixels = processor(images=[i for i, _ in pairs], return_tensors="pt")["pixel_values"]
        height, width = pixels.shape[-2:]
        targets = []
        for (_, mask), source in zip(pairs, batch["mask"]):
            ids = labels.encode(np.asarray(mask), where=f"a mask {_where(source)}").astype(np.uint8)
            resized = pil.fromarray(ids).resize((width, height), pil.Resampling.NEAREST)
            targets.append(torch.from_numpy(np.asarray(resized, dtype=np.int64).copy()))
        return {"pixel_values": list(pixels), "labels": targets}

    return transform


def _where(mask) -> str:
    """The mask's file when it was read from one, else that it is a row of the dataset."""
    return getattr(mask, "filename", "") or "(a row of the dataset)"


def collate_masks(examples: list[dict]) -> dict:
    """Stack the processed images and their masks into a batch."""
    return {
        "pixel_values": torch.stack([e["pixel_values"] for e in examples]),
        "labels": torch.stack([e["labels"] for e in examples]),
    }
