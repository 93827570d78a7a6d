"""Generated vision data that needs no download: scikit-learn's 8x8 digits placed on larger noisy canvases.

Written in the formats users bring, so the same loaders read the generated data and theirs:

- classification: an image folder with one sub-folder per class (`train/3/0007.png`), `train/` and `test/`;
- detection: `images/` plus a COCO `annotations.json` (1-3 digits per canvas, boxes as [x, y, w, h]);
- segmentation: `images/` plus `masks/` PNGs of class ids (0 = background, digit d = d + 1).

Everything is drawn from one seeded generator: the same arguments give the same files, byte for byte.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from llmkit.errors import require

CANVAS = 64  # side of a canvas in pixels
SPLITS = ("train", "test")


@dataclass(frozen=True)
class Placed:
    """One digit drawn on a canvas: its class and its tight box (COCO order: x, y, width, height)."""

    digit: int
    box: tuple[int, int, int, int]


@lru_cache(maxsize=1)
def _glyphs() -> dict[int, np.ndarray]:
    """The 1,797 scikit-learn digits as 0..1 alpha maps, grouped by class."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        require("sklearn", "vision")  # names the extra to install
    # Read scikit-learn's digits file directly: importing sklearn itself takes seconds on a small machine.
    table = np.loadtxt(
        Path(spec.submodule_search_locations[0]) / "datasets/data/digits.csv.gz", delimiter=","
    )
    images, target = table[:, :-1].reshape(-1, 8, 8).astype(np.float32) / 16.0, table[:, -1].astype(int)
    return {d: images[target == d] for d in range(10)}


def render_canvas(
    rng: np.random.Generator, digits: Sequence[int], *, size: int = CANVAS
) -> tuple[np.ndarray, list[Placed], np.ndarray]:
    """Draw `digits` at random positions and scales on a light noisy canvas: (RGB uint8, placements, class-id mask)."""
    pil = require("PIL.Image", "vision")
    background = rng.uniform(170, 250, size=3)
    canvas = np.clip(background + rng.normal(0, 12, size=(size, size, 3)), 0, 255)
    mask = np.zeros((size, size), dtype=np.uint8)
    taken: list[tuple[int, int, int, int]] = []
    placed: list[Placed] = []
    several = len(digits) > 1
    for digit in digits:
        pool = _glyphs()[digit]
        glyph = pool[rng.integers(len(pool))]
        side = int(rng.uniform(0.3, 0.45) * size) if several else int(rng.uniform(0.45, 0.8) * size)
        spot = _free_spot(rng, side, size, taken)
        if spot is None:  # no room left without overlapping: fewer digits on this canvas
            continue
        x, y = spot
        alpha_img = pil.fromarray((glyph * 255).astype(np.uint8)).resize(
            (side, side), pil.Resampling.BILINEAR
        )
        alpha = np.asarray(alpha_img, dtype=np.float32)[..., None] / 255.0
        ink = rng.uniform(0, 90, size=3)
        region = canvas[y : y + side, x : x + side]
        canvas[y : y + side, x : x + side] = region * (1 - alpha) + ink * alpha
        ys, xs = np.nonzero(alpha[..., 0] > 0.25)
        mask[y + ys, x + xs] = digit + 1
        box = (
            x + int(xs.min()),
            y + int(ys.min()),
            int(xs.max() - xs.min() + 1),
            int(ys.max() - ys.min() + 1),
        )
        placed.append(Placed(int(digit), box))
        taken.append((x, y, side, side))
    return canvas.astype(np.uint8), placed, mask


def _free_spot(rng: np.random.Generator, side: int, size: int, taken: list) -> tuple[int, int] | None:
    for _ in range(20):
        x, y = (int(v) for v in rng.integers(0, size - side + 1, size=2))
        if all(x + side <= tx or tx + ts <= x or y + side <= ty or ty + ts <= y for tx, ty, ts, _ in taken):
            return x, y
    return None


def write_image_folders(
    root: str | Path,
    *,
    train_per_class: int = 30,
    test_per_class: int = 10,
    digits: Sequence[int] = tuple(range(10)),
    size: int = CANVAS,
    seed: int = 0,
) -> Path:
    """Write `root/train/<digit>/NNNN.png` and `root/test/<digit>/NNNN.png`, one digit per canvas."""
    pil = require("PIL.Image", "vision")
    root = Path(root)
    rng = np.random.default_rng(seed)
    for split, count in zip(SPLITS, (train_per_class, test_per_class)):
        for digit in digits:
            folder = root / split / str(digit)
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                image, _, _ = render_canvas(rng, [digit], size=size)
                pil.fromarray(image).save(folder / f"{i:04d}.png")
    return root


def write_coco(
    root: str | Path,
    *,
    train_images: int = 120,
    test_images: int = 40,
    digits: Sequence[int] = tuple(range(10)),
    max_per_canvas: int = 3,
    size: int = CANVAS,
    seed: int = 0,
) -> Path:
    """Write `root/<split>/images/NNNN.png`, `root/<split>/annotations.json` (COCO boxes) and the masks beside them.

    `root/<split>/masks/NNNN.png` holds each pixel's class id (0 = background, digit d = d + 1), the same
    canvases as the boxes, so detection and segmentation read one generated set.
    """
    pil = require("PIL.Image", "vision")
    root = Path(root)
    rng = np.random.default_rng(seed)
    categories = [{"id": d, "name": str(d)} for d in digits]
    for split, count in zip(SPLITS, (train_images, test_images)):
        images_dir, masks_dir = root / split / "images", root / split / "masks"
        images_dir.mkdir(parents=True, exist_ok=True)
        masks_dir.mkdir(parents=True, exist_ok=True)
        images, annotations = [], []
        for i in range(count):
            chosen = rng.choice(list(digits), size=int(rng.integers(1, max_per_canvas + 1)))
            image, placed, mask = render_canvas(rng, [int(d) for d in chosen], size=size)
            name = f"{i:04d}.png"
            pil.fromarray(image).save(images_dir / name)
            pil.fromarray(mask).save(masks_dir / name)
            images.append({"id": i, "file_name": name, "width": size, "height": size})
            for p in placed:
                annotations.append(
                    {
                        "id": len(annotations),
                        "image_id": i,
                        "category_id": p.digit,
                        "bbox": list(p.box),
                        "area": p.box[2] * p.box[3],
                        "iscrowd": 0,
                    }
                )
        coco = {"images": images, "annotations": annotations, "categories": categories}
        (root / split / "annotations.json").write_text(json.dumps(coco))
    id2label = {0: "background", **{d + 1: str(d) for d in digits}}
    (root / "id2label.json").write_text(json.dumps(id2label, indent=1))
    return root


def cached_image_folders(*, digits: Sequence[int] = tuple(range(10)), seed: int = 0, **sizes) -> Path:
    """The class-folder canvases in a shared temp folder, generated once (whole or not at all) and then reused."""
    return _cached("canvases", write_image_folders, digits=digits, seed=seed, **sizes)


def cached_mask_folders(*, digits: Sequence[int] = tuple(range(10)), seed: int = 0, **sizes) -> Path:
    """The segmentation canvases (`<split>/images/`, `<split>/masks/`, `id2label.json`), generated once and reused.

    `sizes` are write_coco's train_images, test_images and max_per_canvas (1 gives one large digit per canvas).
    """
    return _cached("masks", write_coco, digits=digits, seed=seed, **sizes)


def _cached(kind: str, write, *, digits: Sequence[int], seed: int, **sizes) -> Path:
    """`write(folder, ...)`'s data set in the temp folder under a name made of its arguments, written only once."""
    key = "-".join(
        [f"d{''.join(map(str, digits))}", f"s{seed}", *(f"{k}{v}" for k, v in sorted(sizes.items()))]
    )
    target = Path(tempfile.gettempdir()) / f"llmkit-digit-{kind}-{key}"
    if target.is_dir():
        return target
    # Written beside the target and renamed into place: a concurrent run or a kill never leaves half a data set.
    scratch = Path(tempfile.mkdtemp(prefix=f"{target.name}.", dir=target.parent))
    write(scratch, digits=digits, seed=seed, **sizes)
    try:
        os.replace(scratch, target)
    except OSError:  # another process renamed its copy first: same files, keep theirs
        shutil.rmtree(scratch, ignore_errors=True)
    return target
