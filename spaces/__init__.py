"""The Space templates: one folder each beside this file (README.md, app.py, requirements.txt).

This folder ships inside the wheel as `llmkit.spaces.templates` (a package-dir mapping in pyproject.toml), so
`llmkit space build` finds the templates in an installed package as well as in a checkout.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

TEMPLATES_DIR = Path(__file__).resolve().parent


def space_title(folder: str | Path, default: str = "llmkit") -> str:
    """The Space's title from its README.md front matter, so the app's heading follows `space build --title`."""
    import yaml

    readme = Path(folder) / "README.md"
    text = readme.read_text(encoding="utf-8") if readme.is_file() else ""
    if text.startswith("---\n") and "\n---" in text[4:]:
        try:
            meta = yaml.safe_load(text[4:].partition("\n---")[0]) or {}
        except yaml.YAMLError:
            meta = {}
        if isinstance(meta, dict) and meta.get("title"):
            return str(meta["title"])
    return default


@dataclass
class Template:
    """A Space template: its folder, the artifacts it serves, and its card's defaults."""

    name: str
    title: str
    emoji: str
    color_from: str
    color_to: str
    short_description: str
    needs: tuple[str, ...] = ()  # artifacts it serves: "model", "store"
    # The subfolders of --model the app reads, copied alone (classic: one recipe's output_dir each); () = all of it.
    parts: tuple[str, ...] = ()

    @property
    def folder(self) -> Path:
        """The template's folder (inside the installed package, or spaces/ in a checkout)."""
        return TEMPLATES_DIR / self.name

    @property
    def packages(self) -> tuple[str, ...]:
        """The pip packages its requirements.txt names (beyond llmkit's core)."""
        lines = (self.folder / "requirements.txt").read_text().splitlines()
        return tuple(line.strip() for line in lines if line.strip() and not line.startswith("#"))


TEMPLATES = {
    t.name: t
    for t in [
        Template(
            "rag-chat",
            "Chat with documents",
            "📚",
            "blue",
            "indigo",
            "Answers questions with cited sources (FAISS + SQLite)",
            needs=("store",),
        ),
        Template(
            "text-generation",
            "Text generation",
            "✍️",
            "green",
            "blue",
            "Sample from a GPT-2 trained with llmkit",
            needs=("model",),
        ),
        Template(
            "classifier",
            "Text classifier",
            "🏷️",
            "yellow",
            "red",
            "Label probabilities from a fine-tuned encoder",
            needs=("model",),
        ),
        Template(
            "question-answering",
            "Question answering",
            "❓",
            "green",
            "yellow",
            "The span of a text that answers a question, or none",
            needs=("model",),
        ),
        Template(
            "image-classifier",
            "Image classifier",
            "🖼️",
            "yellow",
            "green",
            "Class probabilities for an image from a vision model",
            needs=("model",),
        ),
        Template(
            "detector",
            "Object detector",
            "📦",
            "red",
            "yellow",
            "Boxes with labels and scores on an image",
            needs=("model",),
        ),
        Template(
            "segmenter",
            "Image segmenter",
            "🧩",
            "purple",
            "blue",
            "A mask per class over an image, with a legend",
            needs=("model",),
        ),
        Template(
            "classic",
            "The classics",
            "🎨",
            "pink",
            "purple",
            "CNN, GAN, VAE, diffusion and an MLP on digits",
            needs=("model",),
            parts=("cnn", "gan", "vae", "ddpm", "char-lstm"),  # app.py's FOLDERS
        ),
        Template(
            "studio",
            "llmkit studio",
            "🧪",
            "gray",
            "green",
            "Generation, classification and document chat in tabs",
            needs=("model", "store"),
        ),
    ]
}
