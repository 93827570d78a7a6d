"""Two `accelerate launch` commands as two machines on this host (one CPU process each, gloo), as the
README's multi-node command runs them: they train one model together, and the death of one is reported
by the other."""

import contextlib
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from tests.helpers import FAST_TRAINING, REPO, TINY_MODEL, free_port

# pretrain() as the recipe runs it, plus a callback that saves what each rank holds at step 6
ENTRY = f"""
import os
import sys
import torch
from transformers import TrainerCallback
sys.path.insert(0, {str(REPO)!r})
from llmkit.errors import run_cli
from tests.helpers import run_pretrain


class SaveRankWeights(TrainerCallback):
    def on_train_begin(self, args, state, control, **kwargs):
        args.include_num_input_tokens_seen = "all"  # the Trainer gathers every rank's batch tokens

    # at step 6: what this rank holds and how many tokens the ranks have trained on together
    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step != 6:
            return
        weights = {{k: v.detach().clone() for k, v in model.state_dict().items()}}
        seen = {{"world_size": args.world_size, "tokens": state.num_input_tokens_seen}}
        path = f"{{args.output_dir}}/rank{{args.process_index}}-step6.pt"
        torch.save((weights, seen), path + ".part")
        os.replace(path + ".part", path)  # the test sees the file only once it is whole


run_cli(lambda: run_pretrain(sys.argv[1:], callbacks=[SaveRankWeights()]))
"""


def _machine(rank: int, port: int, tmp_path) -> subprocess.Popen:
    """One "machine": its own launcher, output_dir and log, as on a host of its own."""
    entry = tmp_path / "entry.py"
    entry.write_text(ENTRY)
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--config_file"]
    launch += [
        str(REPO / "recipes/accelerate/cpu-ddp.yaml"),
        "--num_machines",
        "2",
        "--machine_rank",
        str(rank),
    ]
    launch += ["--num_processes", "2", "--main_process_ip", "127.0.0.1", "--main_process_port", str(port)]
    # trains until the test kills a machine
    train = [*TINY_MODEL, *FAST_TRAINING, "--max_steps", "100000", "--eval_steps", "100000"]
    train += ["--save_steps", "100000", "--logging_steps", "2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(
        [*launch, str(entry), *train, "--output_dir", str(tmp_path / f"machine{rank}")],
        stdout=(tmp_path / f"machine{rank}.log").open("w"),
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
        env=env,
        start_new_session=True,
    )


def _descendants(pid: int) -> list[int]:
    """Every process started under `pid` (torch's launcher puts its workers in sessions of their own,
    so killing the launcher's group alone would leave them training)."""
    import psutil  # a dependency of accelerate

    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _kill_machine(proc: subprocess.Popen) -> None:
    """A machine dies: its launcher and every worker, at once, without warning."""
    alive = [proc.pid] if proc.poll() is None else []  # never signal a reaped (maybe reused) pid
    for pid in [*_descendants(proc.pid), *alive]:
        with contextlib.suppress(ProcessLookupError):  # gone already
            os.kill(pid, signal.SIGKILL)
    proc.wait()


@pytest.mark.slow
@pytest.mark.multiproc
def test_two_machines_train_together_and_a_lost_machine_is_reported(tmp_path):
    # One launch pair: both machines train one model (checked at step 6); then machine 1 dies mid-run and
    # machine 0 must stop, saying why, not hang.
    port = free_port()
    machines = [_machine(rank, port, tmp_path) for rank in (0, 1)]
    try:
        log = tmp_path / "machine0.log"
        saved = [tmp_path / "machine0" / "rank0-step6.pt", tmp_path / "machine1" / "rank1-step6.pt"]
        deadline = time.monotonic() + 300
        while not all(p.is_file() for p in saved) or "{'loss'" not in log.read_text():
            assert time.monotonic() < deadline and machines[0].poll() is None, log.read_text()[-3000:]
            time.sleep(0.5)
        _kill_machine(machines[1])
        killed = time.monotonic()
        code = machines[0].wait(timeout=120)
        took = time.monotonic() - killed
    finally:
        for m in machines:
            _kill_machine(m)
    (rank0, seen0), (rank1, seen1) = (torch.load(p) for p in saved)
    assert seen0["world_size"] == seen1["world_size"] == 2
    assert seen0["tokens"] == seen1["tokens"] == 6 * 8 * 2 * 64  # both machines' batches in every step
    assert rank0.keys() == rank1.keys()
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)

    output = log.read_text()
    print(f"machine 0 exited {code} {took:.1f} s after machine 1 died:\n{output[-2500:]}")
    assert code != 0
    assert took < 60
    # torch's gloo names the cause in one line: "Connection closed by peer [...]. This is typically
    # caused by a remote worker crashing."
    assert any(words in output for words in ("closed by peer", "remote worker", "Connection reset"))
