"""The one rule every loader (corpora, RAG documents, image folders) uses for what a folder holds: its files,
sorted, without hidden files and folders (.ipynb_checkpoints/, .git/, .venv/, .DS_Store), whose stale copies and
tools' files would otherwise be trained on or cited as if they were the data. Standard library only."""

from __future__ import annotations

from pathlib import Path


def visible_files(folder: Path, *, recursive: bool = True) -> list[Path]:
    """The files under `folder` (or directly in it), sorted, with no hidden part below `folder`."""
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(
        p
        for p in found
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
