"""A user's mistake in the images or the checkpoint: one line naming the problem and the fix, exit status 2."""

import json
import logging
import shutil
import warnings

import pytest
from transformers import AutoModelForImageClassification

from llmkit.errors import UserError
from llmkit.recipes.finetune_image import main as finetune_image
from llmkit.vision.classify import tiny_config_and_processor
from tests.helpers import llmkit_in_process
from tests.vision.helpers import FAST

STEP = ["--max_steps", "1", "--eval_strategy", "no", "--load_best_model_at_end", "false", *FAST]


def _two_classes(canvases, tmp_path):
    train = tmp_path / "train"
    for digit in ("0", "1"):
        shutil.copytree(canvases / "train" / digit, train / digit)
    return train


def test_a_corrupt_image_is_named_in_one_line_with_exit_status_2(canvases, tmp_path, capfd):
    train = _two_classes(canvases, tmp_path)
    bad = train / "1" / "scan.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    code, stderr = llmkit_in_process(
        ["finetune-image", "--train_dir", str(train), "--output_dir", str(tmp_path / "out"), *STEP], capfd
    )
    assert code == 2, stderr[-2000:]
    assert stderr.strip().splitlines()[-1].startswith(f"error: {bad} is not a readable image")
    assert "Traceback" not in stderr and not (tmp_path / "out" / "metrics.json").exists()


def test_empty_class_folder_and_a_single_class_are_refused(canvases, tmp_path):
    train = _two_classes(canvases, tmp_path)
    (train / "7").mkdir()
    with pytest.raises(UserError, match=r"class folder .*7 has no images .*add some or remove the folder"):
        finetune_image(["--train_dir", str(train), "--output_dir", str(tmp_path / "out"), *STEP])
    shutil.rmtree(train / "7")
    shutil.rmtree(train / "1")
    with pytest.raises(
        UserError, match=r"has 1 class folder\(s\) \(0\); image classification needs at least 2"
    ):
        finetune_image(["--train_dir", str(train), "--output_dir", str(tmp_path / "out"), *STEP])


def test_a_head_with_other_labels_is_named_with_the_fix(canvases, tmp_path):
    train = _two_classes(canvases, tmp_path)
    three = tmp_path / "three-label-model"
    config, processor = tiny_config_and_processor(["0", "1", "4"], 32)
    AutoModelForImageClassification.from_config(config).save_pretrained(three)
    processor.save_pretrained(three)
    argv = ["--train_dir", str(train), "--model_name_or_path", str(three), *STEP]
    with pytest.raises(
        UserError, match=r"has a 3-label classification head but the data has 2 labels; pass --ignore"
    ):
        finetune_image([*argv, "--output_dir", str(tmp_path / "a")])
    metrics = finetune_image(
        [*argv, "--ignore_mismatched_sizes", "true", "--output_dir", str(tmp_path / "a"), "--save_steps", "1"]
    )
    assert metrics["labels"] == ["0", "1"]
    # the same output_dir now holds a 2-label checkpoint: continuing it on 3 labels is refused, not half-resumed
    shutil.copytree(canvases / "train" / "4", train / "4")
    with pytest.raises(UserError, match=r"trained with the labels \['0', '1'\].*use a new --output_dir"):
        finetune_image(["--train_dir", str(train), "--output_dir", str(tmp_path / "a"), *STEP])
    # a full checkpoint is not continued as LoRA adapters (transformers would fail on the missing weights)
    shutil.rmtree(train / "4")
    with pytest.raises(
        UserError, match=r"is a full model checkpoint; continue it without --use_lora, or use a new"
    ):
        finetune_image(
            ["--train_dir", str(train), "--use_lora", "true", "--output_dir", str(tmp_path / "a"), *STEP]
        )


def test_a_missing_image_in_a_table_is_named_with_its_line_and_text_flags_are_refused(canvases, tmp_path):
    table = tmp_path / "images.csv"
    first = sorted(canvases.glob("train/0/*.png"))[0]
    table.write_text(f"image,label\n{first},0\n{first},1\ngone.png,1\n")
    with pytest.raises(UserError, match=r"no image file at .*gone.png \(.*images.csv line 4\)"):
        finetune_image(["--train_file", str(table), "--output_dir", str(tmp_path / "out"), *STEP])
    # a path relative to the working folder, not the table's: the message said only "no image file at x.png"
    (tmp_path / "in_cwd.csv").write_text(f"image,label\n{first.name},0\n{first.name},1\n")
    with pytest.raises(UserError, match=f"relative to its folder \\({tmp_path}\\)"):
        finetune_image(
            ["--train_file", str(tmp_path / "in_cwd.csv"), "--output_dir", str(tmp_path / "o"), *STEP]
        )
    with pytest.raises(UserError, match="does not take --text_column"):
        finetune_image(
            ["--train_file", str(table), "--text_column", "x", "--output_dir", str(tmp_path / "o")]
        )


def test_every_class_keeps_a_training_image_when_validation_is_split_off(canvases, tmp_path):
    from llmkit.finetune import FinetuneDataArguments
    from llmkit.vision.data import ImageDataArguments, load_images

    train = _two_classes(canvases, tmp_path)
    for extra in sorted((train / "1").glob("*.png"))[1:]:
        extra.unlink()  # class 1 has a single image
    data, labels = load_images(FinetuneDataArguments(), ImageDataArguments(train_dir=str(train)), seed=0)
    assert labels == ["0", "1"]
    assert data["train"]["label"].count(1) == 1 and data["validation"]["label"].count(0) == 6


def test_freeze_backbone_and_lora_together_are_refused(tmp_path):
    # both were taken: LoRA adapters trained while metrics.json and the card said "frozen backbone"
    with pytest.raises(UserError, match="--freeze_backbone and --use_lora are two ways to transfer"):
        finetune_image(["--freeze_backbone", "--use_lora", "--output_dir", str(tmp_path / "out"), *STEP])
    assert not (tmp_path / "out").exists()


def test_a_truncated_jpeg_and_an_oversized_image_are_named_before_training(
    canvases, tmp_path, monkeypatch, caplog
):
    # a JPEG cut short passed the check (PIL's verify reads no JPEG data) and failed mid-training with a traceback
    from PIL import Image

    from llmkit.vision.data import check_images

    whole = tmp_path / "whole.jpg"
    Image.open(sorted(canvases.glob("train/0/*.png"))[0]).convert("RGB").save(whole)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    check_images([str(whole)])
    with pytest.raises(UserError, match=r"cut.jpg is not a readable image \(image file is truncated"):
        check_images([str(whole), str(cut)])
    # Over MAX_IMAGE_PIXELS: named once by llmkit, not by Pillow's raw warning at each decode
    with Image.open(whole) as image:
        limit = image.width * image.height - 1
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    with warnings.catch_warnings(record=True) as raw:
        warnings.simplefilter("always")
        with caplog.at_level(logging.WARNING):
            check_images([str(whole)])
    assert f"1 image(s) have over {limit:,} pixels, e.g. {whole}" in caplog.text
    assert not [w for w in raw if issubclass(w.category, Image.DecompressionBombWarning)]
    # Pillow refuses an image of over twice MAX_IMAGE_PIXELS with its own exception, not an OSError
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(UserError, match=r"whole.jpg is too large to decode safely .*shrink it or remove it"):
        check_images([str(whole)])


def test_a_16_bit_image_is_refused_but_a_16_bit_mask_of_class_ids_is_read(tmp_path):
    # convert("RGB") clips 16-bit values at 255: a 16-bit scan trained as an all-white picture, silently
    import numpy as np
    from PIL import Image

    from llmkit.vision.data import check_images

    scan = tmp_path / "scan.png"
    Image.fromarray(np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)).save(scan)
    with pytest.raises(UserError, match=r"scan.png has more than 8 bits per pixel \(PIL mode I;16\).*8 bits"):
        check_images([str(scan)])
    check_images([str(scan)], class_ids=True)


def test_files_that_are_not_images_are_named_and_hidden_ones_left_out(canvases, tmp_path, capsys):
    # a class folder of .heic photos and two .jpg trained on the two, without a word; a hidden folder's copies
    # (.ipynb_checkpoints/) were trained on as images of the class
    from llmkit.log import configure_logging
    from llmkit.vision.data import folder_rows

    train = _two_classes(canvases, tmp_path)
    (train / "1" / "notes.txt").write_text("scanned on Monday")
    (train / "1" / "photo.HEIC").write_bytes(b"heic")
    (train / "1" / ".DS_Store").write_bytes(b"\0")
    (train / "1" / ".ipynb_checkpoints").mkdir()
    shutil.copy(next((train / "1").glob("*.png")), train / "1" / ".ipynb_checkpoints" / "copy.png")
    configure_logging()
    rows = folder_rows(train, "--train_dir", min_classes=2)
    assert len(rows) == len(list(train.glob("*/*.png")))
    assert f"skipped 2 file(s) in {train / '1'} that are not images (.heic, .txt)" in capsys.readouterr().err


def test_a_datasets_root_of_split_folders_is_not_taken_for_two_classes(canvases, tmp_path):
    """data/train/<class>/ and data/validation/<class>/ given as --train_dir data trained "train" against
    "validation", without a word."""
    root = tmp_path / "data"
    _two_classes(canvases, root)
    shutil.copytree(root / "train", root / "validation")
    with pytest.raises(
        UserError, match="holds split folders \\(train, validation\\), not one folder per class"
    ):
        finetune_image(["--train_dir", str(root), "--output_dir", str(tmp_path / "out"), *STEP])
    assert not (tmp_path / "out").exists()
    # class folders that happen to bear such names, with their images right inside, are classes
    odd = tmp_path / "odd"
    shutil.copytree(canvases / "train" / "0", odd / "train")
    shutil.copytree(canvases / "train" / "1", odd / "test")
    from llmkit.vision.data import folder_rows

    assert {row["label"] for row in folder_rows(odd, "--train_dir", min_classes=2)} == {"test", "train"}


def test_an_uncached_hub_name_offline_is_named_with_the_model_built_in_code(tmp_path):
    # it said "Pass a Hub name or an image classifier's folder" after a Hub name had been passed
    from llmkit.vision.classify import CARD
    from llmkit.vision.models import load_checkpoint_config

    with pytest.raises(UserError) as hub:
        load_checkpoint_config("google/vit-base-patch16-224", "an image classifier", CARD.tiny)
    assert "Hub is unreachable" in str(hub.value) and "not in the local cache" in str(hub.value)
    assert "leave out --model_name_or_path: the recipe then trains a tiny ResNet" in str(hub.value)
    assert "Pass a Hub name" not in str(hub.value)
    with pytest.raises(UserError, match="must hold an image classifier"):
        load_checkpoint_config(str(tmp_path), "an image classifier", CARD.tiny)  # a folder without a model


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
def test_an_image_without_a_label_in_a_table_is_named_with_its_line(canvases, tmp_path, kind):
    # a blank CSV cell trained a class named 'None' and turned the numeric labels into '0.0' and '1.0'
    first, second = sorted(canvases.glob("train/0/*.png"))[:2]
    rows = [(first, 0), (second, 1)] * 4
    if kind == "csv":  # an empty cell
        table = tmp_path / "images.csv"
        table.write_text(
            "image,label\n" + "".join(f"{p},{'' if i == 2 else y}\n" for i, (p, y) in enumerate(rows))
        )
        where = "images.csv line 4"
    else:  # a JSON null
        table = tmp_path / "images.jsonl"
        lines = [
            json.dumps({"image": str(p), "label": None if i == 2 else y}) for i, (p, y) in enumerate(rows)
        ]
        table.write_text("\n".join(lines) + "\n")
        where = "images.jsonl line 3"
    with pytest.raises(
        UserError, match=f"1 image\\(s\\) have no 'label': .*{where}. Label them or remove them"
    ):
        finetune_image(["--train_file", str(table), "--output_dir", str(tmp_path / "out"), *STEP])


@pytest.mark.parametrize(
    ("layout", "recipe"),
    [
        # a classifier of two classes, "images" and "masks", trained without a word
        (("images", "masks"), "finetune-segmentation"),
        (("images", "annotations.json"), "finetune-detection"),
    ],
)
def test_a_segmentation_or_coco_folder_is_refused_naming_its_recipe(tmp_path, layout, recipe):
    from llmkit.vision.data import folder_rows

    for name in layout:
        (tmp_path / name).mkdir() if "." not in name else (tmp_path / name).write_text("{}")
    with pytest.raises(
        UserError, match=f"not one folder of images per class; train it with `llmkit {recipe}"
    ):
        folder_rows(tmp_path, "--train_dir", min_classes=2)


def test_a_run_resumed_at_another_image_size_is_refused(canvases, tmp_path):
    # it went on training at the new size, and the saved processor named that size only
    train = _two_classes(canvases, tmp_path)
    argv = ["--train_dir", str(train), "--output_dir", str(tmp_path / "out"), *STEP]
    finetune_image([*argv, "--save_steps", "1", "--image_size", "32"])
    with pytest.raises(
        UserError, match=r"resized to \{'height': 32, 'width': 32\}, but this run .*'height': 48"
    ):
        finetune_image([*argv, "--max_steps", "2", "--image_size", "48"])


def test_an_image_given_as_the_training_folder_is_named_a_file(tmp_path):
    from llmkit.vision.data import folder_rows

    (tmp_path / "cat.png").write_bytes(b"")
    # it said "no such folder" of a file that was there
    with pytest.raises(UserError, match=r"cat.png: a file, not a folder; pass a folder with one sub-folder"):
        folder_rows(tmp_path / "cat.png", "--train_dir", min_classes=2)
    with pytest.raises(UserError, match=r"dog.png: no such folder"):
        folder_rows(tmp_path / "dog.png", "--train_dir", min_classes=2)
