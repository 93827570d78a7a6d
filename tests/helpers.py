"""Plain helpers shared by tests: the repository root, a tiny GPT-2 and fast training flags, an in-process
pretraining run, and the system's Chromium for browser tests (Playwright drives it, never a downloaded browser)."""

import os
import re
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# A GPT-2 small enough to train in seconds on one CPU core.
TINY_MODEL = [
    "--n_layer",
    "2",
    "--n_head",
    "2",
    "--n_embd",
    "64",
    "--n_positions",
    "64",
    "--vocab_size",
    "512",
]
FAST_TRAINING = [
    "--per_device_train_batch_size",
    "8",
    "--logging_steps",
    "5",
    "--disable_tqdm",
    "true",
    "--learning_rate",
    "3e-3",
]


def run_pretrain(argv: list[str], callbacks=None) -> dict:
    """Parse recipe flags exactly as the recipe does and train in this process."""
    from llmkit.arguments import parse_args
    from llmkit.data import DataArguments
    from llmkit.lm import ModelArguments, PretrainingArguments, pretrain

    return pretrain(
        *parse_args((DataArguments, ModelArguments, PretrainingArguments), argv), callbacks=callbacks
    )


def llmkit_in_process(argv: list[str], capfd) -> tuple[int, str]:
    """`llmkit ARGV` run in this process, through the console script's main() as a command runs it: its exit
    status and everything written to file descriptor 2 (what a library writes there directly included).
    For commands that fail early: a fresh interpreter would spend seconds importing transformers for nothing."""
    from llmkit.cli import main

    capfd.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    return exit_.value.code, capfd.readouterr().err


def free_port() -> int:
    """A TCP port free on this machine now: for a launch whose rendezvous must not meet another's (29500)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_together(*commands: list[str], timeout: int = 300, **kwargs) -> list[subprocess.CompletedProcess]:
    """subprocess.run(command, capture_output=True, text=True, **kwargs) of each command, all started at once:
    each spends seconds importing torch and transformers, and none of them waits for another to finish."""
    procs = [
        subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)
        for c in commands
    ]
    outputs = [p.communicate(timeout=timeout) for p in procs]
    return [subprocess.CompletedProcess(p.args, p.returncode, *out) for p, out in zip(procs, outputs)]


# Runs each (recipe file, argv) of a JSON file in turn, in every rank of one launch: each file's main(argv),
# as `python recipes/X.py argv` would call it.
_RECIPES_ENTRY = """
import json, runpy, sys
from llmkit.errors import run_cli

def main():
    for path, argv in json.loads(open(sys.argv[1]).read()):
        runpy.run_path(path)["main"](argv)

run_cli(main)
"""


def launch_recipes(runs: list[tuple[str, list[str]]], cwd: Path, timeout: int = 600) -> None:
    """Run recipes/<module>.py files one after another under one `accelerate launch` of two CPU ranks (the DDP
    config checked in): one start-up of the launcher and its ranks for all of them."""
    import json
    import sys

    entry, plan = cwd / "launch_recipes.py", cwd / "launch_recipes.json"
    entry.write_text(_RECIPES_ENTRY)
    plan.write_text(json.dumps([(str(REPO / "recipes" / f"{module}.py"), argv) for module, argv in runs]))
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file"]
    cmd += [str(REPO / "recipes/accelerate/cpu-ddp.yaml"), str(entry), str(plan)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=timeout, env=env)
    assert done.returncode == 0, done.stderr[-3000:]


# What a new user must never see: raw library warnings, tracebacks, weight-loading tables (and colour codes).
NOISE = [
    "attention_mask",  # transformers' padding warning: packed blocks have no padding
    "missing keys",  # the tied lm_head on every resume
    "LOAD REPORT",
    "Warning:",  # any raw warnings.warn line (FutureWarning, UserWarning, ...)
    "warnings.warn",
    "Token indices sequence length",
    "Traceback",
]


def assert_quiet(output: str) -> None:
    """Fail when a command's output holds any NOISE or an ANSI colour code."""
    found = [n for n in NOISE if n in output] + re.findall(r"\x1b\[[0-9;]*m", output)
    assert not found, f"{found} in:\n{output[-4000:]}"


def user_env() -> dict[str, str]:
    """The environment a user's command runs in: transformers at its default verbosity (the test session
    sets it to error), one thread, offline."""
    env = {k: v for k, v in os.environ.items() if k != "TRANSFORMERS_VERBOSITY"}
    env.update(OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    return env


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_chromium() -> str:
    """The Chromium executable; skips the test without one (fails under CI, which installs it)."""
    if not CHROMIUM:
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing; .ci/run installs Debian's chromium package.")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    return CHROMIUM


def save_tiny_image_model(task: str, out: Path, labels=("zero", "one", "four")) -> Path:
    """An untrained image classifier / detector / segmenter built in code, its processor and examples/ (64 px
    digit canvases), saved as a recipe's output folder would be: for the image page and the Space templates."""
    import numpy as np
    from PIL import Image
    from transformers import (
        SegformerConfig,
        SegformerForSemanticSegmentation,
        SegformerImageProcessorPil,
        YolosConfig,
        YolosForObjectDetection,
        YolosImageProcessorPil,
        set_seed,
    )

    from llmkit.vision.classify import tiny_config_and_processor
    from llmkit.vision.synthetic import render_canvas

    set_seed(0)
    names = {"id2label": dict(enumerate(labels)), "label2id": {n: i for i, n in enumerate(labels)}}
    if task == "image-classification":
        from transformers import AutoModelForImageClassification

        config, processor = tiny_config_and_processor(list(labels))
        model = AutoModelForImageClassification.from_config(config)
    elif task == "object-detection":
        model = YolosForObjectDetection(
            YolosConfig(
                hidden_size=32,
                num_hidden_layers=2,
                num_attention_heads=2,
                intermediate_size=64,
                image_size=[64, 64],
                patch_size=8,
                num_detection_tokens=5,
                **names,
            )
        )
        processor = YolosImageProcessorPil(size={"height": 64, "width": 64})
    else:
        model = SegformerForSemanticSegmentation(
            SegformerConfig(
                num_encoder_blocks=2,
                depths=[1, 1],
                sr_ratios=[2, 1],
                hidden_sizes=[8, 16],
                num_attention_heads=[1, 1],
                decoder_hidden_size=16,
                patch_sizes=[7, 3],
                strides=[4, 2],
                mlp_ratios=[2, 2],
                **names,
            )
        )
        processor = SegformerImageProcessorPil(size={"height": 64, "width": 64})
    model.save_pretrained(out)
    processor.save_pretrained(out)
    rng = np.random.default_rng(0)
    (out / "examples").mkdir()
    for i, digits in enumerate([(0,), (1, 4)]):
        Image.fromarray(render_canvas(rng, digits)[0]).save(out / "examples" / f"example-{i}.png")
    return out
