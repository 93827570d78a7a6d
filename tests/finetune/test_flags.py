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
    ("recipe", "flag"),
    [
        ("finetune-bert", "target_column"),  # a classifier reads --text_column and --label_column only
        ("finetune-bert", "max_target_length"),
        ("finetune-gpt2", "label_column"),  # the response is --target_column
        ("finetune-gpt2", "max_target_length"),  # --max_length cuts prompt and response together
        ("finetune-t5", "label_column"),
        ("finetune-qa", "max_target_length"),  # answers are spans of the context, not generated
    ],
)
def test_a_data_flag_the_recipe_reads_nothing_from_is_refused(recipe, flag, tmp_path, capsys):
    # each trained to exit 0 with the flag silently ignored
    with pytest.raises(SystemExit) as exit_:
        llmkit_main([recipe, f"--{flag}", "7", "--output_dir", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and f"does not take --{flag};" in err, err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("recipe", ["finetune-bert", "finetune-image", "finetune-segmentation"])
def test_a_dataset_config_name_without_a_dataset_name_is_refused(recipe, tmp_path, capsys):
    # the built-in data trained, the configuration named nowhere
    with pytest.raises(SystemExit) as exit_:
        llmkit_main([recipe, "--dataset_config_name", "3.0.0", "--output_dir", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "--dataset_config_name names a configuration of --dataset_name" in err, (
        err
    )
