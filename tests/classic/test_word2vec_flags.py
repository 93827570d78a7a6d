"""train-word2vec runs its own loop: the shared classic flags it cannot honour are refused, not ignored."""

import pytest

from llmkit.errors import UserError
from llmkit.recipes import train_word2vec


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("precision", "bf16"),  # it trained in fp32
        ("report_to", "tensorboard"),  # no events were written
        ("max_grad_norm", "0.5"),  # no clipping at all: its loop never clips
        ("logging_steps", "1"),  # one loss per epoch
        ("save_total_limit", "5"),  # one checkpoint file
    ],
)
def test_a_classic_flag_word2vec_does_not_use_is_refused(flag, value, tmp_path):
    with pytest.raises(UserError, match=f"does not take --{flag};"):
        train_word2vec.main([f"--{flag}", value, "--output_dir", str(tmp_path / "o")])
    assert not (tmp_path / "o").exists()


def test_its_help_lists_only_the_flags_it_uses(capsys):
    with pytest.raises(SystemExit):
        train_word2vec.main(["--help"])
    shown = capsys.readouterr().out
    assert "--learning_rate" in shown and "--max_grad_norm" not in shown and "--precision" not in shown
