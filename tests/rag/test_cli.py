"""`llmkit rag index|ask|eval` end to end, in process."""

import io
import json

import pytest

from llmkit.cli import main as llmkit_main
from tests.rag.helpers import QUESTIONS, TOPICS


@pytest.fixture
def docs_folder(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    for name, text in TOPICS.items():
        (folder / name).write_text(text)
    (folder / "blob.txt").write_bytes(b"\x00\x01\x02")
    return folder


def test_index_ask_eval(docs_folder, tmp_path, capsys):
    store = str(tmp_path / "store")
    llmkit_main(["rag", "index", str(docs_folder), "--store", store])
    captured = capsys.readouterr()
    stats = json.loads(captured.out)
    assert stats["documents"] == len(TOPICS) and stats["chunks_embedded"] >= len(TOPICS)
    assert "skipped" in captured.err and "blob.txt" in captured.err

    llmkit_main(["rag", "index", str(docs_folder), "--store", store, "--chunk_tokens", "64"])
    # unchanged folder: nothing re-embedded; a chunk size only a new store takes is said to be ignored (it was
    # ignored without a word)
    captured = capsys.readouterr()
    assert json.loads(captured.out)["chunks_embedded"] == 0
    assert (
        "--chunk_tokens 64 is ignored: the store" in captured.err
        and "keeps the 160 it was made" in captured.err
    )

    llmkit_main(["rag", "ask", QUESTIONS[5][0], "--store", store, "--json", "--k", "3"])
    result = json.loads(capsys.readouterr().out)
    assert (
        set(result) == {"answer", "citations", "abstained", "span", "sources"}
        and result["abstained"] is False
    )
    first = result["citations"][0]
    assert set(first) == {"n", "doc_id", "source", "page", "sentence", "score"}
    assert first["n"] == 1 and first["doc_id"] == "docs/rebase.md" and first["page"] is None
    assert "re-applies them" in first["sentence"] and first["sentence"] in result["answer"]
    assert result["sources"][0]["doc_id"] == "docs/rebase.md"

    llmkit_main(["rag", "ask", "Who won the 2018 FIFA World Cup?", "--store", store, "--json"])
    result = json.loads(capsys.readouterr().out)
    assert result["abstained"] is True and result["citations"] == [] and "[" not in result["answer"]

    llmkit_main(["rag", "ask", QUESTIONS[5][0], "--store", store])
    out = capsys.readouterr().out
    # the source as the user indexed it: the folder lies outside the working directory, so an absolute path
    assert "Sources:" in out and f"*[1] {docs_folder}/rebase.md" in out and "../" not in out

    qa = tmp_path / "qa.jsonl"
    qa.write_text("\n".join(json.dumps({"question": q, "doc_id": f"docs/{d}"}) for q, d in QUESTIONS))
    llmkit_main(["rag", "eval", "--store", store, "--qa", str(qa)])
    report = json.loads(capsys.readouterr().out)
    assert set(report) == {"dense", "lexical", "hybrid"}
    assert report["hybrid"]["hit@5"] == 1.0 and report["dense"]["mrr@10"] > 0.8
    assert report["hybrid"]["latency_ms_p95"] > 0


def test_rag_user_errors(tmp_path, capsys, embedder):
    from llmkit.rag import Store

    Store(tmp_path / "empty", embedder=embedder)  # a valid store with no documents yet
    (tmp_path / "nothing").mkdir()  # a folder with no file to index
    (tmp_path / "nothing" / "notes.docx").write_text("not a type llmkit reads")
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "kettles.md").write_text("Kettles boil water.")
    for argv, message in [
        (["rag", "index", "--store", str(tmp_path / "s")], "give files or folders"),
        (["rag", "index", str(tmp_path / "nope"), "--store", str(tmp_path / "s")], "does not exist"),
        (["rag", "index", str(tmp_path / "nothing"), "--store", str(tmp_path / "s")], "no file to index in"),
        (["rag", "ask", "hi", "--store", str(tmp_path / "nowhere")], "no store at"),
        # the Hub client's "Repo id must use alphanumeric chars" for a folder that is not there
        (
            [
                "rag",
                "index",
                str(tmp_path / "one"),
                "--store",
                str(tmp_path / "e2"),
                "--embedding_model",
                "./no",
            ],
            "no folder at ./no (it does not exist); pass an existing folder or a Hub name. Check --embedding_model.",
        ),
        (["rag", "eval", "--store", str(tmp_path / "empty"), "--qa", "x.jsonl"], "is empty"),
        (
            ["rag", "ask", "hi", "--store", "s", "--min_score", "-5"],
            "--min_score: must be a cosine in [-1, 1]",
        ),
        # the paths were ignored, silently, and the built-in docs indexed alone
        (
            ["rag", "index", str(tmp_path / "one"), "--builtin", "--store", str(tmp_path / "b")],
            "--builtin indexes the built-in knowledge base alone; index ",
        ),
        # no mode at all printed {} and exited 0
        (
            ["rag", "eval", "--store", str(tmp_path / "empty"), "--qa", "x.jsonl", "--modes"],
            "expected at least one",
        ),
        # a question that cannot be asked is an error before any model loads, not a reply that exits 0
        (["rag", "ask", " ", "--store", str(tmp_path / "empty")], "the question is empty; ask one"),
        (["rag", "ask", "why? " * 500, "--store", str(tmp_path / "empty")], "2,500 characters long; keep it"),
        (["rag", "ask", "", "--server", "http://127.0.0.1:9"], "the question is empty"),
        # a non-UTF-8 terminal's byte (kept by Python as a lone surrogate) was a tokenizer TypeError traceback
        (["rag", "ask", "caf\udce9?", "--store", str(tmp_path / "empty")], "bytes that are not UTF-8 text"),
        (["rag", "ask", "caf\udce9?", "--server", "http://127.0.0.1:9"], "bytes that are not UTF-8 text"),
        # flags only a local pipeline uses were silently ignored with --server
        (
            ["rag", "ask", "hi", "--server", "http://127.0.0.1:9", "--min_score", "0.9"],
            "--min_score cannot apply",
        ),
        (
            ["rag", "ask", "hi", "--server", "http://h:9", "--store", "s", "--generator", "openai"],
            "--store, --gen",
        ),
        # bind() raised OverflowError once the models had loaded
        (
            ["rag", "serve", "--store", str(tmp_path / "empty"), "--port", "70000"],
            "port number from 0 to 65535",
        ),
    ]:
        with pytest.raises(SystemExit) as exit_:
            llmkit_main(argv)
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and message in err and "Traceback" not in err, (argv, err)
    assert not (tmp_path / "s").exists()  # nothing was written for any of them
    assert not (tmp_path / "e2").exists()  # the model that did not load left no empty store folder


def test_a_reader_without_a_trained_qa_head_is_refused(topic_store, tmp_path, capsys):
    from llmkit.finetune.common import packaged_minilm

    missing = str(tmp_path / "no-such-reader")
    for reader, message in [
        (
            packaged_minilm(),
            "is not a question-answering model: qa_outputs.bias, qa_outputs.weight would start",
        ),
        (missing, f"no folder at {missing}"),
        (str(tmp_path), "no tokenizer files"),
    ]:
        with pytest.raises(SystemExit) as exit_:
            llmkit_main(
                ["rag", "ask", "How do bees talk?", "--store", str(topic_store.path), "--reader", reader]
            )
        out, err = capsys.readouterr()
        assert exit_.value.code == 2 and message in err and "Traceback" not in err, err
        assert "Sources:" not in out  # no answer from a random head


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--reader_threshold", "1.5"], "--reader_threshold applies to a reader; pass --reader"),
        (["--min_score", "nan"], "--min_score: must be a finite number, got nan"),
        (["--reader_threshold", "inf", "--reader", "r"], "--reader_threshold: must be a finite number"),
    ],
)
def test_thresholds_that_could_not_act_are_refused(flags, message, topic_store, capsys):
    with pytest.raises(SystemExit) as exit_:
        llmkit_main(["rag", "ask", "How do bees talk?", "--store", str(topic_store.path), *flags])
    out, err = capsys.readouterr()
    assert exit_.value.code == 2 and message in err and "Traceback" not in err, err
    assert "Sources:" not in out


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--reader_threshold", "nan", "--reader", "r"], "--reader_threshold: must be a finite number"),
        (["--min_score", "inf"], "--min_score: must be a finite number"),
        (["--k", "0"], "--k: must be a positive integer"),
    ],
)
def test_the_app_refuses_the_thresholds_rag_ask_refuses(flags, message, tmp_path, capsys):
    # --reader_threshold nan was taken: no span score is <= nan, so the reader never abstained
    with pytest.raises(SystemExit) as exit_:
        llmkit_main(["app", "rag-chat", "--store", str(tmp_path / "none"), *flags])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and message in err and "Traceback" not in err, err


def test_the_app_names_a_port_in_use_before_it_loads_anything(tmp_path, capsys):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        with pytest.raises(SystemExit) as exit_:  # said after the models (and the built-in store) had loaded
            llmkit_main(["app", "rag-chat", "--store", str(tmp_path / "none"), "--port", port])
    err = capsys.readouterr().err
    assert (
        exit_.value.code == 2 and f"cannot serve on 127.0.0.1, port {port}" in err and "no store" not in err
    )


def test_rag_eval_refuses_questions_it_cannot_score_truly(topic_store, tmp_path, capsys):
    good = json.dumps({"question": "How do bees talk?", "doc_id": "bees.md"})
    for lines, message in [
        ([json.dumps({"question": 5, "doc_id": "bees.md"})], ':1: expected {"question": "a question"'),
        ([good, json.dumps([{"question": "q", "doc_id": "bees.md"}])], ":2: expected"),
        ([json.dumps({"question": " ", "doc_id": "bees.md"})], ":1: expected"),
        # a string as doc_ids was read letter by letter ("doc_ids the store does not have: 'a', 'b', ...")
        ([json.dumps({"question": "q", "doc_ids": "bees.md"})], ":1: expected"),
        ([json.dumps({"question": "q", "doc_ids": []})], ":1: expected"),
        # the file's bytes were replaced by U+FFFD: another question was scored, silently
        (['{"question": "caf\udce9?", "doc_id": "bees.md"}'], ":1 is not UTF-8 text; convert the file"),
        # `ask` and `serve` refuse a question this long; eval ran it (100 KB) and scored it
        (
            [good, json.dumps({"question": "bees " * 20_000, "doc_id": "bees.md"})],
            ":2: the question is 100,000 characters long; keep each under 2,000",
        ),
        # a TypeError traceback from the tokenizer
        (['{"question": "hi \\ud800", "doc_id": "bees.md"}'], ":1: the question holds an unpaired surrogate"),
        # every question would count as a miss: hit@k of 0 that says nothing about retrieval
        (
            [good, json.dumps({"question": "q", "doc_id": "docs/bees.md"})],
            "doc_ids the store does not have: 'docs/",
        ),
    ]:
        qa = tmp_path / "qa.jsonl"
        qa.write_bytes("\n".join(lines).encode("utf-8", "surrogateescape"))
        with pytest.raises(SystemExit) as exit_:
            llmkit_main(["rag", "eval", "--store", str(topic_store.path), "--qa", str(qa)])
        out, err = capsys.readouterr()
        assert exit_.value.code == 2 and message in err and "Traceback" not in err, (lines, err)
        assert "hit@1" not in out
    with pytest.raises(SystemExit):
        llmkit_main(["rag", "eval", "--store", str(topic_store.path), "--qa", str(tmp_path)])
    assert f"{tmp_path} is a folder; pass a JSONL file" in capsys.readouterr().err


def test_rag_eval_counts_doc_id_beside_doc_ids(topic_store, tmp_path, capsys):
    qa = tmp_path / "qa.jsonl"  # the "doc_id" was ignored when "doc_ids" was there: a hit on it was a miss
    qa.write_text(json.dumps({"question": "How do bees talk?", "doc_id": "bees.md", "doc_ids": ["tcp.md"]}))
    llmkit_main(["rag", "eval", "--store", str(topic_store.path), "--qa", str(qa), "--modes", "dense"])
    assert json.loads(capsys.readouterr().out)["dense"]["hit@1"] == 1.0


def test_the_chat_and_app_reply_to_a_question_that_is_not_utf8_text():
    from llmkit.rag.pipeline import check_question

    assert "not UTF-8 text" in check_question("caf\udce9?")  # `rag chat` and the app: was a TypeError
    assert check_question("café?") is None


def test_the_chat_shows_no_empty_sources_block_under_a_refused_question(topic_store, capsys, monkeypatch):
    from llmkit.rag.commands import main as rag_main

    monkeypatch.setattr("sys.stdin", io.StringIO("x" * 2500 + "\nHow do bees talk?\n"))
    rag_main(["chat", "--store", str(topic_store.path)])
    refused, answered = capsys.readouterr().out.split("> ")[1:3]
    assert "2,500 characters long" in refused and "Sources:" not in refused  # a heading over nothing
    assert "Sources:" in answered and "bees.md" in answered


def test_rag_ask_source_that_matches_no_document_is_named(topic_store, capsys):
    with pytest.raises(SystemExit) as exit_:  # it answered "The documents hold nothing about that", exit 0
        llmkit_main(["rag", "ask", "How do bees talk?", "--store", str(topic_store.path), "--source", "bees"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert (
        "--source: the source filter 'bees' matches no document: it is matched against the whole source "
        in err
    )
    assert "try '*bees'" in err
    llmkit_main(["rag", "ask", "How do bees talk?", "--store", str(topic_store.path), "--source", "bees*"])
    assert "waggle" in capsys.readouterr().out


def test_a_file_name_holding_a_newline_is_printed_escaped_and_stored_as_is(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "new\nline.md").write_text(TOPICS["bees.md"])
    (tmp_path / "d" / "bad\nname.md").write_bytes(b"\0\0binary")
    llmkit_main(["rag", "index", "d", "--store", "s"])
    err = capsys.readouterr().err
    # the name was printed raw: "skipped d/bad" on one line, "name.md: binary file" on the next
    assert "warning: skipped d/bad\\nname.md: binary file" in err, err
    question = "How do bees tell each other where the flowers are?"
    llmkit_main(["rag", "ask", question, "--store", "s"])
    out = capsys.readouterr().out
    assert " *[1] d/new\\nline.md  (score " in out and "\nline.md" not in out, out
    llmkit_main(["rag", "ask", question, "--store", "s", "--json"])
    assert (
        json.loads(capsys.readouterr().out)["sources"][0]["doc_id"] == "d/new\nline.md"
    )  # the id is unchanged
    (tmp_path / "d" / "new\nline.md").unlink()
    (tmp_path / "e.md").write_text(TOPICS["tides.md"])
    llmkit_main(["rag", "index", "e.md", "--store", "s"])  # the note on indexed files now gone names it
    assert "no longer exist: d/new\\nline.md; remove them" in capsys.readouterr().err
