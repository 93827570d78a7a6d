"""What a new user sees: a LoRA fine-tune and a rag index print no warning they cannot act on: no raw library
warnings, tracebacks, colour codes or weight-loading tables. (A pretrain, its Ctrl-C and its resume are checked
in tests/test_checkpoints.py, which runs them anyway.)"""

import subprocess
import sys

import pytest

from llmkit.finetune.common import packaged_minilm
from tests.helpers import assert_quiet, user_env


def _llmkit(*argv: str, cwd) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "llmkit.cli", *argv],
        cwd=cwd,
        env=user_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout + done.stderr


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
    assert_quiet(output)
    assert "new task head (classifier" in output


@pytest.mark.slow
def test_rag_index_of_a_long_document_is_quiet(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "long.md").write_text("# Kettles\n\n" + "A kettle boils water for tea and coffee. " * 400)
    (docs / "short.txt").write_text("Refunds are paid within five days of a return.")
    assert_quiet(_llmkit("rag", "index", "docs", "--store", "store", cwd=tmp_path))
