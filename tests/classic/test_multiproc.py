"""The classic loop under `accelerate launch` with the checked-in CPU DDP config: two real ranks."""

import json
import os
import subprocess
import sys

import pytest

from tests.helpers import REPO


@pytest.mark.multiproc
def test_cnn_recipe_trains_on_two_ranks(tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(REPO / "recipes/accelerate/cpu-ddp.yaml"),
        str(REPO / "recipes/train_cnn.py"),
        "--output_dir",
        str(tmp_path / "cnn"),
        "--num_train_epochs",
        "2",
    ]
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((tmp_path / "cnn" / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["epoch"] == 2 and metrics["eval_accuracy"] > 0.3
