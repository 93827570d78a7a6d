"""What a new user sees: a LoRA fine-tune and a rag index print no warning they cannot act on: no raw library
warnings, tracebacks, colour codes or weight-loading tables. (A pretrain, its Ctrl-C and its resume are checked
in tests/test_checkpoints.py, which runs them anyway.)"""

import sys

import pytest

from llmkit.finetune.common import packaged_minilm
from tests.helpers import assert_quiet, run_together, user_env


@pytest.fixture(scope="module")
def user_runs(tmp_path_factory) -> dict[str, str]:
    """A LoRA fine-tune and a rag index as a user runs them, started at once (each on one thread, so they
    share two cores instead of taking turns): what each printed, by name."""
    work = tmp_path_factory.mktemp("user")
    rows = [f'"the cat number {i} sat",animals' for i in range(24)] + [
        f'"bank rate {i} rose",finance' for i in range(24)
    ]
    (work / "t.csv").write_text("text,label\n" + "\n".join(rows) + "\n")
    (work / "docs").mkdir()
    (work / "docs" / "long.md").write_text(
        "# Kettles\n\n" + "A kettle boils water for tea and coffee. " * 400
    )
    (work / "docs" / "short.txt").write_text("Refunds are paid within five days of a return.")
    llmkit = [sys.executable, "-m", "llmkit.cli"]
    lora = [
        *llmkit,
        "finetune-bert",
        *("--model_name_or_path", packaged_minilm(), "--train_file", "t.csv", "--use_lora", "true"),
        *("--max_length", "16", "--num_train_epochs", "1", "--per_device_train_batch_size", "16"),
        *("--disable_tqdm", "true", "--output_dir", "run"),
    ]
    rag = [*llmkit, "rag", "index", "docs", "--store", "store"]
    runs = run_together(lora, rag, cwd=work, env=user_env(), timeout=600)
    for done in runs:
        assert done.returncode == 0, done.stderr[-3000:]
    return {name: done.stdout + done.stderr for name, done in zip(("lora", "rag"), runs)}


@pytest.mark.slow
def test_lora_finetune_prints_the_new_head_in_one_line(user_runs):
    assert_quiet(user_runs["lora"])
    assert "new task head (classifier" in user_runs["lora"]


@pytest.mark.slow
def test_rag_index_of_a_long_document_is_quiet(user_runs):
    assert_quiet(user_runs["rag"])
