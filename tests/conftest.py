"""Shared fixtures: offline Hugging Face, quiet threads, one tiny pretraining run reused by many tests, and the
small datasets that both their own folder's tests and the two-rank launch (tests/test_two_ranks.py) train on."""

import os

# read at import time by huggingface_hub: set before anything imports it
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import json  # noqa: E402
import random  # noqa: E402
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


@pytest.fixture(scope="session")
def topic_csv(tmp_path_factory):
    """Animal and finance sentences, two separable topics, as a CSV (sentence, topic)."""
    from tests.finetune.helpers import ANIMALS, MONEY

    path = tmp_path_factory.mktemp("cls") / "topics.csv"
    rng = random.Random(0)
    rows = [(t, "animals") for t in ANIMALS * 4] + [(t, "finance") for t in MONEY * 4]
    rng.shuffle(rows)
    path.write_text("sentence,topic\n" + "\n".join(f'"{t}",{label}' for t, label in rows) + "\n")
    return path


@pytest.fixture(scope="session")
def digits_jsonl(tmp_path_factory):
    """A toy text-to-text mapping: number words -> digits ('three one' -> '3 1')."""
    path = tmp_path_factory.mktemp("t5") / "digits.jsonl"
    rng = random.Random(0)
    names = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    rows = []
    for _ in range(400):
        digits = [rng.randrange(10) for _ in range(rng.randint(1, 2))]
        rows.append({"words": " ".join(names[d] for d in digits), "digits": " ".join(map(str, digits))})
    path.write_text("\n".join(json.dumps(r) for r in rows))
    return path


@pytest.fixture(scope="session")
def canvases(tmp_path_factory):
    """Generated canvases of the digits 0, 1 and 4 as train/ and test/ class folders (60 and 15 per class): well
    separated, small enough to train in seconds."""
    from llmkit.vision.synthetic import write_image_folders

    root = tmp_path_factory.mktemp("canvases")
    return write_image_folders(root, train_per_class=60, test_per_class=15, digits=(0, 1, 4), seed=7)


@pytest.fixture(scope="session")
def qa_model_dir(tmp_path_factory):
    """MiniLM under an untrained span head: a whole extractive QA model folder, its answers arbitrary."""
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    from llmkit.finetune.common import packaged_minilm

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("qa")
    AutoModelForQuestionAnswering.from_pretrained(packaged_minilm()).save_pretrained(out)
    AutoTokenizer.from_pretrained(packaged_minilm()).save_pretrained(out)
    return out
