"""Stopping a fine-tune with SIGTERM (what a scheduler or `kill` sends): it saves the step and exits at once."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.finetune.helpers import ANIMALS, MINILM, MONEY


def _csv(path, rows):
    path.write_text("text,label\n" + "\n".join(f'"{t}",{label}' for t, label in rows) + "\n")
    return path


@pytest.mark.slow
def test_sigterm_saves_and_exits_without_evaluating(tmp_path):
    rows = [(t, "animal") for t in ANIMALS] + [(t, "money") for t in MONEY]
    train = _csv(tmp_path / "train.csv", rows * 8)
    # a validation set that takes a while to score: an evaluation after the signal would show in the exit time
    valid = _csv(tmp_path / "valid.csv", rows * 50)
    out, log = tmp_path / "out", tmp_path / "log.txt"
    argv = [
        sys.executable, "-m", "llmkit.cli", "finetune-bert", *MINILM,
        "--train_file", str(train), "--validation_file", str(valid), "--output_dir", str(out),
        "--per_device_train_batch_size", "2", "--per_device_eval_batch_size", "8", "--max_length", "16",
        "--num_train_epochs", "1", "--logging_steps", "1", "--disable_tqdm", "true",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"}
    with log.open("w") as f:
        proc = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.time() + 180
            while "'loss'" not in log.read_text():  # training has begun: steps are being logged
                assert proc.poll() is None and time.time() < deadline, log.read_text()[-2000:]
                time.sleep(0.1)
            proc.send_signal(signal.SIGTERM)
            signalled = time.time()
            code = proc.wait(timeout=120)
            stopped_in = time.time() - signalled
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert code == 130, log.read_text()[-2000:]
    text = log.read_text()
    assert "interrupted: saved" in text and "Traceback" not in text
    assert "eval_loss" not in text  # no validation pass after the signal (one would log its loss)
    (checkpoint,) = out.glob("checkpoint-*")
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    assert state["global_step"] < 64 and not [e for e in state["log_history"] if "eval_loss" in e]
    assert stopped_in < 30, f"took {stopped_in:.1f} s to stop"  # an evaluation here took 64 s


class _Killed(BaseException):
    """kill -9 as the run writes metrics.json: nothing after that line runs."""


def test_a_run_killed_as_it_writes_metrics_json_has_its_card_and_the_same_command_finishes_it(
    tmp_path, monkeypatch
):
    """metrics.json marks a run finished, and it came before the loss curve and model card: a kill between them
    left a run without its card, and the same command refused to write it ("already finished")."""
    from llmkit import record
    from llmkit.recipes.finetune_bert import main as finetune_bert

    rows = [(t, "animal") for t in ANIMALS] + [(t, "money") for t in MONEY]
    argv = [
        *MINILM, "--train_file", str(_csv(tmp_path / "train.csv", rows)), "--output_dir", str(tmp_path / "out"),
        "--max_steps", "1", "--eval_strategy", "no", "--load_best_model_at_end", "false", "--save_strategy",
        "steps", "--save_steps", "1", "--max_length", "16", "--disable_tqdm", "true", "--report_to", "none",
    ]  # fmt: skip
    written = record.write_metrics

    def killed(out, *args):
        assert {"README.md", "loss_curve.png"} <= {p.name for p in (tmp_path / "out").iterdir()}
        raise _Killed

    monkeypatch.setattr(record, "write_metrics", killed)
    with pytest.raises(_Killed):
        finetune_bert(argv)
    monkeypatch.setattr(record, "write_metrics", written)
    assert finetune_bert(argv)["global_step"] == 1  # finished, not refused, and not trained a step further
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["global_step"] == 1
