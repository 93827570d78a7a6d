"""Shared fixtures: offline Hugging Face, quiet threads, and one tiny pretraining run reused by many tests."""

import os

# read at import time by huggingface_hub: set before anything imports it
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

# A GPT-2 small enough to train in seconds on one CPU core.
TINY_MODEL = [
    "--n_layer",
    "2",
    "--n_head",
    "2",
    "--n_embd",
    "64",
    "--n_positions",
    "64",
    "--vocab_size",
    "512",
]
FAST_TRAINING = [
    "--per_device_train_batch_size",
    "8",
    "--logging_steps",
    "5",
    "--disable_tqdm",
    "true",
    "--learning_rate",
    "3e-3",
]


def run_pretrain(argv: list[str], callbacks=None) -> dict:
    """Parse recipe flags exactly as the recipe does and train in this process."""
    from llmkit.arguments import parse_args
    from llmkit.data import DataArguments
    from llmkit.lm import ModelArguments, PretrainingArguments, pretrain

    return pretrain(
        *parse_args((DataArguments, ModelArguments, PretrainingArguments), argv), callbacks=callbacks
    )


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> tuple[Path, dict]:
    """One 60-step run on the built-in corpus; tests read its output dir and metrics."""
    out = tmp_path_factory.mktemp("tiny_run")
    metrics = run_pretrain(
        [
            *TINY_MODEL,
            *FAST_TRAINING,
            "--output_dir",
            str(out),
            "--max_steps",
            "60",
            "--eval_steps",
            "30",
            "--save_steps",
            "30",
            "--sample_max_new_tokens",
            "20",
        ]
    )
    return out, metrics
