"""Two runs into one output_dir: while one trains, a second is refused before it touches anything; the lock
goes when the first run returns, fails or is killed."""

import subprocess
import sys

import pytest

from llmkit.errors import UserError
from llmkit.recipes import pretrain_gpt2, train_mlp

# Another process in the middle of a run: it has taken the folder and keeps it until killed.
HOLDER = (
    "import sys, time\n"
    "from llmkit.launch import prepare_output_dir\n"
    "prepare_output_dir(sys.argv[1])\n"
    "print('held', flush=True)\n"
    "time.sleep(300)\n"
)
MLP = ["--impl", "numpy", "--num_train_epochs", "1", "--hidden", "16"]


def hold(folder):
    """Start a process that holds folder as its output_dir; returns once it does."""
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_second_run_is_refused_while_the_first_trains_and_runs_once_it_is_killed(tmp_path):
    out = tmp_path / "run"
    holder = hold(out)
    try:
        with pytest.raises(
            UserError, match="another run is training into output_dir .*pass another --output_dir"
        ):
            train_mlp.main(["--output_dir", str(out), *MLP])
        with pytest.raises(UserError, match="another run is training into output_dir"):
            pretrain_gpt2.main(["--output_dir", str(out), "--max_steps", "1"])
        assert list(out.iterdir()) == []  # the refused runs wrote nothing
    finally:
        holder.kill()  # like kill -9: the lock dies with its process, no stale file is left to clear
        holder.wait()
    assert "eval_accuracy" in train_mlp.main(["--output_dir", str(out), *MLP])
    # Run again from this process, then from another: the finished run let the folder go.
    assert "eval_accuracy" in train_mlp.main(["--output_dir", str(out), *MLP])
    hold(out).kill()


def test_a_failed_run_lets_its_folder_go(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(UserError, match="--hidden"):
        train_mlp.main(["--output_dir", str(out), *MLP[:-1], "0"])
    holder = hold(out)
    holder.kill()
    holder.wait()
