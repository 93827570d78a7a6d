"""What a hostile user found in the store: kills while a store is created or indexed, documents that could
not be removed, and the paths and warnings the command line shows."""

import json
import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import time
import warnings

import pytest

from llmkit.cli import main as llmkit_main
from llmkit.rag import Store
from tests.rag.helpers import TOPICS


def _docs(folder, names=("tcp.md", "bees.md")):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_text(TOPICS[name])
    return folder


def _create_and_die(path, embedder, when):
    """In a forked child: create a store and SIGKILL this very process at `when` (a real kill -9)."""
    import sqlite3 as sq

    from llmkit.rag import store as store_module

    die = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)  # noqa: E731
    if when == "before manifest":
        store_module.Store._save = die  # the database exists, the manifest never will
    else:  # right after the database file appears: 0 bytes and a journal, as the issue saw
        real = sq.connect

        def connect(*args, **kwargs):
            db = real(*args, **kwargs)
            db.execute("PRAGMA journal_mode=WAL")
            die()

        store_module.sqlite3.connect = connect
    Store(path, embedder=embedder)


@pytest.mark.parametrize("when", ["before manifest", "as the database appears"])
def test_a_kill_while_a_store_is_first_created_is_started_over(tmp_path, embedder, capsys, when):
    path = tmp_path / "new"
    child = multiprocessing.get_context("fork").Process(target=_create_and_die, args=(path, embedder, when))
    child.start()
    child.join(60)
    assert child.exitcode == -signal.SIGKILL
    assert (path / "store.sqlite").is_file() and not (path / "manifest.json").exists()

    docs = _docs(tmp_path / "docs")
    llmkit_main(["rag", "index", str(docs), "--store", str(path)])
    captured = capsys.readouterr()
    assert json.loads(captured.out)["documents"] == 2 and "half-created" in captured.err
    assert not (path / ".llmkit-creating").exists()  # the marker of a store being created is gone


def test_a_half_made_store_of_an_older_llmkit_is_recognised(tmp_path, embedder, capsys):
    """No marker file (an older llmkit): a 0-byte database and its journal, nothing else."""
    path = tmp_path / "old"
    path.mkdir()
    (path / "store.sqlite").write_bytes(b"")
    (path / "store.sqlite-journal").write_bytes(b"")
    llmkit_main(["rag", "index", str(_docs(tmp_path / "docs")), "--store", str(path)])
    assert json.loads(capsys.readouterr().out)["documents"] == 2


def test_a_folder_llmkit_did_not_make_is_never_started_over(tmp_path, capsys):
    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    theirs = tmp_path / "their-db"
    theirs.mkdir()
    with sqlite3.connect(theirs / "store.sqlite") as db:  # named like ours, but someone's own data
        db.execute("CREATE TABLE invoices (n INTEGER)")
        db.execute("INSERT INTO invoices VALUES (1)")
    docs = _docs(tmp_path / "docs")
    for folder in (mine, theirs):
        before = {p.name: p.read_bytes() for p in folder.iterdir()}
        with pytest.raises(SystemExit) as exit_:
            llmkit_main(["rag", "index", str(docs), "--store", str(folder)])
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and "is not an llmkit store" in err
        assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_documents_of_deleted_files_can_be_removed(tmp_path, embedder, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    docs = _docs(tmp_path / "docs", ("tcp.md", "bees.md", "tides.md"))
    store = "store"

    def index(*paths):
        llmkit_main(["rag", "index", *paths, "--store", store])
        captured = capsys.readouterr()
        return json.loads(captured.out), captured.err

    index("docs/tcp.md")
    (docs / "tcp.md").unlink()
    stats, err = index("docs/bees.md")  # another file: the deleted one stays, and the user is told
    assert stats["documents"] == 2 and "docs/tcp.md" in err and "llmkit rag remove" in err
    stats, err = index("docs/tcp.md")  # its own path, indexed again: the document of the gone file goes
    assert stats["documents_removed"] == 1 and stats["documents"] == 1 and "no longer exists" in err

    index("docs")
    (docs / "tides.md").unlink()
    llmkit_main(["rag", "remove", "docs/tides.md", "--store", store])  # by path, the file gone
    assert json.loads(capsys.readouterr().out)["documents_removed"] == 1
    llmkit_main(["rag", "remove", "docs/bees.md", "--store", store])  # by the id the store shows
    assert json.loads(capsys.readouterr().out)["documents"] == 0
    with pytest.raises(SystemExit) as exit_:
        llmkit_main(["rag", "remove", "nowhere.md", "--store", store])
    assert exit_.value.code == 2 and "no document" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # a typo is still an error, not a silent no-op
        index("docs/typo.md")
    assert "does not exist" in capsys.readouterr().err


def test_the_folder_beside_the_store_is_removed_by_the_path_it_was_indexed_by(
    tmp_path, embedder, capsys, monkeypatch
):
    # `rag index . --store store`, then `rag remove .`: "no document of store comes from '.'"
    monkeypatch.chdir(_docs(tmp_path / "notes"))
    llmkit_main(["rag", "index", ".", "--store", "store"])
    assert json.loads(capsys.readouterr().out)["documents"] == 2
    with pytest.raises(SystemExit):  # "" is not the working directory's every document
        llmkit_main(["rag", "remove", "", "--store", "store"])
    assert "no document" in capsys.readouterr().err
    for target in (".", str(tmp_path / "notes")):
        llmkit_main(["rag", "index", ".", "--store", "store"])
        capsys.readouterr()
        llmkit_main(["rag", "remove", target, "--store", "store"])
        assert json.loads(capsys.readouterr().out)["documents_removed"] == 2


def test_a_filter_adds_files_and_never_removes_the_others(tmp_path, embedder, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    docs = _docs(tmp_path / "docs", ("tcp.md", "bees.md", "tides.md"))
    (docs / "tides.md").rename(docs / "tides.txt")

    def index(*flags):
        llmkit_main(["rag", "index", "docs", "--store", "store", *flags])
        return json.loads(capsys.readouterr().out)

    assert index("--include", "*.md")["documents"] == 2
    # it removed the two .md documents, indexed before and still there, with exit 0
    stats = index("--include", "*.txt")
    assert stats["documents_removed"] == 0 and stats["documents"] == 3
    (docs / "bees.md").unlink()
    stats = index("--exclude", "tcp.md")  # a file that is gone still goes
    assert stats["documents_removed"] == 1 and stats["documents"] == 2
    # a pattern matching nothing added nothing and exited 0 without a word
    llmkit_main(["rag", "index", "docs", "--store", "store", "--include", "docs/*.md"])
    out, err = capsys.readouterr()
    assert json.loads(out)["documents_added"] == 0
    assert "--include docs/*.md matched no file of docs (patterns match paths relative to it, such as " in err


def test_a_read_only_store_is_not_called_damaged(tmp_path, embedder, monkeypatch):
    """A store on a read-only mount (or another user's) was "unusable; its documents must be indexed again"."""
    from pathlib import Path

    from llmkit.rag import Document
    from llmkit.rag.layout import database_problem

    path = tmp_path / "store"
    Store(path, embedder=embedder).add_documents([Document("a", TOPICS["tcp.md"], {"source": "a"})])
    write_text = Path.write_text

    def read_only(self, *args, **kwargs):
        if self.parent == path:
            raise PermissionError(13, "Permission denied", str(self))
        return write_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", read_only)
    message = str(database_problem(path, sqlite3.OperationalError("unable to open database file")))
    assert "cannot be written (Permission denied" in message and "indexed again" not in message
    monkeypatch.undo()
    damaged = str(database_problem(path, sqlite3.DatabaseError("database disk image is malformed")))
    assert "is damaged" in damaged and "indexed again" in damaged


def test_sources_show_the_path_as_indexed(tmp_path, embedder, capsys, monkeypatch):
    work, outside = tmp_path / "work", tmp_path / "outside"
    _docs(work / "docs", ("tcp.md",))
    _docs(outside, ("castling.md",))
    monkeypatch.chdir(work)
    llmkit_main(["rag", "index", "docs", str(outside), "--store", "runs/store"])
    capsys.readouterr()
    shown = Store("runs/store", embedder=embedder).sources()
    # inside the working directory: as typed; outside it: absolute (never "../outside/...")
    assert sorted(shown.values()) == sorted(["docs/tcp.md", str(outside / "castling.md")])
    llmkit_main(["rag", "ask", "How is a TCP connection set up?", "--store", "runs/store"])
    out = capsys.readouterr().out
    assert "*[1] docs/tcp.md" in out and "../" not in out


# The time rule set to 0 s commits after every embedding group, so on any machine, however fast, the
# run has committed some documents and not yet all when the test kills it.
INDEX_FOR_KILLING = """
import sys
import llmkit.rag.store
from llmkit.cli import main
llmkit.rag.store.COMMIT_EVERY_S = 0.0
main(["rag", "index", sys.argv[1], "--store", sys.argv[2]])
"""


@pytest.mark.slow
def test_indexing_commits_every_few_seconds_so_a_kill_loses_little(tmp_path, embedder, capsys):
    """A real `llmkit rag index` of 60 small documents (one commit batch by size): killed once its first
    commit lands, it keeps whole documents; the re-run finishes the rest; neither run shows a raw warning."""
    docs = tmp_path / "docs"
    docs.mkdir()
    names = list(TOPICS)
    for i in range(60):
        (docs / f"{i:02d}-{names[i % 10]}").write_text(f"Note {i}.\n\n" + TOPICS[names[i % 10]])
    # one paragraph longer than the model's 512 tokens: transformers would warn about it on every run
    (docs / "000-long.md").write_text(" ".join(f"word{i}" for i in range(700)))
    store = tmp_path / "store"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": ""}
    cmd = [sys.executable, "-c", INDEX_FOR_KILLING, str(docs), str(store)]
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline, done = time.monotonic() + 240, 0
        while time.monotonic() < deadline and proc.poll() is None and not done:
            if (store / "manifest.json").is_file():
                with sqlite3.connect(store / "store.sqlite", timeout=30) as db:
                    done = db.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
            time.sleep(0.1)
        assert proc.poll() is None, "nothing was committed before the run ended (commits only by size?)"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    first_output = proc.stderr.read()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kept = Store(store, embedder=embedder)
    n_kept = kept.count_documents()
    assert 1 <= n_kept < 61 and kept.index.ntotal == len(kept)
    chunks_per_doc = kept._db().execute("SELECT COUNT(DISTINCT doc_id) FROM chunks").fetchone()[0]
    assert chunks_per_doc == n_kept  # whole documents only

    llmkit_main(["rag", "index", str(docs), "--store", str(store)])  # the same command, in this process
    rerun = capsys.readouterr()
    stats = json.loads(rerun.out)
    assert stats["documents_unchanged"] == n_kept and stats["documents"] == 61
    for output in (first_output, rerun.err):
        lines = [line for line in output.splitlines() if "indexing:" not in line]  # tqdm's bar
        noisy = [
            line for line in lines if "warn" in line.lower() or "Traceback" in line or "Token indices" in line
        ]
        assert not noisy, noisy


def test_a_damaged_index_is_rebuilt_and_a_damaged_database_is_named(tmp_path, embedder, capsys):
    from llmkit.errors import UserError
    from llmkit.rag import Document

    path = tmp_path / "store"
    Store(path, embedder=embedder).add_documents([Document(n, TOPICS[n], {"source": n}) for n in TOPICS])
    (path / "index.faiss").write_bytes((path / "index.faiss").read_bytes()[:100])  # cut short by a full disk
    with pytest.warns(UserWarning, match="is unreadable .*rebuilding it from the stored embeddings"):
        store = Store(path, embedder=embedder)  # was a RuntimeError traceback from faiss
    assert store.index.ntotal == len(store) > 0
    del store

    database = path / "store.sqlite"
    with sqlite3.connect(database) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # every row in the file itself
    whole = database.read_bytes()
    database.write_bytes(whole[:1000])
    with pytest.raises(UserError, match="store.sqlite is damaged .*malformed.*move .* aside"):
        Store(path, embedder=embedder)  # was a sqlite3.DatabaseError traceback
    # damaged past the pages read on opening: found by the command's first query
    database.write_bytes(whole[: len(whole) // 2] + bytes(len(whole) - len(whole) // 2))
    with pytest.raises(SystemExit) as exit_:
        llmkit_main(["rag", "ask", "What do bees make?", "--store", str(path)])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "is damaged" in err and "Traceback" not in err


def test_two_index_commands_at_once_on_one_new_store_both_finish(tmp_path):
    """Both decided every document was new: the second INSERT failed (sqlite3.IntegrityError, exit 1).
    Now one waits for the other (and says so), then finds every document indexed."""
    docs = tmp_path / "docs"
    docs.mkdir()
    names = list(TOPICS)
    for i in range(40):  # long enough to index that the two runs overlap
        (docs / f"{i:02d}-{names[i % 10]}").write_text(f"Note {i}.\n\n" + TOPICS[names[i % 10]])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "llmkit.cli", "rag", "index", str(docs), "--store", str(tmp_path / "store")]
    runs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)]
    runs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs[0][1][-2000:] + outputs[1][1][-2000:]
    assert sorted(json.loads(out)["documents_added"] for out, _ in outputs) == [0, 40]
    db = sqlite3.connect(tmp_path / "store" / "store.sqlite")
    assert db.execute("SELECT COUNT(*) FROM documents").fetchone()[0] == 40
    assert (
        db.execute("SELECT COUNT(*) FROM chunks_fts").fetchone()[0]
        == db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
    )


def test_a_writer_catches_up_with_another_and_an_upload_never_waits(tmp_path, embedder):
    import threading

    from llmkit.errors import UserError
    from llmkit.rag import Document
    from llmkit.rag.layout import writer_lock

    names = list(TOPICS)
    first = Store(tmp_path / "store", embedder=embedder)
    second = Store(tmp_path / "store", embedder=embedder)  # another process's handle
    second.add_documents([Document(n, TOPICS[n], {"source": n}) for n in names[:5]])
    first.add_documents([Document(n, TOPICS[n], {"source": n}) for n in names[5:]])
    # the first one's index holds the second one's chunks too: it was saved with only its own
    assert first.index.ntotal == len(first) == len(Store(tmp_path / "store", embedder=embedder))

    held, release = threading.Event(), threading.Event()

    def hold():  # a `llmkit rag index` in the middle of its run
        with writer_lock(first.path):
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(30)
    try:
        with pytest.raises(UserError, match="another process is writing to the store"):
            first.add_documents([Document("new.md", "Otters hold hands.", {})], wait=False)
    finally:
        release.set()
        holder.join()
    assert first.add_documents([Document("new.md", "Otters hold hands.", {})])["documents_added"] == 1


def test_a_document_found_through_a_deleted_link_goes_when_its_folder_is_reindexed(
    tmp_path, embedder, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    _docs(tmp_path / "docs", ("tcp.md",))
    _docs(tmp_path / "elsewhere", ("bees.md", "tides.md"))
    (tmp_path / "docs" / "bees.md").symlink_to(tmp_path / "elsewhere" / "bees.md")
    (tmp_path / "docs" / "tides.md").symlink_to(tmp_path / "elsewhere" / "tides.md")

    def index():
        llmkit_main(["rag", "index", "docs", "--store", "store"])
        return json.loads(capsys.readouterr().out)

    assert index()["documents"] == 3
    # a linked file's id is its target's (elsewhere/...), outside docs/: it stayed when the link went, and was cited
    (tmp_path / "docs" / "bees.md").unlink()
    (tmp_path / "docs" / "tides.md").unlink()
    (tmp_path / "docs" / "tides.md").symlink_to(tmp_path / "elsewhere" / "bees.md")  # pointed elsewhere
    stats = index()
    assert stats["documents_removed"] == 1 and stats["documents_added"] == 0 and stats["documents"] == 2
    assert sorted(Store("store", embedder=embedder).sources()) == ["docs/tcp.md", "elsewhere/bees.md"]


def test_a_second_rag_index_says_it_waits_for_the_first(tmp_path, embedder, capsys, monkeypatch):
    import threading

    from llmkit.rag.layout import writer_lock

    monkeypatch.chdir(_docs(tmp_path / "docs").parent)
    llmkit_main(["rag", "index", "docs/tcp.md", "--store", "store"])
    held = threading.Event()

    def hold():  # a `llmkit rag index` of another process, a second from its end
        with writer_lock(tmp_path / "store"):
            held.set()
            time.sleep(1)

    threading.Thread(target=hold).start()
    held.wait(30)
    capsys.readouterr()
    llmkit_main(["rag", "index", "docs/bees.md", "--store", "store"])  # it waited without a word
    out, err = capsys.readouterr()
    assert "another process is writing to the store" in err and json.loads(out)["documents"] == 2
