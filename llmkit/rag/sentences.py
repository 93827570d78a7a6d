"""Sentence splitting for quoting: character spans of the prose sentences of a text.

A full stop ends a sentence only when followed by space and a capital (or digit, quote, bracket)
and not preceded by an abbreviation ("Dr.", "e.g.", "a.m.") or an initial ("J. Watt"). Decimals
("745.7") and dotted names (`os.path`) never split, having no space after the dot. Code is
kept out: fenced or indented blocks, doctest lines, grammar rules, and Markdown headings and
rules are not sentences. Spans index the original text, so a quote can be highlighted in place.
"""

from __future__ import annotations

import re

ABBREVIATIONS = frozenset(
    "dr mr mrs ms mx prof sr jr st mt ft vs etc e.g eg i.e ie cf al approx fig figs no nos vol vols p pp ch sec "
    "inc ltd co corp dept est jan feb mar apr jun jul aug sep sept oct nov dec a.m p.m am pm u.s u.k ca op ed eds".split()
)
_BOUNDARY = re.compile(r"[.!?…]+[\"'”’)\]*_]*(?=\s+[\"'“‘(\[`]?[A-Z0-9])")
_CODE_LINE = re.compile(r"\s*(>>>|\.\.\.\s|\$ )|.*::=")
_RULE_OR_HEADING = re.compile(r"\s*(#{1,6}\s|[=*~^_-]{3,}\s*$)")
_FENCE = re.compile(r"\s*(```|~~~)")
_UNDERLINE = re.compile(r"\s*([=\-~^*#\"+`'])\1{2,}\s*$")


def _prose_blocks(text: str) -> list[tuple[int, int]]:
    """(start, end) of paragraphs and list items, skipping code, headings and rules."""
    blocks, start, last_end, in_fence, pos = [], None, 0, False, 0
    lines = text.splitlines(keepends=True)
    underlined = {i for i in range(len(lines) - 1) if lines[i].strip() and _UNDERLINE.match(lines[i + 1])}
    for i, line in enumerate(lines):
        a, b = pos, pos + len(line.rstrip("\r\n"))
        pos += len(line)
        stripped = line.strip()
        if _FENCE.match(line):
            in_fence = not in_fence
        skip = (
            in_fence
            or _FENCE.match(line)
            or not stripped
            or _CODE_LINE.match(line)
            or _RULE_OR_HEADING.match(line)
            or line.startswith(("    ", "\t"))
            or i in underlined  # a reStructuredText heading: its text over a line of = - ~ ...
        )
        item = re.match(r"\s*([-*+]|\d+[.)])\s+", line)  # a list item starts its own block
        if skip or item:
            if start is not None:
                blocks.append((start, last_end))
                start = None
            if skip:
                continue
            a += item.end()
        if start is None:
            start = a
        last_end = b
    if start is not None:
        blocks.append((start, last_end))
    return blocks


def _ends_sentence(text: str, dot: int) -> bool:
    """Whether the punctuation at `dot` ends a sentence (not an abbreviation or an initial)."""
    if text[dot] != ".":
        return True
    word = re.search(r"([A-Za-z][A-Za-z.]*)$", text[max(0, dot - 12) : dot])
    if not word:
        return True
    w = word.group(1)
    if w.lower().rstrip(".") in ABBREVIATIONS or re.fullmatch(r"(?:[A-Z]\.)+[A-Z]", w):
        return False  # "e.g.", "Dr.", and dotted initials such as "R.A." or "U.S.A."
    return not (len(w) == 1 and w.isupper())  # "J. Watt": an initial


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) character spans of every prose sentence in `text`, in reading order."""
    spans = []
    for a, b in _prose_blocks(text):
        start = a
        for m in _BOUNDARY.finditer(text, a, b):
            if _ends_sentence(text, m.start()):
                spans.append((start, m.end()))
                start = m.end()
                while start < b and text[start].isspace():
                    start += 1
        if start < b:
            spans.append((start, b))
    return [(a, b) for a, b in spans if text[a:b].strip()]


def split_sentences(text: str) -> list[str]:
    """The prose sentences of `text`, whitespace-normalised."""
    return [" ".join(text[a:b].split()) for a, b in sentence_spans(text)]


def is_quotable(sentence: str) -> bool:
    """A sentence worth quoting as an answer: a few words, mostly words rather than symbols."""
    words = sentence.split()
    wordy = sum(c.isalnum() or c.isspace() for c in sentence)
    # a short one ending in a colon only announces what follows ("... is equivalent to:", a code block)
    announces = sentence.rstrip().endswith(":") and len(words) < 12
    return len(words) >= 4 and wordy >= 0.75 * len(sentence) and not announces
