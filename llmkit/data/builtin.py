"""The built-in corpus: documentation that ships with CPython, read at run time (never copied in).

Two sources, both plain English prose about Python:
- `pydoc_data.topics`: the language-reference topics behind `help("for")` (~465 KB);
- the docstrings of the standard library, read with `ast` so no module is imported.

Parsing the standard library takes seconds, and every process of a launched run would pay them, so the
result is kept in `$XDG_CACHE_HOME/llmkit` (default `~/.cache/llmkit`), one file per Python build and
corpus rule; `LLMKIT_CACHE` names another folder. An unwritable or damaged cache is just read around.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import os
import sys
import sysconfig
from pathlib import Path

from llmkit.record import write_atomic

# Packages that are tests, GUIs or bundled tools rather than library documentation.
_SKIP_DIRS = {
    "test",
    "tests",
    "idlelib",
    "lib2to3",
    "site-packages",
    "tkinter",
    "turtledemo",
    "ensurepip",
    "__pycache__",
}
MIN_DOCSTRING_CHARS = 200  # shorter docstrings are mostly one-liners with little prose
_KEYS = {"id", "title", "source", "text"}
FORMAT = 1  # raised whenever what builtin_documents returns changes: older cache files are not read


def cache_file() -> Path:
    """Where the parsed corpus of this Python build is kept."""
    root = os.environ.get("LLMKIT_CACHE") or Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "llmkit"
    )
    build = (
        f"{FORMAT} {sys.version} {sysconfig.get_paths()['stdlib']} {sorted(_SKIP_DIRS)} {MIN_DOCSTRING_CHARS}"
    )
    return Path(root) / f"builtin-corpus-{hashlib.sha256(build.encode()).hexdigest()[:16]}.json"


@functools.lru_cache(maxsize=1)
def builtin_documents() -> tuple[dict, ...]:
    """Return the built-in corpus as records {"id", "title", "source", "text"}, in a fixed order."""
    try:
        path = cache_file()
    except RuntimeError:  # no home folder to keep it in
        path = None
    try:
        kept = json.loads(path.read_text(encoding="utf-8")) if path else None
        if isinstance(kept, list) and kept and all(isinstance(d, dict) and d.keys() == _KEYS for d in kept):
            return tuple(kept)
    except (OSError, ValueError):
        pass  # not made yet, or damaged: parse again
    docs = _parse()
    try:
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, json.dumps(docs))
    except OSError:
        pass  # a read-only cache folder: parsed each time, as before
    return docs


def _parse() -> tuple[dict, ...]:
    from pydoc_data.topics import topics

    docs = [
        {
            "id": f"topic:{name}",
            "title": f"Python language reference: {name}",
            "source": "pydoc_data.topics",
            "text": text.strip(),
        }
        for name, text in sorted(topics.items())
    ]
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(stdlib.rglob("*.py")):
        rel = path.relative_to(stdlib)
        if _SKIP_DIRS.intersection(rel.parts):
            continue
        module = ".".join(rel.with_suffix("").parts).removesuffix(".__init__")
        docs.extend(_docstrings(path, module, str(rel)))
    return tuple(docs)


def _docstrings(path: Path, module: str, source: str) -> list[dict]:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError, ValueError):
        return []
    found = []
    for node, qualname in _walk(tree, module):
        text = ast.get_docstring(node)
        if text and len(text) >= MIN_DOCSTRING_CHARS:
            found.append(
                {
                    "id": f"doc:{qualname}",
                    "title": qualname,
                    "source": f"stdlib/{source}",
                    "text": text.strip(),
                }
            )
    return found


def _walk(node: ast.AST, qualname: str):
    """Yield (node, dotted name) for the module and every class and function inside it."""
    yield node, qualname
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            yield from _walk(child, f"{qualname}.{child.name}")


def builtin_texts() -> list[str]:
    """Return just the texts of the built-in corpus."""
    return [doc["text"] for doc in builtin_documents()]
