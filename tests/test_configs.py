"""Every checked-in config loads and says what it claims; config files work with overriding flags."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from accelerate.commands.config.config_args import load_config_from_file

from llmkit.arguments import parse_args
from llmkit.data import DataArguments
from llmkit.lm import PRESETS, ModelArguments, PretrainingArguments
from tests.helpers import REPO

CONFIGS = sorted((REPO / "recipes" / "accelerate").glob("*.yaml"))


def test_the_four_launch_configs_are_what_their_names_say():
    configs = {p.stem: load_config_from_file(str(p)) for p in CONFIGS}
    assert set(configs) >= {"cpu-ddp", "multi-gpu", "fsdp", "deepspeed-zero2"}
    assert configs["multi-gpu"].distributed_type == "MULTI_GPU" and not configs["multi-gpu"].use_cpu
    assert configs["fsdp"].distributed_type == "FSDP" and configs["fsdp"].fsdp_config
    deepspeed = configs["deepspeed-zero2"]
    assert deepspeed.distributed_type == "DEEPSPEED" and deepspeed.deepspeed_config["zero_stage"] == 2


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_accelerate_config_loads(path: Path):
    config = load_config_from_file(str(path))
    raw = yaml.safe_load(path.read_text())
    assert config.num_processes == raw["num_processes"] >= 2
    if path.stem == "cpu-ddp":  # the only CPU layout accelerate 1.15 turns into real ranks
        assert config.distributed_type == "MULTI_GPU" and config.use_cpu


def test_recipe_accepts_a_yaml_config(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(
        "preset: gpt2-1b\nblock_size: 512\nmax_steps: 7\nlearning_rate: 0.0003\noutput_dir: x\n"
    )
    data, model, training = parse_args((DataArguments, ModelArguments, PretrainingArguments), [str(config)])
    assert (data.block_size, model.preset, training.max_steps, training.learning_rate) == (
        512,
        "gpt2-1b",
        7,
        3e-4,
    )
    assert training.use_cpu or training.bf16 or training.fp16


@pytest.mark.parametrize("preset", list(PRESETS))
def test_presets_have_the_advertised_size(preset):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    shape = ModelArguments(preset=preset).config_fields()
    with torch.device("meta"):  # shapes only: no memory for the big ones
        model = GPT2LMHeadModel(GPT2Config(vocab_size=50257, **shape))
    params = sum(p.numel() for p in model.parameters()) / 1e6
    expected = {
        "tiny": (15, 18),
        "gpt2": (120, 130),
        "gpt2-medium": (350, 360),
        "gpt2-large": (770, 780),
        "gpt2-xl": (1550, 1560),
        "gpt2-1b": (1060, 1070),
    }[preset]
    assert expected[0] < params < expected[1], params


def test_classic_recipe_takes_a_config_file_and_flags_win(tmp_path):
    from llmkit.recipes import train_mlp

    config = tmp_path / "run.yaml"
    config.write_text(
        "num_train_epochs: 7\nlearning_rate: 5e-3\nhidden: [32, 16]\nimpl: torch\noutput_dir: runs/x\n"
    )
    (args,) = parse_args(train_mlp.TYPES, ["--config", str(config), "--num_train_epochs", "3"])
    assert (args.num_train_epochs, args.learning_rate, args.hidden, args.impl) == (3, 5e-3, [32, 16], "torch")
    (alone,) = parse_args(train_mlp.TYPES, [str(config)])
    assert alone.num_train_epochs == 7
    (as_json,) = parse_args(train_mlp.TYPES, [f"--config={_as_json(config)}", "--seed", "9"])
    assert (as_json.num_train_epochs, as_json.seed) == (7, 9)


def test_pretrain_takes_a_config_file_and_flags_win(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("preset: tiny\nblock_size: 512\nmax_steps: 7\nlearning_rate: 0.0003\noutput_dir: x\n")
    data, model, training = parse_args(
        (DataArguments, ModelArguments, PretrainingArguments),
        ["--config", str(config), "--max_steps", "3", "--block_size", "128"],
    )
    assert (data.block_size, model.preset, training.max_steps, training.learning_rate) == (
        128,
        "tiny",
        3,
        3e-4,
    )


def test_a_home_path_in_a_config_file_is_the_home_folder(tmp_path, monkeypatch):
    """`output_dir: ~/runs/x` made a folder named "~" in the working directory (no shell expands a file's values)."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    config = tmp_path / "run.yaml"
    config.write_text("output_dir: ~/runs/x\ntrain_files: [~/corpus.txt, data/~x.txt]\n")
    data, _, training = parse_args((DataArguments, ModelArguments, PretrainingArguments), [str(config)])
    assert training.output_dir == str(tmp_path / "home/runs/x")
    assert data.train_files == [str(tmp_path / "home/corpus.txt"), "data/~x.txt"]
    # the shell leaves `~` after "=" alone: `--output_dir=~/runs/y` made a folder named "~" too
    _, _, training = parse_args(
        (DataArguments, ModelArguments, PretrainingArguments), ["--output_dir=~/runs/y"]
    )
    assert training.output_dir == str(tmp_path / "home/runs/y")
    from llmkit.rag.commands import _parser as rag_parser  # the tools' flags too
    from llmkit.tool_cli import parse_subcommand

    assert parse_subcommand(rag_parser(), ["ask", "q", "--store=~/s"]).store == str(tmp_path / "home/s")


def test_the_readme_config_paths_work_outside_a_clone(tmp_path, monkeypatch):
    # from a pip install there is no recipes/configs/ beside the user: the installed copy is read
    monkeypatch.chdir(tmp_path)
    types = (DataArguments, ModelArguments, PretrainingArguments)
    shipped = yaml.safe_load((REPO / "recipes/configs/pretrain-tiny.yaml").read_text())
    for path in ("recipes/configs/pretrain-tiny.yaml", "pretrain-tiny.yaml"):
        _, model, training = parse_args(types, ["--config", path])
        assert (model.preset, training.output_dir) == (shipped["preset"], shipped["output_dir"])
    (tmp_path / "pretrain-tiny.yaml").write_text("output_dir: mine\n")  # a user's own file comes first
    assert parse_args(types, ["--config", "pretrain-tiny.yaml"])[2].output_dir == "mine"


def test_config_file_mistakes_are_named(tmp_path):
    from llmkit.errors import UserError
    from llmkit.recipes import train_cnn

    bad = tmp_path / "bad.yaml"
    bad.write_text("num_train_epoch: 3\n")
    with pytest.raises(UserError, match="unknown keys num_train_epoch"):
        parse_args(train_cnn.TYPES, ["--config", str(bad)])
    with pytest.raises(UserError, match="does not exist"):
        parse_args(train_cnn.TYPES, ["--config", str(tmp_path / "missing.yaml")])
    (tmp_path / "somedir.yaml").mkdir()  # a folder was reported as "does not exist"
    with pytest.raises(UserError, match="somedir.yaml is a folder; pass the .yaml/.json file in it"):
        parse_args(train_cnn.TYPES, ["--config", str(tmp_path / "somedir.yaml")])
    with pytest.raises(UserError, match="needs a .yaml, .yml or .json file"):
        parse_args(train_cnn.TYPES, ["--config", "run.toml"])


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("num_train_epochs: [1, 2]", "num_train_epochs must be a single value, not list [1, 2]"),
        ("learning_rate: {a: 1}", "learning_rate must be a single value, not dict"),
        ("per_device_train_batch_size: 2.5", "per_device_train_batch_size must be a whole number, got 2.5"),
        ("per_device_train_batch_size: true", "per_device_train_batch_size must be a whole number, got True"),
        # a string was left to argparse, whose message named a --learning_rate flag the user never typed
        ("learning_rate: fast", "learning_rate must be a number, got 'fast'"),
        ("per_device_train_batch_size: big", "per_device_train_batch_size must be a whole number, got 'big'"),
    ],
)
def test_config_values_of_the_wrong_type_are_named(tmp_path, line, message):
    from llmkit.errors import UserError
    from llmkit.recipes import train_cnn

    bad = tmp_path / "bad.yaml"
    bad.write_text(line + "\n")
    for types in ((DataArguments, ModelArguments, PretrainingArguments), train_cnn.TYPES):
        with pytest.raises(UserError, match=re.escape(f"config file {bad}: {message}")):
            parse_args(types, ["--config", str(bad)])


def test_config_values_in_yaml_types_are_read_as_flags_would_be(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("max_steps: 3\nwarmup_steps: 1\ndisable_tqdm: yes\nreport_to: [none]\n")
    _, _, training = parse_args((DataArguments, ModelArguments, PretrainingArguments), [str(config)])
    assert (training.max_steps, training.warmup_steps, training.disable_tqdm) == (3, 1.0, True)


def test_classic_recipes_start_without_transformers():
    names = ["cnn", "dbn", "diffusion", "gan", "mlp", "rnn", "vae", "word2vec"]
    code = (
        f"import sys; import {', '.join(f'llmkit.recipes.train_{n}' for n in names)}; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'transformers'))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stderr[-2000:]
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "recipes/train_cnn.py", "--help"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == 0 and "--num_train_epochs" in proc.stdout and "transformers" not in proc.stderr


def _as_json(yaml_path: Path) -> Path:
    path = yaml_path.with_suffix(".json")
    path.write_text(json.dumps(yaml.safe_load(yaml_path.read_text())))
    return path


def test_stated_times_are_the_measured_ones():
    """Each timed config's `Takes:` line quotes benchmarks/results/config-times.json (one figure per claim)."""
    measured = json.loads((REPO / "benchmarks" / "results" / "config-times.json").read_text())
    timed = [name for name in measured if name != "machine"]
    assert timed
    for name in timed:
        takes = next(
            line
            for line in (REPO / "recipes" / "configs" / f"{name}.yaml").read_text().splitlines()
            if line.startswith("# Takes:")
        )
        minutes, seconds = re.match(r"# Takes: (?:(\d+) min )?(\d+) s for the whole command", takes).groups()
        assert int(minutes or 0) * 60 + int(seconds) == round(measured[name]["seconds"]), name


@pytest.mark.parametrize("text", ["", "# learning_rate: 3e-5\n", "---\n"])
def test_an_empty_config_file_is_refused(tmp_path, text):
    """An empty YAML file (or one of comments only) was read as no values: every default trained, unannounced."""
    from llmkit.errors import UserError
    from llmkit.recipes import train_cnn

    empty = tmp_path / "run.yaml"
    empty.write_text(text)
    for types in ((DataArguments, ModelArguments, PretrainingArguments), train_cnn.TYPES):
        with pytest.raises(UserError, match=re.escape(f"config file {empty} is empty")):
            parse_args(types, ["--config", str(empty), "--seed", "3"])
        with pytest.raises(UserError, match="is empty"):
            parse_args(types, [str(empty)])


@pytest.mark.parametrize(
    ("name", "text"),
    [("run.yaml", "max_steps: 7\nseed: 1\nmax_steps: 3\n"), ("run.json", '{"max_steps": 7, "max_steps": 3}')],
)
def test_a_key_given_twice_in_a_config_file_is_refused(tmp_path, name, text):
    """YAML and JSON parsers keep the last of two equal keys: the run silently took max_steps 3, not 7."""
    from llmkit.errors import UserError

    config = tmp_path / name
    config.write_text(text)
    with pytest.raises(UserError, match=re.escape(f"config file {config} gives max_steps twice; keep one")):
        parse_args((DataArguments, ModelArguments, PretrainingArguments), [str(config)])
    # a YAML merge (`<<: *defaults`) overrides the keys it brings on purpose: still read
    from llmkit.arguments import _read_config

    merged = tmp_path / "merged.yaml"
    merged.write_text("base: &base {seed: 1, max_steps: 7}\nrun:\n  <<: *base\n  max_steps: 3\n")
    assert _read_config(merged)["run"] == {"seed": 1, "max_steps": 3}


def test_a_yes_no_value_that_is_neither_is_named_as_such(tmp_path):
    """`augment: maybe` was answered "must be a value its flag takes", which named no value that works."""
    from llmkit.errors import UserError
    from llmkit.recipes import train_cnn

    bad = tmp_path / "bad.yaml"
    for types, line in (
        ((DataArguments, ModelArguments, PretrainingArguments), "disable_tqdm: maybe\n"),
        (train_cnn.TYPES, "augment: maybe\n"),
    ):
        bad.write_text(line)
        with pytest.raises(UserError, match=f"{line.split(':')[0]} must be true or false, got 'maybe'"):
            parse_args(types, ["--config", str(bad)])
