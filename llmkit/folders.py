"""The one rule every loader (corpora, RAG documents, image folders) uses for what a folder holds: its files,
sorted, without hidden files and folders (.ipynb_checkpoints/, .git/, .venv/, .DS_Store), whose stale copies and
tools' files would otherwise be trained on or cited as if they were the data. Also the check that an output
folder can be written. Standard library only."""

from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path


def visible_files(folder: Path, *, recursive: bool = True) -> list[Path]:
    """The files under `folder` (or directly in it), sorted, with no hidden part below `folder`.

    Linked sub-folders are followed (a class folder linked in from a shared disk is data too), each real
    folder once; a link to `folder` itself or to a folder above it is not (it would read the folder again, or
    all that surrounds it), so a link loop ends. Links that point nowhere are skipped with one warning.
    """
    if not recursive:
        entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
        _warn_broken(folder, [p for p in entries if p.is_symlink() and not p.exists()])
        return sorted(p for p in entries if p.is_file())
    top = Path(os.path.realpath(folder))
    found, broken, seen = [], [], set()
    for root, dirs, files in os.walk(folder, followlinks=True):
        real = Path(os.path.realpath(root))
        if real in seen or (root != str(folder) and (real == top or real in top.parents)):
            dirs.clear()
            continue
        seen.add(real)
        # sorted: the first path to a folder is the one kept, whatever order the disk lists them in
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        paths = [Path(root, f) for f in files if not f.startswith(".")]
        found += [p for p in paths if p.is_file()]
        broken += [p for p in paths if p.is_symlink() and not p.exists()]
    _warn_broken(folder, broken)
    return sorted(found)


def _warn_broken(folder: Path, broken: list[Path]) -> None:
    if broken:  # they were left out without a word: a moved disk or an unmounted share looked like less data
        first = sorted(broken)[0]
        warnings.warn(
            f"{folder}: skipped {len(broken)} link(s) that point to nothing (first: {first} -> "
            f"{os.readlink(first)}); fix or remove them.",
            stacklevel=3,
        )


def not_the_working_folder(folder: Path, flag: str, example: str) -> None:
    """Refuse an output folder that is (or holds) the current folder: it is replaced by a rename, which would
    leave the user's shell in a deleted folder."""
    from llmkit.errors import UserError

    here = Path.cwd().resolve()
    target = folder.expanduser().resolve()
    if target == here or target in here.parents:
        raise UserError(
            f"{flag} {folder} is the folder you are working in, or holds it; the result is built beside it and "
            f"moved into its place, which would leave your shell in a deleted folder. Pass a new sub-folder, "
            f"such as {flag} {example}."
        )


# Folders writable_folder made in this process: a command refused afterwards removes the ones still empty.
_created: list[Path] = []


def remove_empty_created() -> None:
    """Remove the folders this process created that are still empty (deepest first): a refused command leaves
    no empty `runs/a/b` behind."""
    for folder in sorted(set(_created), key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):  # only an empty folder goes: anything written there stays
            folder.rmdir()
    _created.clear()


def writable_folder(folder: Path, name: str) -> None:
    """Create `folder` if needed and check that a file can be written in it, or say which flag to change.

    `name` is what the user passed it as ("--store runs/s"); a read-only folder, a path through a file
    or a full disk then stops the command before any work, with a message instead of a traceback.
    """
    from llmkit.errors import UserError

    for above in (folder, *folder.parents):
        if above.exists():
            if not above.is_dir():
                raise UserError(
                    f"cannot write to {name}: {above} is a file, not a folder; pass another path."
                )
            break
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _created.extend(missing)
        probe = folder / f".llmkit-write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise UserError(f"cannot write to {name} ({err.strerror}: {folder}); pass a writable path.") from None
