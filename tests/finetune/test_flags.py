"""Number flags that cannot train are refused before any model loads."""

import pytest

from llmkit.cli import main as llmkit_main
from tests.finetune.helpers import MINILM


@pytest.mark.parametrize(
    ("flag", "value"),
    [("weight_decay", "nan"), ("weight_decay", "inf"), ("adam_epsilon", "nan"), ("max_grad_norm", "nan")],
)
@pytest.mark.parametrize("recipe", ["finetune-bert", "finetune-image"])
def test_a_number_flag_that_is_not_a_number_is_refused(recipe, flag, value, tmp_path, capsys):
    """`--weight_decay nan` trained every weight to NaN and exited 0 with eval_loss NaN."""
    argv = [recipe, *(MINILM if recipe == "finetune-bert" else []), f"--{flag}", value]
    with pytest.raises(SystemExit) as exit_:
        llmkit_main([*argv, "--max_steps", "1", "--output_dir", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "Traceback" not in err, err
    assert f"error: --{flag} must be " in err and f", got {value}." in err
    assert not (tmp_path / "o").exists()
