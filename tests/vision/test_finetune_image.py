"""finetune-image end to end on generated canvases: the trained model beats the untrained one on held-out images,
the output folder loads with transformers' pipeline, and a table of paths trains the same way."""

import json

import pytest
from transformers import AutoModelForImageClassification, pipeline

from llmkit.recipes.finetune_image import main as finetune_image
from llmkit.vision.classify import tiny_config_and_processor
from tests.vision.conftest import FAST

LABELS = ["0", "1", "4"]


def _accuracy(model_dir, test_dir) -> float:
    classify = pipeline("image-classification", model=str(model_dir))
    files = sorted(test_dir.glob("*/*.png"))
    right = sum(classify(str(f), top_k=1)[0]["label"] == f.parent.name for f in files)
    return right / len(files)


@pytest.mark.slow
def test_trained_classifier_beats_the_untrained_one_and_loads_in_a_pipeline(canvases, tmp_path):
    out = tmp_path / "run"
    metrics = finetune_image(
        [
            *("--train_dir", str(canvases / "train"), "--test_dir", str(canvases / "test")),
            *("--num_train_epochs", "12", "--learning_rate", "3e-3", "--per_device_train_batch_size", "16"),
            *("--output_dir", str(out), *FAST),
        ]
    )
    untrained = tmp_path / "untrained"
    config, processor = tiny_config_and_processor(LABELS, 32)
    AutoModelForImageClassification.from_config(config).save_pretrained(untrained)
    processor.save_pretrained(untrained)

    trained_acc, untrained_acc = _accuracy(out, canvases / "test"), _accuracy(untrained, canvases / "test")
    assert trained_acc >= untrained_acc + 0.3 and trained_acc >= 0.7, (trained_acc, untrained_acc)
    assert metrics["test_accuracy"] == pytest.approx(trained_acc, abs=0.05)
    assert metrics["labels"] == LABELS and metrics["headline"]["test_accuracy"] == metrics["test_accuracy"]
    assert (out / "confusion_matrix.png").stat().st_size > 1000
    assert "image-classification" in (out / "README.md").read_text()


def test_a_csv_of_relative_paths_trains_and_frozen_backbone_trains_only_the_head(canvases, tmp_path):
    rows = ["file,digit"] + [
        f"{p.relative_to(canvases).as_posix()},{p.parent.name}"
        for p in sorted(canvases.glob("train/*/*.png"))
    ]
    table = canvases / "train.csv"  # beside the images: paths are relative to the file
    table.write_text("\n".join(rows) + "\n")
    out = tmp_path / "run"
    metrics = finetune_image(
        [
            *("--train_file", str(table), "--image_column", "file", "--label_column", "digit"),
            *(
                "--freeze_backbone",
                "true",
                "--max_steps",
                "2",
                "--eval_strategy",
                "no",
                "--save_strategy",
                "no",
            ),
            *("--load_best_model_at_end", "false", "--output_dir", str(out), *FAST),
        ]
    )
    assert metrics["labels"] == LABELS and metrics["transfer"] == "frozen backbone"
    head = 64 * 3 + 3  # the tiny ResNet's last hidden size times the labels, plus biases
    assert metrics["trainable_parameters"] == head < metrics["parameters"]
    assert json.loads((out / "config.json").read_text())["id2label"] == {"0": "0", "1": "1", "2": "4"}


def test_rerunning_resumes_from_the_newest_checkpoint(canvases, tmp_path):
    out = tmp_path / "run"
    argv = [
        *("--train_dir", str(canvases / "train"), "--save_strategy", "steps", "--save_steps", "2"),
        *("--eval_strategy", "no", "--load_best_model_at_end", "false", "--output_dir", str(out), *FAST),
    ]
    first = finetune_image([*argv, "--max_steps", "2"])
    assert first["resumed_from"] is None and first["global_step"] == 2
    second = finetune_image([*argv, "--max_steps", "4"])
    assert second["resumed_from"].endswith("checkpoint-2") and second["global_step"] == 4


def test_a_dataset_with_image_and_class_label_features_trains_by_name(canvases, tmp_path):
    # a local image folder loaded by datasets' own builder stands in for a Hub dataset such as `beans`:
    # the same Image feature and ClassLabel column (whose names, not ids, become the labels)
    metrics = finetune_image(
        [
            *("--dataset_name", str(canvases), "--max_steps", "1", "--eval_strategy", "no"),
            *(
                "--save_strategy",
                "no",
                "--load_best_model_at_end",
                "false",
                "--output_dir",
                str(tmp_path),
                *FAST,
            ),
        ]
    )
    assert metrics["labels"] == LABELS
