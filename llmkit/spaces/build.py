"""Assemble a self-contained Space folder: the template's app, llmkit itself, pinned requirements, artifacts."""

from __future__ import annotations

import json
import platform
import shutil
import unicodedata
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import yaml

from llmkit.errors import UserError
from llmkit.folders import not_the_working_folder, writable_folder
from llmkit.secrets import find_tokens, redact
from llmkit.spaces.contents import (
    artifacts,
    copy_database,
    files_to_copy,
    local_embedding_model,
    lora_adapters,
    model_parts,
    package_folders,
    package_ignore,
)
from llmkit.spaces.scan import secret_findings
from llmkit.spaces.templates import TEMPLATES, Template

# llmkit.rag's default embedding model (not imported from there: importing llmkit.rag loads faiss and torch)
HUB_EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# What llmkit's core needs at run time, beyond each template's own packages.
CORE = (
    "torch",
    "transformers",
    "tokenizers",
    "accelerate",
    "safetensors",
    "huggingface_hub",
    "datasets",
    "matplotlib",
    "pyyaml",
    "tqdm",
)
LFS_PATTERNS = (
    "*.safetensors",
    "*.bin",
    "*.pt",
    "*.pth",
    "*.faiss",
    "*.sqlite",
    "*.npz",
    "*.pkl",
    "*.parquet",
    "*.arrow",
)
LFS_MIN_BYTES = 10 * 2**20  # the Hub rejects plain git files above 10 MB
# The CPU build of torch: without it pip on a CPU Space pulls a multi-GB CUDA build it cannot use.
TORCH_CPU_INDEX = "--extra-index-url https://download.pytorch.org/whl/cpu"
# What a Space never needs from a run folder: resumable state, caches, uploads (training_args.bin pickles the arguments).
SKIP_ARTIFACTS = shutil.ignore_patterns(
    "checkpoint-*", "checkpoints", "__pycache__", "*.tmp", ".*.tmp-*", "uploads", "training_args.bin"
)
# A store's database travels as one checkpointed file (copy_database), never with a live write-ahead log beside it.
SKIP_STORE_FILES = shutil.ignore_patterns(
    "checkpoint-*",
    "__pycache__",
    "*.tmp",
    ".*.tmp-*",  # a file record.write_atomic was writing when killed
    ".llmkit-lock",  # the store's writer lock (rag/layout.py)
    "uploads",
    "*.sqlite",
    "*.sqlite-wal",
    "*.sqlite-shm",
    "*.sqlite-journal",
)


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


def title_problem(title: object) -> str | None:
    """What is wrong with a Space title (not text, empty, or more than one line), or None when it is fine."""
    if not isinstance(title, str):
        return f"is {title!r}, not text"
    if not title.strip():
        return "is empty"
    if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in title):  # \n, \r, \t, NUL, U+2028 ...
        return f"{title!r} holds a line break or control character"
    return None


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


def _check_inputs(
    template: str, out: Path, given: dict[str, str | None], title: str | None, overwrite: bool
) -> None:
    """Refuse bad arguments before anything is written."""
    if template not in TEMPLATES:
        raise UserError(f"unknown template {template!r}; choose one of {', '.join(TEMPLATES)}.")
    for need in TEMPLATES[template].needs:
        if template != "classic" and not given[need]:
            raise UserError(f"the {template} template serves a {need}: pass --{need} DIR.")
    for kind, path in given.items():
        if path and not Path(path).is_dir():
            what = "does not exist" if not Path(path).exists() else "is a file, not a folder"
            raise UserError(
                f"--{kind} {path} {what}; pass a training run's output_dir or a RAG store folder."
            )
    model, store = given["model"], given["store"]
    parts = TEMPLATES[template].parts
    if model and parts and not model_parts(template, Path(model)):
        raise UserError(
            f"--model {model} holds none of {', '.join(p + '/' for p in parts)} that the {template} app serves; "
            "pass the folder that holds those recipes' output_dirs (e.g. runs)."
        )
    if model and not parts:
        _check_model_fits(template, Path(model))
    if store and not (Path(store) / "manifest.json").is_file():
        raise UserError(
            f"--store {store} is not an llmkit RAG store (no manifest.json); build one with `llmkit rag index`."
        )
    if store and local_embedding_model(Path(store)):
        raise UserError(
            f"--store {store} was indexed with the embedding model in the local folder "
            f"{local_embedding_model(Path(store))}, which a Space cannot load on the Hub; index the documents "
            f"into a new store with a Hub model (`llmkit rag index DOCS --store NEW --embedding_model ORG/NAME`; "
            f"the default is {HUB_EMBEDDING_MODEL}) and build from it."
        )
    if title is not None:
        problem = title_problem(title)
        if problem:
            raise UserError(
                f"--title {problem}; pass a one-line title, or leave --title out for the template's."
            )
    if title and find_tokens(title):
        raise UserError(
            "--title holds what looks like a token or key; a Space's README is public: choose another title."
        )
    for kind, path in given.items():
        if path and (_inside(out, Path(path)) or _inside(Path(path), out)):
            raise UserError(
                f"--out {out} and --{kind} {path} overlap; build the Space in a folder of its own."
            )
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; pass a folder to create.")
    not_the_working_folder(out, "--out", "my-space")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise UserError(
                f"{out} exists and is not empty; pass a new --out folder (or --overwrite to replace a Space)."
            )
        if not all((out / name).exists() for name in ("README.md", "app.py", "llmkit")):
            # --overwrite deletes the folder: only ever one that `space build` made.
            raise UserError(
                f"{out} is not a Space built by llmkit, so --overwrite will not delete it; pass a new --out folder."
            )
    writable_folder(out.resolve().parent, f"--out {out}")  # the Space is built beside it, then renamed


# The image templates, by the pipeline task of the model each serves.
IMAGE_TEMPLATES = {
    "image-classifier": "image-classification",
    "detector": "object-detection",
    "segmenter": "image-segmentation",
}


def _check_model_fits(template: str, model: Path) -> None:
    """A causal LM for text-generation and studio, a text classifier or seq2seq model for classifier, an
    extractive QA model for question-answering, and the image model of the matching task for image-classifier,
    detector and segmenter."""
    adapter = model / "adapter_config.json"
    if adapter.is_file() and not (model / "config.json").is_file():
        # A LoRA run of finetune-gpt2 saves only the adapter; its base is a folder here (runs/gpt2-tiny) or a Hub name.
        merged = model / "merged"
        fix = (
            f"pass {merged}"
            if (merged / "config.json").is_file()
            else "re-run it with --merge_lora and pass its merged/"
        )
        raise UserError(
            f"--model {model} holds a LoRA adapter, not a whole model, and a Space serves a whole model: {fix}."
        )
    try:
        config = json.loads((model / "config.json").read_text())
    except (OSError, ValueError):
        raise UserError(
            f"--model {model} is not a model folder (no readable config.json); pass a recipe's output_dir."
        ) from None
    architectures = " ".join(config.get("architectures") or [])
    if template in IMAGE_TEMPLATES:
        from llmkit.vision.tasks import IMAGE_TASKS

        task = next((t for suffix, t in IMAGE_TASKS.items() if suffix in architectures), None)
        if task != IMAGE_TEMPLATES[template]:
            fits = {t: name for name, t in IMAGE_TEMPLATES.items()}.get(task)
            raise UserError(
                f"--model {model} is a {architectures or 'model without architectures'}, not a "
                f"{IMAGE_TEMPLATES[template]} model"
                + (
                    f"; the {fits} template serves it."
                    if fits
                    else "; pass a finetune-image/-detection/-segmentation output."
                )
            )
        return
    causal = "CausalLM" in architectures or "LMHeadModel" in architectures
    labels = (
        "SequenceClassification" in architectures
        or "TokenClassification" in architectures
        or config.get("is_encoder_decoder")
    )
    if architectures and template in ("text-generation", "studio") and not causal:
        raise UserError(
            f"--model {model} is a {architectures}, not a causal language model; the classifier template serves it."
        )
    if architectures and template == "classifier" and not labels:
        raise UserError(
            f"--model {model} is a {architectures}; the classifier template serves text classifiers and "
            "text-to-text models (use text-generation for a causal LM, question-answering for an extractive QA "
            "model, image-classifier for an image model)."
        )
    if template == "question-answering" and "ForQuestionAnswering" not in architectures:
        raise UserError(
            f"--model {model} is a {architectures or 'model without architectures'}, not an extractive "
            "question-answering model; pass a `llmkit finetune-qa` output."
        )


def _inside(child: Path, parent: Path) -> bool:
    return child.resolve().is_relative_to(parent.resolve())


def _refuse_secrets(sources: dict[str, tuple[Path, Callable[[str, list[str]], set[str]]]]) -> None:
    """Scan everything a build would copy, so that no token reaches the Space folder even for a moment."""
    problems = []
    for label, (src, ignore) in sources.items():
        problems += [f"{label}: {line}" for line in secret_findings(src, files_to_copy(src, ignore))]
    if problems:
        raise UserError(
            "nothing was built: a Space is public and these files would go into it:\n  - "
            + "\n  - ".join(redact(p) for p in problems)
        )


def build_space(
    template: str,
    out: str | Path,
    *,
    model: str | None = None,
    store: str | None = None,
    title: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Create the Space folder `out` from a template; returns its path."""
    out = Path(out)
    given = {"model": model, "store": store}
    _check_inputs(template, out, given, title, overwrite)
    t = TEMPLATES[template]
    template_ignore = shutil.ignore_patterns("__pycache__")
    package = package_folders()
    sources = {
        f"template {template}": (t.folder, template_ignore),
        **{str(inside): (src, package_ignore) for inside, src in package.items()},
        **{
            f"--{inside.parts[0]} {src}": (src, SKIP_ARTIFACTS)
            for inside, src in artifacts(template, given).items()
        },
    }
    _refuse_secrets(sources)

    staging = out.resolve().with_name(out.resolve().name + ".building")  # resolved: `--out .` has no name
    shutil.rmtree(staging, ignore_errors=True)
    try:
        shutil.copytree(t.folder, staging, ignore=template_ignore)
        for inside, src in package.items():
            shutil.copytree(src, staging / inside, ignore=package_ignore)
        for inside, src in artifacts(template, given).items():
            ignore = SKIP_STORE_FILES if inside == Path("store") else SKIP_ARTIFACTS
            shutil.copytree(src, staging / inside, ignore=ignore)
        if store:
            for database in Path(store).glob("*.sqlite"):
                copy_database(database, staging / "store" / database.name)
        extra = ("peft",) if lora_adapters(staging) else ()
        (staging / "requirements.txt").write_text(pinned_requirements(t.packages + extra))
        _write_readme(staging, t, title, _model_card(Path(model)) if model else {})
        _write_gitattributes(staging)
    except BaseException:  # Ctrl-C or a full disk: leave no half-built folder behind
        shutil.rmtree(staging, ignore_errors=True)
        raise
    final = out.resolve()
    replaced = final.with_name(final.name + ".replaced")
    shutil.rmtree(replaced, ignore_errors=True)
    if final.exists():  # --overwrite: the old Space is set aside whole, never left half deleted by a kill
        final.rename(replaced)
    staging.rename(final)  # the folder appears complete or not at all
    shutil.rmtree(replaced, ignore_errors=True)
    return out


def _write_readme(folder: Path, t: Template, title: str | None, card: dict) -> None:
    """Fill the template's front matter: title, colours, the installed Gradio and Python, the base model."""
    meta, body = split_front_matter((folder / "README.md").read_text())
    meta.update(
        title=title or t.title,
        emoji=t.emoji,
        colorFrom=t.color_from,
        colorTo=t.color_to,
        sdk_version=version("gradio"),
        python_version=".".join(platform.python_version_tuple()[:2]),
        short_description=t.short_description,
    )
    if isinstance(card.get("base_model"), str):
        meta["models"] = [card["base_model"]]
    body = body.replace("TITLE", meta["title"]).replace("DESCRIPTION", t.short_description)
    (folder / "README.md").write_text(
        "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n\n" + body
    )


def _model_card(model: Path) -> dict:
    """The front matter of the model's card, or {} when it has none (or an unreadable one)."""
    readme = model / "README.md"
    text = readme.read_text(errors="replace") if readme.is_file() else ""
    try:
        return split_front_matter(text)[0] if text.startswith("---\n") else {}
    except UserError:
        return {}


def _write_gitattributes(folder: Path) -> None:
    """Track weights, indexes, databases and anything over 10 MB with Git LFS, as the Hub requires."""
    big = sorted(
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.is_file() and p.stat().st_size >= LFS_MIN_BYTES
    )
    lines = [f"{pattern} filter=lfs diff=lfs merge=lfs -text" for pattern in (*LFS_PATTERNS, *big)]
    (folder / ".gitattributes").write_text("\n".join(lines) + "\n")
