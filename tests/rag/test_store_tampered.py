"""A store whose files were edited, swapped or deleted by hand: each is named with what to do, never a traceback,
and a read command never writes a new, empty database in place of a missing one."""

import json
import shutil

import faiss
import numpy as np
import pytest

from llmkit.cli import main as llmkit_main
from llmkit.errors import UserError
from llmkit.rag import Document, Retriever, Store
from tests.rag.helpers import TOPICS


@pytest.fixture(scope="module")
def built(tmp_path_factory, embedder):
    path = tmp_path_factory.mktemp("tampered") / "store"
    store = Store(path, embedder=embedder)
    store.add_documents([Document(n, TOPICS[n], {"source": n}) for n in ("bees.md", "tcp.md")])
    return path


def _copy(built, tmp_path, edit=None):
    """A copy of the built store, its manifest passed through `edit`."""
    path = tmp_path / "copy"
    shutil.copytree(built, path)
    if edit:
        manifest = json.loads((path / "manifest.json").read_text())
        (path / "manifest.json").write_text(json.dumps(edit(manifest)))
    return path


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: [m], "is not a store manifest"),  # a TypeError traceback
        (
            lambda m: {k: v for k, v in m.items() if k != "embedding_model"},
            "no valid embedding_model",
        ),  # KeyError
        (lambda m: {**m, "dim": "384"}, 'no valid dim \\(dim: "384"\\)'),
        (lambda m: {**m, "chunk_tokens": -3}, "no valid chunk_tokens"),
        # the model makes 384: searching a 768 manifest was a ValueError traceback from reshaping the vectors
        (lambda m: {**m, "dim": 768}, "says its vectors have 768 dimensions, but .* makes 384"),
    ],
)
def test_an_edited_manifest_is_named_with_the_fix(built, tmp_path, embedder, edit, message):
    path = _copy(built, tmp_path, edit)
    with pytest.raises(UserError, match=message) as err:
        Store(path, embedder=embedder)
    assert "restore it, or move" in str(err.value)


def test_an_unreadable_calibration_is_dropped_with_a_warning(built, tmp_path, embedder):
    path = _copy(built, tmp_path, lambda m: {**m, "calibration": {"min_score": "x", "generation": 1}})
    with pytest.warns(UserWarning, match="abstention calibration is unreadable"):
        store = Store(path, embedder=embedder)
    assert "calibration" not in store.config  # was a TypeError in the gate at the first question


def test_another_stores_index_is_rebuilt_not_searched(built, tmp_path, embedder):
    path = _copy(built, tmp_path)
    other = faiss.IndexIDMap(faiss.IndexFlatIP(16))  # same generation and count, other dimension
    other.add_with_ids(np.zeros((len(Store(path, embedder=embedder)), 16), np.float32), np.arange(2))
    faiss.write_index(other, str(path / "index.faiss"))
    with pytest.warns(UserWarning, match="has 16-dimensional vectors, not the store's 384; rebuilding"):
        store = Store(path, embedder=embedder)
    assert Retriever(store).search("waggle dance", k=1, mode="dense")[0].doc_id == "bees.md"  # AssertionError


def test_a_deleted_database_is_named_and_not_replaced_by_an_empty_one(built, tmp_path, capsys):
    path = _copy(built, tmp_path)
    for name in ("store.sqlite", "store.sqlite-wal", "store.sqlite-shm"):
        (path / name).unlink(missing_ok=True)
    with pytest.raises(SystemExit) as exit_:  # was "the store is empty; add documents", after making a new db
        llmkit_main(["rag", "ask", "What do bees do?", "--store", str(path)])
    assert exit_.value.code == 2 and "store.sqlite is missing (deleted?)" in capsys.readouterr().err
    assert not (path / "store.sqlite").exists()


def test_a_store_rebuilt_with_another_model_while_served_is_a_503(built, tmp_path, embedder):
    import sqlite3
    import threading
    import urllib.error
    import urllib.request
    from http.server import ThreadingHTTPServer

    from llmkit.rag import RAG
    from llmkit.rag.serve import Service, make_handler

    path = _copy(built, tmp_path)
    httpd = ThreadingHTTPServer(
        ("127.0.0.1", 0), make_handler(Service(RAG(Store(path, embedder=embedder)), "s"))
    )
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    # what `rm -rf store; llmkit rag index docs --store store --embedding_model OTHER` leaves: another model's
    # manifest and a new generation. Its vectors were compared with this model's questions, silently.
    manifest = json.loads((path / "manifest.json").read_text())
    (path / "manifest.json").write_text(json.dumps({**manifest, "embedding_model": "other/model"}))
    with sqlite3.connect(path / "store.sqlite") as db:
        db.execute("UPDATE info SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")
    request = urllib.request.Request(
        f"http://127.0.0.1:{httpd.server_address[1]}/ask", data=b'{"question": "What do bees do?"}'
    )
    try:
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(request, timeout=60)
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert err.value.code == 503
    assert (
        "was rebuilt with embedding model 'other/model'; this process holds"
        in json.loads(err.value.read())["error"]
    )


def test_a_reader_during_a_running_index_is_not_told_of_an_interrupted_save(built, tmp_path, embedder):
    import sqlite3
    import warnings

    from llmkit.rag.layout import writer_lock

    path = _copy(built, tmp_path)
    with sqlite3.connect(path / "store.sqlite") as db:  # what a `rag index` between two saves leaves
        db.execute("UPDATE info SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")
    with writer_lock(path), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Store(path, embedder=embedder)  # it said "behind its database (interrupted save?)" to every reader
    assert not [w for w in caught if "interrupted save" in str(w.message)]
    with pytest.warns(UserWarning, match="behind its database"):  # no writer: an interrupted save it is
        Store(path, embedder=embedder)
