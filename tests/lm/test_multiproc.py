"""Real multi-process training: two gloo ranks on CPU through `accelerate launch`."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import FAST_TRAINING, REPO, TINY_MODEL

ACCELERATE = [sys.executable, "-m", "accelerate.commands.launch"]


def _launch(args, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [*ACCELERATE, *args], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=400
    )


@pytest.mark.multiproc
def test_two_cpu_ranks_train_together(tmp_path):
    out = tmp_path / "ddp"
    proc = _launch(
        [
            "--config_file",
            str(REPO / "recipes/accelerate/cpu-ddp.yaml"),
            str(REPO / "recipes/pretrain_gpt2.py"),
            *TINY_MODEL,
            *FAST_TRAINING,
            "--max_steps",
            "6",
            "--eval_steps",
            "6",
            "--save_steps",
            "6",
            "--sample_max_new_tokens",
            "5",
            "--output_dir",
            str(out),
        ],
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 2
    assert metrics["global_step"] == 6
    assert metrics["tokens_seen"] == 6 * 8 * 2 * 64  # each optimizer step consumed both ranks' batches
    assert (out / "model.safetensors").is_file()


@pytest.mark.multiproc
def test_plain_num_processes_on_cpu_says_how_to_get_ranks(tmp_path):
    proc = _launch(
        [
            "--num_processes",
            "2",
            str(REPO / "recipes/pretrain_gpt2.py"),
            *TINY_MODEL,
            "--output_dir",
            str(Path(tmp_path) / "x"),
        ],
        tmp_path,
    )
    assert proc.returncode != 0
    assert "recipes/accelerate/cpu-ddp.yaml" in proc.stderr and "single process" in proc.stderr
