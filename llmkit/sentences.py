"""Sentence splitting for quoting: character spans of the prose sentences of a text.

A full stop ends a sentence only when followed by space and a capital (or digit, quote, bracket)
and not preceded by an abbreviation ("Dr.", "e.g.", "a.m.") or an initial ("J. Watt"). Decimals
("745.7") and dotted names (`os.path`) never split, having no space after the dot. Code is
kept out: fenced or indented blocks, doctest lines, grammar rules, and Markdown headings and
rules are not sentences. Spans index the original text, so a quote can be highlighted in place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from llmkit.docfields import LIST_ITEM, Fields, fields

ABBREVIATIONS = frozenset(
    "dr mr mrs ms mx prof sr jr st mt ft vs etc e.g eg i.e ie cf al approx fig figs no nos vol vols p pp ch sec "
    "inc ltd co corp dept est jan feb mar apr jun jul aug sep sept oct nov dec a.m p.m am pm u.s u.k ca op ed eds".split()
)
_BOUNDARY = re.compile(r"[.!?…]+[\"'”’)\]*_]*(?=\s+[\"'“‘(\[`]?[A-Z0-9])")
_CODE_LINE = re.compile(r"\s*(>>>|\.\.\.\s|\$ )|.*::=")
_RULE_OR_HEADING = re.compile(r"\s*(#{1,6}\s|[=*~^_-]{3,}\s*$)")
_FENCE = re.compile(r"\s*(```|~~~)")
_UNDERLINE = re.compile(r"\s*([=\-~^*#\"+`'])\1{2,}\s*$")


def is_text(text: str) -> bool:
    """Whether `text` can be written as UTF-8: a lone surrogate (a "\\ud800" escape, or a byte of a non-UTF-8
    terminal that Python kept as one) cannot, and failed deep in the tokenizer."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _prose_blocks(text: str) -> list[tuple[int, int]]:
    """(start, end) of paragraphs and list items, skipping code, headings and rules."""
    blocks, start, last_end, in_fence, pos = [], None, 0, False, 0
    lines = text.splitlines(keepends=True)
    underlined = {  # a reStructuredText heading, not a sentence before a Markdown code fence
        i
        for i in range(len(lines) - 1)
        if lines[i].strip() and _UNDERLINE.match(lines[i + 1]) and not _FENCE.match(lines[i + 1])
    }
    doc = fields([line.rstrip("\r\n") for line in lines])  # a docstring's field descriptions are prose
    for i, line in enumerate(lines):
        a, b = pos, pos + len(line.rstrip("\r\n"))
        pos += len(line)
        stripped = line.strip()
        if _FENCE.match(line):
            in_fence = not in_fence
        described = i in doc.prose and not in_fence
        skip = not described and (
            in_fence
            or _FENCE.match(line)
            or not stripped
            or _CODE_LINE.match(line)
            or _RULE_OR_HEADING.match(line)
            or line.startswith(("    ", "\t"))
            or i in underlined  # a reStructuredText heading: its text over a line of = - ~ ...
            or i in doc.entries  # "rcond : float, optional" names a field: a heading, not a sentence
            or i in doc.pointers  # See Also, References: pointers elsewhere, not answers
        )
        item = LIST_ITEM.match(line)  # a list item starts its own block
        if skip or item or i in doc.entries:  # each field's description is a block of its own
            if start is not None:
                blocks.append((start, last_end))
                start = None
            if skip:
                continue
            a += item.end() if item else 0
        if described:
            a = max(a, pos - len(line) + doc.prose[i])
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
    return [span for a, b in _prose_blocks(text) for span in _split(text, a, b)]


def split_sentences(text: str) -> list[str]:
    """The prose sentences of `text`, whitespace-normalised."""
    return [" ".join(text[a:b].split()) for a, b in sentence_spans(text)]


def is_quotable(sentence: str, *, with_what_follows: bool = False) -> bool:
    """A sentence worth quoting as an answer: a few words, mostly words rather than symbols.

    `with_what_follows`: it is quoted together with the code it announces, so a short one ending in
    a colon is quotable too."""
    words = sentence.split()
    wordy = sum(c.isalnum() or c.isspace() for c in sentence)
    # a short one ending in a colon only announces what follows ("... is equivalent to:", a code block)
    announces = sentence.rstrip().endswith(":") and len(words) < 12 and not with_what_follows
    return len(words) >= 4 and wordy >= 0.75 * len(sentence) and not announces


# --- citable units: what an answer quotes ------------------------------------------------------

MAX_CODE_LINES = 6  # of a code block quoted with the sentence that announces it
MAX_CODE_CHARS = 400
MAX_LIST_ITEMS = 3  # of a list quoted with the sentence that announces it
_ANAPHOR = re.compile(r"(It|Its|They|Their|Them|This|These|That|Those|Such|He|She|His|Her)\b")
_DEMONSTRATIVE = re.compile(r"\b(?:this|these|such)\s+([^\W\d_]{3,})", re.I)
_CODE_SIGNAL = re.compile(
    r"^(>>>|\.\.\.|\$ |#|@|def |class |return\b|import |from \S+ import|try:|except\b|else:|elif |"
    r"(if|for|while|with)\b.*:$)|[{};]$|\s=\s|==|->|::=|\w\([^)]*\)$|^\.\. "
)


@dataclass(frozen=True)
class Unit:
    """A citable stretch of text around one prose sentence (offsets index the original text)."""

    start: int  # the span to quote
    end: int
    core: tuple[int, int]  # the sentence itself
    kind: str  # "sentence"; "code": with the code block it announces; "list": with the first items of the
    # list it announces; "field": with the docstring entry it
    # describes ("rcond : float, optional"); "antecedent": with the sentence
    # before it, which its opening pronoun or "this <noun>" refers to; "quote": from an indented prose
    # paragraph (a quoted passage in reStructuredText), which plain sentence splitting leaves out


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def _lines(text: str) -> list[tuple[int, int]]:
    """(start, end) of each line, without its line break."""
    out, pos = [], 0
    for line in text.splitlines(keepends=True):
        out.append((pos, pos + len(line.rstrip("\r\n"))))
        pos += len(line)
    return out


def _code_after(text: str, lines: list[tuple[int, int]], end: int) -> int | None:
    """Where the code block right after a sentence ending at `end` ends (its last line, capped), or None.

    The sentence must end its line and announce code: end in a colon or in no full stop at all
    ("... is equivalent to"), with an indented, fenced or doctest block after at most blank lines.
    """
    here = next((i for i, (a, b) in enumerate(lines) if a <= end <= b), None)
    if (
        here is None
        or text[end : lines[here][1]].strip()
        or re.search(r"[.!?][\"')\]]*$", text[:end].rstrip())
    ):
        return None
    base = _indent(text[lines[here][0] : lines[here][1]])
    i = here + 1
    while i < len(lines) and not text[lines[i][0] : lines[i][1]].strip():
        i += 1
    if i == len(lines):
        return None
    first = text[lines[i][0] : lines[i][1]]
    fenced = bool(_FENCE.match(first))
    if not (fenced or _indent(first) > base or _CODE_LINE.match(first)):
        return None
    block = []
    for a, b in lines[i + fenced :]:
        line = text[a:b]
        if fenced and _FENCE.match(line):
            break
        if not fenced and line.strip() and _indent(line) <= base and not _CODE_LINE.match(line):
            break
        if line.strip():
            block.append((line.strip(), b))
        if len(block) == MAX_CODE_LINES or (block and block[-1][1] - lines[i][0] > MAX_CODE_CHARS):
            break
    looks_like_code = fenced or any(_CODE_LINE.match(x) or _CODE_SIGNAL.search(x) for x, _ in block)
    if not block or not looks_like_code or any(LIST_ITEM.match(x) for x, _ in block):
        return None  # an indented list or quoted passage is not what a colon announces here
    return block[-1][1]


def _list_after(text: str, lines: list[tuple[int, int]], end: int) -> int | None:
    """Where the list a sentence ending at `end` announces ends ("... these standard types:" then "- frame,
    generator, traceback"), capped like a code block, or None: the sentence ends its line in a colon and a
    list item follows after at most blank lines."""
    here = next((i for i, (a, b) in enumerate(lines) if a <= end <= b), None)
    if here is None or text[end : lines[here][1]].strip() or not text[:end].rstrip().endswith(":"):
        return None
    i = here + 1
    while i < len(lines) and not text[lines[i][0] : lines[i][1]].strip():
        i += 1
    if i == len(lines) or not LIST_ITEM.match(text[lines[i][0] : lines[i][1]]):
        return None
    last, indent, items = lines[i][1], _indent(text[lines[i][0] : lines[i][1]]), 1
    for a, b in lines[i + 1 :]:
        line = text[a:b]
        if not line.strip() or b - lines[i][0] > MAX_CODE_CHARS:
            break
        if _indent(line) < indent or (_indent(line) == indent and not LIST_ITEM.match(line)):
            break
        items += _indent(line) == indent
        if items > MAX_LIST_ITEMS:
            break
        last = b
    return last


def _quoted_paragraphs(text: str, lines: list[tuple[int, int]], taken: set[int]) -> list[tuple[int, int]]:
    """(start, end) of indented paragraphs that are prose, not code: not announced by "::" or a colon-less
    line ending, no line that looks like code or a list item, and ending like a sentence. Lines in `taken`
    (a docstring's field entries and descriptions, read as sentences already, and its pointers) are left out."""
    out, i = [], 0
    while i < len(lines):
        a, b = lines[i]
        if not text[a:b].strip() or not text[a:b].startswith(("    ", "\t")) or i in taken:
            i += 1
            continue
        j = i
        while j + 1 < len(lines) and text[lines[j + 1][0] : lines[j + 1][1]].strip() and j + 1 not in taken:
            j += 1
        body = [text[x:y].strip() for x, y in lines[i : j + 1]]
        before = text[: lines[i][0]].rstrip()
        prose = (
            not before.endswith("::")
            and not any(_CODE_SIGNAL.search(line) or LIST_ITEM.match(line) for line in body)
            and re.search(r"[.!?)][\"')\]]*$", body[-1])
            and len(" ".join(body).split()) >= 6
        )
        if prose and all(text[x:y].startswith(("    ", "\t")) for x, y in lines[i : j + 1]):
            out.append((a + _indent(text[a:b]), lines[j][1]))
        i = j + 1
    return out


def _split(text: str, a: int, b: int) -> list[tuple[int, int]]:
    """Sentence spans of one block of prose text[a:b]."""
    spans, start = [], a
    for m in _BOUNDARY.finditer(text, a, b):
        if _ends_sentence(text, m.start()):
            spans.append((start, m.end()))
            start = m.end()
            while start < b and text[start].isspace():
                start += 1
    if start < b:
        spans.append((start, b))
    return [(x, y) for x, y in spans if text[x:y].strip()]


def _starts_prose(sentence: str) -> bool:
    """Whether a sentence starts as prose does (not a field list's ":Name:", a table rule or a directive)."""
    return sentence[:1].isalpha() or sentence[:1] in "\"'`“‘*"


def _refers_back(sentence: str, previous: str) -> bool:
    """Whether a sentence opens with a pronoun, or names "this/these <noun>" that the sentence before names."""
    if _ANAPHOR.match(sentence):
        return True
    before = {w[:5] for w in re.findall(r"[^\W\d_]+", previous.lower())}
    return any(m.group(1).lower()[:5] in before for m in _DEMONSTRATIVE.finditer(sentence))


def _field_openings(text: str, lines: list[tuple[int, int]], doc: Fields) -> dict[int, int]:
    """Where each docstring field's description starts -> where its entry line's text starts."""
    out = {}
    for k in doc.entries:
        j = (
            k
            if k in doc.prose
            else next((j for j in range(k + 1, len(lines)) if lines[j][0] < lines[j][1]), None)
        )
        if j is not None and j in doc.prose and (j == k or not text[lines[k][1] : lines[j][0]].strip()):
            a = lines[j][0] + doc.prose[j]
            out[a] = lines[k][0] + _indent(text[lines[k][0] : lines[k][1]])
    return out


def unit_text(text: str, unit: Unit) -> str:
    """The unit as an answer quotes it: whitespace-normalised, without the code fence lines inside it."""
    lines = text[unit.start : unit.end].splitlines()
    return " ".join(" ".join(line for line in lines if not _FENCE.match(line)).split())


def answer_units(text: str) -> list[Unit]:
    """The citable units of `text` in reading order: each prose sentence of sentence_spans, joined to the
    code block it announces and to the sentence before it when it refers back to it; then the sentences
    of indented prose paragraphs."""
    lines, spans = _lines(text), sentence_spans(text)
    doc = fields([text[a:b] for a, b in lines])
    opens = _field_openings(text, lines, doc)
    units, code_until = [], -1
    for i, (a, b) in enumerate(spans):
        if a < code_until:  # a line of a code block already quoted with its announcing sentence
            continue
        start, end, kind = a, b, "sentence"
        previous = spans[i - 1] if i else None
        # only whitespace between: the same paragraph or the one before (not a heading, code or list marker)
        adjacent = previous and previous[1] > code_until and not text[previous[1] : a].strip()
        before = text[previous[0] : previous[1]] if adjacent else ""
        core = (a, b)
        if (
            before
            and _starts_prose(before)
            and is_quotable(" ".join(before.split()))
            and _refers_back(text[a:b], before)
        ):
            start, kind = previous[0], "antecedent"
        elif (
            before
            and _starts_prose(before)
            and _starts_prose(text[a:b])
            and len(text[a:b].split()) < 4
            and not text[a:b].rstrip().endswith(":")  # "It can also:" announces what follows
        ):
            # too short to stand alone ("Default: ``1e-15``.", "Defaults to False."): it finishes the one before
            start, kind, core = previous[0], "antecedent", (previous[0], b)
        elif a in opens:  # a field's first sentence is quoted with its entry: "rcond : float, default 1e-15"
            start, kind = opens[a], "field"
        code_end = _code_after(text, lines, b) if _starts_prose(text[a:b]) else None
        list_end = _list_after(text, lines, b) if code_end is None and _starts_prose(text[a:b]) else None
        if code_end is not None:
            end, kind, code_until = code_end, "code", code_end
        elif list_end is not None:  # its items stay sentences of their own: one of them may be the answer
            end, kind = list_end, "list"
        units.append(Unit(start, end, core, kind))
    for a, b in _quoted_paragraphs(text, lines, set(doc.prose) | set(doc.entries) | doc.pointers):
        units.extend(Unit(x, y, (x, y), "quote") for x, y in _split(text, a, b))
    return units


_MD_HEADING = re.compile(r"#{1,6}\s+(.+?)\s*#*\s*$")
_SIGNATURE = re.compile(r"(?:class\s+|def\s+)?([A-Za-z_][\w.]*)\(.*\)(?:\s*->.*)?:?\s*$")


def headings(text: str) -> list[tuple[int, str]]:
    """(offset, title) of each heading of `text`: Markdown "# ..." lines, reStructuredText titles over an
    underline, and API reference lines that are a bare signature ("copystat(src, dst, *, ...)": its name)."""
    out, lines = [], text.splitlines(keepends=True)
    doc, pos = fields([line.rstrip("\r\n") for line in lines]), 0
    for i, line in enumerate(lines):
        stripped = line.strip()
        following = lines[i + 1] if i + 1 < len(lines) else ""
        title = None
        if m := _MD_HEADING.match(stripped):
            title = m.group(1)
        elif (
            stripped
            and _UNDERLINE.match(following)
            and not _FENCE.match(following)
            and not _UNDERLINE.match(line)
        ):
            title = stripped
        elif (m := _SIGNATURE.match(stripped)) and not line.startswith((" ", "\t")) and not following.strip():
            title = m.group(1).rsplit(".", 1)[-1]
        title = doc.entries.get(i, title)  # a docstring field ("rcond : float") heads its description
        if title:
            out.append((pos, title))
        pos += len(line)
    return out
