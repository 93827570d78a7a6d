"""Shared fixtures: offline Hugging Face, quiet threads, and one tiny pretraining run reused by many tests."""

import os

# read at import time by huggingface_hub: set before anything imports it
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from tests.helpers import FAST_TRAINING, TINY_MODEL, run_pretrain  # noqa: E402


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


@pytest.fixture(scope="session")
def image_models(tmp_path_factory) -> dict[str, Path]:
    """Untrained tiny image classifier, detector and segmenter folders, by pipeline task."""
    from tests.helpers import save_tiny_image_model

    tasks = ("image-classification", "object-detection", "image-segmentation")
    return {t: save_tiny_image_model(t, tmp_path_factory.mktemp(t)) for t in tasks}
