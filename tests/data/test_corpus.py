"""Corpus sources: built-in, local files and folders, and their errors."""

import json

import pandas as pd
import pytest
from datasets import DatasetDict

from llmkit.arguments import parse_args
from llmkit.data import DataArguments, TokenizeArguments, builtin_documents, load_corpus, tokenize_corpus
from llmkit.data.corpus import short_split_error
from llmkit.errors import UserError


def test_builtin_corpus_is_cpython_documentation():
    docs = builtin_documents()
    assert len(docs) > 1000
    titles = {d["title"] for d in docs}
    assert "Python language reference: for" in titles
    assert any(d["source"].startswith("stdlib/") for d in docs)
    assert sum(len(d["text"]) for d in docs) > 1_000_000
    corpus = load_corpus(DataArguments())
    assert len(corpus["validation"]) > 0 and len(corpus["train"]) > 10 * len(corpus["validation"])


def test_builtin_corpus_is_parsed_once_per_python_and_read_back_the_same(tmp_path, monkeypatch):
    from llmkit.data import builtin

    monkeypatch.setenv("LLMKIT_CACHE", str(tmp_path))
    parsed = builtin._parse()
    # A real parse takes seconds: later ones hand back this one's result and are counted instead.
    parses = []
    monkeypatch.setattr(builtin, "_parse", lambda: parses.append(1) or parsed)
    builtin.builtin_documents.cache_clear()
    try:
        assert builtin.builtin_documents() == parsed and builtin.cache_file().parent == tmp_path
        assert builtin.cache_file().is_file() and len(parses) == 1
        builtin.builtin_documents.cache_clear()
        assert builtin.builtin_documents() == parsed and len(parses) == 1  # read back from the file
        builtin.cache_file().write_text('[{"id": "x"}]')  # damaged or from another version: parsed again
        builtin.builtin_documents.cache_clear()
        assert builtin.builtin_documents() == parsed and len(parses) == 2
        assert json.loads(builtin.cache_file().read_text()) == [dict(d) for d in parsed]
    finally:
        builtin.builtin_documents.cache_clear()


def test_local_text_jsonl_parquet_and_folders(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "one.txt").write_text("first paragraph\n\nsecond paragraph\n\nthird paragraph\n")
    (tmp_path / "a" / "two.txt").write_text("fourth paragraph\n\n\n\nfifth\n")
    corpus = load_corpus(DataArguments(train_files=[str(tmp_path / "a")], validation_split_percentage=20))
    assert len(corpus["train"]) + len(corpus["validation"]) == 5

    rows = [{"content": f"text number {i}"} for i in range(10)] + [{"content": "   "}]
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    corpus = load_corpus(DataArguments(train_files=[str(tmp_path / "d.jsonl")], text_column="content"))
    assert corpus["train"].column_names == ["text"]
    assert len(corpus["train"]) + len(corpus["validation"]) == 10  # the blank row is dropped

    pd.DataFrame({"text": [f"row {i}" for i in range(8)]}).to_parquet(tmp_path / "p.parquet")
    corpus = load_corpus(DataArguments(train_files=[str(tmp_path / "p.parquet")]))
    assert len(corpus["train"]) + len(corpus["validation"]) == 8


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: DataArguments(train_files=[str(p / "missing.txt")]), "does not exist"),
        (
            lambda p: (p / "e.txt").write_text("") and None or DataArguments(train_files=[str(p / "e.txt")]),
            "empty",
        ),
        (
            lambda p: (
                (p / "w.txt").write_text("\n\n  \n") and None or DataArguments(train_files=[str(p / "w.txt")])
            ),
            "no non-empty documents",
        ),
        (
            lambda p: (
                (p / "x.jsonl").write_text('{"a": "b"}\n{"a": "c"}')
                and None
                or DataArguments(train_files=[str(p / "x.jsonl")])
            ),
            "no column 'text'",
        ),
        (
            lambda p: (p / "f.pdf").write_text("x") and None or DataArguments(train_files=[str(p / "f.pdf")]),
            "unsupported file type",
        ),
        (lambda p: DataArguments(dataset_name="no-such/dataset-here"), "could not load dataset"),
    ],
)
def test_bad_corpus_gets_a_clear_error(tmp_path, setup, message):
    with pytest.raises(UserError, match=message):
        load_corpus(setup(tmp_path))


def test_a_validation_share_that_leaves_nothing_to_train_on_is_refused(tmp_path):
    # 99% of 50 documents rounds up to all 50: scikit-learn's "the resulting train set will be empty" traceback
    corpus = tmp_path / "docs.txt"
    corpus.write_text("\n\n".join(f"document number {i}." for i in range(50)))
    with pytest.raises(
        UserError, match="--validation_split_percentage 99 of 50 documents holds out 50, leaving"
    ):
        load_corpus(DataArguments(train_files=[str(corpus)], validation_split_percentage=99))
    data = load_corpus(DataArguments(train_files=[str(corpus)], validation_split_percentage=97))
    assert (len(data["train"]), len(data["validation"])) == (1, 49)


def _few_documents(tmp_path):
    """One long document and two short ones: the corpus of the fault below."""
    (tmp_path / "c.txt").write_text(
        " ".join(f"word{i}" for i in range(2000)) + "\n\nshort one.\n\nanother short one.\n"
    )
    return ["--train_files", str(tmp_path / "c.txt"), "--block_size", "64"]


def test_a_validation_split_of_too_few_documents_says_so(tmp_path):
    # the advice was always "raise --validation_split_percentage", which cannot help when the validation split
    # already holds all documents but one, and may not when one document holds most of the text
    argv = [*_few_documents(tmp_path), "--vocab_size", "300", "--output_dir", str(tmp_path / "ds")]
    with pytest.raises(UserError) as err:
        tokenize_corpus(
            *parse_args((DataArguments, TokenizeArguments), [*argv, "--validation_split_percentage", "50"])
        )
    message = str(err.value)
    assert "the validation split has fewer than 64 tokens: it got 2 of the corpus's 3 documents" in message
    assert "too few documents" in message and "pass --validation_files" in message
    assert "raise --validation_split_percentage" not in message
    with pytest.raises(
        UserError,
        match=r"got 1 of .* 3 documents .*; raise --validation_split_percentage \(which may not help",
    ):
        tokenize_corpus(*parse_args((DataArguments, TokenizeArguments), argv))
    assert not (tmp_path / "ds").exists()


def test_a_short_split_names_the_fix_for_how_it_was_made(tmp_path):
    corpus = load_corpus(parse_args((DataArguments,), _few_documents(tmp_path))[0])
    held_out = short_split_error("train", corpus, 64)  # the long document went to validation
    assert "training split has fewer than 64 tokens: it got 2 of the corpus's 3" in str(held_out)
    assert "too few documents" in str(held_out)  # 1 document held out: lowering the percentage cannot help
    given = short_split_error("validation", DatasetDict(corpus), 64)  # e.g. --validation_files
    assert "give more validation text (--validation_files" in str(given) and "percentage" not in str(given)


@pytest.mark.parametrize(
    "source",
    [[], ["--dataset_name", "wikitext"], ["--tokenized_dataset", "blocks"]],
    ids=["built-in", "hub", "tokenized"],
)
def test_validation_files_without_train_files_are_refused(source, tmp_path):
    # the run scored the built-in corpus's (the Hub dataset's, the blocks') own validation split, in silence
    (tmp_path / "val.txt").write_text("held-out text\n")
    argv = [*source, "--validation_files", str(tmp_path / "val.txt")]
    with pytest.raises(UserError, match="--validation_files goes with --train_files"):
        parse_args((DataArguments,), argv)


def test_a_dataset_config_name_without_a_dataset_name_is_refused():
    # the built-in corpus trained, the configuration named nowhere
    with pytest.raises(UserError, match="--dataset_config_name names a configuration of --dataset_name"):
        parse_args((DataArguments,), ["--dataset_config_name", "wikitext-103-raw-v1"])


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        # the given files were the validation split: the share was read nowhere
        (["--validation_files", "val.txt"], "--validation_files already give one"),
        # the stream's first --streaming_validation_documents were held out instead
        (["--streaming"], "not read when streaming; pass --streaming_validation_documents"),
    ],
)
def test_a_validation_split_percentage_the_run_would_not_read_is_refused(flags, message):
    argv = ["--train_files", "train.txt", *flags, "--validation_split_percentage", "20"]
    with pytest.raises(UserError, match=message):
        parse_args((DataArguments,), argv)
    parse_args((DataArguments,), ["--train_files", "train.txt", *flags])  # the default is no choice


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        # a loaded corpus held out --validation_split_percentage (5) instead
        ([], "--streaming_validation_documents is read only with --streaming"),
        # the given files were the validation split
        (
            ["--streaming", "--validation_files", "val.txt"],
            "--validation_files already give the validation split",
        ),
    ],
)
def test_streaming_validation_documents_the_run_would_not_read_are_refused(flags, message):
    argv = ["--train_files", "train.txt", *flags, "--streaming_validation_documents", "20"]
    with pytest.raises(UserError, match=message):
        parse_args((DataArguments,), argv)
    parse_args((DataArguments,), ["--train_files", "train.txt", *flags])  # the default is no choice


def test_a_sample_by_the_run_would_not_read_is_refused(tmp_path):
    # a Hub dataset is documents already: the flag was read nowhere
    with pytest.raises(UserError, match="--sample_by splits .txt/.md --train_files into documents"):
        parse_args((DataArguments,), ["--dataset_name", "wikitext", "--sample_by", "line"])
    # so is a file of records: each record was one document, whatever --sample_by said
    (tmp_path / "a.jsonl").write_text('{"text": "one\\n\\ntwo"}\n{"text": "three"}\n')
    with pytest.raises(UserError, match="holds records .*drop --sample_by"):
        load_corpus(DataArguments(train_files=[str(tmp_path / "a.jsonl")], sample_by="line"))
    assert len(load_corpus(DataArguments(train_files=[str(tmp_path / "a.jsonl")]))["train"]) == 1
