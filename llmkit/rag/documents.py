"""Documents and the loaders that read them: .txt, .md, .html, .pdf, folders, and the built-in docs."""

from __future__ import annotations

import codecs
import fnmatch
import hashlib
import json
import logging
import os
import re
import warnings
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from llmkit.errors import UserError, require
from llmkit.folders import visible_files

SUFFIXES = {".txt", ".md", ".markdown", ".rst", ".html", ".htm", ".pdf"}
MAX_FILE_BYTES = 50 * 1024 * 1024  # larger files are skipped: almost surely not prose to chat with
# Metadata only shown to people (the path as the user typed it): a change of it alone re-embeds nothing.
DISPLAY_KEYS = ("source",)


@dataclass
class Document:
    """One source text with a stable id and free-form metadata (source, title, pages, ...)."""

    id: str
    text: str
    metadata: dict = field(default_factory=dict)

    @property
    def content_hash(self) -> str:
        """Hash of the text and metadata: re-indexing skips documents whose hash is unchanged."""
        return hashlib.sha256((self.text + repr(sorted(self.metadata.items()))).encode()).hexdigest()[:32]


class _TextOnly(HTMLParser):
    """Collect an HTML page's visible text (no markup, scripts or styles) and its <title>."""

    SKIP = {"script", "style", "noscript", "template", "svg"}
    BLOCK = {
        "p",
        "div",
        "br",
        "li",
        "tr",
        "section",
        "article",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "pre",
        "blockquote",
        "dt",
        "dd",
        "caption",
        "figcaption",
    }
    CELL = {
        "td",
        "th",
    }  # a table's cells, and a Sphinx page's <dt>/<dd>, were glued: "timeout30", "retriesHow"

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title = ""
        self._skip = 0
        self._pre = 0
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        self._pre += tag == "pre"
        if tag in self.SKIP:
            self._skip += 1
        elif tag == "title":
            # an <svg>'s <title> is its icon's tooltip: "GitHub", "Copy to clipboard" were added to the page's title
            self._in_title = not self._skip
        elif tag in self.CELL:
            self.parts.append(" ")
        elif tag in self.BLOCK:
            self.parts.append("\n\n" if tag.startswith("h") or tag == "p" else "\n")
            if tag.startswith("h") and len(tag) == 2:
                self.parts.append("#" * int(tag[1]) + " ")  # keep headings recognisable for chunking

    def handle_endtag(self, tag):
        self._pre -= tag == "pre" and self._pre > 0
        if tag in self.SKIP and self._skip:
            self._skip -= 1
        elif tag == "title":
            self._in_title = False
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_data(self, data):
        if self._in_title:
            self.title += data
        elif not self._skip:
            self.parts.append(f"{_PRE[0]}{data}{_PRE[1]}" if self._pre else data)


_PRE = ("\ue000", "\ue001")  # around <pre> text, whose spaces are kept


def html_to_text(html: str) -> tuple[str, str]:
    """Return (visible text, title) of an HTML page; <pre> text keeps its lines' indentation (it was stripped, and
    quoted Python code lost its blocks)."""
    parser = _TextOnly()
    parser.feed(html.translate(dict.fromkeys(map(ord, _PRE))))
    raw = "".join(parser.parts).replace(_PRE[1] + _PRE[0], "")  # one <pre>'s pieces (its <span>s) as one
    pieces = re.split(f"{_PRE[0]}(.*?){_PRE[1]}", raw, flags=re.DOTALL)
    text = "".join(
        "\n".join(line.rstrip() for line in piece.split("\n"))
        if i % 2
        else "\n".join(" ".join(line.split()) for line in piece.split("\n"))
        for i, piece in enumerate(pieces)
    )
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text.strip(), " ".join(parser.title.split())


def _utf16_without_bom(head: bytes) -> bool:
    """ASCII-range text in UTF-16 has a 0 in nearly every other byte and in almost none of the rest (a binary
    file's zeros fall on both)."""
    half = len(head) / 2
    zeros = sorted((head[0::2].count(0), head[1::2].count(0)))
    return len(head) > 8 and zeros[1] > 0.4 * half and zeros[0] < 0.05 * half


def _read_text(path: Path) -> str:
    """A text file's content; ValueError naming its encoding and the fix when it is not UTF-8 (UTF-16 was called
    "binary file", Latin-1 "not UTF-8 text" with no hint of what to do)."""
    data = path.read_bytes()
    head = data[:8192]
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or _utf16_without_bom(head):
        raise ValueError(
            f"UTF-16 text, not UTF-8; convert it, e.g. iconv -f utf-16 -t utf-8 {path.name} > fixed"
        )
    if b"\x00" in head:
        raise ValueError("binary file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ValueError(
            f"not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start}; Latin-1 or Windows-1252?); "
            f"convert it, e.g. iconv -f latin1 -t utf-8 {path.name} > fixed"
        ) from None


def _read_pdf(path: Path) -> tuple[str, list[tuple[int, int]]]:
    """Text of a PDF and where each page starts: [(page number, character offset), ...]."""
    # pypdf logs each repair it makes ("EOF marker not found", "incorrect startxref pointer") as a bare line
    # amid llmkit's output; a PDF it cannot read is reported once, by load_file.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    reader = require("pypdf", "rag").PdfReader(str(path))
    parts, pages, offset = [], [], 0
    for number, page in enumerate(reader.pages, start=1):
        text = (page.extract_text() or "").strip()
        if text:
            pages.append((number, offset))
            parts.append(text)
            offset += len(text) + 2
    return "\n\n".join(parts), pages


def load_file(path: str | Path, root: str | Path | None = None, shown: str | None = None) -> Document:
    """Read one file into a Document; raises ValueError naming what is wrong with it.

    Its id is its path relative to `root` (stable when a store moves with its documents); its
    metadata "source", what answers show, is `shown` (default: the path as `shown_path` gives it).
    """
    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        raise ValueError("empty file")
    if size > MAX_FILE_BYTES:
        raise ValueError(f"larger than {MAX_FILE_BYTES // 2**20} MB")
    suffix = path.suffix.lower()
    source = doc_id(path, Path(root)) if root else str(path)
    meta: dict = {"source": shown or shown_path(path), "title": path.stem}
    if suffix == ".pdf":
        require("pypdf", "rag")  # a missing package is the user's to install, not a corrupt file
        try:
            text, pages = _read_pdf(path)
        except Exception as err:  # pypdf raises many types on corrupt files
            reason = f"{type(err).__name__}: {err}"[:120]
            raise ValueError(f"unreadable PDF ({reason})") from None
        meta["pages"] = pages
    elif suffix in (".html", ".htm"):
        text, title = html_to_text(_read_text(path))
        meta["title"] = title or path.stem
    else:
        text = _read_text(path)
    if not text.strip():
        raise ValueError("no text in it")
    return Document(id=source, text=text, metadata=meta)


def shown_path(path: str | Path) -> str:
    """A path as a person should see it: relative to the working directory when inside it, else absolute."""
    absolute = Path(os.path.abspath(Path(path).expanduser()))
    try:
        return absolute.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return absolute.as_posix()


def printable(text: str) -> str:
    """`text` for one terminal line: characters that are not printable (a newline in a file name) written as
    escapes, as repr writes them; the stored id and source keep the real name."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def doc_id(path: Path, root: Path) -> str:
    """A file's id: its resolved path relative to `root` (POSIX separators), e.g. "coll1/docs/a.md"."""
    return Path(os.path.relpath(path.resolve(), root.resolve())).as_posix()


def load_paths(
    paths: list[str | Path],
    include: list[str] | None = None,
    exclude: list[str] | None = None,
    root: str | Path | None = None,
) -> list[Document]:
    """Load files and folders (recursively, hidden ones left out); files that cannot be read are skipped with a warning.

    A document's id is its resolved path relative to `root` (the current directory by default;
    a store passes its parent folder): two folders named alike ("a/docs", "b/docs") stay apart,
    and a store moved together with its documents keeps its ids.
    """
    root = Path(root or Path.cwd())
    docs: list[Document] = []
    # a file under two of the paths given (`docs docs/a.md`) is read, and warned of, once
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            raise UserError(f"{path} does not exist; pass files or folders to index.")
        files = visible_files(path) if path.is_dir() else [path]
        included = []
        for file in files:
            rel = str(file.relative_to(path)) if path.is_dir() else file.name
            if file.suffix.lower() not in SUFFIXES and path.is_dir():
                continue
            if include and not any(fnmatch.fnmatch(rel, g) for g in include):
                continue
            included.append(rel)
            if file.resolve() in seen or exclude and any(fnmatch.fnmatch(rel, g) for g in exclude):
                continue
            seen.add(file.resolve())
            try:
                if file.suffix.lower() not in SUFFIXES:
                    raise ValueError(f"unsupported type {file.suffix!r} (use {', '.join(sorted(SUFFIXES))})")
                docs.append(load_file(file.resolve(), root, shown=shown_path(file)))
            except (ValueError, OSError) as err:
                warnings.warn(f"skipped {file}: {err}", stacklevel=2)
        if include and not included:  # indexing nothing and exiting 0 looked like success
            example = next((str(f.relative_to(path)) for f in files), None) if path.is_dir() else path.name
            warnings.warn(
                f"--include {' '.join(include)} matched no file of {raw}"
                + (f" (patterns match paths relative to it, such as {example!r})" if example else ""),
                stacklevel=2,
            )
    return docs


def folder_prefix(folder: str | Path, root: str | Path) -> str:
    """The id prefix of every document under `folder` (what re-indexing it may prune)."""
    rel = doc_id(Path(folder).expanduser(), Path(root))
    return "" if rel == "." else rel + "/"


def only_display_changed(doc: Document, stored_hash: str, stored_metadata: str) -> bool:
    """Whether `doc` differs from the stored version only in display metadata (its shown path)."""
    stored = json.loads(stored_metadata)
    as_stored = {**doc.metadata, **{k: stored[k] for k in DISPLAY_KEYS if k in stored}}
    return Document(doc.id, doc.text, as_stored).content_hash == stored_hash


def under_folders(doc_id: str, prefixes: set[str]) -> bool:
    """Whether a document id lies in one of the folders; "" is the anchor folder itself (ids without "../")."""
    return any(
        doc_id.startswith(p) if p else not doc_id.startswith("../") and ":" not in doc_id for p in prefixes
    )


def builtin_knowledge_base() -> list[Document]:
    """The built-in knowledge base: CPython's documentation, as in the pretraining corpus."""
    from llmkit.data.builtin import builtin_documents

    return [
        Document(id=d["id"], text=d["text"], metadata={"source": d["source"], "title": d["title"]})
        for d in builtin_documents()
    ]
