"""What goes into a Space folder: llmkit as the wheel lays it out, the parts of each artifact the app reads, and
a store's database as one file."""

from __future__ import annotations

import importlib
import json
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import llmkit
from llmkit.spaces.templates import TEMPLATES, TEMPLATES_DIR

# llmkit's subpackages that a checkout keeps outside llmkit/ (pyproject.toml's package-dir): an installed wheel
# has them inside its llmkit/ folder, an editable install (`pip install -e .`, what `make` sets up) does not.
MAPPED_PACKAGES = ("llmkit.recipes", "llmkit.apps", "llmkit.spaces.templates")


def package_folders() -> dict[Path, Path]:
    """Where each folder of llmkit goes in a Space (relative path -> source folder), as laid out in the wheel.

    Copying llmkit/ alone from a checkout left out llmkit.spaces.templates, which every app.py imports: the
    Space passed `space check` (the editable install supplied it) and failed on the Hub.
    """
    root = Path(llmkit.__file__).resolve().parent
    folders = {Path("llmkit"): root}
    for name in MAPPED_PACKAGES:
        src = Path(importlib.import_module(name).__file__).resolve().parent
        if not src.is_relative_to(root):
            folders[Path(*name.split("."))] = src
    return folders


def copy_database(src: Path, dst: Path) -> None:
    """Copy a SQLite database, rows still in its write-ahead log included, as one self-contained file.

    SQLite's backup API reads one consistent snapshot, even while `llmkit rag index` writes to the
    store; the copy is switched from WAL to a plain journal, so it needs no -wal/-shm beside it.
    """
    source = sqlite3.connect(src, timeout=30)
    target = sqlite3.connect(dst)
    try:
        source.backup(target)
        target.execute("PRAGMA journal_mode=DELETE")
    finally:
        target.close()
        source.close()


def package_ignore(folder: str, names: list[str]) -> set[str]:
    """What the copy of llmkit inside a Space leaves out: caches and the templates (the Space is already one)."""
    skip = {n for n in names if n == "__pycache__" or n.endswith(".pyc")}
    if Path(folder).resolve() == TEMPLATES_DIR:
        skip |= {n for n in names if n in TEMPLATES}
    return skip


def model_parts(template: str, model: Path) -> list[str]:
    """The subfolders of --model that the template's app serves and that hold a model (a config.json)."""
    return [p for p in TEMPLATES[template].parts if (model / p / "config.json").is_file()]


def artifacts(template: str, given: dict[str, str | None]) -> dict[Path, Path]:
    """What the Space gets of each artifact (its path in the Space -> the source folder).

    The classic app reads five recipes' folders from --model, which is usually all of runs/: copying the rest
    (a GPT-2, fine-tuned models, stores) put hundreds of MB the app never opens into the Space.
    """
    out = {}
    for kind, path in given.items():
        if path and kind == "model" and TEMPLATES[template].parts:
            out |= {Path(kind) / p: Path(path) / p for p in model_parts(template, Path(path))}
        elif path:
            out[Path(kind)] = Path(path)
    return out


def files_to_copy(src: Path, ignore: Callable[[str, list[str]], set[str]]) -> list[Path]:
    """The files `shutil.copytree(src, ..., ignore=ignore)` copies."""
    files = []
    for root, dirs, names in os.walk(src, followlinks=True):
        skipped = ignore(root, dirs + names)
        dirs[:] = [d for d in dirs if d not in skipped]
        files += [Path(root) / n for n in names if n not in skipped]
    return files


def local_embedding_model(store: Path) -> str | None:
    """The embedding model the store's manifest names when it is a local folder, or None for a Hub name.

    The Space opens its store with that model; a folder of this machine does not exist on the Hub, so the Space
    would fail there at start-up, while `space check` here (where the folder exists) passes.
    """
    try:
        name = json.loads((store / "manifest.json").read_text()).get("embedding_model")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(name, str):
        return None
    # a Hub id is NAME or OWNER/NAME; a path here is anything else, or a folder that exists
    looks_local = name.startswith(("/", ".", "~")) or name.count("/") > 1 or "\\" in name
    return name if looks_local or Path(name).expanduser().is_dir() else None


def lora_adapters(space: Path) -> list[Path]:
    """The LoRA adapters among the Space's models (a classifier fine-tuned with --use_lora keeps its adapter beside
    the base weights): transformers applies one only when peft is installed, and without it serves the bare base."""
    return sorted((space / "model").rglob("adapter_config.json"))
