"""Plain helpers shared by tests: the repository root, a tiny GPT-2 and fast training flags, an in-process
pretraining run, and the system's Chromium for browser tests (Playwright drives it, never a downloaded browser)."""

import os
import shutil
from pathlib import Path

import pytest

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


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_chromium() -> str:
    """The Chromium executable; skips the test without one (fails under CI, which installs it)."""
    if not CHROMIUM:
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing; .ci/run installs Debian's chromium package.")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    return CHROMIUM
