"""The structure of API documentation: field lists, notes and indented lists, so their text reads as prose.

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

Two more kinds of indented text are prose too: notes and warnings (a reStructuredText admonition such as
".. note::" or ".. deprecated:: 2.1", or a Google "Note:" section, with its text indented under it) and
indented list items ("    * delimiter - ... It defaults to ','."), unless a "::" announced them as a
literal block.
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
_ADMONITION = re.compile(
    r"(\s*)\.\.\s+(note|warning|caution|attention|danger|error|important|tip|hint|admonition|deprecated|"
    r"versionadded|versionchanged|versionremoved|seealso)::(.*)$",
    re.I,
)
_GOOGLE_NOTE = re.compile(
    r"(\s*)(Note|Notes|Warning|Warnings|Tip|Hint|Important|Caution|Attention|Danger):\s*$"
)
LIST_ITEM = re.compile(r"(\s*)(?:[-*+]|\d+[.)])\s+(?=\S)")  # "- x", "2) x": group 1 its indent
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


def _numpydoc_without_title(lines: list[str], out: Fields) -> None:
    """numpydoc fields whose section title is not in the text (a chunk cut from the middle of "Parameters"):
    an entry "name : type" with its description indented under it."""
    for i, line in enumerate(lines):
        m = _NUMPYDOC_ENTRY.match(line.strip())
        if not m or not m.group(1) or i in out.entries or i in out.prose or i in out.pointers:
            continue
        under = next((j for j in range(i + 1, len(lines)) if lines[j].strip()), None)
        if under is None or _indent(lines[under]) <= _indent(line) or under in out.entries:
            continue
        out.entries[i] = m.group(1)
        for j in range(under, len(lines)):
            if lines[j].strip() and _indent(lines[j]) <= _indent(line):
                break
            if lines[j].strip():
                out.prose.setdefault(j, _indent(lines[j]))


def _google_body(lines: list[str], i: int, section_indent: int, section: str, out: Fields) -> int:
    """Read a Google section's fields from line i on (indented deeper than `section_indent`); the line after."""
    base = None
    while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > section_indent):
        line = lines[i]
        if line.strip():
            base = _indent(line) if base is None else base
            entry = _GOOGLE_ENTRY.match(line, base) if _indent(line) == base else None
            item = LIST_ITEM.match(line, base) if _indent(line) == base else None
            if entry:
                out.entries[i] = entry.group(1)
                after = entry.end() + len(line[entry.end() :]) - len(line[entry.end() :].lstrip())
                if after < len(line):
                    out.prose[i] = after
            elif item:  # "- Input: (N, *)": a list item describes one thing
                out.prose[i] = item.end()
            elif _indent(line) > base or section in ("Returns", "Return", "Yields"):
                out.prose[i] = _indent(line)
        i += 1
    return i


def _google(lines: list[str], out: Fields) -> None:
    i = 0
    while i < len(lines):
        m = _GOOGLE_SECTION.match(lines[i])
        i += 1
        following = next((line for line in lines[i:] if line.strip()), "")
        if not m or _indent(following) <= len(m.group(1)):  # a section's fields are indented under it
            continue
        out.entries[i - 1] = m.group(2)  # "Args:" heads the section
        i = _google_body(lines, i, len(m.group(1)), m.group(2), out)
    _google_without_title(lines, out)


def _google_without_title(lines: list[str], out: Fields) -> None:
    """A run of Google fields whose section title is not in the text (a chunk cut from the middle of "Args:"):
    two entries at the same indent, each "name (type): ..." or a lower-case "name: ...", the first with its
    description on its line or under it."""
    i = 0
    while i < len(lines):
        line = lines[i]
        entry = _HEADLESS_ENTRY.match(line)
        if not entry or i in out.entries or i in out.prose or not _indent(line):
            i += 1
            continue
        later = (
            j for j in range(i + 1, len(lines)) if lines[j].strip() and _indent(lines[j]) <= _indent(line)
        )
        j = next(later, None)
        if j is None or _indent(lines[j]) != _indent(line) or not _HEADLESS_ENTRY.match(lines[j]):
            i += 1
            continue
        i = _google_body(lines, i, _indent(line) - 1, "", out)


_HEADLESS_ENTRY = re.compile(r"\s+(?:\*{0,2}[A-Za-z_][\w.]*\s*\([^)]*\)|[a-z_][a-z0-9_]*)\s*:(?:\s|$)")


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


def _indented_under(lines: list[str], i: int, base: int) -> list[int]:
    """The lines after line i indented deeper than `base`, up to the first that is not (blank lines inside
    count), leaving out a literal block a line ending in "::" announces."""
    out, literal = [], None
    for j in range(i + 1, len(lines)):
        line = lines[j]
        if line.strip() and _indent(line) <= base:
            break
        if not line.strip():
            continue
        if literal is not None and _indent(line) > literal:
            continue
        literal = _indent(line) if line.rstrip().endswith("::") else None
        out.append(j)
    return out


def _notes(lines: list[str], out: Fields) -> None:
    for i, line in enumerate(lines):
        m = _ADMONITION.match(line) or _GOOGLE_NOTE.match(line)
        if not m or i in out.prose:
            continue
        kind = m.group(2).lower()
        inline = m.group(3).strip() if m.re is _ADMONITION else ""
        if inline and not kind.startswith(("version", "deprecated", "seealso")):
            out.prose[i] = len(line) - len(m.group(3).lstrip())  # ".. note:: The text ...": the text
        else:
            out.pointers.add(i)  # the marker itself (and a version number) is no sentence
        for j in _indented_under(lines, i, len(m.group(1))):
            if kind == "seealso":
                out.pointers.add(j)
            else:
                out.prose.setdefault(j, _indent(lines[j]))


def _lists(lines: list[str], out: Fields) -> None:
    literal = False  # inside a literal block: after a line ending in "::", while indented deeper
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        if _indent(line) == 0:
            literal = line.rstrip().endswith("::")
            continue
        m = LIST_ITEM.match(line)
        if literal or not m or i in out.prose or i in out.entries or i in out.pointers:
            continue
        if len(re.findall(r"[^\W\d_]{2,}", line[m.end() :])) < 2:
            continue  # "- 1", "* x": not a sentence
        out.prose[i] = m.end()
        for j in _indented_under(lines, i, len(m.group(1))):
            if LIST_ITEM.match(lines[j]) and _indent(lines[j]) > len(m.group(1)):
                break  # a nested list: its items are read on their own
            out.prose.setdefault(j, _indent(lines[j]))


def fields(lines: list[str]) -> Fields:
    """The field-list structure of a text given as its lines (without line breaks)."""
    out = Fields()
    _numpydoc(lines, out)
    _numpydoc_without_title(lines, out)
    _google(lines, out)
    _sphinx(lines, out)
    _notes(lines, out)
    _lists(lines, out)
    return out
