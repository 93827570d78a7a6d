"""`space build`: a live store ships as one consistent database file, the app's heading follows --title, and
an empty or multi-line title is refused."""

import runpy
import sqlite3
import warnings

import pytest

from llmkit.errors import UserError
from llmkit.rag import Document, Embedder, Store
from llmkit.spaces import TEMPLATES, build_space, validate


def test_a_live_store_ships_checkpointed_without_its_write_ahead_log(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the offline fallback to the packaged MiniLM says so once
        live = Store(tmp_path / "live", embedder=Embedder())
    live.add_documents([Document(f"d{i}.md", f"Document number {i} is about kettles.", {}) for i in range(5)])
    # the store is open (as under a running app or `rag index`): its rows sit in store.sqlite-wal
    assert (live.path / "store.sqlite-wal").stat().st_size > 0
    out = build_space("rag-chat", tmp_path / "space", store=str(live.path))
    shipped = sorted(p.name for p in (out / "store").iterdir())
    assert shipped == ["index.faiss", "manifest.json", "store.sqlite"]
    # one self-contained file: read without any -wal/-shm beside it, it holds every document
    db = sqlite3.connect(f"{(out / 'store' / 'store.sqlite').as_uri()}?mode=ro&immutable=1", uri=True)
    assert db.execute("SELECT COUNT(*) FROM documents").fetchone()[0] == 5
    db.close()
    reopened = Store(out / "store", embedder=live.embedder)
    assert reopened.count_documents() == 5 and reopened.index.ntotal == len(reopened)


def _headings(demo) -> str:
    """The page title and every Markdown text of a gr.Blocks (tabs included)."""
    texts = [str(getattr(demo, "title", ""))]
    texts += [str(b.value) for b in demo.blocks.values() if type(b).__name__ == "Markdown"]
    return "\n".join(texts)


def test_the_app_heading_follows_title_in_every_template(tmp_path, space_artifacts):
    assert set(space_artifacts) == set(TEMPLATES)
    for name, kwargs in space_artifacts.items():
        title = f"Quarterly {name} demo"
        out = build_space(name, tmp_path / name, title=title, **{k: str(v) for k, v in kwargs.items()})
        demo = runpy.run_path(str(out / "app.py"))[
            "demo"
        ]  # builds the app as the Space does, without serving
        assert title in _headings(demo), name
        assert f"title: {title}" in (out / "README.md").read_text()


def test_a_title_that_is_empty_or_not_one_line_is_refused_by_build_and_check(tmp_path, store):
    for bad in ("", "   ", "two\nlines", "tab\there", "crlf\r"):
        with pytest.raises(UserError, match="--title .*(empty|line break)"):
            build_space("rag-chat", tmp_path / "refused", store=str(store), title=bad)
    assert not (tmp_path / "refused").exists()
    # YAML's special characters are quoted, read back as written, and pass check
    odd = "Notes: kettles # and bikes - [v2] {x} 'q' yes"
    out = build_space("rag-chat", tmp_path / "odd", store=str(store), title=odd)
    assert validate(out) == [] and f"# {odd}" in (out / "README.md").read_text()
    # a README edited by hand: check names the title and the fix
    readme = (out / "README.md").read_text()
    for edited in ('title: ""', 'title: "two\\nlines"', "title: 2024"):
        (out / "README.md").write_text(
            readme.replace(f"title: '{odd.replace(chr(39), 2 * chr(39))}'", edited)
        )
        assert any("front matter: title" in p and "one-line title" in p for p in validate(out)), edited
