"""The generated digit canvases: the formats users bring, the same files for the same seed, quick to make."""

import hashlib
import json
import time

import numpy as np
from PIL import Image

from llmkit.vision.synthetic import write_coco, write_image_folders


def _digest(root) -> str:
    return hashlib.md5(b"".join(p.read_bytes() for p in sorted(root.rglob("*.png")))).hexdigest()


def test_class_folders_are_written_quickly_and_the_same_for_a_seed(tmp_path):
    started = time.perf_counter()
    write_image_folders(tmp_path / "a", train_per_class=20, test_per_class=5, seed=3)
    took = time.perf_counter() - started
    assert took < 3, took  # 250 canvases; under 1 s when the machine is not shared
    for split, count in (("train", 20), ("test", 5)):
        folders = sorted(p.name for p in (tmp_path / "a" / split).iterdir())
        assert folders == [str(d) for d in range(10)]
        assert all(len(list((tmp_path / "a" / split / d).glob("*.png"))) == count for d in folders)
    image = Image.open(tmp_path / "a/train/7/0000.png")
    assert image.mode == "RGB" and image.size == (64, 64)
    write_image_folders(tmp_path / "b", train_per_class=20, test_per_class=5, seed=3)
    write_image_folders(tmp_path / "c", train_per_class=20, test_per_class=5, seed=4)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b") != _digest(tmp_path / "c")


def test_coco_boxes_and_masks_describe_the_same_digits(tmp_path):
    write_coco(tmp_path, train_images=30, test_images=10, digits=(5, 6, 7), seed=1)
    coco = json.loads((tmp_path / "train/annotations.json").read_text())
    assert [c["name"] for c in coco["categories"]] == ["5", "6", "7"] and len(coco["images"]) == 30
    per_image = [sum(a["image_id"] == im["id"] for a in coco["annotations"]) for im in coco["images"]]
    assert min(per_image) >= 1 and max(per_image) <= 3 and len(set(per_image)) > 1
    for ann in coco["annotations"]:
        x, y, w, h = ann["bbox"]
        assert x >= 0 and y >= 0 and x + w <= 64 and y + h <= 64 and w > 3 and h > 3
        mask = np.asarray(Image.open(tmp_path / "train/masks" / f"{ann['image_id']:04d}.png"))
        inside = mask[y : y + h, x : x + w]
        assert (inside == ann["category_id"] + 1).mean() > 0.1  # the digit's pixels carry its class id
    assert json.loads((tmp_path / "id2label.json").read_text())["6"] == "5"
