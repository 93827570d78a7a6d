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
