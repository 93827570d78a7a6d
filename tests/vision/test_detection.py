"""finetune-detection on generated COCO canvases: box-aware augmentation, pycocotools scores, the cppe-5 layout,
resume after Ctrl-C, the kept checkpoint's weights, and the output folder in pipeline("object-detection")."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
import transformers
from datasets import ClassLabel, Dataset, DatasetDict, Features, List, Value
from datasets import Image as ImageFeature
from PIL import Image
from transformers import AutoModelForObjectDetection, TrainerCallback, pipeline

from llmkit.recipes.finetune_detection import main as finetune_detection
from llmkit.vision.detect_data import hub_to_rows
from llmkit.vision.detect_eval import coco_scores
from llmkit.vision.detect_transforms import augment_with_boxes, clip_box
from llmkit.vision.synthetic import cached_mask_folders, write_coco

FAST = ["--disable_tqdm", "true", "--report_to", "none", "--save_total_limit", "1"]
# 64-pixel inputs: the canvases' own size, a quarter of the default's work
STEPS = [
    "--per_device_train_batch_size",
    "8",
    "--per_device_eval_batch_size",
    "8",
    "--image_size",
    "64",
    *FAST,
]
LABELS = ["0", "1", "4"]


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
    """train/ and test/ COCO folders of the digits 0, 1 and 4, one large digit per canvas."""
    root = tmp_path_factory.mktemp("coco")
    return write_coco(root, train_images=48, test_images=16, digits=(0, 1, 4), max_per_canvas=1, seed=3)


def _ink_box(image: Image.Image) -> list[float]:
    """The COCO box around the dark pixels of an image."""
    ys, xs = np.nonzero(np.asarray(image.convert("L")) < 60)
    return [float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)]


def test_augmentation_moves_each_box_with_its_object_and_clips_it():
    image = Image.new("RGB", (64, 64), (230, 230, 230))
    image.paste((0, 0, 0), (40, 10, 56, 30))  # a dark object at x 40..56, y 10..30
    rng = random.Random(0)
    checked = 0
    for _ in range(30):
        out, boxes, cats = augment_with_boxes(image, [[40, 10, 16, 20]], [2], flip_probability=0.5, rng=rng)
        if boxes:  # the object is still (mostly) in the picture: its box is where its pixels went
            assert cats == [2]
            assert np.allclose(boxes[0], _ink_box(out), atol=2.5), (boxes[0], _ink_box(out))
            assert boxes[0][0] >= 0 and boxes[0][0] + boxes[0][2] <= 64
            checked += 1
    assert checked >= 20
    assert clip_box([-5, 50, 20, 30], 64, 64) == [0.0, 50, 15.0, 14.0]
    assert clip_box([70, 0, 5, 5], 64, 64) is None


def test_coco_scores_are_one_for_perfect_boxes_and_zero_for_wrong_classes_unless_class_agnostic():
    truth = [{"boxes": [[0, 0, 10, 10], [20, 20, 40, 40]], "labels": [0, 1]}]
    perfect = [{**truth[0], "scores": [0.9, 0.8]}]
    scores = coco_scores(perfect, truth, ["a", "b"])
    assert scores["map"] == pytest.approx(1.0) and scores["ap_a"] == pytest.approx(1.0)
    swapped = [{**perfect[0], "labels": [1, 0]}]
    assert coco_scores(swapped, truth, ["a", "b"])["map_50"] == pytest.approx(0.0)
    assert coco_scores(swapped, truth, ["a", "b"], class_agnostic=True)["map_50"] == pytest.approx(1.0)


def test_a_hub_dataset_in_the_cppe5_layout_maps_names_and_drops_boxes_outside():
    features = Features(
        {
            "image": ImageFeature(),
            "image_id": Value("int64"),
            "objects": {
                "bbox": List(List(Value("float32"), length=4)),
                "category": List(ClassLabel(names=["Coverall", "Face_Shield", "Gloves"])),
            },
        }
    )
    image = Image.new("RGB", (50, 40), (200, 200, 200))
    rows = [
        {
            "image": image,
            "image_id": 7,
            "objects": {"bbox": [[1, 2, 10, 10], [45, 0, 20, 5]], "category": [2, 0]},
        }
    ]
    table = DatasetDict({"train": Dataset.from_list(rows, features=features)})
    data, labels = hub_to_rows(table, "image", "objects")
    assert labels == ["Coverall", "Face_Shield", "Gloves"]
    row = data["train"][0]
    assert row["image_id"] == 7 and (row["width"], row["height"]) == (50, 40)
    assert row["objects"] == {
        "bbox": [[1.0, 2.0, 10.0, 10.0]],
        "category": [2],
    }  # the box past x=50 is dropped


def test_a_parquet_dataset_in_the_cppe5_layout_trains_by_name(coco, tmp_path):
    # a local folder of parquet files loads through the same --dataset_name path as cppe-5 on the Hub
    annotations = json.loads((coco / "train" / "annotations.json").read_text())
    rows = []
    for image in annotations["images"][:12]:
        boxes = [a for a in annotations["annotations"] if a["image_id"] == image["id"]]
        rows.append(
            {
                "image": Image.open(coco / "train" / "images" / image["file_name"]).convert("RGB"),
                "objects": {
                    "bbox": [a["bbox"] for a in boxes],
                    "category": [LABELS.index(str(a["category_id"])) for a in boxes],
                },
            }
        )
    features = Features(
        {
            "image": ImageFeature(),
            "objects": {
                "bbox": List(List(Value("float32"), length=4)),
                "category": List(ClassLabel(names=LABELS)),
            },
        }
    )
    (tmp_path / "hub" / "data").mkdir(parents=True)
    Dataset.from_list(rows, features=features).to_parquet(tmp_path / "hub" / "data" / "train-00000.parquet")
    metrics = finetune_detection(
        [
            *("--dataset_name", str(tmp_path / "hub"), "--max_steps", "1", "--eval_strategy", "no"),
            *(
                "--save_strategy",
                "no",
                "--load_best_model_at_end",
                "false",
                "--output_dir",
                str(tmp_path / "o"),
            ),
            *STEPS,
        ]
    )
    assert metrics["labels"] == LABELS and metrics["flip_probability"] == 0.5
    assert (tmp_path / "o" / "predictions.png").stat().st_size > 1000


class _CtrlCAt(TrainerCallback):
    """Presses Ctrl-C (a real SIGINT) at the end of one step."""

    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            signal.raise_signal(signal.SIGINT)


class _WeightsAtStart(TrainerCallback):
    """Keeps the weights training starts from (after a resumed checkpoint is loaded)."""

    weights: dict = {}

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.weights = {k: v.clone() for k, v in model.state_dict().items()}


def test_ctrl_c_saves_a_checkpoint_and_the_same_command_resumes_from_its_weights(coco, tmp_path, monkeypatch):
    out = tmp_path / "run"
    argv = [
        *("--train_dir", str(coco / "train"), "--save_strategy", "steps", "--save_steps", "100"),
        *("--eval_strategy", "no", "--load_best_model_at_end", "false", "--max_steps", "3"),
        *("--output_dir", str(out), *STEPS),
    ]
    original = transformers.Trainer.__init__

    def with_ctrl_c(self, *a, **k):
        original(self, *a, **k)
        self.add_callback(_CtrlCAt(2))

    monkeypatch.setattr(transformers.Trainer, "__init__", with_ctrl_c)
    with pytest.raises(KeyboardInterrupt, match="checkpoint-2"):
        finetune_detection(argv)
    monkeypatch.setattr(transformers.Trainer, "__init__", original)
    saved = AutoModelForObjectDetection.from_pretrained(out / "checkpoint-2").state_dict()

    start = _WeightsAtStart()

    def with_probe(self, *a, **k):
        original(self, *a, **k)
        self.add_callback(start)

    monkeypatch.setattr(transformers.Trainer, "__init__", with_probe)
    metrics = finetune_detection(argv)  # the very same command
    assert metrics["resumed_from"].endswith("checkpoint-2") and metrics["global_step"] == 3
    assert start.weights.keys() == saved.keys()  # every weight, not just the ones whose saved names match
    assert all(torch.equal(start.weights[k], saved[k]) for k in saved)


def test_the_kept_checkpoint_is_the_saved_model_and_loads_in_a_pipeline(coco, tmp_path):
    out = tmp_path / "run"
    metrics = finetune_detection(
        [
            *("--train_dir", str(coco / "train"), "--test_dir", str(coco / "test"), "--max_steps", "4"),
            *(
                "--eval_strategy",
                "steps",
                "--eval_steps",
                "2",
                "--save_strategy",
                "steps",
                "--save_steps",
                "2",
            ),
            *("--output_dir", str(out), *STEPS),
        ]
    )
    assert metrics["selected_by"] == "eval_map" and {"test_map", "test_map_50", "test_ap_4"} <= set(metrics)
    kept = AutoModelForObjectDetection.from_pretrained(
        out / f"checkpoint-{metrics['reported_step']}"
    ).state_dict()
    final = AutoModelForObjectDetection.from_pretrained(out).state_dict()
    assert all(torch.equal(kept[k], final[k]) for k in kept)
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {"0": "0", "1": "1", "2": "4"} and config["label2id"]["4"] == 2
    assert (out / "preprocessor_config.json").is_file() and (out / "predictions.png").is_file()
    assert (
        len(list((out / "examples").glob("*.png"))) == 4
    )  # validation images for the image page and a Space
    assert metrics["headline"] == {"test_map": metrics["test_map"], "test_map_50": metrics["test_map_50"]}
    assert 'pipeline("object-detection"' in (out / "README.md").read_text()
    found = pipeline("object-detection", model=str(out))(
        str(coco / "test" / "images" / "0000.png"), threshold=0.0
    )
    assert found and {d["label"] for d in found} <= set(LABELS)
    assert all(0 <= d["box"]["xmin"] <= d["box"]["xmax"] <= 64 for d in found)


def test_a_detr_checkpoint_trains_scores_and_loads_in_a_pipeline(coco, tmp_path):
    # DETR pads its batches (pixel_mask) and scores classes with a softmax: another path than the tiny RT-DETR's
    backbone = transformers.ResNetConfig(
        embedding_size=16, hidden_sizes=[16, 32], depths=[1, 1], layer_type="basic", out_features=["stage2"]
    )
    config = transformers.DetrConfig(
        backbone_config=backbone,
        use_timm_backbone=False,
        use_pretrained_backbone=False,
        **dict(d_model=32, encoder_layers=1, decoder_layers=1, encoder_ffn_dim=64, decoder_ffn_dim=64),
        **dict(encoder_attention_heads=2, decoder_attention_heads=2, num_queries=5),
        id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)},
    )
    start = tmp_path / "detr"
    AutoModelForObjectDetection.from_config(config).save_pretrained(start)
    transformers.DetrImageProcessorPil(size={"height": 64, "width": 64}).save_pretrained(start)
    out = tmp_path / "run"
    metrics = finetune_detection(
        [
            *("--model_name_or_path", str(start), "--train_dir", str(coco / "train"), "--max_steps", "2"),
            *(
                "--eval_strategy",
                "steps",
                "--eval_steps",
                "2",
                "--save_strategy",
                "steps",
                "--save_steps",
                "2",
            ),
            *("--output_dir", str(out), *STEPS),
        ]
    )
    assert 0 <= metrics["eval_map_50"] <= 1 and metrics["learning_rate"] == 5e-5
    found = pipeline("object-detection", model=str(out))(
        str(coco / "test" / "images" / "0001.png"), threshold=0.0
    )
    assert len(found) == 5 and {d["label"] for d in found} <= set(LABELS)


def test_the_generated_canvases_are_written_once_and_read_back_as_coco_boxes():
    from llmkit.vision.detect_data import read_coco

    first = cached_mask_folders(digits=(2, 5), seed=123, train_images=3, test_images=2, max_per_canvas=3)
    stamp = (first / "train" / "annotations.json").stat().st_mtime_ns
    assert (
        cached_mask_folders(digits=(2, 5), seed=123, train_images=3, test_images=2, max_per_canvas=3) == first
    )
    assert (first / "train" / "annotations.json").stat().st_mtime_ns == stamp  # reused, not rewritten
    rows, categories = read_coco(first / "train", "--train_dir")
    assert categories == {2: "2", 5: "5"} and len(rows) == 3
    assert all(1 <= len(r["objects"]["bbox"]) <= 3 and set(r["objects"]["category"]) <= {2, 5} for r in rows)


def test_a_run_killed_with_sigkill_resumes_from_its_last_complete_checkpoint(coco, tmp_path):
    out = tmp_path / "run"
    argv = [
        *("--train_dir", str(coco / "train"), "--save_strategy", "steps", "--save_steps", "2"),
        *("--eval_strategy", "no", "--load_best_model_at_end", "false", "--output_dir", str(out), *STEPS),
    ]
    run = subprocess.Popen(
        [sys.executable, "-m", "llmkit.cli", "finetune-detection", *argv, "--max_steps", "1000"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    deadline = time.monotonic() + 120
    while not (out / "checkpoint-2" / "trainer_state.json").is_file() and time.monotonic() < deadline:
        time.sleep(0.2)
    run.send_signal(signal.SIGKILL)
    run.wait(timeout=30)
    assert run.returncode == -signal.SIGKILL
    saved = sorted(int(p.name.split("-")[1]) for p in out.glob("checkpoint-*"))
    assert saved and not (out / "metrics.json").exists()
    metrics = finetune_detection([*argv, "--max_steps", str(saved[-1] + 2)])
    assert metrics["resumed_from"] is not None and metrics["global_step"] == saved[-1] + 2
