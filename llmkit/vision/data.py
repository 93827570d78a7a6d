"""Labelled images for classification: class folders, CSV/JSONL files of paths and labels, or a Hub dataset.

Whatever the source, the result is one shape: a DatasetDict ("train", "validation", optionally "test") whose
`image` column decodes to PIL images and whose `label` column is a ClassLabel over the class names.
"""

from __future__ import annotations

import random
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasets import ClassLabel, Dataset, DatasetDict
from datasets import Image as ImageFeature

from llmkit.errors import UserError, require
from llmkit.finetune.data import (
    ROW,
    SOURCE,
    FinetuneDataArguments,
    cap_samples,
    describe,
    load_table,
    locate,
)
from llmkit.folders import visible_files
from llmkit.log import get_logger

logger = get_logger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
# greyscale of 16 or 32 bits (integer or float) per pixel
# Folder names of a dataset's splits: a --train_dir holding only these is the dataset's root, not class folders.
SPLIT_FOLDERS = {
    "train": "--train_dir",
    "training": "--train_dir",
    "test": "--test_dir",
    "testing": "--test_dir",
}
SPLIT_FOLDERS |= dict.fromkeys(("validation", "valid", "val", "dev", "eval"), "--validation_dir")
HIGH_DEPTH = ("I", "F", "I;16", "I;16L", "I;16B", "I;16N")
# FinetuneDataArguments fields about text that an image recipe does not take.
TEXT_ONLY = ("text_column", "target_column", "max_length", "max_target_length")


def folder_field(text: str) -> Any:
    """A --train_dir, --validation_dir or --test_dir field: a folder of images, none by default."""
    return field(default=None, metadata={"help": text})


@dataclass
class SplitFolders:
    """--train_dir and the optional --validation_dir and --test_dir: folders in the layout --train_dir describes."""

    train_dir: str | None = folder_field("A folder of training images (each recipe describes its layout).")
    validation_dir: str | None = folder_field(
        "Validation images, same layout (default: split off the training ones)."
    )
    test_dir: str | None = folder_field(
        "Test images, same layout: scored once with the kept model, never used to choose it."
    )

    def check_one_source(self, *, other: bool, flags: str) -> None:
        """Refuse folders given with another source of images (`other`), and split folders without --train_dir."""
        if self.train_dir and other:
            raise UserError(f"pass one source of images: {flags}.")
        if not self.train_dir and (self.validation_dir or self.test_dir):
            raise UserError("--validation_dir and --test_dir go with --train_dir.")


@dataclass
class ImageDataArguments(SplitFolders):
    """Image folders (one sub-folder per class), and which column of a table or Hub dataset holds the image."""

    train_dir: str | None = folder_field(
        "A folder with one sub-folder of images per class (cats/, dogs/, ...)."
    )
    image_column: str = field(
        default="image", metadata={"help": "The image column of --train_file (paths) or --dataset_name."}
    )


def load_images(
    data: FinetuneDataArguments, images: ImageDataArguments, *, seed: int
) -> tuple[DatasetDict, list[str]]:
    """Load the labelled images from whichever source the flags name; return them and the class names."""
    label_col = data.label_column or "label"
    other = bool(data.train_file or data.dataset_name)
    images.check_one_source(other=other, flags="--train_dir, --train_file or --dataset_name")
    if images.train_dir:
        raw = _from_folders(images, seed=seed, holdout=data.validation_split_percentage / 100)
    elif data.train_file or data.dataset_name:
        table = load_table(
            data,
            list,
            [images.image_column, label_col],
            seed=seed,
            asked_by={images.image_column: "--image_column", label_col: "--label_column"},
        )
        raw = _from_table(table, data, images.image_column, label_col)
    else:
        raise UserError("no images given: pass --train_dir, --train_file or --dataset_name.")
    return _encode_labels(raw, data)


def _from_folders(images: ImageDataArguments, *, seed: int, holdout: float) -> DatasetDict:
    train = folder_rows(Path(images.train_dir), "--train_dir", min_classes=2)
    splits = {"train": train}
    for split, folder, flag in (
        ("validation", images.validation_dir, "--validation_dir"),
        ("test", images.test_dir, "--test_dir"),
    ):
        if folder:
            splits[split] = folder_rows(Path(folder), flag, min_classes=1)
            unknown = sorted({r["label"] for r in splits[split]} - {r["label"] for r in train})
            if unknown:
                raise UserError(
                    f"{flag} {folder} has classes the training images lack: {unknown}; "
                    f"add them to {images.train_dir} or remove them."
                )
    if "validation" not in splits:  # held out of each class alike, so every class is validated
        rng = random.Random(seed)
        kept, held = [], []
        for label in sorted({r["label"] for r in train}):
            rows = [r for r in train if r["label"] == label]
            rng.shuffle(rows)
            cut = min(max(1, round(len(rows) * holdout)), len(rows) - 1)  # one image stays for training
            held += rows[:cut]
            kept += rows[cut:]
        splits["train"], splits["validation"] = kept, held
    for rows in splits.values():
        check_images([r["image"] for r in rows])
    return DatasetDict({k: Dataset.from_list(v) for k, v in splits.items()})


def folder_rows(folder: Path, flag: str, *, min_classes: int) -> list[dict]:
    """{"image": path, "label": class folder name} for every image under folder/<class>/."""
    if not folder.is_dir():
        what = "a file, not a folder" if folder.exists() else "no such folder"  # "no such folder" was untrue
        raise UserError(f"{flag} {folder}: {what}; pass a folder with one sub-folder of images per class.")
    classes = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    _refuse_other_tasks(folder, flag, classes)
    if len(classes) < min_classes:
        found = f" ({', '.join(p.name for p in classes)})" if classes else ""
        raise UserError(
            f"{flag} {folder} has {len(classes)} class folder(s){found}; image classification needs at least "
            f"{min_classes}: one sub-folder of images per class, e.g. {folder}/cats/ and {folder}/dogs/."
        )
    _refuse_split_folders(folder, flag, classes)
    rows = []
    for cls in classes:
        files = image_files(cls, recursive=True)
        if not files:
            raise UserError(
                f"class folder {cls} has no images ({', '.join(IMAGE_SUFFIXES)}); add some or remove the folder."
            )
        rows += [{"image": str(p), "label": cls.name} for p in files]
    return rows


def _refuse_other_tasks(folder: Path, flag: str, classes: list[Path]) -> None:
    """A segmentation folder (images/, masks/) trained a classifier telling its pictures from their masks, without
    a word; a COCO folder (annotations.json) is named too, with the recipe that reads it."""
    recipe = None
    if {c.name for c in classes} == {"images", "masks"}:
        recipe, layout = "finetune-segmentation", "a segmentation folder (images/ and masks/)"
    elif (folder / "annotations.json").is_file():
        recipe, layout = "finetune-detection", "a COCO detection folder (annotations.json)"
    if recipe:
        raise UserError(
            f"{flag} {folder} is {layout}, not one folder of images per class; train it with "
            f"`llmkit {recipe} {flag} {folder}`."
        )


def _refuse_split_folders(folder: Path, flag: str, classes: list[Path]) -> None:
    """A dataset's root (train/, validation/, each with class folders) passed as one split: its split folders were
    taken for two classes, "train" and "validation", and a classifier of the two trained without a word."""
    if not all(c.name.lower() in SPLIT_FOLDERS for c in classes):
        return
    if not any(sub.is_dir() for c in classes for sub in c.iterdir()):
        return  # images right inside: odd class names, but class folders
    given = ", ".join(f"{SPLIT_FOLDERS[c.name.lower()]} {c}" for c in classes)
    raise UserError(
        f"{flag} {folder} holds split folders ({', '.join(c.name for c in classes)}), not one folder per class; "
        f"pass each split's folder with its flag: {given}."
    )


def image_files(folder: Path, *, recursive: bool = False) -> list[Path]:
    """The image files in folder (and its sub-folders if recursive), sorted; hidden files and folders are left out,
    and other files are named in a warning rather than dropped without a word."""
    found = visible_files(folder, recursive=recursive)
    skipped = sorted(p for p in found if p.suffix.lower() not in IMAGE_SUFFIXES)
    if skipped:
        kinds = sorted({p.suffix.lower() or p.name for p in skipped})
        logger.warning(
            f"skipped {len(skipped)} file(s) in {folder} that are not images ({', '.join(kinds[:6])}), "
            f"e.g. {skipped[0].name}; convert them to {', '.join(IMAGE_SUFFIXES)} to train on them."
        )
    return sorted(p for p in found if p.suffix.lower() in IMAGE_SUFFIXES)


def check_images(paths: list[str], where: list[str] | None = None, *, class_ids: bool = False) -> None:
    """Decode every image once, so a corrupt, truncated, oversized or missing file is named before training starts;
    unless the files hold class ids (masks), one of more than 8 bits per pixel too."""
    pil = require("PIL.Image", "vision")
    large = []
    for i, path in enumerate(paths):
        at = f" ({where[i]})" if where else ""
        if not Path(path).is_file():
            raise UserError(f"no image file at {path}{at}; fix the path or remove the row.")
        try:
            with warnings.catch_warnings(record=True) as caught, pil.open(path) as image:
                warnings.simplefilter("always", pil.DecompressionBombWarning)
                # verify() reads no JPEG, GIF, BMP or TIFF data: a truncated one passed and failed mid-training.
                # A JPEG decodes at 1/8 scale here, which still reads all of its data.
                image.draft(image.mode, (1, 1))
                image.load()
                mode = image.mode
                if any(issubclass(w.category, pil.DecompressionBombWarning) for w in caught):
                    large.append(f"{path} ({image.width}x{image.height})")
        except pil.DecompressionBombError as err:
            raise UserError(
                f"{path}{at} is too large to decode safely ({err}); shrink it or remove it."
            ) from None
        except (OSError, SyntaxError, ValueError) as err:  # PIL reports a broken file with any of these
            raise UserError(
                f"{path}{at} is not a readable image ({err}); replace or remove the file."
            ) from None
        # convert("RGB") clips them at 255: a 16-bit scan went all white
        if mode in HIGH_DEPTH and not class_ids:
            raise UserError(
                f"{path}{at} has more than 8 bits per pixel (PIL mode {mode}); the model takes 8-bit RGB, and "
                "every value above 255 would be white: save it with 8 bits per channel (scaled down) first."
            )
    if large:
        # said once here, instead of Pillow's raw warning at every decode of every epoch
        logger.warning(
            f"{len(large)} image(s) have over {pil.MAX_IMAGE_PIXELS:,} pixels, e.g. {large[0]}; each is decoded "
            "in full before being resized, every epoch: shrink them first to train faster."
        )
        warnings.filterwarnings("ignore", category=pil.DecompressionBombWarning)


def shown_size(image: Any) -> tuple[int, int]:
    """An opened image's (width, height) as viewers show it and `datasets` decodes it: after its EXIF rotation."""
    width, height = image.size
    # EXIF orientations 5 to 8 turn the picture a quarter turn (datasets applies them with ImageOps.exif_transpose)
    return (height, width) if image.getexif().get(0x0112) in (5, 6, 7, 8) else (width, height)


def _from_table(
    table: DatasetDict, data: FinetuneDataArguments, image_col: str, label_col: str
) -> DatasetDict:
    """Rename to image/label; local files hold paths (relative to the file), checked and then decoded lazily."""
    out = DatasetDict()
    for split, ds in table.items():
        _refuse_unlabelled(ds, data, label_col)
        if not isinstance(ds.features[image_col], ImageFeature):
            base = {s: Path(describe(data, s)).parent for s in ("train", "validation", "test")}
            paths = [str(base[s] / p) for s, p in zip(ds[SOURCE], ds[image_col])]
            _refuse_missing(paths, ds, data, base)
            check_images(paths, [locate(data, s, r) for s, r in zip(ds[SOURCE], ds[ROW])])
            ds = (
                ds.remove_columns(image_col)
                .add_column(image_col, paths)
                .cast_column(image_col, ImageFeature())
            )
        ds = ds.select_columns([image_col, label_col])
        names = getattr(ds.features[label_col], "names", None)  # a Hub ClassLabel: keep names, not ids
        ds = ds.map(
            lambda v, names=names: {"__label": names[v] if names else str(v)},
            input_columns=label_col,
            remove_columns=[label_col],
        )
        out[split] = ds.rename_columns(
            {k: v for k, v in ((image_col, "image"), ("__label", "label")) if k != v}
        )
    return out


def _refuse_missing(
    paths: list[str], ds: Dataset, data: FinetuneDataArguments, base: dict[str, Path]
) -> None:
    """Name the first row (in file order) whose image is missing, and the folder its path was taken from."""
    missing = sorted((s, r, p) for s, r, p in zip(ds[SOURCE], ds[ROW], paths) if not Path(p).is_file())
    if missing:
        source, row, path = missing[0]
        raise UserError(
            f"no image file at {path} ({locate(data, source, row)}): image paths in "
            f"a table are relative to its folder ({base[source].resolve()}); fix the path or remove the row."
        )


def _refuse_unlabelled(ds: Dataset, data: FinetuneDataArguments, label_col: str) -> None:
    """Refuse rows with an empty label: they became a class named 'None' (and a CSV's numbers floats, '1.0')."""
    blank = sorted(
        (source, row)
        for source, row, value in zip(ds[SOURCE], ds[ROW], ds[label_col])
        if value is None or (isinstance(value, str) and not value.strip())
    )
    if blank:
        where = ", ".join(locate(data, s, r) for s, r in blank[:5]) + (" ..." if len(blank) > 5 else "")
        raise UserError(f"{len(blank)} image(s) have no {label_col!r}: {where}. Label them or remove them.")


def _encode_labels(raw: DatasetDict, data: FinetuneDataArguments) -> tuple[DatasetDict, list[str]]:
    """Class names (sorted), the label column as their ids, decoded images, and the sample caps applied."""
    labels = sorted(set(raw["train"]["label"]))
    if len(labels) < 2:
        raise UserError(
            f"the training images have {len(labels)} class ({labels}); image classification needs at least 2."
        )
    unseen = sorted({str(v) for k in raw if k != "train" for v in raw[k]["label"]} - set(labels))
    if unseen:
        raise UserError(f"labels {unseen} appear in the validation/test data but not in the training data.")
    feature = ClassLabel(names=labels)
    out = DatasetDict()
    for split, ds in raw.items():
        ds = ds.cast_column("label", feature)
        if not isinstance(ds.features["image"], ImageFeature):
            ds = ds.cast_column("image", ImageFeature())
        out[split] = ds
    return cap_samples(out, data), labels
