"""Every checked-in config loads and says what it claims."""

from pathlib import Path

import pytest
import yaml
from accelerate.commands.config.config_args import load_config_from_file

from llmkit.arguments import parse_args
from llmkit.data import DataArguments
from llmkit.lm import PRESETS, ModelArguments, PretrainingArguments
from tests.conftest import REPO

CONFIGS = sorted((REPO / "recipes" / "accelerate").glob("*.yaml"))


def test_the_four_launch_configs_exist():
    assert {p.stem for p in CONFIGS} >= {"cpu-ddp", "multi-gpu", "fsdp", "deepspeed-zero2"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_accelerate_config_loads(path: Path):
    config = load_config_from_file(str(path))
    raw = yaml.safe_load(path.read_text())
    assert config.num_processes == raw["num_processes"] >= 2
    if path.stem == "cpu-ddp":  # the only CPU layout accelerate 1.15 turns into real ranks
        assert config.distributed_type == "MULTI_GPU" and config.use_cpu


def test_recipe_accepts_a_yaml_config(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("preset: gpt2-1b\nblock_size: 512\nmax_steps: 7\nlearning_rate: 0.0003\noutput_dir: x\n")
    data, model, training = parse_args((DataArguments, ModelArguments, PretrainingArguments), [str(config)])
    assert (data.block_size, model.preset, training.max_steps, training.learning_rate) == (512, "gpt2-1b", 7, 3e-4)
    assert training.use_cpu or training.bf16 or training.fp16


@pytest.mark.parametrize("preset", list(PRESETS))
def test_presets_have_the_advertised_size(preset):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    shape = ModelArguments(preset=preset).config_fields()
    with torch.device("meta"):  # shapes only: no memory for the big ones
        model = GPT2LMHeadModel(GPT2Config(vocab_size=50257, **shape))
    params = sum(p.numel() for p in model.parameters()) / 1e6
    expected = {"tiny": (15, 18), "gpt2": (120, 130), "gpt2-medium": (350, 360), "gpt2-large": (770, 780),
                "gpt2-xl": (1550, 1560), "gpt2-1b": (1060, 1070)}[preset]
    assert expected[0] < params < expected[1], params
