"""A user's mistake in the images, the masks or the checkpoint: one line naming the file and the fix, exit status 2."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image
from transformers import (
    AutoModelForImageClassification,
    AutoModelForSemanticSegmentation,
    SegformerForImageClassification,
)

from llmkit.errors import UserError
from llmkit.recipes.finetune_segmentation import main as finetune_segmentation
from llmkit.vision.classify import tiny_config_and_processor
from llmkit.vision.segment import tiny_segformer
from tests.helpers import llmkit_in_process
from tests.vision.test_segmentation import FAST, write_mask_canvases


@pytest.fixture(scope="module")
def mask_canvases(tmp_path_factory):
    return write_mask_canvases(tmp_path_factory.mktemp("mask-canvases"))


STEP = ["--max_steps", "1", "--eval_strategy", "no", "--load_best_model_at_end", "false", *FAST]


def _copy(mask_canvases, tmp_path, n=8):
    """A small training folder (its first n images and masks) with the generated id2label.json above it."""
    train = tmp_path / "data" / "train"
    for sub in ("images", "masks"):
        (train / sub).mkdir(parents=True)
        for path in sorted((mask_canvases / "train" / sub).glob("*.png"))[:n]:
            shutil.copy(path, train / sub / path.name)
    shutil.copy(mask_canvases / "id2label.json", tmp_path / "data" / "id2label.json")
    return train


def _run(train, tmp_path, *extra):
    return finetune_segmentation(
        ["--train_dir", str(train), "--output_dir", str(tmp_path / "out"), *STEP, *extra]
    )


def test_a_corrupt_image_is_named_in_one_line_with_exit_status_2(mask_canvases, tmp_path, capfd):
    train = _copy(mask_canvases, tmp_path)
    bad = train / "images" / "0003.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    code, stderr = llmkit_in_process(
        ["finetune-segmentation", "--train_dir", str(train), "--output_dir", str(tmp_path / "out"), *STEP],
        capfd,
    )
    assert code == 2, stderr[-2000:]
    assert stderr.strip().splitlines()[-1].startswith(f"error: {bad} is not a readable image")
    assert "Traceback" not in stderr and not (tmp_path / "out" / "metrics.json").exists()


def test_a_mask_with_an_unknown_class_id_or_colours_is_named(mask_canvases, tmp_path):
    train = _copy(mask_canvases, tmp_path)
    mask = np.asarray(Image.open(train / "masks" / "0005.png")).copy()
    mask[0, :3] = 9
    Image.fromarray(mask).save(train / "masks" / "0005.png")
    with pytest.raises(
        UserError, match=r"mask .*0005.png has class id\(s\) \[9\] that the label map .* does not"
    ):
        _run(train, tmp_path)
    # a colour-coded mask (RGB) is not a map of class ids
    Image.fromarray(mask).convert("RGB").save(train / "masks" / "0005.png")
    with pytest.raises(
        UserError, match=r"mask .*0005.png has 3 colour channels; a mask holds one class id per pixel"
    ):
        _run(train, tmp_path)
    # 255 marks pixels to ignore: allowed anywhere
    mask[0, :3] = 255
    Image.fromarray(mask).save(train / "masks" / "0005.png")
    assert _run(train, tmp_path)["labels"] == ["background", "0", "1"]


def test_a_mask_of_another_size_and_an_image_without_a_mask_are_named(mask_canvases, tmp_path):
    train = _copy(mask_canvases, tmp_path)
    Image.open(train / "masks" / "0002.png").resize((16, 16)).save(train / "masks" / "0002.png")
    with pytest.raises(UserError, match=r"mask .*0002.png is 16x16 but its image .*0002.png is 32x32"):
        _run(train, tmp_path)
    (train / "masks" / "0002.png").unlink()
    with pytest.raises(
        UserError, match=r"image .*0002.png has no mask: add .*masks/0002.png or remove the image"
    ):
        _run(train, tmp_path)
    shutil.rmtree(train / "masks")
    with pytest.raises(UserError, match=r"needs an images/ and a masks/ folder"):
        _run(train, tmp_path)


def test_a_photo_turned_by_its_exif_orientation_is_sized_as_shown(mask_canvases, tmp_path):
    # datasets decodes a photo after its EXIF rotation; the size check read the stored size: a mask drawn on the
    # photo as shown was refused, and a mask of the stored size passed and failed mid-training
    train = _copy(mask_canvases, tmp_path)
    image = Image.open(train / "images" / "0003.png").convert("RGB").resize((48, 32))
    (train / "images" / "0003.png").unlink()
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 48x32, shown turned a quarter: 32x48
    image.save(train / "images" / "0003.jpg", exif=exif)
    mask = Image.open(train / "masks" / "0003.png").resize((48, 32), Image.Resampling.NEAREST)
    mask.transpose(Image.Transpose.ROTATE_270).save(train / "masks" / "0003.png")
    assert _run(train, tmp_path)["labels"] == ["background", "0", "1"]
    mask.save(train / "masks" / "0003.png")
    with pytest.raises(
        UserError, match=r"0003.png is 48x32 but its image .*0003.jpg is 32x48 \(as viewers show"
    ):
        _run(train, tmp_path, "--output_dir", str(tmp_path / "o2"))


def test_a_mask_that_is_not_an_image_is_named(mask_canvases, tmp_path):
    # its size was read unguarded: PIL's UnidentifiedImageError reached the user as a traceback
    train = _copy(mask_canvases, tmp_path)
    (train / "masks" / "0002.png").write_text("not a mask")
    with pytest.raises(UserError, match=r"masks/0002.png is not a readable image .*replace or remove"):
        _run(train, tmp_path)


def test_a_jpeg_mask_is_refused(mask_canvases, tmp_path):
    # its compression artefacts were read as class ids: a 2-class mask trained as 4 classes, without a word
    from PIL import Image

    train = _copy(mask_canvases, tmp_path)
    png = train / "masks" / "0002.png"
    with Image.open(png) as mask:
        mask.convert("L").save(png.with_suffix(".jpg"), quality=70)
    png.unlink()
    with pytest.raises(UserError, match=r"masks/0002.jpg is a JPEG, whose lossy compression .* as PNG"):
        _run(train, tmp_path)


def test_a_checkpoint_whose_head_does_not_match_is_refused_with_the_fix(mask_canvases, tmp_path):
    train = _copy(mask_canvases, tmp_path)
    five = tmp_path / "five-class-segformer"
    config, processor = tiny_segformer(["a", "b", "c", "d", "e"], 32)
    AutoModelForSemanticSegmentation.from_config(config).save_pretrained(five)
    processor.save_pretrained(five)
    with pytest.raises(
        UserError, match=r"has a 5-class segmentation head but the data has 3 classes; pass --ignore"
    ):
        _run(train, tmp_path, "--model_name_or_path", str(five))
    metrics = _run(train, tmp_path, "--model_name_or_path", str(five), "--ignore_mismatched_sizes", "true")
    saved = json.loads((tmp_path / "out" / "config.json").read_text())
    assert (
        metrics["labels"] == ["background", "0", "1"]
        and list(saved["id2label"].values()) == metrics["labels"]
    )

    # a backbone checkpoint such as nvidia/mit-b0 (SegFormer weights under an ImageNet classifier) needs no flag
    backbone = tmp_path / "mit-like"
    config, processor = tiny_segformer([f"imagenet-{i}" for i in range(7)], 32)
    SegformerForImageClassification(config).save_pretrained(backbone)
    processor.save_pretrained(backbone)
    metrics = _run(
        train, tmp_path, "--model_name_or_path", str(backbone), "--output_dir", str(tmp_path / "o1")
    )
    assert metrics["labels"] == ["background", "0", "1"]

    classifier = tmp_path / "image-classifier"
    config, processor = tiny_config_and_processor(["0", "1"], 32)
    AutoModelForImageClassification.from_config(config).save_pretrained(classifier)
    processor.save_pretrained(classifier)
    with pytest.raises(UserError, match=r"is a resnet model, which has no semantic segmentation head"):
        _run(train, tmp_path, "--model_name_or_path", str(classifier), "--output_dir", str(tmp_path / "o2"))


def test_two_images_or_two_masks_of_one_name_are_refused(mask_canvases, tmp_path):
    # images/0002.png and images/0002.jpg both trained on masks/0002.png: one of them with the wrong class ids
    train = _copy(mask_canvases, tmp_path / "a")
    with Image.open(train / "images" / "0003.png") as other:
        other.convert("RGB").save(train / "images" / "0002.jpg")
    with pytest.raises(UserError, match=r"images/0002.jpg and .*images/0002.png have the same name"):
        _run(train, tmp_path / "a")
    # masks/0002.png and masks/0002.bmp: either one could have served
    train = _copy(mask_canvases, tmp_path / "b")
    shutil.copy(train / "masks" / "0003.png", train / "masks" / "0002.bmp")
    with pytest.raises(
        UserError, match=r"masks/0002.bmp and .*masks/0002.png are both the mask of images/0002"
    ):
        _run(train, tmp_path / "b")


def test_images_in_a_sub_folder_are_said_to_be_skipped(mask_canvases, tmp_path, caplog):
    from llmkit.vision.segment_data import _pairs

    # images/CITY/ (as Cityscapes lays them out) was left out without a word
    train = _copy(mask_canvases, tmp_path)
    for sub in ("images", "masks"):
        (train / sub / "berlin").mkdir()
        shutil.move(train / sub / "0002.png", train / sub / "berlin" / "0002.png")
    assert len(_pairs(train, "--train_dir")) == 7
    assert "skipped 1 sub-folder(s) of" in caplog.text and "(berlin): the images are read from" in caplog.text
