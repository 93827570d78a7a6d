"""Data too small to learn from or to judge by: finetune-bert says so, and what to change, before training."""

import pytest

from llmkit.arguments import parse_args
from llmkit.finetune import FinetuneTrainingArguments
from llmkit.finetune.trainer import optimizer_steps, warn_if_too_small
from llmkit.recipes.finetune_bert import main as finetune_bert
from tests.finetune.helpers import ANIMALS, MINILM, MONEY


def _args(*argv):
    (args,) = parse_args((FinetuneTrainingArguments,), ["--output_dir", "/tmp/unused", *argv])
    return args


@pytest.mark.slow
def test_twenty_rows_with_the_defaults_warn_before_training(tmp_path, capsys):
    rows = [(t, "animal") for t in ANIMALS[:5]] * 2 + [(t, "money") for t in MONEY[:5]] * 2
    data = tmp_path / "tiny.csv"
    data.write_text("text,label\n" + "\n".join(f'"{t}",{label}' for t, label in rows) + "\n")
    argv = [
        "--train_file",
        str(data),
        "--num_train_epochs",
        "1",
        "--max_length",
        "16",
        "--disable_tqdm",
        "true",
    ]
    finetune_bert([*MINILM, *argv, "--output_dir", str(tmp_path / "o")])
    err = capsys.readouterr().err
    # 18 rows after the 10% hold-out, 16 per step: 2 steps; the split holds 2 rows
    assert "warning: this run makes only 2 optimizer steps (18 training examples, 16 per step)" in err
    assert "Raise --num_train_epochs (to 25: 50 steps)" in err and "--learning_rate" in err
    assert "warning: the validation set has only 2 example(s)" in err and "--validation_file" in err


def test_adequate_runs_do_not_warn(capsys):
    assert optimizer_steps(_args(), 18) == 6  # the defaults: 3 epochs of 16 per step
    assert (
        optimizer_steps(_args("--gradient_accumulation_steps", "2"), 100) == 12
    )  # 7 batches -> 4 updates/epoch
    assert optimizer_steps(_args("--max_steps", "80"), 18) == 80
    assert warn_if_too_small(_args(), 270, 30) == []  # 17 updates an epoch x 3, a 30-row validation set
    assert warn_if_too_small(_args("--max_steps", "50"), 18, 20) == []
    assert len(warn_if_too_small(_args(), 250, 30)) == 1  # 16 updates an epoch x 3 = 48 steps: too few
    # with --max_steps, --num_train_epochs does nothing (it was the flag the warning said to raise)
    (short,) = warn_if_too_small(_args("--max_steps", "3"), 270, 30)
    assert "Raise --max_steps (to 50)" in short and "--num_train_epochs" not in short
    # whole epochs: 16 updates an epoch, so 4 epochs make 64 steps (it said "to 4 for 50 steps")
    assert "Raise --num_train_epochs (to 4: 64 steps)" in warn_if_too_small(_args(), 250, 30)[0]
    assert capsys.readouterr().err.count("warning:") == 3  # each call that warned said it once
