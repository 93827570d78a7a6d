"""The run record: atomic writes, one checkpoint-validity rule, metrics.json's common keys, the summary."""

import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import save_file

from llmkit import record
from tests.helpers import REPO

BASE = {"world_size": 1, "global_step": 3, "train_loss": 2.5, "final_train_loss": 2.0, "headline": {}}


def test_write_atomic_leaves_no_temporary_file(tmp_path):
    record.write_atomic(tmp_path / "a.json", "{}")
    record.write_atomic(tmp_path / "a.json", b"[1]")
    assert (tmp_path / "a.json").read_text() == "[1]"
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_write_atomic_takes_a_writer_and_a_killed_write_is_recognised(tmp_path):
    from llmkit.rag.layout import half_made, ours, start_over

    record.write_atomic(
        tmp_path / "v.bin", lambda tmp: tmp.write_bytes(b"xyz")
    )  # as faiss.write_index is called
    assert (tmp_path / "v.bin").read_bytes() == b"xyz" and os.listdir(tmp_path) == ["v.bin"]

    def killed(tmp):  # the writer dies half-way: the target is untouched, the temporary file stays
        tmp.write_bytes(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        record.write_atomic(tmp_path / "v.bin", killed)
    assert (tmp_path / "v.bin").read_bytes() == b"xyz"
    left = next(p.name for p in tmp_path.iterdir() if p.name != "v.bin")
    assert record.TEMPORARY.fullmatch(left)
    # in a store folder such a file is llmkit's: a store killed while writing its first index is started over
    store = tmp_path / "store"
    store.mkdir()
    (store / f".index.faiss.tmp-{os.getpid()}").write_bytes(b"half")
    (store / ".llmkit-creating").touch()
    assert ours(f".manifest.json.tmp-{os.getpid()}") and not ours(".notes.txt.tmp-1")
    assert half_made(store)
    start_over(store)
    assert list(store.iterdir()) == []


def test_metrics_carry_the_common_keys_and_no_token(tmp_path):
    token = "hf_" + "a" * 34
    written = record.write_metrics(tmp_path, "train-x", {**BASE, "note": f"used {token}"})
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk == written and set(record.COMMON_KEYS) <= set(on_disk)
    assert on_disk["recipe"] == "train-x" and token not in (tmp_path / "metrics.json").read_text()
    with pytest.raises(ValueError, match="final_train_loss"):
        record.write_metrics(tmp_path, "train-x", {k: v for k, v in BASE.items() if k != "final_train_loss"})


def test_peak_memory_is_the_whole_process_high_water_mark(tmp_path):
    code = (
        "from llmkit import record; before = record.peak_memory()['peak_memory_mb']; "
        'block = b"x" * (300 * 2**20); del block; '  # written, then freed: the peak keeps it
        "print(before, record.peak_memory()['peak_memory_mb'])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    before, after = map(float, out.stdout.split())
    # this program's own peak, not pytest's (getrusage would report the forking parent's size)
    assert 5 < before < 200 and after - before >= 250, (before, after)


def test_headline_prefers_the_test_split():
    metrics = {"eval_accuracy": 0.5, "test_accuracy": 0.7, "eval_f1": 0.4, "eval_loss": 1.0}
    assert record.headline(metrics, ["accuracy", "f1", "bleu"]) == {"test_accuracy": 0.7, "eval_f1": 0.4}


def test_summary_names_the_folder_the_figures_and_how_to_use_it(tmp_path, capsys):
    metrics = record.write_metrics(tmp_path, "train-x", {**BASE, "headline": {"eval_accuracy": 0.91234}})
    text = record.print_summary(metrics, title="train-x finished", use=["llmkit serve it"])
    assert text in capsys.readouterr().out
    assert str(tmp_path.resolve()) in text and "eval_accuracy 0.9123" in text and "llmkit serve it" in text
    assert "loss 2 at the end (2.5 averaged over this run)" in text


def test_one_checkpoint_rule_for_every_kind_of_checkpoint(tmp_path):
    ckpt = tmp_path / "checkpoint-2"
    ckpt.mkdir()
    assert "no state.json" in record.checkpoint_problem(ckpt, "state.json")
    (ckpt / "state.json").write_text('{"step": 2')
    assert "truncated" in record.checkpoint_problem(ckpt, "state.json")
    (ckpt / "state.json").write_text('{"step": 2}')  # parses, but is not a state a save writes
    assert "holds no step count" in record.checkpoint_problem(ckpt, "state.json")
    (ckpt / "state.json").write_text('{"global_step": 2}')
    assert record.checkpoint_problem(ckpt, "state.json") == "no model weights"
    save_file({"w": torch.ones(64)}, ckpt / "model.safetensors")
    torch.save({"x": 1}, ckpt / "optimizer.pt")
    assert record.checkpoint_problem(ckpt, "state.json") is None
    data = (ckpt / "model.safetensors").read_bytes()
    (ckpt / "model.safetensors").write_bytes(data[:-8])
    assert record.checkpoint_problem(ckpt, "state.json") == "model.safetensors is truncated"
    (ckpt / "model.safetensors").write_bytes(data)
    (ckpt / "optimizer.pt").write_bytes(b"")
    assert record.checkpoint_problem(ckpt, "state.json") == "optimizer.pt is empty or truncated"


def test_the_command_clock_counts_the_start_up(tmp_path):
    # run as a command, the clock starts at the process start: a second slept before parsing counts
    code = (
        "import time; time.sleep(1.0)\n"
        "from llmkit.errors import run_cli\n"
        "from llmkit import record\n"
        "from llmkit.arguments import parse_args\n"
        "def main():\n"
        "    parse_args((), [])\n"
        "    print(record.wall_seconds())\n"
        "run_cli(main)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ)
    assert out.returncode == 0, out.stderr
    assert float(out.stdout.strip()) >= 1.0
    # called from Python, each run is timed from its own parsing
    from llmkit.arguments import parse_args

    parse_args((), [])
    assert record.wall_seconds() < 1.0


def test_readme_documents_every_common_key():
    readme = (REPO / "README.md").read_text()
    assert all(f"| `{key}` |" in readme for key in record.COMMON_KEYS)
