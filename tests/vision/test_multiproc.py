"""finetune-image and finetune-detection under `accelerate launch` with the checked-in CPU DDP config: two real
ranks train each model."""

import json

import pytest

from llmkit.vision.synthetic import write_coco
from tests.helpers import launch_recipes
from tests.vision.helpers import FAST
from tests.vision.test_finetune_image import LABELS, _accuracy


@pytest.mark.slow
@pytest.mark.multiproc
def test_two_ranks_train_a_classifier_and_a_detector(canvases, tmp_path):
    """One launch of two ranks runs finetune-image, then finetune-detection (one start-up for both)."""
    from transformers import AutoModelForImageClassification

    from llmkit.vision.classify import tiny_config_and_processor

    out, detected = tmp_path / "run", tmp_path / "detect"
    coco = write_coco(
        tmp_path / "coco", train_images=16, test_images=6, digits=(0, 1), max_per_canvas=2, seed=2
    )
    classify = [
        *("--train_dir", str(canvases / "train"), "--test_dir", str(canvases / "test")),
        *("--num_train_epochs", "12", "--learning_rate", "3e-3", "--per_device_train_batch_size", "8"),
        *("--output_dir", str(out), *FAST),
    ]
    detect = [
        *("--image_size", "64", "--train_dir", str(coco / "train"), "--test_dir", str(coco / "test")),
        *("--max_steps", "4", "--eval_strategy", "steps", "--eval_steps", "2", "--save_strategy", "steps"),
        *("--save_steps", "2", "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "2"),
        *("--output_dir", str(detected), "--disable_tqdm", "true", "--report_to", "none"),
    ]
    launch_recipes([("finetune_image", classify), ("finetune_detection", detect)], tmp_path)

    # two ranks train one classifier that beats the untrained one
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["labels"] == LABELS
    untrained = tmp_path / "untrained"
    config, processor = tiny_config_and_processor(LABELS, 32)
    AutoModelForImageClassification.from_config(config).save_pretrained(untrained)
    processor.save_pretrained(untrained)
    trained_acc, untrained_acc = _accuracy(out, canvases / "test"), _accuracy(untrained, canvases / "test")
    assert trained_acc >= untrained_acc + 0.3, (trained_acc, untrained_acc)

    # the detector's two ranks train, evaluate and gather the boxes of every validation image
    metrics = json.loads((detected / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["global_step"] == 4
    # the packed targets of batches with different box counts were padded and gathered from both ranks
    assert 0 <= metrics["test_map_50"] <= 1 and 0 <= metrics["eval_map_50"] <= 1
