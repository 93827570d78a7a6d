"""Long texts cut into pieces a tokenizer can take whole. Standard library only."""

from __future__ import annotations

from collections.abc import Iterator

# tokenizers hold a few hundred bytes per token of a text while they encode or pre-tokenize it: a 200 MB document
# (a one-line dump, or a file with no blank line to split it into paragraphs) took tens of GB in one call.
# Longer texts are handled a piece of about this many characters at a time.
PIECE_CHARS = 1 << 20


def text_pieces(text: str, size: int | None = None) -> Iterator[str]:
    """`text` in pieces of at most `size` characters, each cut before a space that follows a non-space, where
    byte-level BPE's pre-tokenizer (and a whitespace one) splits anyway, so the pieces' tokens are the whole
    text's; a stretch of `size` characters with no such space (text without spaces) is cut where it ends."""
    size, start = size or PIECE_CHARS, 0
    while len(text) - start > size:
        lo, cut = start + size // 2, start + size
        space = text.rfind(" ", lo, cut)
        while space > lo and text[space - 1].isspace():
            space = text.rfind(" ", lo, space)
        cut = space if space > lo else cut
        yield text[start:cut]
        start = cut
    yield text[start:]
