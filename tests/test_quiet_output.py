"""What a new user sees: a short pretrain (and its resume), a LoRA fine-tune and a rag index print no
warning they cannot act on: no raw library warnings, tracebacks, colour codes or weight-loading tables."""

import os
import re
import subprocess
import sys

import pytest

from llmkit.finetune.common import packaged_minilm
from tests.helpers import TINY_MODEL

NOISE = [
    "attention_mask",  # transformers' padding warning: packed blocks have no padding
    "missing keys",  # the tied lm_head on every resume
    "LOAD REPORT",
    "Warning:",  # any raw warnings.warn line (FutureWarning, UserWarning, ...)
    "warnings.warn",
    "Token indices sequence length",
    "Traceback",
]


def _llmkit(*argv: str, cwd) -> str:
    # what a user sees: transformers at its default verbosity (the test session sets it to error)
    env = {k: v for k, v in os.environ.items() if k != "TRANSFORMERS_VERBOSITY"}
    env.update(OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    done = subprocess.run(
        [sys.executable, "-m", "llmkit.cli", *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout + done.stderr


def _assert_quiet(output: str) -> None:
    found = [n for n in NOISE if n in output] + re.findall(r"\x1b\[[0-9;]*m", output)  # colour codes
    assert not found, f"{found} in:\n{output[-4000:]}"


@pytest.mark.slow
def test_pretrain_and_its_resume_print_nothing_a_user_cannot_act_on(tmp_path):
    run = [
        *TINY_MODEL,
        "--save_steps",
        "3",
        "--eval_steps",
        "3",
        "--logging_steps",
        "3",
        "--output_dir",
        "run",
    ]
    _assert_quiet(_llmkit("pretrain", *run, "--max_steps", "3", cwd=tmp_path))
    resumed = _llmkit("pretrain", *run, "--max_steps", "6", cwd=tmp_path)
    assert "resuming from" in resumed
    _assert_quiet(resumed)


@pytest.mark.slow
def test_lora_finetune_prints_the_new_head_in_one_line(tmp_path):
    rows = [f'"the cat number {i} sat",animals' for i in range(24)] + [
        f'"bank rate {i} rose",finance' for i in range(24)
    ]
    (tmp_path / "t.csv").write_text("text,label\n" + "\n".join(rows) + "\n")
    output = _llmkit(
        "finetune-bert",
        *("--model_name_or_path", packaged_minilm(), "--train_file", "t.csv", "--use_lora", "true"),
        *("--max_length", "16", "--num_train_epochs", "1", "--per_device_train_batch_size", "16"),
        *("--disable_tqdm", "true", "--output_dir", "run"),
        cwd=tmp_path,
    )
    _assert_quiet(output)
    assert "new task head (classifier" in output


@pytest.mark.slow
def test_rag_index_of_a_long_document_is_quiet(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "long.md").write_text("# Kettles\n\n" + "A kettle boils water for tea and coffee. " * 400)
    (docs / "short.txt").write_text("Refunds are paid within five days of a return.")
    _assert_quiet(_llmkit("rag", "index", "docs", "--store", "store", cwd=tmp_path))
