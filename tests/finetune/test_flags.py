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


@pytest.mark.parametrize(
    ("flags", "strategies", "steps"),
    [
        ([], ("epoch", "epoch"), None),
        (["--save_steps", "3"], ("steps", "steps"), (3, 3)),  # it was ignored: a checkpoint each epoch only
        (["--eval_steps", "4"], ("steps", "steps"), (4, 4)),
        (["--save_steps", "4", "--eval_steps", "2"], ("steps", "steps"), (4, 2)),
        (
            ["--save_strategy", "epoch", "--eval_strategy", "epoch", "--save_steps", "3"],
            ("epoch", "epoch"),
            None,
        ),
    ],
)
def test_save_steps_or_eval_steps_alone_switch_to_steps(flags, strategies, steps, tmp_path):
    from llmkit.arguments import parse_args
    from llmkit.finetune.common import FinetuneTrainingArguments

    (args,) = parse_args((FinetuneTrainingArguments,), ["--output_dir", str(tmp_path), *flags])
    assert (args.save_strategy.value, args.eval_strategy.value) == strategies
    if steps:
        assert (args.save_steps, args.eval_steps) == steps


def test_a_run_killed_before_its_first_epoch_ends_kept_the_checkpoints_save_steps_asked_for(tmp_path):
    from tests.finetune.helpers import TRAIN, write_jsonl

    train = write_jsonl(tmp_path / "train.jsonl", TRAIN)
    out = tmp_path / "o"
    argv = ["--train_file", str(train), "--per_device_train_batch_size", "2", "--max_steps", "2"]
    llmkit_main(["finetune-bert", *MINILM, *argv, "--save_steps", "1", "--output_dir", str(out)])
    assert (out / "checkpoint-1").is_dir()  # only checkpoint-2, saved when training ended, was there


@pytest.mark.parametrize(
    ("recipe", "good", "flag"),
    [
        ("finetune-bert", [], "--train_file"),
        ("finetune-bert", ["--train_file", "TOPICS"], "--validation_file"),
        ("finetune-qa", [], "--train_file"),
    ],
)
def test_a_missing_file_names_the_flag_it_was_given_to(recipe, good, flag, topic_csv, tmp_path, capsys):
    # "check the path given to --train_files/--validation_files": pretraining's flags, which fine-tuning lacks
    good = [str(topic_csv) if part == "TOPICS" else part for part in good]
    argv = [recipe, *MINILM, *good, flag, str(tmp_path / "nope.csv"), "--output_dir", str(tmp_path / "o")]
    with pytest.raises(SystemExit):
        llmkit_main(argv)
    assert f"nope.csv does not exist; check the path given to {flag}." in capsys.readouterr().err
