"""finetune-segmentation under `accelerate launch` (the checked-in CPU config): the trained model segments held-out
canvases far better than the untrained one, scored from what transformers' pipeline returns."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from torchmetrics.classification import MulticlassJaccardIndex
from transformers import AutoModelForSemanticSegmentation, pipeline

from llmkit.vision.segment import tiny_segformer
from tests.helpers import REPO
from tests.vision.test_segmentation import FAST, NAMES, write_mask_canvases


def pipeline_mean_iou(model_dir, test_dir) -> float:
    """Mean IoU over the held-out canvases of the class maps rebuilt from the pipeline's per-label masks."""
    segment = pipeline("image-segmentation", model=str(model_dir))
    label2id = {name: i for i, name in enumerate(NAMES)}
    iou = MulticlassJaccardIndex(len(NAMES), average="macro")
    for path in sorted((test_dir / "images").glob("*.png")):
        predicted = np.zeros((32, 32), dtype=np.int64)
        for part in segment(str(path)):
            predicted[np.asarray(part["mask"]) > 0] = label2id[part["label"]]
        gold = np.asarray(Image.open(test_dir / "masks" / path.name)).astype(np.int64)
        iou.update(torch.from_numpy(predicted)[None], torch.from_numpy(gold)[None])
    return float(iou.compute())


@pytest.mark.slow
def test_accelerate_launch_trains_a_segmenter_that_beats_the_untrained_one(tmp_path):
    data = write_mask_canvases(tmp_path / "data")
    out = tmp_path / "run"
    cmd = [
        *(sys.executable, "-m", "accelerate.commands.launch"),
        *("--config_file", str(REPO / "recipes/accelerate/cpu-ddp.yaml"), "--num_processes", "1"),
        *("-m", "llmkit.cli", "finetune-segmentation"),
        *("--train_dir", str(data / "train"), "--test_dir", str(data / "test")),
        *("--num_train_epochs", "8", "--per_device_train_batch_size", "8", "--output_dir", str(out), *FAST),
    ]
    done = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=400,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["recipe"] == "finetune-segmentation" and metrics["labels"] == NAMES

    untrained = tmp_path / "untrained"
    config, processor = tiny_segformer(NAMES, 32)
    AutoModelForSemanticSegmentation.from_config(config).save_pretrained(untrained)
    processor.save_pretrained(untrained)
    trained_iou, untrained_iou = (
        pipeline_mean_iou(out, data / "test"),
        pipeline_mean_iou(untrained, data / "test"),
    )
    assert trained_iou >= untrained_iou + 0.3 and trained_iou >= 0.6, (trained_iou, untrained_iou)
    assert metrics["test_mean_iou"] == pytest.approx(trained_iou, abs=0.05)
