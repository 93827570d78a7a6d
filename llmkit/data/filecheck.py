"""Find which input file `datasets` choked on, and why: binary data, a non-UTF-8 encoding, a bad JSON line or
CSV row.

`load_dataset` reports a failure as one DatasetGenerationError for the whole set of files. These
checks run only after such a failure (a corpus that loads pays nothing) and name the file, the line
and the fix.
"""

from __future__ import annotations

import codecs
import csv
import json
from pathlib import Path

CHUNK = 1 << 20  # bytes read at a time: files of any size are checked in constant memory
BINARY_PROBE = 8192  # a NUL byte in a file's first 8 KiB marks it as binary (git's rule too)


def find_bad_file(files: list[str], builder: str) -> str | None:
    """The first problem found in `files` read as `builder` ('text', 'json', 'csv'), as a message; None if none."""
    if builder not in ("text", "json", "csv"):
        return None
    for file in files:
        problem = check_encoding(file)
        if problem is None and builder == "json":
            problem = check_json(file)
        if problem is None and builder == "csv":
            problem = check_csv(file)
        if problem:
            return problem
    return None


def check_encoding(file: str) -> str | None:
    """Say where and how a file is not UTF-8 text (binary data, or another encoding); None when it is."""
    path = Path(file)
    with path.open("rb") as f:
        head = f.read(BINARY_PROBE)
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return (
                f"{file} is UTF-16 text (it starts with a UTF-16 byte-order mark), not UTF-8. Convert it, e.g. "
                f"`iconv -f utf-16 -t utf-8 {file} > fixed.txt`, or remove it."
            )
        if b"\0" in head:
            if _looks_utf16(head):
                return (
                    f"{file} looks like UTF-16 text without a byte-order mark (every other byte is 0), not "
                    f"UTF-8. Convert it, e.g. `iconv -f utf-16le -t utf-8 {file} > fixed.txt`, or remove it."
                )
            nul = head.index(b"\0")
            return (
                f"{file} is a binary file (a NUL byte at offset {nul}), not text; "
                "remove it from the training files or folder."
            )
        f.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")()
        offset, newlines = 0, 0
        while chunk := f.read(CHUNK):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as err:
                bad = offset + err.start
                line = newlines + chunk.count(b"\n", 0, max(err.start, 0)) + 1
                return (
                    f"{file}:{line}: not UTF-8 (byte 0x{chunk[err.start]:02x} at offset {bad}); "
                    f"{_guess_encoding(path)}. Convert it, e.g. `iconv -f latin1 -t utf-8 "
                    f"{file} > fixed.txt`, or remove it."
                )
            offset += len(chunk)
            newlines += chunk.count(b"\n")
    return None


def has_nul(file: str) -> bool:
    """Whether a NUL byte lies in the file's first 8 KiB: binary, or UTF-16, never UTF-8 text."""
    with open(file, "rb") as f:
        return b"\0" in f.read(BINARY_PROBE)


def _looks_utf16(head: bytes) -> bool:
    # ASCII-range text in UTF-16 has a 0 in (nearly) every high byte: the odd bytes (LE) or the even ones (BE)
    return max(head[1::2].count(0), head[0::2].count(0)) > 0.4 * len(head) / 2


def _guess_encoding(path: Path) -> str:
    with path.open("rb") as f:
        sample = f.read(CHUNK)
    try:
        sample.decode("cp1252")
        return "it looks like Windows-1252 / Latin-1 text"
    except UnicodeDecodeError:
        return "its encoding is not one llmkit recognises"


def check_json(file: str) -> str | None:
    """Locate the first malformed record of a JSON-lines (or JSON) file as file:line."""
    path = Path(file)
    with path.open(encoding="utf-8") as f:
        first = f.read(1).strip() if path.suffix.lower() == ".json" else ""
    if first in ("[", "{") and path.suffix.lower() == ".json":
        try:  # a whole-file JSON document (array or object) is also valid input
            json.loads(path.read_text(encoding="utf-8"))
            return None
        except json.JSONDecodeError:
            pass
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line.rstrip("\r\n"))
            except json.JSONDecodeError as err:
                return (
                    f"{file}:{number}: malformed JSON ({err.msg}, column {err.colno}): {line.strip()[:80]!r}; "
                    "fix or remove that line (JSON-lines files hold one object per line)."
                )
            if not isinstance(record, dict):
                return f'{file}:{number}: a JSON {type(record).__name__}, not an object with a text field; each line must be {{"text": ...}}.'
    return None


def check_csv(file: str) -> str | None:
    """Locate the first CSV row with more fields than its header (pandas refuses those) as file:line."""
    with open(file, encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        try:
            header = next(reader, [])
            for row in reader:
                if len(row) > len(header):
                    return (
                        f"{file}:{reader.line_num}: {len(row)} fields where the header has {len(header)} "
                        f'({", ".join(header)}); quote a field that holds a comma ("a, b") or fix that row.'
                    )
        except csv.Error:  # not CSV that Python reads either: the caller's general message stands
            return None
    return None
