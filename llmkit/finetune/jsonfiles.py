"""JSON training files: a file that holds one object instead of records is named with the shape to use, and
the `datasets` JSON loader's own log line on a malformed file is left to llmkit's one-line error."""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from pathlib import Path

from llmkit.errors import UserError
from llmkit.log import without_messages

SHAPES = 'a list of records ([{"text": ..., "label": ...}, ...]) or JSON lines (one such object per line)'


def refuse_one_object(file: str, *, training: bool) -> None:
    """Refuse a .json/.jsonl file that is one JSON object: `datasets` reads it as a single example.

    An object of columns ({"text": [...], "label": [...]}) is refused for any split, as its lists would become
    one example's values; a lone record only for training, where one example cannot be trained on."""
    found = _single_object(Path(file))
    if found is None:
        return
    if any(isinstance(value, list) for value in found.values()):
        columns = ", ".join(f'"{name}": [...]' for name in list(found)[:3])
        raise UserError(
            f"{file} holds one JSON object of columns ({columns}), which "
            f"would be read as a single example; save it as {SHAPES}."
        )
    if training:
        raise UserError(f"{file} holds a single JSON object, one example; training data is {SHAPES}.")


def _single_object(path: Path) -> dict | None:
    """The object a JSON file holds when it holds exactly one object and nothing else (None otherwise)."""
    if path.suffix.lower() not in (".json", ".jsonl"):
        return None
    with path.open(encoding="utf-8", errors="replace") as f:
        first = f.readline()
        if not first.lstrip().startswith("{"):
            return None
        try:
            found = json.loads(first)
        except json.JSONDecodeError:  # an object over several lines (indented): no JSON-lines file looks so
            f.seek(0)
            try:
                found = json.load(f)
            except json.JSONDecodeError:
                return None  # malformed: the loader's error names the line
            return found if isinstance(found, dict) else None
        more = any(line.strip() for line in f)  # stops at the second record of a JSON-lines file
    return found if isinstance(found, dict) and not more else None


def quiet_json_loader() -> AbstractContextManager[None]:
    """While loading data files, leave the `datasets` JSON loader's failure log out (llmkit reports the line)."""
    return without_messages(
        "datasets.packaged_modules.json.json", "Failed to load JSON", "Failed to convert pandas"
    )
