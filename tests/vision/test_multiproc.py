"""finetune-image under `accelerate launch` with the checked-in CPU DDP config: two real ranks train one model."""

import json
import os
import subprocess
import sys

import pytest

from tests.helpers import REPO
from tests.vision.conftest import FAST
from tests.vision.test_finetune_image import LABELS, _accuracy


@pytest.mark.slow
@pytest.mark.multiproc
def test_two_ranks_train_a_classifier_that_beats_the_untrained_one(canvases, tmp_path):
    from transformers import AutoModelForImageClassification

    from llmkit.vision.classify import tiny_config_and_processor

    out = tmp_path / "run"
    cmd = [
        *(sys.executable, "-m", "accelerate.commands.launch"),
        *("--config_file", str(REPO / "recipes/accelerate/cpu-ddp.yaml"), "--num_processes", "2"),
        str(REPO / "recipes/finetune_image.py"),
        *("--train_dir", str(canvases / "train"), "--test_dir", str(canvases / "test")),
        *("--num_train_epochs", "12", "--learning_rate", "3e-3", "--per_device_train_batch_size", "8"),
        *("--output_dir", str(out), *FAST),
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
    assert metrics["world_size"] == 2 and metrics["labels"] == LABELS

    untrained = tmp_path / "untrained"
    config, processor = tiny_config_and_processor(LABELS, 32)
    AutoModelForImageClassification.from_config(config).save_pretrained(untrained)
    processor.save_pretrained(untrained)
    trained_acc, untrained_acc = _accuracy(out, canvases / "test"), _accuracy(untrained, canvases / "test")
    assert trained_acc >= untrained_acc + 0.3, (trained_acc, untrained_acc)
