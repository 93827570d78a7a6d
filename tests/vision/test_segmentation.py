"""finetune-segmentation on generated canvases: the kept model is the chosen checkpoint and loads in a pipeline, a
Ctrl-C resumes with the saved weights, Hub column layouts map to image/mask, and augmentation moves both alike."""

import random
import signal

import numpy as np
import pytest
import torch
import transformers
from datasets import Dataset, DatasetDict
from datasets import Image as ImageFeature
from PIL import Image
from transformers import AutoModelForSemanticSegmentation, TrainerCallback, pipeline

from llmkit.errors import UserError
from llmkit.recipes.finetune_segmentation import main as finetune_segmentation
from llmkit.record import COMMON_KEYS
from llmkit.vision.segment import tiny_segformer
from llmkit.vision.segment_data import IGNORE, LabelMap, SegmentDataArguments, from_dataset
from llmkit.vision.segment_transforms import joint_augment, make_segment_transform
from llmkit.vision.synthetic import write_coco

FAST = ["--disable_tqdm", "true", "--report_to", "none", "--image_size", "32", "--save_total_limit", "1"]
NAMES = ["background", "0", "1"]


def write_mask_canvases(root):
    """train/ and test/ images + masks of one large digit 0 or 1 per 32-pixel canvas, and id2label.json."""
    return write_coco(
        root, train_images=120, test_images=30, digits=(0, 1), max_per_canvas=1, size=32, seed=7
    )


@pytest.fixture(scope="module")
def mask_canvases(tmp_path_factory):
    return write_mask_canvases(tmp_path_factory.mktemp("mask-canvases"))


def _state(folder):
    return AutoModelForSemanticSegmentation.from_pretrained(folder).state_dict()


def _same_weights(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_the_kept_checkpoint_is_the_saved_model_and_a_pipeline_loads_it(mask_canvases, tmp_path):
    out = tmp_path / "run"
    # the highest validation loss is "best": the first epoch's checkpoint, not the last weights, must be kept
    metrics = finetune_segmentation(
        [
            *("--train_dir", str(mask_canvases / "train"), "--test_dir", str(mask_canvases / "test")),
            *("--max_train_samples", "48", "--num_train_epochs", "2", "--per_device_train_batch_size", "8"),
            *("--metric_for_best_model", "loss", "--greater_is_better", "true"),
            *("--output_dir", str(out), *FAST),
        ]
    )
    assert set(COMMON_KEYS) <= set(metrics) and metrics["labels"] == NAMES
    assert metrics["reported_step"] == 6 and metrics["trained_steps"] == 12
    assert _same_weights(_state(out), _state(out / "checkpoint-6"))
    assert set(metrics["per_class_iou"]) == set(NAMES) and 0 <= metrics["test_mean_iou"] <= 1
    assert (out / "predictions.png").stat().st_size > 5000
    assert len(list((out / "examples").glob("*.png"))) == 4  # inputs for the image page and a Space
    assert "image-segmentation" in (out / "README.md").read_text()

    segments = pipeline("image-segmentation", model=str(out))(str(mask_canvases / "test/images/0000.png"))
    assert segments and {s["label"] for s in segments} <= set(NAMES)
    assert sum(np.asarray(s["mask"]).astype(bool).sum() for s in segments) == 32 * 32  # each pixel once


class _CtrlCAt(TrainerCallback):
    """Presses Ctrl-C (a real SIGINT) at the end of one step."""

    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            signal.raise_signal(signal.SIGINT)


def test_ctrl_c_saves_a_checkpoint_and_the_same_command_resumes_its_weights(
    mask_canvases, tmp_path, monkeypatch
):
    out = tmp_path / "run"
    argv = [
        *("--train_dir", str(mask_canvases / "train"), "--max_train_samples", "32"),
        *("--save_strategy", "steps", "--save_steps", "100", "--eval_strategy", "no"),
        *("--load_best_model_at_end", "false", "--max_steps", "2", "--output_dir", str(out), *FAST),
    ]
    original = transformers.Trainer.__init__

    def with_ctrl_c(self, *a, **k):
        original(self, *a, **k)
        self.add_callback(_CtrlCAt(2))

    monkeypatch.setattr(transformers.Trainer, "__init__", with_ctrl_c)
    with pytest.raises(KeyboardInterrupt, match="checkpoint-2"):
        finetune_segmentation(argv)
    monkeypatch.setattr(transformers.Trainer, "__init__", original)
    metrics = finetune_segmentation(
        argv
    )  # the very same command: nothing left to train, the weights come back
    assert metrics["resumed_from"].endswith("checkpoint-2") and metrics["global_step"] == 2
    assert _same_weights(_state(out), _state(out / "checkpoint-2"))


def _masks(values) -> list:
    return [Image.fromarray(np.full((4, 4), v, dtype=np.uint8)) for v in values]


@pytest.mark.parametrize("mask_column", ["annotation", "label"])
def test_hub_layouts_become_image_and_mask_and_reduce_labels_ignores_zero(mask_column):
    images = [Image.new("RGB", (4, 4), (i * 40, 0, 0)) for i in range(5)]
    table = Dataset.from_dict({"image": images, mask_column: _masks([0, 1, 2, 1, 3]), "scene": ["a"] * 5})
    table = table.cast_column("image", ImageFeature()).cast_column(mask_column, ImageFeature())
    data = from_dataset(DatasetDict({"train": table}), SegmentDataArguments(dataset_name="x"), seed=0)
    assert set(data) == {"train", "validation"} and data["train"].column_names == ["image", "mask"]
    assert len(data["train"]) + len(data["validation"]) == 5

    # a Hub dataset's masks are checked as they are read: a wrong size or an unlisted id names the problem
    _config, processor = tiny_segformer(NAMES, 8)
    transform = make_segment_transform(processor, LabelMap([0, 1, 2], NAMES), train=False)
    with pytest.raises(UserError, match=r"a mask \(a row of the dataset\) has class id\(s\) \[3\]"):
        [row for split in data.values() for row in split.with_transform(transform)]
    small = {"image": [images[0]], "mask": [Image.new("L", (2, 2))]}
    with pytest.raises(UserError, match=r"a mask .* is 2x2 but its image is 4x4"):
        transform(small)

    # scene_parse_150 under --reduce_labels: 0 is 'other' (ignored), 1..N are the classes named 0..N-1
    reduced = LabelMap([0, 1, 2], ["wall", "floor", "tree"], reduce=True)
    mask = np.array([[0, 1], [2, 3]], dtype=np.uint8)
    assert reduced.encode(mask, where="m").tolist() == [[IGNORE, 0], [1, 2]]
    # ids need not be contiguous (the generated digits 0 and 4 are stored as 1 and 5)
    sparse = LabelMap([0, 1, 5], ["background", "0", "4"])
    assert sparse.encode(np.array([[0, 5], [1, IGNORE]]), where="m").tolist() == [[0, 2], [1, IGNORE]]


def test_augmentation_crops_scales_and_flips_the_mask_with_its_image():
    classes = np.zeros((48, 48), dtype=np.uint8)
    classes[8:30, 5:20], classes[30:44, 25:45] = 1, 2  # class 1 left of class 2: a flip swaps them
    image = Image.fromarray(np.repeat(classes[..., None] * 100, 3, axis=2).astype(np.uint8))
    mask = Image.fromarray(classes)
    sides = []
    for seed in range(16):
        new_image, new_mask = joint_augment(image, mask, random.Random(seed))
        assert new_image.size == new_mask.size == (48, 48)
        ids = np.asarray(new_mask)
        assert set(np.unique(ids)) <= {0, 1, 2}  # nearest neighbour: no blended ids
        agree = (np.round(np.asarray(new_image)[..., 0] / 100) == ids).mean()
        assert agree > 0.93, (seed, agree)  # only edge pixels differ, blurred in the image
        columns = [np.nonzero(ids == c)[1] for c in (1, 2)]
        if all(len(c) for c in columns):
            sides.append(columns[0].mean() < columns[1].mean())
    assert True in sides and False in sides  # some kept, some flipped
