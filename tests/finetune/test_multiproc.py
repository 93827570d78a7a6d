"""Each fine-tuning recipe under `accelerate launch` with the checked-in CPU DDP config: two real ranks."""

import json

import pytest

from tests.finetune.helpers import FAST, MINILM
from tests.helpers import launch_recipes

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
def test_each_recipe_runs_on_two_ranks(topic_csv, digits_jsonl, tiny_run, tmp_path):
    data = {
        "finetune_bert": [
            *MINILM,
            *("--train_file", str(topic_csv), "--text_column", "sentence", "--label_column", "topic"),
            *("--max_length", "32"),
        ],
        "finetune_t5": [
            *("--train_file", str(digits_jsonl), "--text_column", "words", "--target_column", "digits"),
            *("--from_scratch", "--scratch_vocab_size", "300"),
        ],
        "finetune_gpt2": [
            *("--model_name_or_path", str(tiny_run[0]), "--train_file", str(digits_jsonl)),
            *("--text_column", "words", "--target_column", "digits"),
        ],
    }
    # one launch runs the three recipes in turn: one start-up of two ranks instead of three
    launch_recipes(
        [
            (recipe, [*argv, *FAST, *ONE_STEP_EPOCHS, "--output_dir", str(tmp_path / recipe)])
            for recipe, argv in data.items()
        ],
        tmp_path,
    )
    for recipe in data:
        out = tmp_path / recipe
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["world_size"] == 2 and metrics["global_step"] == 4, recipe
        assert (out / "README.md").is_file() and (out / "config.json").is_file(), recipe
