"""Assemble a self-contained Space folder: the template's app, llmkit itself, pinned requirements, artifacts."""

from __future__ import annotations

import platform
import shutil
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import yaml

import llmkit
from llmkit.errors import UserError
from llmkit.spaces.templates import TEMPLATES, TEMPLATES_DIR

# What llmkit's core needs at run time, beyond each template's own packages.
CORE = ("torch", "transformers", "tokenizers", "accelerate", "safetensors", "huggingface_hub", "datasets", "matplotlib", "pyyaml", "tqdm")
LFS_PATTERNS = ("*.safetensors", "*.bin", "*.pt", "*.pth", "*.faiss", "*.sqlite", "*.npz", "*.pkl", "*.parquet", "*.arrow")
LFS_MIN_BYTES = 10 * 2**20  # the Hub rejects plain git files above 10 MB
# The CPU build of torch: without it pip on a CPU Space pulls a multi-GB CUDA build it cannot use.
TORCH_CPU_INDEX = "--extra-index-url https://download.pytorch.org/whl/cpu"


def split_front_matter(text: str) -> tuple[dict, str]:
    """(front matter, body) of a README.md that starts with a --- YAML block."""
    if not text.startswith("---\n") or "\n---" not in text[4:]:
        raise UserError("README.md has no front matter: it must start with a '---' YAML block.")
    head, _, body = text[4:].partition("\n---")
    try:
        meta = yaml.safe_load(head) or {}
    except yaml.YAMLError as err:
        raise UserError(f"README.md front matter is not valid YAML: {err}") from None
    if not isinstance(meta, dict):
        raise UserError("README.md front matter must be a YAML mapping of keys to values.")
    return meta, body.lstrip("\n")


def pinned_requirements(packages: tuple[str, ...]) -> str:
    """requirements.txt: the versions installed here (the ones the tests ran with), torch from its CPU index."""
    lines = [TORCH_CPU_INDEX]
    for name in dict.fromkeys((*CORE, *packages)):
        try:
            v = version(name)
        except PackageNotFoundError:
            lines.append(name)
            continue
        lines.append(f"{name}=={v.split('+')[0]}")
    return "\n".join(lines) + "\n"


def build_space(template: str, out: str | Path, model: str | None = None, store: str | None = None,
                title: str | None = None, overwrite: bool = False) -> Path:
    """Create the Space folder `out` from a template; returns its path."""
    if template not in TEMPLATES:
        raise UserError(f"unknown template {template!r}; choose one of {', '.join(TEMPLATES)}.")
    t = TEMPLATES[template]
    given = {"model": model, "store": store}
    for need in t.needs:
        if t.name != "classic" and not given[need]:
            raise UserError(f"the {template} template serves a {need}: pass --{need} DIR.")
    for kind, path in given.items():
        if path and not Path(path).is_dir():
            raise UserError(f"--{kind} {path} is not a folder; pass a training run's output_dir or a RAG store.")
    if store and not (Path(store) / "manifest.json").is_file():
        raise UserError(f"--store {store} is not an llmkit RAG store (no manifest.json); build one with `llmkit rag index`.")
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise UserError(f"{out} exists and is not empty; pass a new --out folder (or --overwrite).")
    staging = out.with_name(out.name + ".building")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(t.folder, staging, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(Path(llmkit.__file__).parent, staging / "llmkit", ignore=_package_ignore)
    skip = shutil.ignore_patterns("checkpoint-*", "checkpoints", "__pycache__", "*.tmp", "uploads", "training_args.bin")
    for kind, path in given.items():
        if path:
            shutil.copytree(path, staging / kind, ignore=skip)
    (staging / "requirements.txt").write_text(pinned_requirements(t.packages))

    meta, body = split_front_matter((staging / "README.md").read_text())
    meta.update(title=title or t.title, emoji=t.emoji, colorFrom=t.color_from, colorTo=t.color_to,
                sdk_version=version("gradio"), python_version=".".join(platform.python_version_tuple()[:2]),
                short_description=t.short_description)
    card = _model_card(Path(model)) if model else {}
    if card.get("base_model"):
        meta["models"] = [card["base_model"]]
    body = body.replace("TITLE", meta["title"]).replace("DESCRIPTION", t.short_description)
    (staging / "README.md").write_text("---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n\n" + body)
    _write_gitattributes(staging)
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)  # the folder appears complete or not at all
    return out


def _package_ignore(folder: str, names: list[str]) -> set[str]:
    """What the copy of llmkit inside a Space leaves out: caches and the templates (the Space is already one)."""
    skip = {n for n in names if n == "__pycache__" or n.endswith(".pyc")}
    if Path(folder).resolve() == TEMPLATES_DIR:
        skip |= {n for n in names if n in TEMPLATES}
    return skip


def _model_card(model: Path) -> dict:
    readme = model / "README.md"
    if readme.is_file() and readme.read_text().startswith("---\n"):
        try:
            return split_front_matter(readme.read_text())[0]
        except UserError:
            return {}
    return {}


def _write_gitattributes(folder: Path) -> None:
    """Track weights, indexes, databases and anything over 10 MB with Git LFS, as the Hub requires."""
    big = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.stat().st_size >= LFS_MIN_BYTES)
    lines = [f"{pattern} filter=lfs diff=lfs merge=lfs -text" for pattern in (*LFS_PATTERNS, *big)]
    (folder / ".gitattributes").write_text("\n".join(lines) + "\n")
