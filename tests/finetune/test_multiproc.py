"""Each fine-tuning recipe under `accelerate launch` with the checked-in CPU DDP config: two real ranks."""

import json
import os
import subprocess
import sys

import pytest

from tests.finetune.conftest import FAST, MINILM
from tests.helpers import REPO


def _launch(recipe, argv, cwd):
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(REPO / "recipes/accelerate/cpu-ddp.yaml"),
        str(REPO / "recipes" / recipe),
        *argv,
    ]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, cwd=cwd, timeout=400, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


ONE_STEP_EPOCHS = [
    "--max_steps",
    "4",
    "--eval_strategy",
    "no",
    "--save_strategy",
    "no",
    "--load_best_model_at_end",
    "false",
]


@pytest.mark.multiproc
@pytest.mark.parametrize("recipe", ["finetune_bert.py", "finetune_t5.py", "finetune_gpt2.py"])
def test_recipe_runs_on_two_ranks(recipe, topic_csv, digits_jsonl, tiny_run, tmp_path):
    out = tmp_path / "out"
    data = {
        "finetune_bert.py": [
            *MINILM,
            "--train_file",
            str(topic_csv),
            "--text_column",
            "sentence",
            "--label_column",
            "topic",
            "--max_length",
            "32",
        ],
        "finetune_t5.py": [
            "--train_file",
            str(digits_jsonl),
            "--text_column",
            "words",
            "--target_column",
            "digits",
            "--from_scratch",
            "--scratch_vocab_size",
            "300",
        ],
        "finetune_gpt2.py": [
            "--model_name_or_path",
            str(tiny_run[0]),
            "--train_file",
            str(digits_jsonl),
            "--text_column",
            "words",
            "--target_column",
            "digits",
        ],
    }[recipe]
    _launch(recipe, [*data, *FAST, *ONE_STEP_EPOCHS, "--output_dir", str(out)], tmp_path)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["global_step"] == 4
    assert (out / "README.md").is_file() and (out / "config.json").is_file()
