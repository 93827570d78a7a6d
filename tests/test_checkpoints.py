"""Nothing lost: half-written checkpoints are skipped on resume, Ctrl-C saves, tokens never reach a file."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from llmkit.checkpoints import checkpoint_problem, find_resume_checkpoint, prune_incomplete
from llmkit.errors import UserError
from llmkit.interrupt import GracefulInterrupt
from tests.helpers import FAST_TRAINING, REPO, TINY_MODEL, assert_quiet, run_pretrain, user_env

TINY_RUN_ARGS = [
    *TINY_MODEL,
    *FAST_TRAINING,
    "--max_steps",
    "60",
    "--eval_steps",
    "30",
    "--save_steps",
    "30",
    "--sample_max_new_tokens",
    "20",
]  # the flags of the session's tiny_run fixture


def _break_like_a_kill(folder):
    """What `kill -9` during Trainer's save leaves: weights written, optimizer.pt empty, no trainer_state.json."""
    (folder / "optimizer.pt").write_bytes(b"")
    (folder / "trainer_state.json").unlink()


def test_complete_checkpoint_passes_and_damage_is_named(tiny_run, tmp_path):
    good = tiny_run[0] / "checkpoint-60"
    assert checkpoint_problem(good) is None
    cases = {
        "trainer_state": lambda f: (f / "trainer_state.json").unlink(),
        "truncated state": lambda f: (f / "trainer_state.json").write_text('{"global_step": 6'),
        # valid JSON but no Trainer state: resuming from it was a TypeError traceback inside Trainer
        "null state": lambda f: (f / "trainer_state.json").write_text("null"),
        "empty state": lambda f: (f / "trainer_state.json").write_text("{}"),
        "optimizer": lambda f: (f / "optimizer.pt").write_bytes((f / "optimizer.pt").read_bytes()[:1000]),
        "weights": lambda f: (f / "model.safetensors").write_bytes(
            (f / "model.safetensors").read_bytes()[:5000]
        ),
    }
    expected = {
        "trainer_state": "no trainer_state.json",
        "truncated state": "truncated",
        "null state": "trainer_state.json holds no step count",
        "empty state": "trainer_state.json holds no step count",
        "optimizer": "optimizer.pt is empty or truncated",
        "weights": "model.safetensors is truncated",
    }
    for name, damage in cases.items():
        folder = tmp_path / name
        shutil.copytree(good, folder)
        damage(folder)
        assert expected[name] in checkpoint_problem(folder), name


def test_resume_skips_a_checkpoint_cut_short_and_says_so(tiny_run, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(tiny_run[0], out)
    _break_like_a_kill(out / "checkpoint-60")

    assert find_resume_checkpoint(out) == str(out / "checkpoint-30")
    assert "skipping" in capsys.readouterr().err
    assert (out / "incomplete-checkpoint-60").is_dir() and not (
        out / "checkpoint-60"
    ).exists()  # kept, not deleted
    with pytest.raises(UserError, match="no trainer_state.json"):
        find_resume_checkpoint(out, explicit=str(out / "incomplete-checkpoint-60"))


def test_incomplete_checkpoints_do_not_pile_up(tiny_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(tiny_run[0] / "checkpoint-30", out / "checkpoint-30")
    # four kills late in saves (weights written), each followed by a resume; the newest cut save is kept
    for step, newest in ((31, 31), (33, 33), (32, 33), (33, 33)):
        shutil.copytree(out / "checkpoint-30", out / f"checkpoint-{step}")
        _break_like_a_kill(out / f"checkpoint-{step}")
        assert find_resume_checkpoint(out) == str(out / "checkpoint-30")
        assert sorted(p.name for p in out.iterdir()) == ["checkpoint-30", f"incomplete-checkpoint-{newest}"]
    assert checkpoint_problem(out / "incomplete-checkpoint-33") is not None
    # once a newer checkpoint is saved whole, the last incomplete one goes too
    assert prune_incomplete(out, saved_step=32) == []
    assert prune_incomplete(out, saved_step=34) == [out / "incomplete-checkpoint-33"]
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint-30"]


def test_the_same_command_on_a_finished_run_trains_nothing_and_says_so(tiny_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(tiny_run[0], out)
    kept = ("metrics.json", "model.safetensors")
    before = [(out / name).read_bytes() for name in kept]
    # Trainer trained step 61 of a 60-step run, then overwrote the finished model and metrics.json
    with pytest.raises(UserError, match=r"holds this run already finished at step 60 .* raise --max_steps"):
        run_pretrain([*TINY_RUN_ARGS, "--output_dir", str(out)])
    assert [(out / name).read_bytes() for name in kept] == before
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-30", "checkpoint-60"]


def test_a_run_killed_after_its_last_checkpoint_writes_its_outputs_without_training_past_max_steps(
    tiny_run, tmp_path, capsys
):
    out = tmp_path / "run"
    shutil.copytree(tiny_run[0], out)
    for name in ("model.safetensors", "metrics.json"):  # killed during the final save, after checkpoint-60
        (out / name).unlink()
    # Trainer trained step 61 of the 60-step run (and reported it as the run's), with train_loss 0.0 when
    # run by epochs
    metrics = run_pretrain([*TINY_RUN_ARGS, "--output_dir", str(out)])
    assert metrics["global_step"] == 60 and metrics["steps_this_run"] == 0
    assert metrics["train_loss"] is None and metrics["train_tokens_per_second"] is None
    assert metrics["final_train_loss"] == tiny_run[1]["final_train_loss"]
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-30", "checkpoint-60"]
    from safetensors.torch import load_file

    final, saved = (
        load_file(out / "model.safetensors"),
        load_file(out / "checkpoint-60" / "model.safetensors"),
    )
    assert all((final[k] == saved[k]).all() for k in saved)
    printed = capsys.readouterr().out
    assert "60 steps" in printed and "none trained by this run" in printed and "0 tokens/s" not in printed


def test_a_kill_after_the_final_save_leaves_no_earlier_runs_report_beside_the_new_weights(
    tiny_run, tmp_path, monkeypatch
):
    from transformers import Trainer

    out = tmp_path / "run"
    shutil.copytree(tiny_run[0], out)
    save = Trainer.save_model

    def save_then_die(self, output_dir=None, _internal_call=False):
        save(self, output_dir, _internal_call)
        if output_dir is None:  # the final save, not a checkpoint's
            raise SystemExit("killed")

    monkeypatch.setattr(Trainer, "save_model", save_then_die)
    with pytest.raises(SystemExit):
        run_pretrain([*TINY_RUN_ARGS, "--output_dir", str(out), "--max_steps", "70", "--save_steps", "5"])
    # step 70's weights stood beside step 60's metrics.json, samples and curve
    assert not [n for n in ("metrics.json", "samples.txt", "loss_curve.png") if (out / n).exists()]
    monkeypatch.setattr(Trainer, "save_model", save)
    metrics = run_pretrain(
        [*TINY_RUN_ARGS, "--output_dir", str(out), "--max_steps", "70", "--save_steps", "5"]
    )
    assert (
        metrics["global_step"] == 70 and json.loads((out / "metrics.json").read_text())["global_step"] == 70
    )


def test_a_resume_reads_the_checkpoints_tokenizer_so_a_cut_copy_in_output_dir_does_not_stop_it(
    tiny_run, tmp_path
):
    out = tmp_path / "run"
    shutil.copytree(tiny_run[0], out)
    whole = (out / "tokenizer.json").read_bytes()
    # a resume re-saves output_dir's tokenizer when it starts: a kill then leaves it cut, and every later
    # resume of the run stopped on "tokenizer.json is not valid JSON"
    (out / "tokenizer.json").write_bytes(whole[: len(whole) // 2])
    metrics = run_pretrain([*TINY_RUN_ARGS, "--output_dir", str(out), "--max_steps", "62"])
    assert metrics["global_step"] == 62 and (out / "tokenizer.json").read_bytes() == whole


def test_resuming_with_another_learning_rate_is_refused_not_silently_ignored(tiny_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(tiny_run[0], out)
    # Trainer restores the schedule's base rate from scheduler.pt: steps 61-62 trained at 0.003, not 0.01
    with pytest.raises(UserError, match=r"with --learning_rate 0.01: the run was trained with 0.003"):
        run_pretrain(
            [*TINY_RUN_ARGS, "--output_dir", str(out), "--max_steps", "62", "--learning_rate", "1e-2"]
        )
    assert not (out / "checkpoint-62").exists()


def test_a_finished_run_without_checkpoints_is_not_replaced_in_silence(tmp_path):
    out = tmp_path / "run"
    argv = [*TINY_MODEL, *FAST_TRAINING, "--max_steps", "4", "--save_strategy", "no", "--eval_steps", "4"]
    run_pretrain([*argv, "--output_dir", str(out), "--sample_max_new_tokens", "5"])
    before = (out / "model.safetensors").read_bytes()
    # nothing to resume from: a new, wider model trained from scratch and replaced the finished one
    with pytest.raises(UserError, match="holds a finished run .* no checkpoint to continue it from"):
        run_pretrain([*argv, "--output_dir", str(out), "--n_embd", "32"])
    assert (out / "model.safetensors").read_bytes() == before


def test_final_train_loss_is_the_last_steps_not_an_earlier_interval(tiny_run, tmp_path):
    # 7 steps logged every 5: the last interval (steps 6-7) was never logged, so final_train_loss, "where the
    # model ended", was step 5's; with --max_steps 5 and the recipe's logging_steps 20 it was step 1's loss
    out = tmp_path / "run"
    shutil.copytree(tiny_run[0], out)
    metrics = run_pretrain(
        [*TINY_RUN_ARGS, "--output_dir", str(out), "--max_steps", "63", "--save_steps", "100"]
    )
    history = json.loads((out / "checkpoint-63" / "trainer_state.json").read_text())["log_history"]
    last = [e for e in history if "loss" in e][-1]
    assert last["step"] == 63 and metrics["final_train_loss"] == last["loss"]


@pytest.mark.slow
def test_rerunning_after_a_kill_mid_save_finishes_the_run(tiny_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(tiny_run[0], out)
    (out / "model.safetensors").unlink()  # the run never got to its final save
    _break_like_a_kill(out / "checkpoint-60")

    metrics = run_pretrain([*TINY_RUN_ARGS, "--output_dir", str(out)])  # the identical command
    assert metrics["resumed_from"].endswith("checkpoint-30")
    assert metrics["global_step"] == 60 and metrics["steps_this_run"] == 30
    assert checkpoint_problem(out / "checkpoint-60") is None
    assert not (out / "incomplete-checkpoint-60").exists()  # superseded by the whole checkpoint-60


def test_second_interrupt_stops_at_once():
    before = signal.getsignal(signal.SIGINT)  # SIG_IGN when the suite runs as a background job
    with GracefulInterrupt() as interrupt:
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)  # the launcher forwarding the same keypress: ignored
        assert interrupt.requested
        time.sleep(GracefulInterrupt.SAME_PRESS_SECONDS)
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)  # the handler runs between bytecodes; never reached
    assert signal.getsignal(signal.SIGINT) == before  # handlers restored


def _wait_for(predicate, proc, seconds=180):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if predicate():
            return
        assert proc.poll() is None, "training ended before it could be interrupted"
        time.sleep(0.2)
    raise AssertionError("timed out")


@pytest.mark.slow
def test_ctrl_c_saves_the_current_step_then_resumes_and_both_print_only_what_a_user_can_act_on(tmp_path):
    out = tmp_path / "run"
    log = tmp_path / "log.txt"
    # `llmkit pretrain` as a user runs it (transformers at its default verbosity): its output must be quiet too
    args = [
        sys.executable,
        "-m",
        "llmkit.cli",
        "pretrain",
        *TINY_MODEL,
        *FAST_TRAINING,
        "--logging_steps",
        "1",
        "--save_steps",
        "1000",
        "--eval_steps",
        "1000",
        "--output_dir",
        str(out),
        "--sample_max_new_tokens",
        "5",
    ]
    env = {**user_env(), "PYTHONUNBUFFERED": "1"}
    with log.open("w") as f:
        proc = subprocess.Popen([*args, "--max_steps", "100000"], stdout=f, stderr=subprocess.STDOUT, env=env)
        _wait_for(lambda: log.read_text().count("'loss'") >= 3, proc)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=120) == 130
    text = log.read_text()
    assert "interrupted: saved" in text
    assert_quiet(text)  # no traceback, raw warning or colour code on Ctrl-C either
    saved = [p for p in out.glob("checkpoint-*")]
    assert len(saved) == 1 and checkpoint_problem(saved[0]) is None  # complete, at the step it stopped
    step = int(saved[0].name.split("-")[1])
    assert step >= 3 and json.loads((saved[0] / "trainer_state.json").read_text())["global_step"] == step

    done = subprocess.run(
        [*args, "--max_steps", str(step + 2)], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resuming from" in done.stdout + done.stderr
    assert_quiet(done.stdout + done.stderr)  # no weight-loading table for the tied lm_head, no raw warning
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["resumed_from"].endswith(saved[0].name) and metrics["global_step"] == step + 2


@pytest.mark.slow
def test_hub_token_never_reaches_a_file(tmp_path):
    token = "hf_" + "Ab1" * 12
    out = tmp_path / "run"
    run_pretrain(
        [
            *TINY_MODEL,
            *FAST_TRAINING,
            "--max_steps",
            "2",
            "--save_steps",
            "2",
            "--eval_steps",
            "2",
            "--sample_max_new_tokens",
            "2",
            "--hub_token",
            token,
            "--output_dir",
            str(out),
        ]
    )
    written = [p for p in out.rglob("*") if p.is_file()]
    assert any(p.name == "training_args.bin" for p in written)
    assert not [p for p in written if token.encode() in p.read_bytes()]
    assert os.environ.pop("HF_TOKEN") == token  # handed to huggingface_hub through the environment


@pytest.mark.multiproc
def test_ctrl_c_under_two_ranks_saves_one_agreed_checkpoint(tmp_path):
    out = tmp_path / "run"
    log = tmp_path / "log.txt"
    launch = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(REPO / "recipes/accelerate/cpu-ddp.yaml"),
        str(REPO / "recipes/pretrain_gpt2.py"),
        *TINY_MODEL,
        *FAST_TRAINING,
        "--logging_steps",
        "1",
        "--save_steps",
        "1000",
        "--eval_steps",
        "1000",
        "--max_steps",
        "100000",
        "--output_dir",
        str(out),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    with log.open("w") as f:
        # A terminal's Ctrl-C reaches the whole process group: the launcher and both ranks.
        proc = subprocess.Popen(launch, stdout=f, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        _wait_for(lambda: log.read_text().count("'loss'") >= 3, proc, seconds=300)
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=120)  # torch's launcher itself exits 1 after its ranks stop
    assert log.read_text().count("interrupted: saved") == 2  # both ranks stopped at the same step
    (saved,) = out.glob("checkpoint-*")
    assert checkpoint_problem(saved) is None
    assert (saved / "rng_state_0.pth").is_file() and (saved / "rng_state_1.pth").is_file()
