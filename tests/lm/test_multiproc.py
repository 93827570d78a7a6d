"""`accelerate launch` of two processes on CPU without the DDP config: the recipe says how to get ranks. (Two gloo
ranks training together: tests/test_two_ranks.py.)"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO, TINY_MODEL

ACCELERATE = [sys.executable, "-m", "accelerate.commands.launch"]


def _launch(args, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [*ACCELERATE, *args], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=400
    )


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


@pytest.mark.multiproc
def test_a_refusal_on_two_ranks_is_reported_once_and_without_a_traceback(tmp_path):
    # every rank refused the flag and printed it; `-q` keeps accelerate's own traceback out (as `make pretrain`)
    ddp = str(REPO / "recipes/accelerate/cpu-ddp.yaml")
    proc = _launch(
        ["-q", "--config_file", ddp, str(REPO / "recipes/pretrain_gpt2.py"), "--dropout", "2"], tmp_path
    )
    assert proc.returncode != 0
    assert proc.stderr.count("error: --dropout is a probability") == 1, proc.stderr
    assert "Traceback" not in proc.stderr
