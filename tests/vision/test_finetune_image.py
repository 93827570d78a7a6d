"""finetune-image end to end on generated canvases: the trained model beats the untrained one on held-out images,
the output folder loads with transformers' pipeline, and a table of paths trains the same way."""

import json
import signal

import pytest
import transformers
from transformers import AutoModelForImageClassification, TrainerCallback, pipeline

from llmkit.recipes.finetune_image import main as finetune_image
from llmkit.vision.classify import tiny_config_and_processor
from tests.vision.helpers import FAST

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
    assert len(list((out / "examples").glob("*.png"))) == 4  # inputs for the image page and a Space
    assert "image-classification" in (out / "README.md").read_text()
    # the usage snippet opens the run's own copy, not the source image (a temporary canvas by default)
    assert repr(str(out / "examples" / "example-0.png")) in (out / "README.md").read_text()


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


class _CtrlCAt(TrainerCallback):
    """Presses Ctrl-C (a real SIGINT) at the end of one step."""

    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            signal.raise_signal(signal.SIGINT)


def test_ctrl_c_saves_a_checkpoint_and_the_same_command_resumes(canvases, tmp_path, monkeypatch):
    out = tmp_path / "run"
    argv = [
        *("--train_dir", str(canvases / "train"), "--save_strategy", "steps", "--save_steps", "100"),
        *("--eval_strategy", "no", "--load_best_model_at_end", "false", "--max_steps", "4"),
        *("--output_dir", str(out), *FAST),
    ]
    original = transformers.Trainer.__init__

    def with_ctrl_c(self, *a, **k):
        original(self, *a, **k)
        self.add_callback(_CtrlCAt(2))

    monkeypatch.setattr(transformers.Trainer, "__init__", with_ctrl_c)
    with pytest.raises(KeyboardInterrupt, match="checkpoint-2"):
        finetune_image(argv)
    monkeypatch.setattr(transformers.Trainer, "__init__", original)
    assert (out / "checkpoint-2" / "trainer_state.json").is_file()
    metrics = finetune_image(argv)  # the very same command
    assert metrics["resumed_from"].endswith("checkpoint-2") and metrics["global_step"] == 4


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


def test_a_lora_run_on_new_labels_loads_in_a_pipeline_with_its_own_labels(canvases, tmp_path):
    base = tmp_path / "ten-label-base"
    config, processor = tiny_config_and_processor([str(d) for d in range(10)], 32)
    AutoModelForImageClassification.from_config(config).save_pretrained(base)
    processor.save_pretrained(base)
    out = tmp_path / "lora"
    metrics = finetune_image(
        [
            *("--model_name_or_path", str(base), "--ignore_mismatched_sizes", "true", "--use_lora", "true"),
            *("--train_dir", str(canvases / "train"), "--max_steps", "2", "--eval_strategy", "no"),
            *("--save_strategy", "no", "--load_best_model_at_end", "false", "--output_dir", str(out), *FAST),
        ]
    )
    assert metrics["trainable_parameters"] < metrics["parameters"] / 2
    assert (out / "adapter_config.json").is_file()
    image = sorted(canvases.glob("test/4/*.png"))[0]
    answer = pipeline("image-classification", model=str(out))(str(image))
    assert sorted(a["label"] for a in answer) == LABELS  # the adapter's three labels, not the base's ten
