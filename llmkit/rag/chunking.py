"""Token-aware chunking: chunks sized in the embedding model's own tokens, cut at natural boundaries.

A chunk longer than the embedding model's limit would be silently truncated when embedded, so
sizes are counted with that model's tokenizer. Cuts prefer paragraph (and heading) boundaries,
then sentence boundaries, and split by tokens only inside an over-long sentence.

A chunk is embedded as read in place (`in_context`: "document title, heading: text"): a chunk cut from the
middle of an API page ("eps (float, optional): ...") does not name the function it documents.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

import numpy as np

from llmkit.errors import UserError
from llmkit.pieces import text_pieces
from llmkit.rag.documents import Document

_PARAGRAPH = re.compile(r"\n\s*\n")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'`])")
_HEADING = re.compile(r"^(#{1,6} .+|.+\n[=\-~^*]{3,})$", re.MULTILINE)
# A Markdown file's YAML front matter: its last line and closing "---" read as a setext heading ("layout: page")
_FRONT_MATTER = re.compile(r"---[ \t]*\r?\n.*?\n---[ \t]*(\r?\n|$)", re.DOTALL)


@dataclass
class Chunk:
    """A piece of a document, with where it came from."""

    id: str
    doc_id: str
    text: str
    start: int
    end: int
    metadata: dict = field(default_factory=dict)


def _spans(text: str, pattern: re.Pattern, start: int, end: int) -> list[tuple[int, int]]:
    """Split text[start:end] at the pattern's matches into non-blank (start, end) spans."""
    spans, pos = [], start
    for m in pattern.finditer(text, start, end):
        spans.append((pos, m.start()))
        pos = m.end()
    spans.append((pos, end))
    return [(a, b) for a, b in spans if text[a:b].strip()]


def _units(text: str, tokenizer, max_tokens: int) -> list[tuple[int, int, int]]:
    """Cut the text into (start, end, n_tokens) units no longer than max_tokens each."""
    units = []
    for a, b in _spans(text, _PARAGRAPH, 0, len(text)):
        pieces = [(a, b)]
        if _count(tokenizer, text[a:b], max_tokens) > max_tokens:
            pieces = _spans(text, _SENTENCE, a, b)
        for s, e in pieces:
            n = _count(tokenizer, text[s:e])
            if n <= max_tokens:
                units.append((s, e, n))
            else:
                units.extend(_split_by_tokens(text, s, e, tokenizer, max_tokens))
    return units


def _split_by_tokens(
    text: str, start: int, end: int, tokenizer, max_tokens: int
) -> list[tuple[int, int, int]]:
    # Token offsets a piece of the text at a time (text_pieces cuts before a space, where the tokenizer splits
    # anyway), as an int array: one call on a 50 MB paragraph held gigabytes of tokens and offset tuples.
    parts, pos = [], start
    for piece in text_pieces(text[start:end]):
        # verbose=False: counting a long paragraph is not feeding it to the model ("sequence length is longer...")
        found = tokenizer(piece, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        parts.append(np.asarray(found["offset_mapping"], dtype=np.int64).reshape(-1, 2)[:, 0] + pos)
        pos += len(piece)
    starts = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    out = []
    for i in range(0, len(starts), max_tokens):
        e = int(starts[i + max_tokens]) if i + max_tokens < len(starts) else end
        out.append((int(starts[i]), e, min(max_tokens, len(starts) - i)))
    return out


def _count(tokenizer, text: str, limit: int | None = None) -> int:
    """Tokens in `text`, counted a piece at a time; past `limit` the count stops (it only has to exceed it)."""
    total = 0
    for piece in text_pieces(text):
        total += len(tokenizer(piece, add_special_tokens=False, verbose=False)["input_ids"])
        if limit is not None and total > limit:
            break
    return total


def check_chunking(max_tokens: int, overlap: int) -> None:
    """Refuse chunk settings that cannot work, naming the fix."""
    if max_tokens < 8:
        raise UserError(f"--chunk_tokens must be at least 8, got {max_tokens}.")
    if not 0 <= overlap < max_tokens:
        raise UserError(
            f"--chunk_overlap ({overlap}) must be at least 0 and smaller than --chunk_tokens ({max_tokens}); "
            f"e.g. --chunk_overlap {max_tokens // 5}."
        )


def chunk_document(doc: Document, tokenizer, max_tokens: int = 160, overlap: int = 32) -> list[Chunk]:
    """Split a document into overlapping chunks of at most max_tokens tokens of `tokenizer`."""
    check_chunking(max_tokens, overlap)
    text = doc.text
    units = _units(text, tokenizer, max_tokens)
    front = _FRONT_MATTER.match(text)
    headings = [
        (m.start(), m.group(0).splitlines()[0].lstrip("# ").strip())
        for m in _HEADING.finditer(text, front.end() if front else 0)
    ]
    pages = doc.metadata.get("pages") or []
    chunks: list[Chunk] = []
    i = 0
    while i < len(units):
        j, total = i, 0
        while j < len(units) and total + units[j][2] <= max_tokens:
            total += units[j][2]
            j += 1
        j = max(j, i + 1)
        start, end = units[i][0], units[j - 1][1]
        meta = {k: v for k, v in doc.metadata.items() if k != "pages"}
        heading = [h for pos, h in headings if pos <= start]
        if heading:
            meta["heading"] = heading[-1]
        page = [n for n, pos in pages if pos < end]
        if page:
            meta["page"] = max([n for n, pos in pages if pos <= start] or page[:1])
            if page[-1] != meta["page"]:
                meta["page_end"] = page[-1]  # the chunk runs over a page break
        chunks.append(Chunk(f"{doc.id}#{len(chunks)}", doc.id, text[start:end], start, end, meta))
        if j >= len(units):
            break
        # Step back over trailing units worth at most `overlap` tokens, but always move forward, and only as far as
        # leaves room for the next unit: a short unit before a long one made a chunk that lay inside this one.
        back, k = 0, j
        room = max_tokens - units[j][2]
        while k - 1 > i and back + units[k - 1][2] <= min(overlap, room):
            back += units[k - 1][2]
            k -= 1
        i = k
    return chunks


def in_context(doc_id: str, metadata: dict, text: str, heading: str = "") -> str:
    """`text` as read in its place: "document title, heading: text" (the heading left out when it is the title)."""
    document = metadata.get("title") or PurePosixPath(doc_id).stem
    return f"{document}, {heading}: {text}" if heading and heading != document else f"{document}: {text}"
