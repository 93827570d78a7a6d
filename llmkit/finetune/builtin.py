"""Built-in labelled samples for offline fine-tuning, derived at run time from CPython's documentation.

- classification: which part of the standard library a docstring documents (5 classes);
- tagging: mark dotted Python names and calls (`os.path.join`, `open()`) in documentation sentences;
- summarization: a docstring's body -> its one-line summary.
"""

from __future__ import annotations

import random
import re

from llmkit.data.builtin import builtin_documents

# Top-level package -> label. Five areas with 80-130 long docstrings each.
AREAS = {"email": "email", "asyncio": "asyncio", "_pydecimal": "decimal", "turtle": "turtle", "xml": "xml"}
_CODE = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_]\w*)+(\(\))?[,.;:]?$|^[A-Za-z_]\w*\(\)[,.;:]?$")


def classification_sample() -> list[dict]:
    """Rows {"text", "label"}: a docstring and the library area it belongs to."""
    rows = []
    for doc in builtin_documents():
        top = doc["id"].removeprefix("doc:").split(".")[0]
        if doc["id"].startswith("doc:") and top in AREAS:
            rows.append({"text": doc["text"][:500], "label": AREAS[top]})  # ~120 tokens: quick on a CPU
    random.Random(0).shuffle(rows)
    return rows


def tagging_sample(max_rows: int = 1500) -> list[dict]:
    """Rows {"tokens", "tags"}: words of documentation sentences, dotted names and calls tagged B-CODE."""
    rows = []
    for doc in builtin_documents():
        for sentence in re.split(r"(?<=[.!?])\s+", doc["text"]):
            words = sentence.split()
            if not 6 <= len(words) <= 40:
                continue
            tags = ["B-CODE" if _CODE.match(w.strip("`'\"")) else "O" for w in words]
            if "B-CODE" in tags or len(rows) % 3 == 0:  # keep some sentences without entities too
                rows.append({"tokens": words, "tags": tags})
    random.Random(0).shuffle(rows)
    return rows[:max_rows]


def summarization_sample(max_rows: int = 2000) -> list[dict]:
    """Rows {"text", "summary"}: a docstring's body and its first line."""
    rows = []
    for doc in builtin_documents():
        if not doc["id"].startswith("doc:"):
            continue
        first, _, body = doc["text"].partition("\n")
        first, body = first.strip(), " ".join(body.split())
        if 3 <= len(first.split()) <= 20 and first.endswith(".") and len(body.split()) >= 15:
            rows.append({"text": body[:1200], "summary": first})
    random.Random(0).shuffle(rows)
    return rows[:max_rows]
