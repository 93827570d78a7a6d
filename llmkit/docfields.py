"""The structure of API documentation: the field lists of docstrings, so their descriptions read as prose.

A docstring's parameters, return values and exceptions are described in field lists, in one of three
conventions:

    numpydoc                     Google                           Sphinx
    Parameters                   Args:                            :param rcond: Cutoff for small
    ----------                       rcond (float): Cutoff for        singular values.
    rcond : float, optional              small singular values.   :raises LinAlgError: If ...
        Cutoff for small singular
        values.

Plain sentence splitting takes the indented descriptions for code and the entry lines ("rcond : float,
optional") for sentences, so the sentence that answers "What is the default rcond?" is never quoted. Here a
description is prose, its entry names its subject (a heading, like a section title), and a "See Also" or
"References" section, whose lines point elsewhere and answer nothing, is left out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_NUMPYDOC_FIELDS = frozenset(
    {
        "parameters",
        "other parameters",
        "returns",
        "yields",
        "receives",
        "raises",
        "warns",
        "attributes",
        "methods",
    }
)
_POINTERS = frozenset({"see also", "references"})
_UNDERLINE = re.compile(r"\s*-{3,}\s*$")
_GOOGLE_SECTION = re.compile(
    r"(\s*)(Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments|Other Parameters|Returns|Return|"
    r"Yields|Raises|Attributes|Inputs|Outputs|Shape):\s*$"
)
_NUMPYDOC_ENTRY = re.compile(  # "rcond : float", "x, y : int", "(h, tau) : ndarrays", a bare type or exception
    r"(\*{0,2}[A-Za-z_][\w.*]*(?:\s*,\s*\*{0,2}[A-Za-z_]\w*)*|\([\w, ]+\))\s+:(?:\s|$)|([A-Za-z_][\w.]*)\s*$"
)
_GOOGLE_ENTRY = re.compile(r"(\*{0,2}[A-Za-z_][\w.]*)\s*(?:\([^)]*\))?\s*:(?=\s|$)")
_ITEM = re.compile(r"[-*+]\s+")
_SPHINX_ENTRY = re.compile(
    r"\s*:(?:param|parameter|arg|key|keyword|raises?|returns?|var|ivar|cvar)\b([^:]*):"
)


@dataclass
class Fields:
    """Per line index: where its prose starts (a field's description), the field it names (an entry line, a
    heading), or that it points elsewhere (See Also, References)."""

    prose: dict[int, int] = field(default_factory=dict)  # line -> offset in the line where prose starts
    entries: dict[int, str] = field(default_factory=dict)  # line -> the field's name
    pointers: set[int] = field(default_factory=set)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def _numpydoc_sections(lines: list[str]) -> list[tuple[str, int, int]]:
    """(title, first line, end line) of each numpydoc section: a title over a line of dashes."""
    starts = [
        (lines[i].strip().lower(), i + 2)
        for i in range(len(lines) - 1)
        if lines[i].strip() and _UNDERLINE.match(lines[i + 1]) and not _UNDERLINE.match(lines[i])
    ]
    return [
        (title, a, (starts[k + 1][1] - 2) if k + 1 < len(starts) else len(lines))
        for k, (title, a) in enumerate(starts)
    ]


def _numpydoc(lines: list[str], out: Fields) -> None:
    for title, a, b in _numpydoc_sections(lines):
        if title in _POINTERS:
            out.pointers.update(i for i in range(a, b) if lines[i].strip())
            continue
        if title not in _NUMPYDOC_FIELDS:
            continue
        base, entry = None, None
        for i in range(a, b):
            line = lines[i]
            if not line.strip():
                continue
            if base is None:
                base = _indent(line)
            if _indent(line) <= base:
                m = _NUMPYDOC_ENTRY.match(line.strip())
                entry = (m.group(1) or m.group(2)) if m else None
                if entry:
                    out.entries[i] = entry
            elif entry:
                out.prose[i] = _indent(line)


def _google(lines: list[str], out: Fields) -> None:
    i = 0
    while i < len(lines):
        m = _GOOGLE_SECTION.match(lines[i])
        i += 1
        following = next((line for line in lines[i:] if line.strip()), "")
        if not m or _indent(following) <= len(m.group(1)):  # a section's fields are indented under it
            continue
        out.entries[i - 1] = m.group(2)  # "Args:" heads the section
        section_indent, base = len(m.group(1)), None
        while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > section_indent):
            line = lines[i]
            if line.strip():
                base = _indent(line) if base is None else base
                entry = _GOOGLE_ENTRY.match(line, base) if _indent(line) == base else None
                item = _ITEM.match(line, base) if _indent(line) == base else None
                if entry:
                    out.entries[i] = entry.group(1)
                    after = entry.end() + len(line[entry.end() :]) - len(line[entry.end() :].lstrip())
                    if after < len(line):
                        out.prose[i] = after
                elif item:  # "- Input: (N, *)": a list item describes one thing
                    out.prose[i] = item.end()
                elif _indent(line) > base or m.group(2) in ("Returns", "Return", "Yields"):
                    out.prose[i] = _indent(line)
            i += 1


def _sphinx(lines: list[str], out: Fields) -> None:
    entry_indent = None
    for i, line in enumerate(lines):
        m = _SPHINX_ENTRY.match(line)
        if m:
            name = m.group(1).split()[-1] if m.group(1).split() else line.strip().strip(":").split(":")[0]
            out.entries[i] = name
            entry_indent = _indent(line)
            rest = line[m.end() :]
            if rest.strip():
                out.prose[i] = m.end() + len(rest) - len(rest.lstrip())
        elif entry_indent is not None and line.strip() and _indent(line) > entry_indent:
            out.prose[i] = _indent(line)
        elif line.strip():
            entry_indent = None


def fields(lines: list[str]) -> Fields:
    """The field-list structure of a text given as its lines (without line breaks)."""
    out = Fields()
    _numpydoc(lines, out)
    _google(lines, out)
    _sphinx(lines, out)
    return out
