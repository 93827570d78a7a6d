"""Resuming a fine-tuning run: a checkpoint of other labels, kind or model is refused; a resumed run does not call
its task head untrained."""

import json
import logging

import pytest
import torch
import transformers

from llmkit.cli import main as llmkit_main
from llmkit.errors import UserError
from tests.finetune.helpers import MINILM, TRAIN, KeptMessages, bert_fails, write_jsonl


def test_a_resumed_run_does_not_call_its_task_head_untrained(tmp_path, capsys):
    # the resumed run printed "new task head (classifier.weight, ...) starts untrained (expected when fine-tuning
    # for a new task)" although the checkpoint's trained head replaced it before the first step
    train = write_jsonl(tmp_path / "train.jsonl", TRAIN)
    argv = [
        "finetune-bert",
        *MINILM,
        "--train_file",
        str(train),
        "--save_steps",
        "1",
        "--disable_tqdm",
        "true",
    ]
    kept, source = KeptMessages(), logging.getLogger("transformers.modeling_utils")
    source.addHandler(kept)
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_warning()  # the test session runs at error; a user sees warnings
    try:
        llmkit_main([*argv, "--max_steps", "1", "--output_dir", str(tmp_path / "a")])
        assert any(
            "new task head" in m for m in kept.messages
        )  # a fresh run does start from an untrained head
        kept.messages.clear()
        checkpoint = str(tmp_path / "a" / "checkpoint-1")
        resume = [
            "--max_steps",
            "2",
            "--output_dir",
            str(tmp_path / "b"),
            "--resume_from_checkpoint",
            checkpoint,
        ]
        llmkit_main([*argv, *resume])
    finally:
        source.removeHandler(kept)
        transformers.logging.set_verbosity(verbosity)
    assert not any("untrained" in m or "LOAD REPORT" in m for m in kept.messages), kept.messages
    assert f"task head included, are loaded from {checkpoint}" in capsys.readouterr().out


def test_resuming_a_run_on_other_labels_is_refused(tmp_path, capsys):
    from safetensors.torch import save_file

    checkpoint = tmp_path / "o" / "checkpoint-4"  # what an earlier run on other labels left in output_dir
    checkpoint.mkdir(parents=True)
    (checkpoint / "config.json").write_text(json.dumps({"id2label": {"0": "cats", "1": "dogs"}}))
    (checkpoint / "trainer_state.json").write_text(json.dumps({"global_step": 4, "log_history": []}))
    save_file({"w": torch.zeros(2)}, str(checkpoint / "model.safetensors"))
    train = write_jsonl(tmp_path / "train.jsonl", TRAIN)
    err = bert_fails(["--train_file", str(train), "--output_dir", str(tmp_path / "o")], capsys)
    assert (
        "checkpoint-4 was trained with the labels ['cats', 'dogs'], but the data has ['animal', 'money']"
        in err
    )


@pytest.mark.parametrize(("recipe", "adapter"), [("finetune-bert", False), ("finetune-qa", True)])
def test_resuming_a_full_run_as_lora_or_a_lora_run_as_full_is_refused(recipe, adapter, tmp_path, capsys):
    # a full checkpoint continued with --use_lora ended in torch's "loaded state dict contains a parameter group
    # that doesn't match the size of optimizer's group" after the model was built
    from safetensors.torch import save_file

    checkpoint = tmp_path / "o" / "checkpoint-4"
    checkpoint.mkdir(parents=True)
    (checkpoint / "trainer_state.json").write_text(json.dumps({"global_step": 4, "log_history": []}))
    weights = "adapter_model.safetensors" if adapter else "model.safetensors"
    save_file({"w": torch.zeros(2)}, str(checkpoint / weights))
    if adapter:
        (checkpoint / "adapter_config.json").write_text("{}")
    argv = [recipe, *MINILM, "--output_dir", str(tmp_path / "o"), *([] if adapter else ["--use_lora"])]
    if recipe == "finetune-bert":
        argv += ["--train_file", str(write_jsonl(tmp_path / "train.jsonl", TRAIN))]
    with pytest.raises(SystemExit) as exit_:
        llmkit_main(argv)
    err = capsys.readouterr().err
    kind, fix = ("LoRA adapter", "with --use_lora") if adapter else ("full model", "without --use_lora")
    assert exit_.value.code == 2 and f"checkpoint-4 is a {kind} checkpoint; continue it {fix}" in err, err


def test_resuming_a_checkpoint_of_another_model_is_refused(tiny_run, tmp_path, capsys):
    # a BERT classifier's checkpoint in finetune-gpt2's output_dir: torch's "loaded state dict contains a
    # parameter group that doesn't match the size of optimizer's group" traceback
    from safetensors.torch import save_file

    checkpoint = tmp_path / "o" / "checkpoint-4"
    checkpoint.mkdir(parents=True)
    (checkpoint / "trainer_state.json").write_text(json.dumps({"global_step": 4, "log_history": []}))
    (checkpoint / "config.json").write_text(json.dumps({"architectures": ["BertForSequenceClassification"]}))
    save_file({"w": torch.zeros(2)}, str(checkpoint / "model.safetensors"))
    argv = ["finetune-gpt2", "--model_name_or_path", str(tiny_run[0]), "--output_dir", str(tmp_path / "o")]
    with pytest.raises(SystemExit) as exit_:
        llmkit_main([*argv, "--max_train_samples", "16", "--max_eval_samples", "8"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2, err
    assert "checkpoint-4 holds a BertForSequenceClassification, not the GPT2LMHeadModel" in err, err
    assert "new --output_dir" in err, err


def test_resuming_with_another_number_of_examples_per_step_is_refused(tmp_path, capsys):
    # Trainer counted the checkpoint's step in the new batches of 2 (2 examples, not 16, skipped): a resumed
    # 2-epoch run trained part of epoch 1 twice and its trainer_state said "epoch 1.0" at steps 4 and 7
    train = write_jsonl(tmp_path / "train.jsonl", TRAIN)
    out = ["--output_dir", str(tmp_path / "o"), "--save_steps", "1", "--disable_tqdm", "true"]
    llmkit_main(["finetune-bert", *MINILM, *out, "--train_file", str(train), "--max_steps", "1"])
    resume = [*out, "--train_file", str(train), "--max_steps", "2", "--per_device_train_batch_size", "2"]
    line = bert_fails(resume, capsys)
    assert "with 2 examples per step (2 x 1 x 1" in line and "trained with 16 (16 x 1 x 1)" in line
    assert "--per_device_train_batch_size 16 --gradient_accumulation_steps 1 on 1 process(es)" in line


def test_the_same_examples_per_step_in_other_factors_resumes(tmp_path):
    from transformers import TrainingArguments

    from llmkit.lm.batch_shape import RECORD, check_batch_shape

    shape = {"gradient_accumulation_steps": 1, "per_device_train_batch_size": 16, "processes": 1}
    state = {"stateful_callbacks": {RECORD: {"args": {}, "attributes": shape}}}
    (tmp_path / "trainer_state.json").write_text(json.dumps(state))
    # a smaller batch with more accumulation skips the same examples
    args = TrainingArguments(tmp_path / "o", per_device_train_batch_size=8, gradient_accumulation_steps=2)
    check_batch_shape(str(tmp_path), args)
    with pytest.raises(UserError, match="with 8 examples per step"):
        check_batch_shape(str(tmp_path), TrainingArguments(tmp_path / "o", per_device_train_batch_size=8))
    check_batch_shape(str(tmp_path / "older"), args)  # a checkpoint without the record: nothing to compare
