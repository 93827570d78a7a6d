"""How a fine-tuning run behaves around training: resume, Ctrl-C, early stopping, the kept checkpoint and the
figures reported for it, the test set, LoRA's learning rate and label names, and no token in any file."""

import json
import signal
from pathlib import Path

import pytest
import transformers
import yaml
from transformers import TrainerCallback, pipeline

from llmkit.arguments import parse_args
from llmkit.finetune import FinetuneSeq2SeqArguments, FinetuneTrainingArguments
from llmkit.finetune.common import MINILM, packaged_minilm
from llmkit.recipes.finetune_bert import main as finetune_bert
from llmkit.recipes.finetune_gpt2 import main as finetune_gpt2
from llmkit.recipes.finetune_t5 import main as finetune_t5
from tests.finetune.helpers import FAST
from tests.finetune.helpers import MINILM as MINILM_FLAGS


def _qa(path):
    rows = [{"question": f"what is {a} plus {b}?", "answer": f" {a + b}"} for a in range(8) for b in range(8)]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    return path


def _gpt2(tiny_run, tmp_path, *extra):
    return [
        "--model_name_or_path",
        str(tiny_run[0]),
        "--train_file",
        str(_qa(tmp_path / "qa.jsonl")),
        "--prompt_template",
        "Q: {question}\nA:",
        "--target_column",
        "answer",
        "--learning_rate",
        "3e-3",
        "--output_dir",
        str(tmp_path / "out"),
        *FAST,
        *extra,
    ]


class _CtrlCAt(TrainerCallback):
    """Presses Ctrl-C (a real SIGINT) at the end of one step."""

    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            signal.raise_signal(signal.SIGINT)


def test_rerunning_an_interrupted_finetune_resumes_it(tiny_run, tmp_path, monkeypatch):
    argv = _gpt2(
        tiny_run,
        tmp_path,
        "--max_steps",
        "6",
        "--eval_strategy",
        "no",
        "--save_strategy",
        "steps",
        "--save_steps",
        "100",
        "--load_best_model_at_end",
        "false",
    )
    original = transformers.Trainer.__init__

    def with_ctrl_c(self, *a, **k):
        original(self, *a, **k)
        self.add_callback(_CtrlCAt(3))

    monkeypatch.setattr(transformers.Trainer, "__init__", with_ctrl_c)
    with pytest.raises(KeyboardInterrupt, match="checkpoint-3"):
        finetune_gpt2(argv)
    monkeypatch.setattr(transformers.Trainer, "__init__", original)
    assert (
        tmp_path / "out" / "checkpoint-3" / "trainer_state.json"
    ).is_file()  # saved at the step of the Ctrl-C

    metrics = finetune_gpt2(argv)  # the very same command
    assert metrics["resumed_from"].endswith("checkpoint-3") and metrics["trained_steps"] == 6
    history = json.loads((tmp_path / "out" / "checkpoint-6" / "trainer_state.json").read_text())[
        "log_history"
    ]
    assert [e["step"] for e in history if "loss" in e] == [
        5,
        6,
    ]  # steps 4-6 ran after the resume, not 1-6 again; the last is always logged


def test_gpt2_honours_early_stopping_and_reports_the_kept_step(tiny_run, tmp_path):
    # Any later evaluation counts as "no improvement" (threshold), so patience 1 stops at the second evaluation.
    # Keeping the checkpoint with the *highest* eval loss makes the kept one (step 2) differ from the last (step 4).
    metrics = finetune_gpt2(
        _gpt2(
            tiny_run,
            tmp_path,
            "--max_steps",
            "40",
            "--eval_strategy",
            "steps",
            "--eval_steps",
            "2",
            "--save_strategy",
            "steps",
            "--save_steps",
            "2",
            "--early_stopping_patience",
            "1",
            "--early_stopping_threshold",
            "1e9",
            "--metric_for_best_model",
            "loss",
            "--greater_is_better",
            "true",
        )
    )
    assert metrics["trained_steps"] == 4  # not 40: --early_stopping_patience is honoured
    assert metrics["reported_step"] == 2 and metrics["selected_by"] == "eval_loss"
    state = json.loads((tmp_path / "out" / "checkpoint-2" / "trainer_state.json").read_text())  # the kept one
    at_step_2 = next(e for e in state["log_history"] if e.get("step") == 2 and "eval_loss" in e)
    assert metrics["eval_loss"] == pytest.approx(at_step_2["eval_loss"], rel=1e-4)
    assert metrics["reported_epoch"] == pytest.approx(at_step_2["epoch"], abs=1e-3)
    card = (tmp_path / "out" / "README.md").read_text()
    assert "checkpoint at step 2 (epoch" in card and "of 4 steps" in card


def test_a_prompt_template_naming_a_missing_column_is_refused(tiny_run, tmp_path, capsys):
    from llmkit.cli import main as llmkit_main

    data = tmp_path / "p.jsonl"
    data.write_text("\n".join(json.dumps({"prompt": f"p{i}", "response": f"r{i}"}) for i in range(10)))
    with pytest.raises(SystemExit) as exit_:
        llmkit_main(
            [
                "finetune-gpt2",
                "--model_name_or_path",
                str(tiny_run[0]),
                "--train_file",
                str(data),
                "--text_column",
                "prompt",
                "--target_column",
                "response",
                "--prompt_template",
                "Q: {question}",
                "--output_dir",
                str(tmp_path / "o"),
            ]
        )
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "Traceback" not in err
    assert "['question']" in err and "--prompt_template" in err and "['prompt', 'response']" in err


def test_best_checkpoint_follows_the_task_metric_not_the_loss():
    """TrainingArguments' own __post_init__ fills in "loss"; the task's metric must win unless one is given."""
    (t5,) = parse_args((FinetuneSeq2SeqArguments,), ["--output_dir", "/tmp/unused"])
    assert t5.metric_for_best_model == "rougeL" and t5.greater_is_better
    (clf,) = parse_args((FinetuneTrainingArguments,), ["--output_dir", "/tmp/unused"])
    clf.refine_best_metric("accuracy")  # what the classifier does once it knows the task
    assert clf.metric_for_best_model == "accuracy" and clf.greater_is_better
    (chosen,) = parse_args(
        (FinetuneTrainingArguments,), ["--metric_for_best_model", "loss", "--output_dir", "/tmp/unused"]
    )
    chosen.refine_best_metric("accuracy")
    assert chosen.metric_for_best_model == "loss" and not chosen.greater_is_better  # the user's choice stays


def test_classifier_selects_by_accuracy_and_scores_the_test_file_once(topic_csv, tmp_path, monkeypatch):
    passes = []  # every pass over a data set, on the real Trainer: its metric prefix
    original = transformers.Trainer.evaluation_loop

    def counted(self, *args, **kwargs):
        passes.append(kwargs.get("metric_key_prefix", "eval"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(transformers.Trainer, "evaluation_loop", counted)
    lines = topic_csv.read_text().splitlines()
    header, rows = lines[0], lines[1:]
    (tmp_path / "test.csv").write_text("\n".join([header, *rows[:12]]) + "\n")
    metrics = finetune_bert(
        [
            *MINILM_FLAGS,
            "--train_file",
            str(topic_csv),
            "--test_file",
            str(tmp_path / "test.csv"),
            "--text_column",
            "sentence",
            "--label_column",
            "topic",
            "--num_train_epochs",
            "2",
            "--learning_rate",
            "1e-4",
            "--max_length",
            "32",
            "--output_dir",
            str(tmp_path / "o"),
            *FAST,
        ]
    )
    assert metrics["selected_by"] == "eval_accuracy"
    # one validation pass per epoch, none again at the end (it was 2 + evaluate() + predict()), one test pass
    assert passes == ["eval", "eval", "test"]
    assert (tmp_path / "o" / "confusion_matrix.png").is_file()
    state = json.loads(
        (tmp_path / "o" / f"checkpoint-{metrics['reported_step']}" / "trainer_state.json").read_text()
    )
    logged = next(
        e for e in state["log_history"] if e["step"] == metrics["reported_step"] and "eval_loss" in e
    )
    assert metrics["eval_accuracy"] == logged["eval_accuracy"] and metrics["eval_loss"] == logged["eval_loss"]
    assert 0 <= metrics["test_accuracy"] <= 1 and "test_macro_f1" in metrics
    saved = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert saved["test_accuracy"] == metrics["test_accuracy"]
    for checkpoint in (tmp_path / "o").glob("checkpoint-*"):  # never seen while choosing the checkpoint
        history = json.loads((checkpoint / "trainer_state.json").read_text())["log_history"]
        assert not [k for entry in history for k in entry if k.startswith("test_")]
    assert "| test | accuracy |" in (tmp_path / "o" / "README.md").read_text()


def test_t5_scores_the_test_file(digits_jsonl, tmp_path):
    rows = digits_jsonl.read_text().splitlines()
    (tmp_path / "test.jsonl").write_text("\n".join(rows[:20]))
    metrics = finetune_t5(
        [
            "--train_file",
            str(digits_jsonl),
            "--test_file",
            str(tmp_path / "test.jsonl"),
            "--text_column",
            "words",
            "--target_column",
            "digits",
            "--from_scratch",
            "--scratch_vocab_size",
            "300",
            "--max_steps",
            "4",
            "--eval_strategy",
            "steps",
            "--eval_steps",
            "4",
            "--save_strategy",
            "steps",
            "--save_steps",
            "4",
            "--max_eval_samples",
            "20",
            "--output_dir",
            str(tmp_path / "o"),
            *FAST,
        ]
    )
    assert (
        metrics["selected_by"] == "eval_rougeL" and "test_rougeL" in metrics and "test_exact_match" in metrics
    )


def test_lora_classifier_gets_its_learning_rate_and_real_label_names(topic_csv, tmp_path, capsys):
    out = tmp_path / "lora"
    metrics = finetune_bert(
        [
            *MINILM_FLAGS,
            "--train_file",
            str(topic_csv),
            "--text_column",
            "sentence",
            "--label_column",
            "topic",
            "--use_lora",
            "--num_train_epochs",
            "2",
            "--max_length",
            "32",
            "--output_dir",
            str(out),
            *FAST,
        ]
    )
    assert metrics["learning_rate"] == 5e-4  # not the full fine-tuning 5e-5, with which LoRA learns nothing
    assert "learning rate: 0.0005 (the LoRA default" in capsys.readouterr().out
    assert (out / "adapter_config.json").is_file() and not (out / "merged").exists()
    clf = pipeline("text-classification", model=str(out), top_k=None)  # what the model card promises
    scores = clf("The hamster ran in its wheel.")[0]
    assert {s["label"] for s in scores} == {"animals", "finance"}
    from peft import PeftModel

    assert isinstance(clf.model, PeftModel) or hasattr(clf.model, "peft_config")  # the adapter is applied


def test_default_encoder_is_the_same_with_or_without_data(topic_csv, tmp_path, capsys):
    from llmkit.cli import main as llmkit_main

    metrics = finetune_bert(
        [
            "--train_file",
            str(topic_csv),
            "--text_column",
            "sentence",
            "--label_column",
            "topic",
            "--max_steps",
            "1",
            "--eval_strategy",
            "no",
            "--save_strategy",
            "no",
            "--load_best_model_at_end",
            "false",
            "--output_dir",
            str(tmp_path / "o"),
            *FAST,
        ]
    )
    assert metrics["global_step"] == 1
    assert f"base_model: {MINILM}" in (tmp_path / "o" / "README.md").read_text()
    with pytest.raises(SystemExit):
        llmkit_main(
            [
                "finetune-bert",
                "--model_name_or_path",
                "bert-base-uncased",
                "--train_file",
                str(topic_csv),
                "--text_column",
                "sentence",
                "--label_column",
                "topic",
                "--output_dir",
                str(tmp_path / "x"),
            ]
        )
    err = capsys.readouterr().err
    assert "HF_HUB_OFFLINE" in err and packaged_minilm() in err and "Traceback" not in err


@pytest.mark.slow
def test_hp_search_writes_no_token(topic_csv, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "")  # the recipe moves the flag's token here; restored after the test
    token = "hf_" + "a1B2c3D4e5" * 4
    best = finetune_bert(
        [
            *MINILM_FLAGS,
            "--train_file",
            str(topic_csv),
            "--text_column",
            "sentence",
            "--label_column",
            "topic",
            "--max_length",
            "24",
            "--max_steps",
            "2",
            "--hp_search_trials",
            "1",
            "--hub_token",
            token,
            "--output_dir",
            str(tmp_path / "o"),
        ]
    )
    config = yaml.safe_load(Path(best["config"]).read_text())
    assert "hub_token" not in config and config["train_file"] == str(topic_csv)
    for path in (tmp_path / "o").rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path


def test_best_config_never_holds_a_secret(tmp_path):
    from dataclasses import dataclass

    from llmkit.hpsearch import write_best_config

    @dataclass
    class Args:
        hub_token: str | None = None
        note: str = ""

    token = "hf_" + "Z9y8X7w6V5" * 4
    path = write_best_config(
        tmp_path / "best.yaml",
        (Args(hub_token=token, note=f"pushed with {token}"),),
        {"params": {"learning_rate": 1e-4}},
        "out",
    )
    text = path.read_text()
    assert token not in text and "hub_token" not in text and yaml.safe_load(text)["learning_rate"] == 1e-4
