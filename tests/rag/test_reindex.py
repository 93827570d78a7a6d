"""Re-indexing after a document changed: no old text of it may still be cited."""

import json

from llmkit.cli import main as llmkit_main
from llmkit.rag import Store
from tests.rag.helpers import TOPICS


def test_a_file_named_by_path_and_now_skipped_loses_its_old_text(tmp_path, embedder, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "docs").mkdir()
    for name in ("bees.md", "tcp.md"):
        (tmp_path / "docs" / name).write_text(TOPICS[name])
    llmkit_main(["rag", "index", "docs/bees.md", "docs/tcp.md", "--store", "store"])
    capsys.readouterr()
    (tmp_path / "docs" / "bees.md").write_text("")  # emptied: "skipped", and its old text was still cited
    llmkit_main(["rag", "index", "docs/bees.md", "--store", "store"])
    out, err = capsys.readouterr()
    assert json.loads(out)["documents_removed"] == 1 and "skipped docs/bees.md: empty file" in err
    assert "docs/bees.md was skipped; removed its previously indexed text" in err
    assert sorted(Store("store", embedder=embedder).sources()) == ["docs/tcp.md"]
    # a filter picks what to add, never what to keep: a file it leaves out stays
    llmkit_main(["rag", "index", "docs/tcp.md", "--store", "store", "--exclude", "tcp*"])
    assert json.loads(capsys.readouterr().out)["documents"] == 1


def test_a_file_given_twice_is_read_and_counted_once(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "bees.md").write_text(TOPICS["bees.md"])
    (tmp_path / "docs" / "empty.md").write_text("")
    llmkit_main(["rag", "index", "docs", "docs/bees.md", "docs/empty.md", "docs", "--store", "store"])
    out, err = capsys.readouterr()
    stats = json.loads(out)  # a new store of one document reported documents_unchanged 3
    assert (stats["documents_added"], stats["documents_unchanged"], stats["documents"]) == (1, 0, 1)
    assert err.count("skipped docs/empty.md: empty file") == 1  # was warned of once per path naming it


def test_a_folder_with_no_file_to_index_is_said_for_an_existing_store_too(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for folder, name, text in (("docs", "bees.md", TOPICS["bees.md"]), ("word", "report.docx", "not read")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / name).write_text(text)
    llmkit_main(["rag", "index", "docs", "--store", "store"])
    capsys.readouterr()
    llmkit_main(["rag", "index", "word", "--store", "store"])  # added nothing, exit 0, without a word
    out, err = capsys.readouterr()
    assert json.loads(out)["documents"] == 1
    assert "warning: no file to index in word (llmkit reads .htm .html" in err and "nothing was added" in err


def test_a_built_in_store_whose_build_was_stopped_is_finished_on_the_next_start(
    tmp_path, embedder, capsys, monkeypatch
):
    from llmkit.rag import pipeline
    from tests.rag.helpers import topic_documents

    docs = topic_documents()[:3]
    monkeypatch.setattr(pipeline, "builtin_knowledge_base", lambda: docs)
    # the app's first start, stopped after one document was committed: served as whole ever after
    Store(tmp_path / "builtin", embedder=embedder).add_documents(docs[:1])
    store = pipeline.open_store(tmp_path / "builtin", builtin=True, progress=False)
    assert store.count_documents() == 3 and "continuing the built-in" in capsys.readouterr().out
    assert pipeline.open_store(tmp_path / "builtin", builtin=True).count_documents() == 3
    assert capsys.readouterr().out == ""  # built: nothing to say, nothing added
    # the user's own documents at that path are not topped up with the built-in ones
    Store(tmp_path / "own", embedder=embedder).add_documents(topic_documents()[5:6])
    assert pipeline.open_store(tmp_path / "own", builtin=True).count_documents() == 1
