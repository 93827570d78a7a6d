"""End-to-end behaviour of the pretraining path on a tiny model."""

import json
import math
import re

import pytest
from transformers import AutoTokenizer, TrainerCallback, pipeline

from llmkit.data import builtin_texts
from llmkit.errors import UserError
from tests.helpers import FAST_TRAINING, TINY_MODEL, run_pretrain


def test_loss_falls_and_perplexity_is_finite(tiny_run):
    out, metrics = tiny_run
    history = json.loads((out / "checkpoint-60" / "trainer_state.json").read_text())["log_history"]
    losses = [e["loss"] for e in history if "loss" in e]
    assert losses[0] > 6.0  # ~ln(512) at initialisation
    assert losses[-1] < losses[0] - 0.5
    assert math.isfinite(metrics["eval_perplexity"]) and metrics["eval_perplexity"] < math.exp(losses[0])
    evals = [e for e in history if "eval_loss" in e]
    assert [e["step"] for e in evals] == [30, 60]
    assert all("eval_perplexity" in e for e in evals)


def test_outputs_are_complete(tiny_run):
    out, _ = tiny_run
    saved = json.loads((out / "metrics.json").read_text())
    for key in (
        "train_loss",
        "eval_loss",
        "eval_perplexity",
        "tokens_seen",
        "train_tokens_per_second",
        "parameters",
        "world_size",
        "wall_time_seconds",
        "model_flops_per_second",
    ):
        assert key in saved, key
    assert saved["world_size"] == 1 and saved["global_step"] == 60
    assert saved["tokens_seen"] == 60 * 8 * 64
    assert saved["train_tokens_per_second"] > 0
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
    assert (out / "loss_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    samples = (out / "samples.txt").read_text()
    assert samples.count("--- sample") == 4
    # no prompts given: each is the first words of a validation block, so it reads like the corpus
    prompts = re.findall(r"prompt: '([^']*)'", samples)
    corpus = " ".join(" ".join(t.split()) for t in builtin_texts())
    assert len(prompts) == 4 and all(p and p in corpus for p in prompts), prompts
    # every model field was overridden: the record says so instead of naming the preset alone
    assert saved["preset"] == "custom (tiny with n_layer=2, n_head=2, n_embd=64, n_positions=64)"


def test_output_loads_with_pipeline(tiny_run):
    out, _ = tiny_run
    generator = pipeline("text-generation", model=str(out))
    text = generator("The for statement", max_new_tokens=10, do_sample=False)[0]["generated_text"]
    assert text.startswith("The for statement") and len(text) > len("The for statement")
    assert generator.model.config.activation_function == "gelu_pytorch_tanh"


class _InterruptAt(TrainerCallback):
    """Simulate Ctrl-C right after the checkpoint at `step` is written."""

    def __init__(self, step):
        self.step = step

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise KeyboardInterrupt


def test_tokens_seen_counts_each_run_at_its_own_batch_size(tmp_path):
    # it was global_step x this run's tokens per step: a resume at half the batch size halved the first run's tokens
    data = tmp_path / "corpus.txt"
    data.write_text(
        "\n\n".join(f"note {i}: " + "the cat sat on the mat and the dog ran off " * 8 for i in range(200))
    )
    common = [*TINY_MODEL, *FAST_TRAINING, "--train_files", str(data), "--output_dir", str(tmp_path / "out")]
    common += [
        "--save_steps",
        "4",
        "--eval_steps",
        "100",
        "--per_device_eval_batch_size",
        "4",
        "--sample_max_new_tokens",
        "2",
    ]
    assert run_pretrain([*common, "--max_steps", "4"])["tokens_seen"] == 4 * 8 * 64
    resumed = run_pretrain([*common, "--max_steps", "6", "--per_device_train_batch_size", "4"])
    assert resumed["global_step"] == 6 and resumed["tokens_seen"] == 4 * 8 * 64 + 2 * 4 * 64


@pytest.mark.slow
def test_interrupted_run_resumes_where_it_stopped(tmp_path):
    common = [
        *TINY_MODEL,
        *FAST_TRAINING,
        "--max_steps",
        "30",
        "--save_steps",
        "10",
        "--eval_steps",
        "30",
        "--sample_max_new_tokens",
        "5",
    ]
    straight = run_pretrain([*common, "--output_dir", str(tmp_path / "straight")])

    resumed_dir = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        run_pretrain([*common, "--output_dir", str(resumed_dir)], callbacks=[_InterruptAt(20)])
    assert (resumed_dir / "checkpoint-20").is_dir()  # saved work survives the interruption
    resumed = run_pretrain([*common, "--output_dir", str(resumed_dir)])  # same command again

    assert resumed["resumed_from"].endswith("checkpoint-20")
    assert resumed["global_step"] == 30 and resumed["steps_this_run"] == 10
    history = json.loads((resumed_dir / "checkpoint-30" / "trainer_state.json").read_text())["log_history"]
    assert [e["step"] for e in history if "loss" in e] == [1, 5, 10, 15, 20, 25, 30]  # one continuous curve
    assert resumed["final_train_loss"] == pytest.approx(straight["final_train_loss"], abs=1e-4)
    assert resumed["eval_loss"] == pytest.approx(straight["eval_loss"], abs=1e-4)


@pytest.mark.slow
def test_streaming_local_files(tmp_path):
    data = tmp_path / "corpus.jsonl"
    data.write_text("\n".join(json.dumps({"body": t, "id": i}) for i, t in enumerate(builtin_texts()[:300])))
    argv = [
        *TINY_MODEL,
        *FAST_TRAINING,
        *("--train_files", str(data), "--text_column", "body", "--streaming"),
        *(
            "--streaming_validation_documents",
            "20",
            "--max_steps",
            "8",
            "--eval_steps",
            "8",
            "--save_steps",
            "8",
        ),
        *("--output_dir", str(tmp_path / "out"), "--sample_max_new_tokens", "5"),
    ]
    metrics = run_pretrain(argv)
    assert metrics["global_step"] == 8 and math.isfinite(metrics["eval_loss"])
    assert metrics["corpus"] == str(data) and metrics["tokens_seen"] == 8 * 8 * 64  # packed: no padding
    # the BPE was trained on the "body" texts (not the "id" numbers): a frequent English word is one token
    assert AutoTokenizer.from_pretrained(tmp_path / "out").tokenize(" the") == ["Ġthe"]
    argv[argv.index("body")] = "title"
    argv[argv.index(str(tmp_path / "out"))] = str(tmp_path / "other")
    with pytest.raises(
        UserError, match="title"
    ):  # a column the files lack is named, not a KeyError mid-stream
        run_pretrain(argv)
