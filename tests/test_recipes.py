"""One registry of recipes: each is a command, a script and a config target, and every checked-in run config
loads against its recipe's own parser."""

import re
import sys
from pathlib import Path

import pytest

from llmkit.arguments import parse_args
from llmkit.cli import main as llmkit_main
from llmkit.recipes import RECIPES
from tests.helpers import REPO, run_together

RUN_CONFIGS = sorted((REPO / "recipes" / "configs").glob("*.yaml"))


def _recipe_of(config: Path):
    """A config is named after its recipe: `pretrain-gpt2-1gpu.yaml` belongs to `pretrain`."""
    matches = [name for name in RECIPES if config.stem == name or config.stem.startswith(f"{name}-")]
    assert matches, f"{config.name} is not named after a recipe ({', '.join(RECIPES)})"
    return RECIPES[max(matches, key=len)]


def test_every_recipe_file_is_registered_and_has_one_parser():
    scripts = {p.stem for p in (REPO / "recipes").glob("*.py") if p.stem != "__init__"}
    assert scripts == {r.module for r in RECIPES.values()}
    for recipe in RECIPES.values():
        module = recipe.load()
        assert callable(module.main) and isinstance(module.TYPES, tuple) and module.TYPES, recipe.name


def test_every_recipe_has_a_checked_in_config():
    assert {_recipe_of(c).name for c in RUN_CONFIGS} == set(RECIPES)


@pytest.mark.parametrize("config", RUN_CONFIGS, ids=lambda p: p.stem)
def test_run_config_loads_against_its_recipe_and_says_what_it_reaches(config):
    recipe = _recipe_of(config)
    header = [line for line in config.read_text().splitlines() if line.startswith("#")]
    command = " ".join(header[:2])  # the command that runs it, possibly continued on a second line
    assert f"recipes/{recipe.module}.py" in command or f"llmkit {recipe.name}" in command, command
    assert any(line.startswith("# Reaches:") for line in header) and any(
        line.startswith("# Takes:") for line in header
    )
    parsed = parse_args(recipe.load().TYPES, ["--config", str(config)])
    assert len(parsed) == len(recipe.load().TYPES)


def test_flags_win_over_a_checked_in_config():
    recipe = RECIPES["pretrain"]
    _, model, training = parse_args(
        recipe.load().TYPES,
        [
            "--config",
            str(REPO / "recipes/configs/pretrain-gpt2-1gpu.yaml"),
            "--max_steps",
            "5000",
            "--preset",
            "tiny",
        ],
    )
    assert (training.max_steps, model.preset, training.gradient_accumulation_steps) == (5000, "tiny", 16)


def test_llmkit_help_lists_every_recipe(capsys):
    with pytest.raises(SystemExit) as exit_:
        llmkit_main(["--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0
    assert all(f"  {name} " in out for name in RECIPES)


def test_the_command_runs_the_recipe_file_itself():
    for recipe in RECIPES.values():
        assert Path(recipe.load().__file__).resolve() == REPO / "recipes" / f"{recipe.module}.py"


@pytest.mark.slow
def test_a_recipe_answers_as_command_and_as_script():
    via_cli, via_script = run_together(
        [sys.executable, "-m", "llmkit.cli", "train-mlp", "--help"],
        [sys.executable, str(REPO / "recipes/train_mlp.py"), "--help"],
    )
    assert via_cli.returncode == via_script.returncode == 0, via_cli.stderr + via_script.stderr
    assert set(re.findall(r"--\w+", via_cli.stdout)) == set(re.findall(r"--\w+", via_script.stdout))


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_each_recipe_help_names_its_command_and_lists_config(name, capsys):
    with pytest.raises(SystemExit) as exit_:
        llmkit_main([name, "--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0
    assert out.startswith(f"usage: llmkit {name} ") and "--config FILE" in out


def test_tokenize_neither_lists_nor_takes_a_tokenized_dataset(capsys, tmp_path):
    with pytest.raises(SystemExit):
        llmkit_main(["tokenize", "--help"])
    out = capsys.readouterr().out
    assert "--tokenized_dataset" not in out and "tokenize 1024" in out
    with pytest.raises(SystemExit) as exit_:
        llmkit_main(["tokenize", "--tokenized_dataset", "x", "--output_dir", str(tmp_path / "o")])
    assert exit_.value.code == 2
    assert "does not take --tokenized_dataset" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


TRAINING_RECIPES = [name for name in sorted(RECIPES) if name != "tokenize"]


@pytest.mark.parametrize("name", TRAINING_RECIPES)
@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--learning_rate", "-1", "--learning_rate must be positive, got -1.0"),
        ("--learning_rate", "0", "--learning_rate must be positive, got 0"),
        ("--learning_rate", "inf", "--learning_rate must be positive and finite, got inf"),  # a NaN model
        ("--seed", "-1", r"--seed must be between 0 and 2\*\*32 - 1, got -1"),  # NumPy's traceback
        ("--per_device_train_batch_size", "-2", "--per_device_train_batch_size must be at least 1"),
        ("--num_train_epochs", "0", "--num_train_epochs must be (positive|at least 1)"),
    ],
)
def test_a_negative_learning_rate_or_batch_size_is_refused_when_parsed(name, flag, value, message):
    from llmkit.errors import UserError

    with pytest.raises(UserError, match=message):
        parse_args(RECIPES[name].load().TYPES, [flag, value])


@pytest.mark.parametrize("name", [n for n in TRAINING_RECIPES if n.startswith(("finetune-", "pretrain"))])
def test_an_output_dir_that_is_a_file_is_refused_when_parsed(name, tmp_path):
    # it was refused only after the data was read and the model loaded
    from llmkit.errors import UserError

    file = tmp_path / "notes.txt"
    file.write_text("mine")
    with pytest.raises(UserError, match=f"--output_dir {file} is a file; pass a folder"):
        parse_args(RECIPES[name].load().TYPES, ["--output_dir", str(file)])
    assert file.read_text() == "mine"


@pytest.mark.parametrize("name", [n for n in TRAINING_RECIPES if n.startswith("finetune-")])
def test_a_fine_tuning_batch_of_zero_is_refused_when_parsed(name):
    from llmkit.errors import UserError

    for flag in (
        "--per_device_train_batch_size",
        "--per_device_eval_batch_size",
        "--gradient_accumulation_steps",
    ):
        with pytest.raises(UserError, match=f"{flag} must be at least 1, got 0"):
            parse_args(RECIPES[name].load().TYPES, [flag, "0"])


@pytest.mark.parametrize("name", ["finetune-bert", "finetune-t5", "finetune-gpt2"])
def test_a_negative_max_length_or_no_target_length_is_refused_when_parsed(name):
    # a negative --max_length ended in an OverflowError traceback (T5) or trained on cut pairs (GPT-2)
    from llmkit.errors import UserError

    types = RECIPES[name].load().TYPES
    with pytest.raises(UserError, match=r"--max_length must be 0 \(the recipe's default\) or more, got -3"):
        parse_args(types, ["--max_length", "-3"])
    with pytest.raises(UserError, match="--max_target_length must be at least 1, got 0"):
        parse_args(types, ["--max_target_length", "0"])
    assert parse_args(types, ["--max_length", "0"])[1].max_length == 0


def test_a_generation_length_below_one_is_refused_when_parsed():
    # it trained, then generate() raised "max_length is set to 0" at the first evaluation: a traceback
    from llmkit.errors import UserError

    for value in ("0", "-1"):
        with pytest.raises(UserError, match=f"--generation_max_length must be at least 1, got {value}"):
            parse_args(RECIPES["finetune-t5"].load().TYPES, ["--generation_max_length", value])


@pytest.mark.parametrize(
    ("name", "flags", "message"),
    [
        ("finetune-image", ["--image_size", "0"], "--image_size must be at least 1, got 0"),
        ("finetune-detection", ["--image_size", "40"], r"--image_size must be a multiple of 32 \(32, 64"),
        ("finetune-segmentation", ["--image_size", "8"], "--image_size must be at least 16, got 8"),
        (
            "finetune-segmentation",
            ["--flip_probability", "1.5"],
            "--flip_probability is a probability between",
        ),
        (
            "finetune-segmentation",
            ["--generated_per_canvas", "0"],
            "--generated_per_canvas must be at least 1",
        ),
        # no generated data: the error named an empty temporary folder and said to add images to it
        ("finetune-image", ["--generated_per_class", "0"], "--generated_per_class must be at least 1"),
        ("finetune-detection", ["--generated_images", "0"], "--generated_images must be at least 1"),
        ("finetune-segmentation", ["--generated_images", "0"], "--generated_images must be at least 1"),
    ],
)
def test_image_sizes_the_tiny_models_cannot_take_are_refused_when_parsed(name, flags, message):
    # sizes ended in a ValueError/RuntimeError traceback from the processor or the model; a flip of -1 ran to exit 0
    from llmkit.errors import UserError

    with pytest.raises(UserError, match=message):
        parse_args(RECIPES[name].load().TYPES, flags)


@pytest.mark.parametrize("name", [n for n in TRAINING_RECIPES if n.startswith("finetune-")])
def test_a_validation_share_outside_0_to_100_is_refused_when_parsed(name):
    # the image recipes held out one image per class for 0 or -5, and kept one per class to train for 100
    from llmkit.errors import UserError

    for value in ("0", "100", "-5"):
        with pytest.raises(
            UserError, match=f"--validation_split_percentage must be between 0 and 100 .*got {value}"
        ):
            parse_args(RECIPES[name].load().TYPES, ["--validation_split_percentage", value])


# Values that trained to exit 0 with nonsense, or failed with a traceback (some only after the whole run), each
# refused when the flags are parsed.
CANNOT_WORK = [
    # pretrain: torch's ValueError (dropout); refused after training (samples); after the BPE trained (n_head)
    ("pretrain", ["--dropout", "2"], "--dropout is a probability: 0 or more and below 1, got 2.0"),
    ("pretrain", ["--dropout", "nan"], "--dropout is a probability"),
    ("pretrain", ["--sample_max_new_tokens", "-1"], "--sample_max_new_tokens must be at least 1, got -1"),
    ("pretrain", ["--n_layer", "0"], "--n_layer must be at least 1, got 0"),
    ("pretrain", ["--n_embd", "32", "--n_head", "3"], r"n_embd \(32\) must be divisible by n_head \(3\)"),
    # fine-tuning: alpha -1 flipped the update, 0 samples meant all, every QA answer "none", a merge that never
    # happened; peft's and generate()'s tracebacks
    ("finetune-bert", ["--use_lora", "--lora_alpha", "-1"], "--lora_alpha must be positive, got -1"),
    ("finetune-bert", ["--use_lora", "--lora_r", "0"], "--lora_r must be at least 1, got 0"),
    ("finetune-image", ["--use_lora", "--lora_dropout", "1"], "--lora_dropout is a probability"),
    ("finetune-bert", ["--merge_lora"], "--merge_lora folds LoRA adapters into the model: it goes with"),
    ("finetune-bert", ["--max_train_samples", "0"], "--max_train_samples must be at least 1"),
    ("finetune-t5", ["--max_eval_samples", "-1"], "--max_eval_samples must be at least 1"),
    ("finetune-t5", ["--num_beams", "0"], "--num_beams must be at least 1, got 0"),
    ("finetune-qa", ["--n_best_size", "0"], "--n_best_size must be at least 1, got 0"),
    ("finetune-qa", ["--max_answer_length", "0"], "--max_answer_length must be at least 1, got 0"),
    ("finetune-qa", ["--null_score_diff_threshold", "nan"], "must be a finite number, got nan"),
    (
        "finetune-gpt2",
        ["--label_smoothing_factor", "2"],
        "--label_smoothing_factor must be 0 or more and below",
    ),
    # classics: a real target of -1, an RBM climbing its energy, text cut from the end, default sampling steps
    ("train-gan", ["--label_smoothing", "2"], "--label_smoothing must be 0 or more and below 1, got 2.0"),
    ("train-dbn", ["--rbm_learning_rate", "-1"], "--rbm_learning_rate must be positive, got -1.0"),
    ("train-rnn", ["--max_chars", "-5"], r"--max_chars must be 0 \(all the text\) or more, got -5"),
    ("train-diffusion", ["--num_inference_steps", "0"], "--num_inference_steps must be at least 1, got 0"),
    ("train-cnn", ["--image_size", "0"], "--image_size must be at least 1, got 0"),
]


@pytest.mark.parametrize(("name", "flags", "message"), CANNOT_WORK)
def test_values_that_cannot_work_are_refused_when_parsed(name, flags, message):
    from llmkit.errors import UserError

    with pytest.raises(UserError, match=message):
        parse_args(RECIPES[name].load().TYPES, flags)


@pytest.mark.parametrize("name", ["pretrain", "finetune-bert", "train-mlp"])
def test_a_tracker_that_is_not_installed_is_refused_when_parsed(name):
    # Trainer raised "WandbCallback requires wandb to be installed" after the model and data had loaded; the
    # classic loop ignored it
    from llmkit.errors import UserError

    with pytest.raises(UserError, match="--report_to wandb: wandb is not installed; `pip install wandb`"):
        parse_args(RECIPES[name].load().TYPES, ["--report_to", "wandb"])
    # a name no tracker has: a traceback after loading (Trainer), or at start (the classic loop)
    with pytest.raises(UserError, match="--report_to foo is not a tracker; choose none, all, or some of"):
        parse_args(RECIPES[name].load().TYPES, ["--report_to", "foo"])
    parse_args(RECIPES[name].load().TYPES, ["--report_to", "none"])
