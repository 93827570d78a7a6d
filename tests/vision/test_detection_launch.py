"""finetune-detection through `accelerate launch` with the checked-in CPU config: the trained detector finds the
held-out digits that the untrained one misses, scored from the output folder by pipeline("object-detection"). (Its two-rank run is in tests/test_two_ranks.py.)"""

import json
import os
import subprocess
import sys

import pytest

from llmkit.vision.detect_eval import score_with_pipeline
from llmkit.vision.synthetic import write_coco
from tests.helpers import REPO


@pytest.mark.slow
def test_a_launched_run_beats_the_untrained_detector_on_held_out_canvases(tmp_path):
    from transformers import AutoModelForObjectDetection

    from llmkit.vision.detect import tiny_detector_config_and_processor

    coco = write_coco(
        tmp_path / "coco", train_images=96, test_images=24, digits=(0, 1, 4), max_per_canvas=1, seed=11
    )
    out = tmp_path / "run"
    cmd = [
        *(sys.executable, "-m", "accelerate.commands.launch"),
        *("--config_file", str(REPO / "recipes/accelerate/cpu-ddp.yaml"), "--num_processes", "1"),
        *("-m", "llmkit.cli", "finetune-detection"),
        *("--train_dir", str(coco / "train"), "--test_dir", str(coco / "test")),
        *("--max_steps", "100", "--eval_strategy", "steps", "--eval_steps", "50", "--save_strategy", "steps"),
        *("--save_steps", "50", "--per_device_train_batch_size", "16", "--save_total_limit", "1"),
        *("--image_size", "64"),  # the canvases' own size: the default 128 learns more, at a third more time
        *("--output_dir", str(out), "--disable_tqdm", "true", "--report_to", "none"),
    ]
    done = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=500,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["labels"] == ["0", "1", "4"] and metrics["world_size"] == 1

    untrained = tmp_path / "untrained"
    config, processor = tiny_detector_config_and_processor(["0", "1", "4"], 64)
    AutoModelForObjectDetection.from_config(config).save_pretrained(untrained)
    processor.save_pretrained(untrained)
    trained, before = score_with_pipeline(out, coco / "test"), score_with_pipeline(untrained, coco / "test")
    # measured: mAP@50 0.28 trained (100 steps; 0.24 at 150 steps), 0.00 untrained
    assert trained["map_50"] >= before["map_50"] + 0.2, (trained, before)
    assert trained["map_50"] == pytest.approx(metrics["test_map_50"], abs=0.1)
