"""benchmarks/gpu_check.sh: its argument handling here, and how it reads the recipe's wall clock."""

import importlib.util
import os
import subprocess
import sys

import pytest
import torch

from tests.helpers import REPO

SCRIPT = REPO / "benchmarks" / "gpu_check.sh"


def _check(*args, tmp_path):
    env = {**os.environ, "PYTHON": sys.executable}
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path
    )


def _module():
    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_without_cuda_it_refuses_and_names_the_dry_run(tmp_path):
    proc = _check(str(tmp_path / "out"), tmp_path=tmp_path)
    assert proc.returncode == 2
    assert "no CUDA device" in proc.stderr and "--device cpu --tiny" in proc.stderr
    assert not (tmp_path / "out").exists()  # refused before any work


def test_cpu_needs_tiny_and_help_lists_the_steps(tmp_path):
    proc = _check(str(tmp_path / "out"), "--device", "cpu", tmp_path=tmp_path)
    assert proc.returncode == 2 and "--tiny" in proc.stderr
    shown = _check("--help", tmp_path=tmp_path)
    assert shown.returncode == 0
    for step in ("bench_pretrain", "losses", "recipe", "presets"):
        assert step in shown.stdout


def test_wall_clock_window_is_the_one_metrics_json_timed():
    gpu_check = _module()
    # logs at steps 1, 20, ..., 160, one second apart from step 20 on; the steady window is steps 21-160
    logged = [0.0, 5.0, *(5.0 + k for k in range(1, 8))]
    metrics = {
        "steady_steps": 140,
        "global_step": 160,
        "tokens_seen": 160 * 1000,
        "steady_tokens_per_second": 20000.0,
    }
    figures = gpu_check.compare_to_wall_clock(metrics, logged, steps=160, every=20)
    assert figures["wall_clock_tokens_per_second"] == 20000.0
    assert figures["metrics_vs_wall_clock"] == 1.0 and figures["agrees_within_5_percent"]
    slower = gpu_check.compare_to_wall_clock(metrics, [*logged[:-1], logged[-1] + 1], steps=160, every=20)
    assert slower["metrics_vs_wall_clock"] == 1.143 and not slower["agrees_within_5_percent"]
    missing = gpu_check.compare_to_wall_clock(metrics, logged[:-1], steps=160, every=20)
    assert "error" in missing


def test_a_step_stopped_early_keeps_the_rows_it_printed(tmp_path):
    log = tmp_path / "bench.log"
    header = '{\n  "machine": {\n    "device": "x"\n  }\n}\n'
    row = '{\n  "shape": "gpt2",\n  "micro_batch": 12,\n  "variants": {}\n}\n'
    log.write_text(
        "$ python benchmarks/bench_pretrain.py\n"
        + header
        + "  gpt2 12x8 round 1\n"
        + row
        + "  gpt2 32x3 round"
    )
    assert _module().rows_from_log(log) == [{"shape": "gpt2", "micro_batch": 12, "variants": {}}]
