"""Pretraining and every fine-tuning recipe on two real gloo ranks: one `accelerate launch` of the checked-in CPU DDP
config runs them one after another (one start-up of the launcher and its ranks for all of them), then each test
reads its recipe's output."""

import json

import pytest

from llmkit.vision.synthetic import write_coco
from tests.finetune.helpers import FAST as TEXT_FAST
from tests.finetune.helpers import MINILM
from tests.helpers import FAST_TRAINING, TINY_MODEL, launch_recipes
from tests.vision.helpers import FAST as IMAGE_FAST
from tests.vision.test_finetune_image import LABELS, _accuracy

# four steps, no evaluation or checkpoint: each recipe's two-rank path, not what it learns
FOUR_STEPS = ["--max_steps", "4", "--eval_strategy", "no", "--save_strategy", "no"]
FOUR_STEPS += ["--load_best_model_at_end", "false"]
TEXT_RECIPES = ("finetune_bert", "finetune_t5", "finetune_gpt2")


@pytest.fixture(scope="module")
def launched(topic_csv, digits_jsonl, tiny_run, canvases, tmp_path_factory):
    """The folder holding each recipe's output folder, by recipe name, after one launch of two ranks."""
    root = tmp_path_factory.mktemp("two-ranks")
    coco = write_coco(root / "coco", train_images=16, test_images=6, digits=(0, 1), max_per_canvas=2, seed=2)
    text = {
        "finetune_bert": [
            *MINILM,
            *("--train_file", str(topic_csv), "--text_column", "sentence", "--label_column", "topic"),
            *("--max_length", "32"),
        ],
        "finetune_t5": [
            *("--train_file", str(digits_jsonl), "--text_column", "words", "--target_column", "digits"),
            *("--from_scratch", "--scratch_vocab_size", "300"),
        ],
        "finetune_gpt2": [
            *("--model_name_or_path", str(tiny_run[0]), "--train_file", str(digits_jsonl)),
            *("--text_column", "words", "--target_column", "digits"),
        ],
    }
    runs = {
        "pretrain_gpt2": [
            *TINY_MODEL,
            *FAST_TRAINING,
            *("--max_steps", "6", "--eval_steps", "6", "--save_steps", "6", "--sample_max_new_tokens", "5"),
        ],
        **{recipe: [*argv, *TEXT_FAST, *FOUR_STEPS] for recipe, argv in text.items()},
        "finetune_image": [
            *("--train_dir", str(canvases / "train"), "--test_dir", str(canvases / "test")),
            *("--num_train_epochs", "12", "--learning_rate", "3e-3", "--per_device_train_batch_size", "8"),
            *IMAGE_FAST,
        ],
        "finetune_detection": [
            *("--image_size", "64", "--train_dir", str(coco / "train"), "--test_dir", str(coco / "test")),
            *(
                "--max_steps",
                "4",
                "--eval_strategy",
                "steps",
                "--eval_steps",
                "2",
                "--save_strategy",
                "steps",
            ),
            *("--save_steps", "2", "--per_device_train_batch_size", "4", "--per_device_eval_batch_size", "2"),
            *("--disable_tqdm", "true", "--report_to", "none"),
        ],
    }
    search = [*runs["pretrain_gpt2"], "--hp_search_trials", "2", "--output_dir", str(root / "search")]
    launch_recipes(
        [
            *[(recipe, [*argv, "--output_dir", str(root / recipe)]) for recipe, argv in runs.items()],
            ("pretrain_gpt2", search),
        ],
        root,
    )
    return root


@pytest.mark.multiproc
def test_two_cpu_ranks_pretrain_together(launched):
    out = launched / "pretrain_gpt2"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 2
    assert metrics["global_step"] == 6
    assert metrics["tokens_seen"] == 6 * 8 * 2 * 64  # each optimizer step consumed both ranks' batches
    assert (out / "model.safetensors").is_file()


@pytest.mark.multiproc
def test_a_hyperparameter_search_runs_on_two_ranks(launched):
    # rank 1 read the trials from an in-memory study only rank 0 had: KeyError "No such study" after the last trial
    record = json.loads((launched / "search" / "hp_search" / "trials.json").read_text())
    assert [t["state"] for t in record["trials"]] == ["COMPLETE", "COMPLETE"]
    assert (launched / "search" / "hp_search" / "best_config.yaml").is_file()


@pytest.mark.multiproc
def test_each_text_finetuning_recipe_runs_on_two_ranks(launched):
    for recipe in TEXT_RECIPES:
        out = launched / recipe
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["world_size"] == 2 and metrics["global_step"] == 4, recipe
        assert (out / "README.md").is_file() and (out / "config.json").is_file(), recipe


@pytest.mark.slow
@pytest.mark.multiproc
def test_two_ranks_train_a_classifier_that_beats_the_untrained_one(launched, canvases, tmp_path):
    from transformers import AutoModelForImageClassification

    from llmkit.vision.classify import tiny_config_and_processor

    out = launched / "finetune_image"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["labels"] == LABELS
    untrained = tmp_path / "untrained"
    config, processor = tiny_config_and_processor(LABELS, 32)
    AutoModelForImageClassification.from_config(config).save_pretrained(untrained)
    processor.save_pretrained(untrained)
    trained_acc, untrained_acc = _accuracy(out, canvases / "test"), _accuracy(untrained, canvases / "test")
    assert trained_acc >= untrained_acc + 0.3, (trained_acc, untrained_acc)


@pytest.mark.slow
@pytest.mark.multiproc
def test_the_detectors_two_ranks_train_evaluate_and_gather_every_validation_box(launched):
    metrics = json.loads((launched / "finetune_detection" / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["global_step"] == 4
    # the packed targets of batches with different box counts were padded and gathered from both ranks
    assert 0 <= metrics["test_map_50"] <= 1 and 0 <= metrics["eval_map_50"] <= 1


@pytest.mark.multiproc
def test_two_ranks_report_the_loss_one_rank_would(topic_csv, tmp_path):
    # transformers scales each rank's loss by the world size for a model that takes num_items_in_batch, which
    # BERT's classifier then ignores: two ranks logged twice the loss (3.216 for five labels, ln 5 = 1.609)
    argv = [*MINILM, "--train_file", str(topic_csv), "--text_column", "sentence", "--label_column", "topic"]
    argv += [*TEXT_FAST, *FOUR_STEPS, "--max_length", "32", "--output_dir", str(tmp_path / "bert")]
    launch_recipes([("finetune_bert", argv)], tmp_path)
    metrics = json.loads((tmp_path / "bert" / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["train_loss"] < 1.0, metrics[
        "train_loss"
    ]  # two labels: ln 2
