"""`llmkit rag index` and `llmkit rag remove`: add files and folders to a store, take documents out of it.

Every flag and path is checked before the store is touched, so a typo never leaves a half-written store.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import warnings
from pathlib import Path

from llmkit.errors import UserError
from llmkit.folders import writable_folder
from llmkit.rag.calibration import ensure_calibrated
from llmkit.rag.chunking import check_chunking
from llmkit.rag.documents import (
    SUFFIXES,
    builtin_knowledge_base,
    doc_id,
    folder_prefix,
    load_paths,
    printable,
    shown_path,
    under_folders,
)

# `rag index` flags that only shape a new store, with their defaults: an existing store keeps its own
STORE_SETTINGS = {"chunk_tokens": 160, "chunk_overlap": 32, "index": "auto"}


def _warn_settings_kept(store, args: argparse.Namespace) -> None:
    """Say so when a flag asks an existing store for other chunks or another index (it was ignored silently)."""
    for name, default in STORE_SETTINGS.items():
        asked, kept = getattr(args, name), store.config.get(name)
        if asked != default and kept is not None and asked != kept:
            print(
                f"warning: --{name} {asked} is ignored: the store {args.store} keeps the {kept} it was made with, "
                f"so all its documents are indexed alike; index into a new --store to use {asked}.",
                file=sys.stderr,
            )


def _check_flags(args: argparse.Namespace) -> None:
    """Refuse what `rag index` cannot do as asked, before the store is touched."""
    if not args.paths and not args.builtin:
        raise UserError("give files or folders to index, or --builtin for the built-in knowledge base.")
    if args.paths and args.builtin:  # the paths were ignored, silently
        raise UserError(
            f"--builtin indexes the built-in knowledge base alone; index {' '.join(args.paths)} with a second "
            "`llmkit rag index` into the same --store."
        )
    check_chunking(args.chunk_tokens, args.chunk_overlap)


def index(args: argparse.Namespace) -> None:
    """`llmkit rag index PATH... --store S`: add or re-index documents, then refit the store's threshold."""
    from llmkit.rag.store import Store

    _check_flags(args)
    store_path = Path(args.store).expanduser()
    anchor = store_path.resolve().parent  # what Store.anchor will be: document ids are relative to it
    missing = [p for p in args.paths if not Path(p).expanduser().exists()]
    if missing and not (store_path / "manifest.json").is_file():
        raise UserError(f"{missing[0]} does not exist; pass files or folders to index.")
    with warnings.catch_warnings(record=True) as skipped:
        warnings.simplefilter("always")
        present = [p for p in args.paths if p not in missing]
        docs = (
            builtin_knowledge_base()
            if args.builtin
            else load_paths(present, args.include, args.exclude, root=anchor)
        )
    nothing = _nothing_found(present, skipped) if present and not docs and not args.builtin else None
    if nothing and not (store_path / "manifest.json").is_file():
        # Nothing readable for a new store: an empty store made with exit 0 looked like success.
        for w in skipped:
            print(f"warning: {printable(str(w.message))}", file=sys.stderr)
        raise UserError(f"{printable(nothing)}; nothing was written.")
    made_here = not store_path.exists()
    if not store_path.is_file():  # a file is named by Store
        writable_folder(store_path, f"--store {args.store}")
    try:
        store = Store(
            args.store,
            embedding_model=args.embedding_model,
            index=args.index,
            chunk_tokens=args.chunk_tokens,
            chunk_overlap=args.chunk_overlap,
        )
    except BaseException:
        if made_here:  # a model that would not load left the new store folder empty behind
            _remove_if_empty(store_path)
        raise
    _warn_settings_kept(store, args)
    # A path indexed before whose file or folder is gone: its documents go (a typo is still an error).
    gone = {p: _documents_named(store, p) for p in missing}
    for path, ids in gone.items():
        if not ids:
            raise UserError(
                f"{path} does not exist (and no document of the store came from it); check the path."
            )
    for w in skipped:
        print(f"warning: {printable(str(w.message))}", file=sys.stderr)
    if nothing:  # an existing store: it added nothing and exited 0 without a word
        print(f"warning: {printable(nothing)}; nothing was added.", file=sys.stderr)
    removed = store.delete_documents([i for ids in gone.values() for i in ids])
    for path, ids in gone.items():
        print(
            f"note: {printable(path)} no longer exists; removed its {len(ids)} document(s) from the store.",
            file=sys.stderr,
        )
    stale, folders = _remove_stale(store, args, present, docs)
    removed += stale
    try:
        stats = store.add_documents(docs, prune_prefixes=folders, progress=True)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(
            "the documents committed before Ctrl-C are in the store; run the same command to index the rest."
        ) from None
    stats["documents_removed"] += removed
    _hint_gone_files(store, args.store)
    calibration = ensure_calibrated(store)
    summary = {
        **stats,
        "documents": store.count_documents(),
        "chunks": len(store),
        "store": str(store.path),
        "abstain_below": calibration["min_score"],
    }
    print(json.dumps(summary, indent=2))


def _nothing_found(paths: list[str], skipped: list) -> str:
    """What to say when `paths` gave no document to index."""
    return (
        f"no file to index in {', '.join(paths)} (llmkit reads {' '.join(sorted(SUFFIXES))}"
        f"{'; every one found was skipped, see the warnings' if skipped else ''})"
    )


def _remove_stale(store, args: argparse.Namespace, present: list[str], docs: list) -> tuple[int, set[str]]:
    """Remove what re-indexing `present` shows to be gone; returns how many, and the folders whose documents
    absent from `docs` add_documents is to prune."""
    loaded = {d.id for d in docs}
    # Re-indexing a folder also removes the documents whose files are gone from it.
    folders = {folder_prefix(p, store.anchor) for p in present if Path(p).expanduser().is_dir()}
    removed = store.delete_documents(_links_gone(store, present, loaded))
    if args.include or args.exclude:
        # A filter picks what to add, not what to keep: the files it leaves out stay indexed (re-indexing
        # `docs/ --include '*.md'` deleted every .txt of docs/ indexed before), unless they are gone.
        removed += store.delete_documents(
            [i for i in store.sources() if under_folders(i, folders) and not (store.anchor / i).exists()]
        )
        return removed, set()
    # A file named by its path and skipped now (emptied, binary): its old text was still cited, as a folder's is not.
    for path in present:
        i = doc_id(Path(path).expanduser(), store.anchor)
        if Path(path).expanduser().is_file() and i not in loaded and store.delete_documents([i]):
            removed += 1
            print(
                f"note: {printable(path)} was skipped; removed its previously indexed text from the store.",
                file=sys.stderr,
            )
    return removed, folders


def _remove_if_empty(folder: Path) -> None:
    """Remove `folder` if nothing was written in it."""
    with contextlib.suppress(OSError):  # something is in it (or it is gone): leave it
        folder.rmdir()


def _links_gone(store, paths: list[str], present: set[str]) -> list[str]:
    """Documents found through a link in a re-indexed folder that no longer leads to them (the link deleted or
    pointed elsewhere): their ids are the link targets', outside the folder, so they stayed and were cited."""
    folders = [Path(os.path.abspath(Path(p).expanduser())) for p in paths if Path(p).expanduser().is_dir()]
    gone = []
    for i, source in store.sources().items():
        # only a file's document whose file is still there (the link's target); builtin and library ids are not
        if (
            i in present
            or ":" in i
            or Path(i).suffix.lower() not in SUFFIXES
            or not (store.anchor / i).is_file()
        ):
            continue
        shown = Path(os.path.abspath(source))  # the path it was found by (relative to the working directory)
        if not any(shown.is_relative_to(f) for f in folders):
            continue
        if not shown.is_file() or doc_id(shown, store.anchor) != i:
            gone.append(i)
    return gone


def _documents_named(store, target: str) -> list[str]:
    """The ids of the documents `target` names: an id, a file or folder as indexed, or a shown source path."""
    sources = store.sources()
    if target in sources:
        return [target]
    if not target.strip():  # "" reads as the working directory, which may hold every document
        return []
    rel = doc_id(Path(target).expanduser(), store.anchor)
    if rel in sources:
        return [rel]
    shown = shown_path(target)
    # "" for the store's parent folder itself (`rag index .` beside the store), whose documents it named none of
    prefix = folder_prefix(target, store.anchor)
    return [
        i
        for i, source in sources.items()
        if under_folders(i, {prefix}) or source == shown or source.startswith(shown.rstrip("/") + "/")
    ]


def _hint_gone_files(store, store_arg: str) -> None:
    """Say which indexed files no longer exist (indexing another path keeps them), and how to remove them."""
    gone = [
        source
        for i, source in store.sources().items()
        if Path(i).suffix.lower() in SUFFIXES and ":" not in i and not (store.anchor / i).exists()
    ]
    if gone:
        names = ", ".join(map(printable, gone[:5])) + (f" and {len(gone) - 5} more" if len(gone) > 5 else "")
        print(
            f"note: {len(gone)} indexed file(s) no longer exist: {names}; remove them with "
            f"`llmkit rag remove PATH --store {store_arg}` or by re-indexing their folder.",
            file=sys.stderr,
        )


def remove(args: argparse.Namespace) -> None:
    """`llmkit rag remove TARGET... --store S`: remove documents by the path indexed or by id."""
    from llmkit.rag.pipeline import open_store

    store = open_store(args.store)
    named = {t: _documents_named(store, t) for t in args.targets}
    unknown = [t for t, ids in named.items() if not ids]
    if unknown:  # nothing is removed unless every target names something
        raise UserError(
            f"no document of {args.store} comes from {', '.join(map(repr, unknown))}; give a file or folder as "
            "indexed, or a document id (`llmkit rag ask --json` shows doc_id and source)."
        )
    removed = store.delete_documents([i for ids in named.values() for i in ids])
    ensure_calibrated(store)
    print(
        json.dumps({"documents_removed": removed, "documents": store.count_documents(), "chunks": len(store)})
    )
