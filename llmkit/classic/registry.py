"""Rebuild any saved classic model from its folder (config.json names the architecture and its arguments)."""

from __future__ import annotations

import json
from pathlib import Path

from torch import nn

from llmkit.classic.diffusion import UNet
from llmkit.classic.generative import VAE, Generator
from llmkit.classic.models import MLP, LeNet, SequenceModel, SmallResNet
from llmkit.errors import UserError

# architecture -> (class, weights file, config key holding the constructor arguments)
BUILDERS: dict[str, tuple[type[nn.Module], str, str]] = {
    "mlp": (MLP, "model", "kwargs"),
    "lenet": (LeNet, "model", "kwargs"),
    "resnet": (SmallResNet, "model", "kwargs"),
    "dcgan": (Generator, "generator", "generator"),
    "vae": (VAE, "vae", "kwargs"),
    "ddpm-unet": (UNet, "unet", "kwargs"),
    "char-rnn": (SequenceModel, "model", "kwargs"),
    "char-lstm": (SequenceModel, "model", "kwargs"),
    "char-gru": (SequenceModel, "model", "kwargs"),
}


def load_weights(folder: str | Path, architecture: str, name: str = "model") -> tuple[dict, dict]:
    """(state dict, config) of a saved model; a checkpoint of another architecture is a clear error."""
    from safetensors.torch import load_file

    config, weights = read_config(folder), Path(folder) / f"{name}.safetensors"
    if config.get("architecture") != architecture:
        raise UserError(
            f"{folder} holds a {config.get('architecture')!r} checkpoint, not {architecture!r}; pass a matching one."
        )
    if not weights.is_file():
        raise UserError(f"{folder} holds no {name}.safetensors; pass the output_dir of a classic recipe.")
    return load_file(weights), config


def read_config(folder: str | Path) -> dict:
    """config.json of a classic recipe's output folder (its architecture and constructor arguments)."""
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise UserError(f"{folder} is not a classic recipe's output (no config.json).")
    try:
        config = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:  # was a JSONDecodeError traceback
        config = err
    if not isinstance(config, dict):  # a save cut short, or not a recipe's config at all
        raise UserError(
            f"{path} is not a classic recipe's config ({config}; a save or copy cut short?); copy the folder "
            "again or run the recipe again."
        )
    return config


def load_classic(folder: str | Path, expected: tuple[str, ...] | None = None) -> tuple[nn.Module, dict]:
    """(model in eval mode, config) of a classic recipe's output folder."""
    config = read_config(folder)
    architecture = config.get("architecture")
    if architecture is None:  # was "holds a None model"
        kind = (
            f"a transformers {config['model_type']!r} model" if "model_type" in config else "no classic model"
        )
        raise UserError(
            f"{folder} holds {kind} (its config.json names no architecture); pass the output_dir of a classic "
            f"recipe ({', '.join(expected or BUILDERS)})."
        )
    if architecture not in BUILDERS or (expected and architecture not in expected):
        raise UserError(
            f"{folder} holds a {architecture!r} model; expected one of {', '.join(expected or BUILDERS)}."
        )
    cls, weights, key = BUILDERS[architecture]
    state, config = load_weights(folder, architecture, weights)
    model = cls(**config[key])
    model.load_state_dict(state)
    return model.eval(), config
