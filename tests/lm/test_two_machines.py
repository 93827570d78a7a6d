"""Two `accelerate launch` commands as two machines on this host (one CPU process each, gloo), as the
README's multi-node command runs them: they train one model together, and the death of one is reported
by the other."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

from tests.helpers import FAST_TRAINING, REPO, TINY_MODEL

# pretrain() as the recipe runs it, plus a callback that saves what each rank holds at the end
ENTRY = f"""
import sys
import torch
from transformers import TrainerCallback
sys.path.insert(0, {str(REPO)!r})
from llmkit.errors import run_cli
from tests.helpers import run_pretrain


class SaveRankWeights(TrainerCallback):
    def on_train_end(self, args, state, control, model=None, **kwargs):
        weights = {{k: v.detach().clone() for k, v in model.state_dict().items()}}
        torch.save(weights, f"{{args.output_dir}}/weights-rank{{args.process_index}}.pt")


run_cli(lambda: run_pretrain(sys.argv[1:], callbacks=[SaveRankWeights()]))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _machine(rank: int, port: int, tmp_path, steps: int) -> subprocess.Popen:
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
    train = [*TINY_MODEL, *FAST_TRAINING, "--max_steps", str(steps), "--eval_steps", str(steps)]
    train += ["--save_steps", str(steps), "--logging_steps", "2", "--sample_max_new_tokens", "5"]
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
    port = _free_port()
    machines = [_machine(rank, port, tmp_path, steps=6) for rank in (0, 1)]
    try:
        codes = [m.wait(timeout=300) for m in machines]
    finally:
        for m in machines:
            _kill_machine(m)
    assert codes == [0, 0], (tmp_path / "machine0.log").read_text()[-3000:]
    metrics = json.loads((tmp_path / "machine0" / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["global_step"] == 6
    assert metrics["tokens_seen"] == 6 * 8 * 2 * 64  # both machines' batches in every step
    rank0 = torch.load(tmp_path / "machine0" / "weights-rank0.pt")
    rank1 = torch.load(tmp_path / "machine1" / "weights-rank1.pt")
    assert rank0.keys() == rank1.keys()
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)

    # Again, much longer; once both train, machine 1 dies. Machine 0 must stop, saying why, not hang.
    again = tmp_path / "again"
    again.mkdir()
    port = _free_port()
    machines = [_machine(rank, port, again, steps=100_000) for rank in (0, 1)]
    try:
        log = again / "machine0.log"
        deadline = time.monotonic() + 300
        while "{'loss'" not in log.read_text():
            assert time.monotonic() < deadline and machines[0].poll() is None, log.read_text()[-3000:]
            time.sleep(0.5)
        _kill_machine(machines[1])
        killed = time.monotonic()
        code = machines[0].wait(timeout=120)
        took = time.monotonic() - killed
    finally:
        for m in machines:
            _kill_machine(m)
    output = log.read_text()
    print(f"machine 0 exited {code} {took:.1f} s after machine 1 died:\n{output[-2500:]}")
    assert code != 0
    assert took < 60
    # torch's gloo names the cause in one line: "Connection closed by peer [...]. This is typically
    # caused by a remote worker crashing."
    assert any(words in output for words in ("closed by peer", "remote worker", "Connection reset"))
