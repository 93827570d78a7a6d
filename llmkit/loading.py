"""Load any `from_pretrained` class (models, configs, tokenizers) with messages that say what went wrong.

Only the failures a user can fix are turned into a `UserError`: a path that does not exist, a folder that is
not a model or has no tokenizer, a Hub name that cannot be fetched offline or does not exist, a weights file
cut short. Everything else (out of memory, a disk error, a bug) propagates unchanged with its own traceback.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from llmkit.errors import UserError

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "vocab.json",
    "spiece.model",
    "tokenizer.model",
)
MODEL_FILES = ("config.json", "adapter_config.json")
# The JSON files from_pretrained reads: one cut short was a JSONDecodeError traceback, or silently skipped.
JSON_FILES = (
    "config.json",
    "generation_config.json",
    "adapter_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "preprocessor_config.json",
)
# What transformers / huggingface_hub say when a Hub name cannot be resolved (they raise OSError for all of them).
_UNREACHABLE = ("couldn't connect", "offline mode", "cannot find the requested files", "connection error")
_NOT_ON_HUB = ("is not a local folder and is not a valid model identifier", "repository not found", "404")
_BAD_REPO_ID = ("repo id must", "repo_id must")


def load_pretrained(cls, name_or_path: str | os.PathLike, *, hint: str = "", **kwargs):
    """`cls.from_pretrained(name_or_path, **kwargs)`; user-fixable failures become one clear UserError.

    `hint` is appended to every message (e.g. the flag to change, or a local model to use instead).
    """
    name = str(name_or_path)
    tokenizer = "Tokenizer" in cls.__name__ or "Processor" in cls.__name__
    what = "tokenizer" if tokenizer else "model"
    hint = f" {hint}" if hint else ""
    local = Path(name).expanduser()
    if local.is_dir():
        _check_folder(local, tokenizer, hint)
        name = str(local)
    elif local.exists():
        raise UserError(
            f"{name} is a file, not a {what} folder; pass a folder (a training run's output_dir) or a Hub name.{hint}"
        )
    else:
        check_exists_if_path(name, hint)
    try:
        return cls.from_pretrained(name, **kwargs)
    except OSError as err:
        message = str(err).lower()
        # a local folder: only missing weights are the user's to fix; disk errors propagate
        if local.is_dir():
            if "no file named" in message or "does not appear to have" in message:
                raise UserError(
                    f"{name} has a config.json but no weights ({err}); pass a complete model folder.{hint}"
                ) from None
            raise
        problem = _hub_failure(message, name, what, hint)
        if problem is None:
            raise
        raise problem from None
    except ValueError as err:
        message = str(err)
        if "sentencepiece" in message.lower() or "tiktoken" in message.lower():
            raise UserError(
                f"the tokenizer of {name!r} needs the sentencepiece package: pip install sentencepiece.{hint}"
            ) from None
        if "model_type" in message and "Unrecognized" in message:
            raise UserError(
                f"{name}/config.json names no known model_type: it is not a transformers model folder.{hint}"
            ) from None
        if "Unrecognized configuration class" in message:
            # A real model of the wrong kind (e.g. a ViT for question answering): say so instead of the class list.
            kind = getattr(_config_or_none(name), "model_type", None) or "this"
            raise UserError(
                f"{name} is a {kind!r} model, which {cls.__name__} cannot load (no such head for it); "
                f"pass a model of a kind it supports.{hint}"
            ) from None
        raise
    except Exception:  # safetensors' own error for a cut file, or torch's for a cut .bin
        from llmkit.record import weights_problem

        damaged = weights_problem(local) if local.is_dir() else None
        if damaged is None:
            raise
        raise UserError(
            f"{name}: {damaged} (a save or copy cut short); copy the folder again, or load one of its "
            f"complete checkpoint-N folders.{hint}"
        ) from None


def _hub_failure(message: str, name: str, what: str, hint: str) -> UserError | None:
    """The user-fixable reason `name` (not a local folder) could not be fetched, from the OSError's text."""
    parent = name.split("/")[0]
    # "run1/checkpoint-9" with a local run1: a path, though it has the shape of a Hub id
    if (
        "/" in name
        and Path(parent).expanduser().is_dir()
        and any(s in message for s in _UNREACHABLE + _NOT_ON_HUB + _BAD_REPO_ID)
    ):
        return UserError(
            f"no folder at {name}: {parent} is a folder here, but it holds no {name.split('/', 1)[1]} (and "
            f"{name!r} is no {what} the Hub could give); pass an existing folder.{hint}"
        )
    if any(s in message for s in _UNREACHABLE):
        return UserError(
            f"cannot fetch {what} {name!r}: the Hugging Face Hub is unreachable "
            f"({'HF_HUB_OFFLINE=1 is set' if _offline() else 'no network'}) and it is not in the local cache. "
            f"Use a local folder, or connect and unset HF_HUB_OFFLINE.{hint}"
        )
    if any(s in message for s in _NOT_ON_HUB + _BAD_REPO_ID):
        return UserError(f"{name!r} is neither a local folder nor a {what} on the Hugging Face Hub.{hint}")
    if "gated repo" in message or "401" in message:
        return UserError(
            f"{name!r} is gated or private: log in with `hf auth login` (or set HF_TOKEN).{hint}"
        )
    return None


def _check_folder(folder: Path, tokenizer: bool, hint: str) -> None:
    """Refuse a local folder that cannot hold what is asked for, before transformers guesses at it."""
    if tokenizer:
        if not any((folder / f).is_file() for f in TOKENIZER_FILES):
            raise UserError(
                f"no tokenizer files ({', '.join(TOKENIZER_FILES[:3])}, ...) in {folder}.{hint or ' Pass a folder that has them.'}"
            )
    elif not any((folder / f).is_file() for f in MODEL_FILES):
        raise UserError(
            f"no config.json in {folder}: it is not a model folder; pass a training run's output_dir "
            f"or a Hub name.{hint}"
        )
    for path in (folder / name for name in JSON_FILES):
        if not path.is_file():
            continue
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as err:
            raise UserError(
                f"{path} is not valid JSON ({err}; a save or copy cut short?); copy the folder again, "
                f"or load one of its complete checkpoint-N folders.{hint}"
            ) from None


def check_exists_if_path(name: str, hint: str = "") -> None:
    """UserError when `name` is meant as a local path (not a Hub id) and nothing is there: the Hub client's own
    message for it ("Repo id must use alphanumeric chars ...") names no missing folder."""
    if looks_like_path(name) and not Path(name).expanduser().exists():
        raise UserError(
            f"no folder at {name} (it does not exist); pass an existing folder or a Hub name.{hint}"
        )


def _config_or_none(name: str):
    """The model's config, or None when even that does not load (only to name the model's kind)."""
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(name)
    except (OSError, ValueError):
        return None


def looks_like_path(name: str) -> bool:
    """A Hub id is `name` or `owner/name`; anything else that does not exist locally was meant as a path."""
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name or name.startswith("runs/")


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
