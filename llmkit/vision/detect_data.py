"""Boxes on images for object detection: COCO folders (images + annotations.json) or a Hub dataset like cppe-5.

Whatever the source, the result is one shape, the Hub's (cppe-5) layout: a DatasetDict ("train", "validation",
optionally "test") with columns `image` (decoded to PIL), `image_id`, `width`, `height` and `objects`
({"bbox": [[x, y, w, h], ...] in pixels, "category": [class index, ...]}), plus the class names in index order.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from pathlib import Path

from datasets import Dataset, DatasetDict
from datasets import Image as ImageFeature

from llmkit.errors import UserError
from llmkit.finetune.data import FinetuneDataArguments, cap_samples, load_table
from llmkit.log import get_logger
from llmkit.vision.data import SplitFolders, check_images, folder_field, shown_size

logger = get_logger(__name__)

ANNOTATIONS = "annotations.json"
# How far (pixels) a box may reach past its image's edge and still count as inside: rounding in exported boxes.
EDGE_SLACK = 1.0
# FinetuneDataArguments fields a detection recipe does not take (its local data are folders, not tables).
NOT_FOR_DETECTION = (
    "train_file",
    "validation_file",
    "test_file",
    "text_column",
    "label_column",
    "target_column",
    "max_length",
    "max_target_length",
)


@dataclass
class DetectionDataArguments(SplitFolders):
    """COCO folders (images plus annotations.json), and the columns of a Hub dataset."""

    train_dir: str | None = folder_field(
        "A COCO folder: images plus annotations.json (whose file_name entries are relative to it, "
        "or to its images/ sub-folder)."
    )
    image_column: str = field(default="image", metadata={"help": "The image column of --dataset_name."})
    objects_column: str = field(
        default="objects",
        metadata={
            "help": "The column of --dataset_name holding {'bbox': [[x, y, w, h], ...], 'category': [...]}."
        },
    )


def load_detection(
    data: FinetuneDataArguments, boxes: DetectionDataArguments, *, seed: int
) -> tuple[DatasetDict, list[str]]:
    """Load the annotated images from whichever source the flags name; return them and the class names."""
    boxes.check_one_source(other=bool(data.dataset_name), flags="--train_dir or --dataset_name")
    if boxes.train_dir:
        out, labels = _from_coco_folders(boxes, seed=seed, holdout=data.validation_split_percentage / 100)
    elif data.dataset_name:
        out, labels = _from_hub(data, boxes, seed=seed)
    else:
        raise UserError("no images given: pass --train_dir (a COCO folder) or --dataset_name.")
    return cap_samples(out, data), labels


def _from_coco_folders(
    boxes: DetectionDataArguments, *, seed: int, holdout: float
) -> tuple[DatasetDict, list[str]]:
    train, categories = read_coco(Path(boxes.train_dir), "--train_dir")
    labels = [name for _, name in sorted(categories.items())]
    splits = {"train": train}
    for split, folder, flag in (
        ("validation", boxes.validation_dir, "--validation_dir"),
        ("test", boxes.test_dir, "--test_dir"),
    ):
        if folder:
            rows, theirs = read_coco(Path(folder), flag)
            if theirs != categories:
                raise UserError(
                    f"{flag} {folder}/{ANNOTATIONS} has the categories {theirs}, but the training data has "
                    f"{categories}; give both the same categories list."
                )
            splits[split] = rows
    if "validation" not in splits:
        rows = list(train)
        random.Random(seed).shuffle(rows)
        cut = min(max(1, round(len(rows) * holdout)), len(rows) - 1)
        splits["validation"], splits["train"] = rows[:cut], rows[cut:]
    # class ids as given (any integers) -> class indices 0..n-1, the order of the labels
    index = {cid: i for i, cid in enumerate(sorted(categories))}
    out = DatasetDict()
    for split, rows in splits.items():
        for row in rows:
            row["objects"] = {**row["objects"], "category": [index[c] for c in row["objects"]["category"]]}
        out[split] = Dataset.from_list(rows).cast_column("image", ImageFeature())
    return out, labels


def read_coco(folder: Path, flag: str) -> tuple[list[dict], dict[int, str]]:
    """One COCO folder's rows (image path, id, size, its boxes) and its categories {id: name}, checked."""
    path = folder / ANNOTATIONS
    if not path.is_file():
        raise UserError(
            f"{flag} {folder}: no {ANNOTATIONS} there; pass a folder with its images and a COCO {ANNOTATIONS}."
        )
    try:
        coco = json.loads(path.read_text())
        images, annotations, cats = coco["images"], coco.get("annotations", []), coco["categories"]
        categories = {int(c["id"]): str(c["name"]) for c in cats}
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise UserError(
            f"{path} is not COCO detection JSON ({type(err).__name__}: {err}); it needs 'images', "
            "'annotations' and 'categories' lists."
        ) from None
    if not categories:
        raise UserError(f"{path} lists no categories; add its classes as {{'id': ..., 'name': ...}}.")
    names = [name for _, name in sorted(categories.items())]
    if len(categories) < len(cats) or len(set(names)) < len(names):  # one class would shadow the other
        raise UserError(
            f"{path}: its 'categories' repeat an id or a name ({cats!r:.200}); give each class its own id and name."
        )
    _check_entries(path, "images", images, ("id", "file_name"))
    _check_entries(path, "annotations", annotations, ())
    rows, ids = {}, {}  # ids: the image id of each file
    for image in images:
        file = _image_file(folder, image["file_name"])
        # the later image replaced the earlier, and its boxes landed on the wrong picture
        if image["id"] in rows:
            raise UserError(
                f"{path}: image id {image['id']!r} is given to both {rows[image['id']]['image']} and {file}; "
                "give each image its own id (and point each annotation's image_id at its image)."
            )
        # else the picture trained twice, each time with part of its boxes (the rest taught as background)
        twice = ids.setdefault(str(file), image["id"])
        if twice != image["id"]:
            raise UserError(
                f"{path}: {file} is listed twice, as image ids {twice!r} and {image['id']!r}; list each image "
                "once and point all its annotations' image_id at that id."
            )
        rows[image["id"]] = {
            "image": str(file),
            # a number, whatever the JSON's id: a string id ("000123", as some tools export) was an Arrow traceback
            # (ints beside it) or the processor's (all strings); the JSON's id names the image in errors only
            "image_id": len(rows),
            "width": image.get("width"),
            "height": image.get("height"),
            "objects": {"bbox": [], "category": []},
        }
    check_images([r["image"] for r in rows.values()], [f"{path}, image id {i}" for i in rows])
    _fill_sizes(rows, path)
    # COCO's crowd regions (iscrowd 1: one box around many objects) are left out of DETR's training and of COCO's
    # scoring; taken as one object each, they taught the model to draw a box around a crowd, in silence
    crowds = [ann for ann in annotations if ann.get("iscrowd")]
    for ann in annotations:
        if not ann.get("iscrowd"):
            _add_box(rows, ann, categories, path)
    if crowds:
        logger.warning(
            f"{path}: left out {len(crowds)} crowd annotation(s) (iscrowd 1), as COCO training does"
        )
    if not rows:
        raise UserError(f"{path} lists no images; add them to its 'images' list.")
    # nothing to learn, and COCO mAP is -1 (undefined) on a split without boxes
    if len(crowds) == len(annotations):
        why = (
            "its annotations are all crowds, iscrowd 1" if annotations else "its 'annotations' list is empty"
        )
        raise UserError(
            f"{path} has no boxes ({why}); a detector trains and is scored on "
            "labelled boxes: add them as {'image_id', 'category_id', 'bbox': [x, y, width, height]}."
        )
    return list(rows.values()), categories


def _check_entries(path: Path, key: str, entries: object, needed: tuple[str, ...]) -> None:
    """The COCO file's `key` must be a list of objects, each with the `needed` fields."""
    if not isinstance(entries, list):
        raise UserError(f"{path}: '{key}' must be a list of objects, not {type(entries).__name__}.")
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise UserError(f"{path}: '{key}' entry {i} ({entry!r:.60}) is not an object; fix or remove it.")
        missing = [name for name in needed if name not in entry]
        if missing:
            raise UserError(
                f"{path}: '{key}' entry {i} has no {' or '.join(repr(m) for m in missing)}; "
                f"each entry needs {', '.join(needed)}."
            )


def _image_file(folder: Path, name: str) -> Path:
    """An image named relative to the COCO folder, or to its images/ sub-folder (both layouts are common)."""
    for candidate in (folder / name, folder / "images" / name):
        if candidate.is_file():
            return candidate
    # check_images names the missing file: where the other images are, not a place the user never put one
    return folder / "images" / name if (folder / "images").is_dir() else folder / name


def _fill_sizes(rows: dict, path: Path) -> None:
    """Width and height from each image file, as it is trained on; a JSON that says another size is refused."""
    from PIL import Image

    for image_id, row in rows.items():
        with Image.open(row["image"]) as image:
            size = shown_size(image)
        stated = (_number(row["width"]), _number(row["height"]))
        if all(stated) and stated != size:  # boxes checked against the stated size were cut to the real one
            raise UserError(
                f"{path}, image id {image_id}: its width and height say {row['width']}x{row['height']} but {row['image']} "
                f"is {size[0]}x{size[1]} (as viewers show it, after any EXIF rotation); fix the JSON "
                "(and its boxes, if the image was resized) or the image."
            )
        row["width"], row["height"] = size


def _number(value: object) -> object:
    """A size written as text ("640", as some tools export) as its number; anything else as it is."""
    try:
        return float(value) if isinstance(value, str) else value
    except ValueError:
        return value


def _add_box(rows: dict, ann: dict, categories: dict[int, str], path: Path) -> None:
    """Check one annotation against its image and the categories, then add its box to the image's row."""
    where = f"{path}, annotation {ann.get('id', '?')}"
    if ann.get("image_id") not in rows:
        raise UserError(
            f"{where} names image id {ann.get('image_id')!r}, which is not in its 'images' list; "
            "fix the image_id or add the image."
        )
    if ann.get("category_id") not in categories:
        raise UserError(
            f"{where} names category id {ann.get('category_id')!r}, which is not in its 'categories' "
            f"({sorted(categories)}); fix the category_id or add the category."
        )
    row = rows[ann["image_id"]]
    problem = box_problem(ann.get("bbox"), row["width"], row["height"])
    if problem:
        raise UserError(
            f"{where}: the box {ann.get('bbox')} (x, y, width, height) on {row['image']} "
            f"({row['width']}x{row['height']}) {problem}; fix or remove it."
        )
    row["objects"]["bbox"].append([float(v) for v in ann["bbox"]])
    row["objects"]["category"].append(ann["category_id"])


def box_problem(box, width: float, height: float) -> str | None:
    """What is wrong with a COCO [x, y, w, h] box on a width x height image, or None."""
    if not isinstance(box, (list, tuple)) or len(box) != 4:
        return "is not four numbers"
    try:
        x, y, w, h = (float(v) for v in box)
    except (TypeError, ValueError):  # null or text among them
        return "is not four numbers"
    if not all(math.isfinite(v) for v in (x, y, w, h)):  # a NaN passed every comparison below
        return "is not four finite numbers"
    if w <= 0 or h <= 0:
        return "has no area"
    if x < -EDGE_SLACK or y < -EDGE_SLACK or x + w > width + EDGE_SLACK or y + h > height + EDGE_SLACK:
        return "reaches outside the image"
    return None


def _from_hub(
    data: FinetuneDataArguments, boxes: DetectionDataArguments, *, seed: int
) -> tuple[DatasetDict, list[str]]:
    """A Hub dataset in the cppe-5 layout; its boxes outside their image are dropped (a Hub copy cannot be fixed)."""
    table = load_table(
        data,
        list,
        [boxes.image_column, boxes.objects_column],
        seed=seed,
        asked_by={boxes.image_column: "--image_column", boxes.objects_column: "--objects_column"},
    )
    return hub_to_rows(table, boxes.image_column, boxes.objects_column)


def hub_to_rows(table: DatasetDict, image_col: str, objects_col: str) -> tuple[DatasetDict, list[str]]:
    """Map a cppe-5-style DatasetDict (image, objects{bbox, category}) to the rows this recipe trains on."""
    feature = table["train"].features[objects_col]
    category = feature.get("category") if isinstance(feature, dict) else getattr(feature, "feature", {})
    category = category.get("category") if isinstance(category, dict) else category
    names = getattr(getattr(category, "feature", category), "names", None)
    if not names:
        found = sorted({c for row in table["train"][objects_col] for c in row["category"]})
        names = [str(c) for c in range(max(found) + 1)] if found else []
    if not names:
        raise UserError(
            f"the training data's {objects_col} column has no categories; it needs boxes to learn."
        )
    dropped = 0

    def convert(row: dict, i: int) -> dict:
        nonlocal dropped
        width, height = row[image_col].size
        kept = [
            (list(map(float, b)), int(c))
            for b, c in zip(row[objects_col]["bbox"], row[objects_col]["category"])
            if box_problem(b, width, height) is None
        ]
        dropped += len(row[objects_col]["bbox"]) - len(kept)
        return {
            "image": row[image_col],
            "image_id": row.get("image_id", i),
            "width": width,
            "height": height,
            "objects": {"bbox": [b for b, _ in kept], "category": [c for _, c in kept]},
        }

    out = DatasetDict(
        {
            split: ds.map(
                convert, with_indices=True, remove_columns=ds.column_names, load_from_cache_file=False
            )
            for split, ds in table.items()
        }
    )
    if dropped:
        logger.warning(f"dropped {dropped} box(es) that reach outside their image or have no area")
    return out, [str(n) for n in names]
