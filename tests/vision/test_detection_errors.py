"""A user's mistake in the boxes, the images or the checkpoint: one line naming the problem and the fix, exit 2."""

import json
import shutil

import pytest
from transformers import AutoModelForObjectDetection

from llmkit.errors import UserError
from llmkit.recipes.finetune_detection import main as finetune_detection
from llmkit.vision.detect import tiny_detector_config_and_processor
from llmkit.vision.synthetic import write_coco
from tests.helpers import llmkit_in_process

STEP = [
    *("--max_steps", "1", "--eval_strategy", "no", "--load_best_model_at_end", "false"),
    *("--per_device_train_batch_size", "4", "--disable_tqdm", "true", "--report_to", "none"),
]


@pytest.fixture(scope="module")
def small_coco(tmp_path_factory):
    """A COCO folder of 12 canvases with the digits 0 and 1."""
    return write_coco(tmp_path_factory.mktemp("coco"), train_images=12, test_images=2, digits=(0, 1), seed=5)


def _copy(small_coco, tmp_path, edit=None):
    """A copy of the training folder, its annotations.json changed by `edit`."""
    train = tmp_path / "train"
    shutil.copytree(small_coco / "train", train)
    if edit:
        path = train / "annotations.json"
        coco = json.loads(path.read_text())
        edit(coco)
        path.write_text(json.dumps(coco))
    return train


def test_a_box_outside_its_image_is_named_with_its_file_in_one_line_with_exit_status_2(
    small_coco, tmp_path, capfd
):
    def stretch(coco):
        coco["annotations"][3]["bbox"] = [50, 10, 30, 12]  # reaches x=80 on a 64-pixel canvas

    train = _copy(small_coco, tmp_path, stretch)
    code, stderr = llmkit_in_process(
        ["finetune-detection", "--train_dir", str(train), "--output_dir", str(tmp_path / "out"), *STEP], capfd
    )
    assert code == 2, stderr[-2000:]
    last = stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {train / 'annotations.json'}, annotation 3: the box [50, 10, 30, 12]"), (
        last
    )
    assert "images/" in last and "(64x64) reaches outside the image; fix or remove it." in last
    assert "Traceback" not in stderr and not (tmp_path / "out" / "metrics.json").exists()


def test_unknown_image_and_category_ids_are_named(small_coco, tmp_path):
    def unknown_category(coco):
        coco["annotations"][0]["category_id"] = 7

    train = _copy(small_coco, tmp_path / "a", unknown_category)
    with pytest.raises(
        UserError, match=r"annotation 0 names category id 7, which is not in its 'categories' \(\[0, 1\]\)"
    ):
        finetune_detection(["--train_dir", str(train), "--output_dir", str(tmp_path / "out"), *STEP])

    def unknown_image(coco):
        coco["annotations"][1]["image_id"] = 99

    train = _copy(small_coco, tmp_path / "b", unknown_image)
    with pytest.raises(UserError, match=r"annotation 1 names image id 99, which is not in its 'images' list"):
        finetune_detection(["--train_dir", str(train), "--output_dir", str(tmp_path / "out"), *STEP])


@pytest.mark.parametrize(
    ("edit", "message"),
    [  # a null or text in a box was a TypeError/ValueError traceback, a NaN box was trained on, two images with
        # one id lost the first (and its boxes went to the second), two categories named alike shared a label
        (
            lambda coco: coco["annotations"][2]["bbox"].__setitem__(2, None),
            r"annotation 2: the box .* is not four numbers",
        ),
        (
            lambda coco: coco["annotations"][2]["bbox"].__setitem__(2, "wide"),
            r"annotation 2: the box .* is not four numbers",
        ),
        (
            lambda coco: coco["annotations"][2]["bbox"].__setitem__(2, float("nan")),
            r"is not four finite numbers",
        ),
        (
            lambda coco: coco["images"][1].update(id=coco["images"][0]["id"]),
            r"image id 0 is given to both .* and ",
        ),
        (
            lambda coco: coco["categories"].append({"id": 5, "name": coco["categories"][0]["name"]}),
            r"repeat an id or a name",
        ),
        (
            lambda coco: coco["annotations"][0].update(category_id="0"),
            r"names category id '0', which is not in",
        ),
    ],
)
def test_boxes_ids_and_categories_that_cannot_be_trained_on_are_named(edit, message, small_coco, tmp_path):
    train = _copy(small_coco, tmp_path, edit)
    with pytest.raises(UserError, match=message):
        finetune_detection(["--train_dir", str(train), "--output_dir", str(tmp_path / "out"), *STEP])


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda coco: coco["images"][0].pop("file_name"),
            r"'images' entry 0 has no 'file_name'; each entry needs",
        ),
        (
            lambda coco: coco["images"].__setitem__(0, "0000.png"),
            r"'images' entry 0 \('0000.png'\) is not an object",
        ),
        (lambda coco: coco["annotations"].__setitem__(2, 7), r"'annotations' entry 2 \(7\) is not an object"),
        (
            lambda coco: coco.__setitem__("annotations", "none"),
            r"'annotations' must be a list of objects, not str",
        ),
    ],
)
def test_coco_entries_that_are_not_objects_with_their_fields_are_named(small_coco, tmp_path, edit, message):
    train = _copy(small_coco, tmp_path, edit)
    with pytest.raises(UserError, match=message):
        finetune_detection(["--train_dir", str(train), "--output_dir", str(tmp_path / "out"), *STEP])
    assert not (tmp_path / "out").exists()


def test_a_split_without_any_box_is_refused(small_coco, tmp_path):
    train = _copy(small_coco, tmp_path, lambda coco: coco.__setitem__("annotations", []))
    with pytest.raises(UserError, match=r"annotations.json has no boxes \(its 'annotations' list is empty\)"):
        finetune_detection(["--train_dir", str(train), "--output_dir", str(tmp_path / "out"), *STEP])
    test = _copy(small_coco, tmp_path / "t", lambda coco: coco.pop("annotations"))
    with pytest.raises(UserError, match=f"{test / 'annotations.json'} has no boxes"):
        finetune_detection(
            [
                "--train_dir",
                str(small_coco / "train"),
                "--test_dir",
                str(test),
                "--output_dir",
                str(tmp_path / "out"),
            ]
            + STEP
        )
    assert not (tmp_path / "out").exists()


def test_a_corrupt_image_and_a_missing_annotations_file_are_named(small_coco, tmp_path):
    train = _copy(small_coco, tmp_path)
    bad = train / "images" / "0004.png"
    bad.write_bytes(b"\x89PNG not really a png")
    with pytest.raises(
        UserError, match=r"0004.png \(.*annotations.json, image id 4\) is not a readable image"
    ):
        finetune_detection(["--train_dir", str(train), "--output_dir", str(tmp_path / "out"), *STEP])
    with pytest.raises(UserError, match=r"no annotations.json there"):
        finetune_detection(
            ["--train_dir", str(train / "images"), "--output_dir", str(tmp_path / "out"), *STEP]
        )


def test_an_image_whose_json_size_is_not_its_file_size_is_refused(small_coco, tmp_path):
    # the boxes were checked against the JSON's 128x128 and then cut to the 64x64 file: trained on wrong boxes
    def resized(coco):
        coco["images"][4].update(width=128, height=128)

    train = _copy(small_coco, tmp_path, resized)
    with pytest.raises(
        UserError,
        match=r"image id 4: its width and height say 128x128 but .*0004.png is 64x64 .*fix the JSON",
    ):
        finetune_detection(["--train_dir", str(train), "--output_dir", str(tmp_path / "out"), *STEP])


def test_a_head_for_other_classes_is_named_with_the_fix_and_a_run_on_other_labels_is_not_resumed(
    small_coco, tmp_path
):
    three = tmp_path / "three-class-detector"
    config, processor = tiny_detector_config_and_processor(["cat", "dog", "bird"])
    AutoModelForObjectDetection.from_config(config).save_pretrained(three)
    processor.save_pretrained(three)
    train = small_coco / "train"
    argv = ["--train_dir", str(train), "--model_name_or_path", str(three), *STEP]
    with pytest.raises(
        UserError,
        match=r"detects 3 other classes \(cat, dog, bird\) than the data's 2 \(0, 1\); pass --ignore",
    ):
        finetune_detection([*argv, "--output_dir", str(tmp_path / "a")])
    metrics = finetune_detection(
        [*argv, "--ignore_mismatched_sizes", "true", "--output_dir", str(tmp_path / "a"), "--save_steps", "1"]
    )
    assert metrics["labels"] == ["0", "1"]

    def rename(coco):
        coco["categories"][1]["name"] = "one"

    other = _copy(small_coco, tmp_path, rename)
    with pytest.raises(UserError, match=r"trained with the labels \['0', '1'\].*use a new --output_dir"):
        finetune_detection(["--train_dir", str(other), "--output_dir", str(tmp_path / "a"), *STEP])


def test_an_image_classifier_is_not_taken_for_a_detector_and_a_flip_is_a_probability(small_coco, tmp_path):
    from transformers import AutoModelForImageClassification

    from llmkit.vision.classify import tiny_config_and_processor

    classifier = tmp_path / "classifier"
    config, processor = tiny_config_and_processor(["0", "1"], 32)
    AutoModelForImageClassification.from_config(config).save_pretrained(classifier)
    processor.save_pretrained(classifier)
    argv = ["--train_dir", str(small_coco / "train"), "--output_dir", str(tmp_path / "out"), *STEP]
    with pytest.raises(
        UserError, match=r"classifier is a resnet model, not an object detector; pass a checkpoint of"
    ):
        finetune_detection([*argv, "--model_name_or_path", str(classifier)])
    with pytest.raises(UserError, match=r"--flip_probability is a probability between 0 and 1, got 1.5"):
        finetune_detection([*argv, "--flip_probability", "1.5"])


def test_a_missing_image_is_named_where_the_other_images_are(small_coco, tmp_path):
    """It was named at train/0000.png, a place the user never put an image, when train/images/ holds them."""
    train = _copy(small_coco, tmp_path)
    (train / "images" / "0000.png").unlink()
    with pytest.raises(UserError, match=f"no image file at {train / 'images' / '0000.png'} "):
        finetune_detection(["--train_dir", str(train), "--output_dir", str(tmp_path / "out"), *STEP])


def test_string_image_ids_train(small_coco, tmp_path):
    # ids such as "000123" (as some annotation tools export them): pyarrow's "Could not convert" traceback
    def string_ids(coco):
        first = coco["images"][0]["id"]
        for item, key in [
            *((i, "id") for i in coco["images"]),
            *((a, "image_id") for a in coco["annotations"]),
        ]:
            item[key] = 7 if item[key] == first else f"{item[key]:06d}"  # one integer id beside them

    train = _copy(small_coco, tmp_path, string_ids)
    finetune_detection(["--train_dir", str(train), "--output_dir", str(tmp_path / "out"), *STEP])
    assert (tmp_path / "out" / "model.safetensors").is_file()


def test_crowd_regions_are_left_out_and_said(small_coco, tmp_path, caplog):
    from llmkit.vision.detect_data import read_coco

    # a crowd (iscrowd 1) is one box around many objects: it was trained as one object, in silence
    def crowd(coco):
        coco["annotations"][0]["iscrowd"] = 1

    rows, _ = read_coco(_copy(small_coco, tmp_path / "a", crowd), "--train_dir")
    boxes = sum(len(row["objects"]["bbox"]) for row in rows)
    assert (
        boxes == len(json.loads((small_coco / "train" / "annotations.json").read_text())["annotations"]) - 1
    )
    assert "left out 1 crowd annotation(s) (iscrowd 1)" in caplog.text

    def all_crowds(coco):
        for ann in coco["annotations"]:
            ann["iscrowd"] = 1

    with pytest.raises(UserError, match=r"has no boxes \(its annotations are all crowds, iscrowd 1\)"):
        read_coco(_copy(small_coco, tmp_path / "b", all_crowds), "--train_dir")


def test_an_image_listed_twice_is_refused(small_coco, tmp_path):
    from llmkit.vision.detect_data import read_coco

    # it trained twice, each time with part of its boxes and the others taught as background
    def twice(coco):
        coco["images"][1]["file_name"] = coco["images"][0]["file_name"]

    with pytest.raises(
        UserError, match=r"0000.png is listed twice, as image ids 0 and 1; list each image once"
    ):
        read_coco(_copy(small_coco, tmp_path, twice), "--train_dir")


def test_image_sizes_written_as_text_are_read_as_numbers(small_coco, tmp_path):
    from llmkit.vision.detect_data import read_coco

    # refused as "its width and height say 64x64 but ... is 64x64"
    def text_sizes(coco):
        for image in coco["images"]:
            image["width"], image["height"] = str(image["width"]), str(image["height"])

    rows, _ = read_coco(_copy(small_coco, tmp_path / "a", text_sizes), "--train_dir")
    assert all(isinstance(row["width"], int) for row in rows)

    def other_size(coco):
        coco["images"][0]["width"] = "65"

    with pytest.raises(UserError, match=r"its width and height say 65x\d+ but"):
        read_coco(_copy(small_coco, tmp_path / "b", other_size), "--train_dir")
