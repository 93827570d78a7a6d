"""Images with per-pixel class masks: `images/` + `masks/` folders, or a Hub dataset (scene_parse_150 and the like).

Whatever the source, the result is one shape: a DatasetDict ("train", "validation", optionally "test") whose `image`
and `mask` columns decode to PIL images, and a LabelMap that turns a mask's stored ids into the model's class ids.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
from datasets import Dataset, DatasetDict
from datasets import Image as ImageFeature

from llmkit.data.corpus import load_source
from llmkit.errors import UserError, require
from llmkit.finetune.data import cap_samples
from llmkit.log import get_logger
from llmkit.vision.data import (
    IMAGE_SUFFIXES,
    SplitFolders,
    check_images,
    folder_field,
    image_files,
    shown_size,
)

logger = get_logger(__name__)

IGNORE = 255  # a mask pixel no loss or score counts (unlabelled, or the background under --reduce_labels)
UNKNOWN = -1  # a stored id that id2label does not list
MASK_COLUMNS = ("annotation", "label", "mask")  # scene_parse_150's name first, then the common ones


@dataclass
class SegmentDataArguments(SplitFolders):
    """Image and mask folders, or a Hub dataset, and what the mask values mean."""

    train_dir: str | None = folder_field(
        "A folder with images/ and masks/ (PNGs of class ids, same names as the images)."
    )
    id2label: str | None = field(
        default=None,
        metadata={
            "help": "A JSON file {id: name} (default: id2label.json in --train_dir or the folder above it, "
            "or in the Hub dataset's repository; else the ids found in the masks)."
        },
    )
    dataset_name: str | None = field(
        default=None, metadata={"help": "A Hub dataset with image and mask columns, e.g. scene_parse_150."}
    )
    dataset_config_name: str | None = field(default=None, metadata={"help": "The dataset's configuration."})
    image_column: str = field(default="image", metadata={"help": "The image column of --dataset_name."})
    mask_column: str | None = field(
        default=None,
        metadata={
            "help": f"The mask column of --dataset_name (default: the first of {', '.join(MASK_COLUMNS)})."
        },
    )
    reduce_labels: bool = field(
        default=False,
        metadata={
            "help": "Masks use 0 for 'other' and 1..N for the classes (ADE20k, scene_parse_150): 0 becomes "
            f"{IGNORE} (ignored) and every other id goes down by one; id2label names the reduced ids."
        },
    )
    validation_split_percentage: float = field(
        default=10.0, metadata={"help": "Share of the training images held out when no validation is given."}
    )
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Use at most this many training images."}
    )
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Use at most this many validation images."}
    )

    def __post_init__(self) -> None:
        # else ignored: the files or the built-in data trained
        if self.dataset_config_name and not self.dataset_name:
            raise UserError(
                "--dataset_config_name names a configuration of --dataset_name; pass both, or neither."
            )
        if not 0 < self.validation_split_percentage < 100:  # it held out one image, or all but one
            raise UserError(
                f"--validation_split_percentage must be between 0 and 100 (e.g. 10), got "
                f"{self.validation_split_percentage:g}; or pass a validation file or folder."
            )

    @property
    def source(self) -> str:
        """A short name of the data, for logs and the model card."""
        return self.dataset_name or self.train_dir or "no data"


@dataclass
class LabelMap:
    """The class names, and how a stored mask id becomes a class index (ids need not be contiguous)."""

    ids: list[int]
    names: list[str]
    reduce: bool = False

    @cached_property
    def table(self) -> np.ndarray:
        """Stored value (0..255) -> class index, IGNORE, or UNKNOWN."""
        table = np.full(256, UNKNOWN, dtype=np.int64)
        values = np.arange(256)
        if self.reduce:  # 0 is 'other': ignored; 1..N name the classes 0..N-1
            values = np.where(values == 0, IGNORE, values - 1)
        for index, stored in enumerate(self.ids):
            table[values == stored] = index
        table[values == IGNORE] = IGNORE
        return table

    def encode(self, mask: np.ndarray, *, where: str) -> np.ndarray:
        """Class indices of a mask's pixels; an id id2label does not list is named with the mask it is in."""
        if mask.ndim != 2:
            raise UserError(
                f"{where} has {mask.shape[-1]} colour channels; a mask holds one class id per pixel "
                "(a greyscale or palette PNG), not colours."
            )
        out = self.table[np.clip(mask, 0, 255)]
        bad = (out == UNKNOWN) | (mask > 255)
        if bad.any():
            ids = sorted({int(v) for v in np.unique(mask[bad])})
            shown = " (after --reduce_labels)" if self.reduce else ""
            raise UserError(
                f"{where} has class id(s) {ids}{shown} that the label map {dict(zip(self.ids, self.names))} "
                f"does not list; add them to id2label.json, or use {IGNORE} for pixels to ignore."
            )
        return out


def load_segmentation(args: SegmentDataArguments, *, seed: int) -> tuple[DatasetDict, LabelMap]:
    """Load the images and masks from whichever source the flags name; return them and their label map."""
    args.check_one_source(other=bool(args.dataset_name), flags="--train_dir or --dataset_name, not both")
    if args.train_dir:
        data, masks = _from_folders(args, seed=seed)
        labels = _label_map(args, masks)
        for split_masks in masks.values():  # every mask read once now: a bad one is named before training
            for path in split_masks:
                labels.encode(read_mask(path), where=f"mask {path}")
    elif args.dataset_name:
        data = from_dataset(load_source(args.dataset_name, args.dataset_config_name), args, seed=seed)
        labels = _label_map(args, {})
    else:
        raise UserError("no images given: pass --train_dir (with images/ and masks/) or --dataset_name.")
    if len(labels.names) < 2:
        raise UserError(
            f"id2label has {len(labels.names)} class ({labels.names}); segmentation needs at least 2."
        )
    return cap_samples(data, args), labels


def from_dataset(raw: DatasetDict, args: SegmentDataArguments, *, seed: int) -> DatasetDict:
    """A Hub dataset's image and mask columns (scene_parse_150's `annotation`, or `label`/`mask`) as image/mask."""
    if "train" not in raw:
        raise UserError(f"the dataset has no 'train' split (it has: {', '.join(raw)}).")
    columns = raw["train"].column_names
    mask_col = args.mask_column or next((c for c in MASK_COLUMNS if c in columns), None)
    for column, flag in ((args.image_column, "--image_column"), (mask_col, "--mask_column")):
        if column not in columns:
            raise UserError(
                f"no {flag.removeprefix('--').replace('_', ' ')} {column or ''} in {args.source}; it has {columns}. "
                f"Name it with {flag}."
            )
    splits = {"train": raw["train"]}
    if "validation" in raw:
        splits["validation"] = raw["validation"]
    else:
        held = raw["train"].train_test_split(test_size=args.validation_split_percentage / 100, seed=seed)
        splits = {"train": held["train"], "validation": held["test"]}
    out = DatasetDict()
    for split, ds in splits.items():
        ds = ds.select_columns([args.image_column, mask_col])
        ds = ds.rename_columns(
            {k: v for k, v in ((args.image_column, "image"), (mask_col, "mask")) if k != v}
        )
        for column in ("image", "mask"):  # paths or bytes become decoded images
            if not isinstance(ds.features[column], ImageFeature):
                ds = ds.cast_column(column, ImageFeature())
        out[split] = ds
    return out


def read_mask(path: str | Path) -> np.ndarray:
    """A mask file's stored ids (palette PNGs give their indices, not their colours)."""
    pil = require("PIL.Image", "vision")
    try:
        with pil.open(path) as mask:
            return np.asarray(mask)
    except (OSError, SyntaxError, ValueError) as err:
        raise UserError(f"mask {path} is not a readable image ({err}); replace or remove it.") from None


def _from_folders(args: SegmentDataArguments, *, seed: int) -> tuple[DatasetDict, dict[str, list[str]]]:
    """Pair images/NAME.* with masks/NAME.png in each split folder; check every image opens and fits its mask."""
    train = _pairs(Path(args.train_dir), "--train_dir")
    splits = {"train": train}
    for split, folder, flag in (
        ("validation", args.validation_dir, "--validation_dir"),
        ("test", args.test_dir, "--test_dir"),
    ):
        if folder:
            splits[split] = _pairs(Path(folder), flag)
    if "validation" not in splits:
        if len(train) < 2:
            raise UserError(
                f"--train_dir {args.train_dir} has {len(train)} image: too few to hold out a validation one."
            )
        rows = list(train)
        random.Random(seed).shuffle(rows)
        cut = min(max(1, round(len(rows) * args.validation_split_percentage / 100)), len(rows) - 1)
        splits["train"], splits["validation"] = rows[cut:], rows[:cut]
    for rows in splits.values():
        check_images([r["image"] for r in rows])
        check_images(
            [r["mask"] for r in rows], class_ids=True
        )  # before their sizes are read: a broken mask is named too
        for row in rows:
            _check_sizes(row["image"], row["mask"])
    data = DatasetDict(
        {
            k: Dataset.from_list(v).cast_column("image", ImageFeature()).cast_column("mask", ImageFeature())
            for k, v in splits.items()
        }
    )
    return data, {k: [r["mask"] for r in v] for k, v in splits.items()}


def _pairs(folder: Path, flag: str) -> list[dict]:
    """{"image", "mask"} paths for every image under folder/images/, its mask being folder/masks/<same stem>.png."""
    images, masks = folder / "images", folder / "masks"
    if not images.is_dir() or not masks.is_dir():
        raise UserError(
            f"{flag} {folder} needs an images/ and a masks/ folder (masks/NAME.png holding the class id of each "
            "pixel of images/NAME.*)."
        )
    # read from images/ itself: the pictures of a sub-folder (a Cityscapes-style images/CITY/) were left out unsaid
    subs = sorted(p.name for p in images.iterdir() if p.is_dir() and not p.name.startswith("."))
    if subs:
        logger.warning(
            f"skipped {len(subs)} sub-folder(s) of {images} ({', '.join(subs[:3])}): the images are read from "
            f"{images} itself; move them up (with their masks) to train on them."
        )
    files = image_files(images)
    if not files:
        raise UserError(f"{images} has no images ({', '.join(IMAGE_SUFFIXES)}).")
    by_stem = _masks_by_stem(masks)
    rows, seen = [], {}
    for image in files:
        # else both pictures trained on one mask: the wrong class ids for at least one of them, in silence
        if seen.setdefault(image.stem, image) != image:
            raise UserError(
                f"images {seen[image.stem]} and {image} have the same name, so one mask ({masks / image.stem}.*) "
                "for both; rename one and give it its own mask."
            )
        mask = by_stem.get(image.stem)
        if mask is None:
            raise UserError(
                f"image {image} has no mask: add {masks / (image.stem + '.png')} or remove the image."
            )
        if mask.suffix.lower() in (".jpg", ".jpeg"):  # its ids found became classes, artefacts included
            raise UserError(
                f"mask {mask} is a JPEG, whose lossy compression changes the class ids along every edge (new "
                "ids appear); save the masks losslessly as PNG."
            )
        rows.append({"image": str(image), "mask": str(mask)})
    return rows


def _masks_by_stem(masks: Path) -> dict[str, Path]:
    """The mask files of a masks/ folder by name without suffix; two of one name are refused (either could serve)."""
    by_stem = {}
    for path in sorted(p for p in masks.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES):
        if by_stem.setdefault(path.stem, path) != path:
            raise UserError(
                f"masks {by_stem[path.stem]} and {path} are both the mask of images/{path.stem}.*; keep one."
            )
    return by_stem


def _check_sizes(image: str, mask: str) -> None:
    pil = require("PIL.Image", "vision")
    with pil.open(image) as a:  # the header is enough: no pixels are decoded here
        image_size = shown_size(a)
    with pil.open(mask) as b:
        mask_size = shown_size(b)
    if image_size != mask_size:
        raise UserError(
            f"mask {mask} is {mask_size[0]}x{mask_size[1]} but its image {image} is {image_size[0]}x{image_size[1]} "
            "(as viewers show it, after any EXIF rotation); a mask must have its image's size (one class id per pixel)."
        )


def _label_map(args: SegmentDataArguments, masks: dict[str, list[str]]) -> LabelMap:
    """From --id2label, an id2label.json beside the data (or in the Hub dataset's repository), else the masks' ids."""
    candidates = [Path(args.id2label)] if args.id2label else []
    if args.train_dir and not args.id2label:
        candidates += [Path(args.train_dir) / "id2label.json", Path(args.train_dir).parent / "id2label.json"]
    if args.dataset_name and not args.id2label:
        candidates += _hub_id2label(args.dataset_name)
    for path in candidates:
        if path.is_file():
            return _read_id2label(path, args.reduce_labels)
    if args.id2label:
        raise UserError(f"--id2label {args.id2label}: no such file; pass a JSON file {{id: name}}.")
    if not masks:
        raise UserError(
            f"{args.source} has no id2label.json to name its classes; pass --id2label FILE (a JSON {{id: name}})."
        )
    found: set[int] = set()
    for path in masks["train"]:
        found |= {int(v) for v in np.unique(read_mask(path))}
    ids = sorted(_reduced(found, args.reduce_labels))
    logger.info(f"no id2label.json: the classes are the ids found in the training masks, {ids}")
    return LabelMap(ids, [str(i) for i in ids], args.reduce_labels)


def _reduced(found: set[int], reduce: bool) -> set[int]:
    values = {v - 1 for v in found if v != 0} if reduce else set(found)
    return values - {IGNORE}


def _read_id2label(path: Path, reduce: bool) -> LabelMap:
    try:
        raw = json.loads(path.read_text())
        pairs = sorted((int(k), str(v)) for k, v in raw.items())
    except (ValueError, AttributeError, TypeError) as err:
        raise UserError(
            f"{path} is not a JSON object of {{id: name}} ({err}); fix it or pass --id2label."
        ) from None
    bad = [i for i, _ in pairs if not 0 <= i < IGNORE]
    if bad:
        raise UserError(f"{path} has ids {bad} outside 0..{IGNORE - 1} ({IGNORE} means 'ignore this pixel').")
    logger.info(f"classes from {path}: {dict(pairs)}")
    return LabelMap([i for i, _ in pairs], [n for _, n in pairs], reduce)


def _hub_id2label(dataset_name: str) -> list[Path]:
    """The id2label.json a Hub dataset's repository may hold (as the transformers example reads it), if reachable."""
    if Path(dataset_name).exists():
        return [Path(dataset_name) / "id2label.json"]
    # scene_parse_150 keeps its names in the shared label-files repository, as the transformers example reads them
    repo, name = (
        ("huggingface/label-files", "ade20k-id2label.json")
        if dataset_name == "scene_parse_150"
        else (dataset_name, "id2label.json")
    )
    try:
        from huggingface_hub import hf_hub_download

        return [Path(hf_hub_download(repo, name, repo_type="dataset"))]
    except Exception:  # absent, offline or gated: the caller asks for --id2label
        return []
