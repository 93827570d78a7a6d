"""A bad file among many is named with its problem: binary data, another encoding, a malformed JSON line."""

import json

import pytest

from llmkit.data import DataArguments, load_corpus
from llmkit.data.filecheck import check_encoding, check_json
from llmkit.errors import UserError


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "texts"
    root.mkdir()
    for i in range(4):
        (root / f"good{i}.txt").write_text(f"a fine paragraph number {i}\n\nand another one\n")
    return root


def test_latin1_file_is_named_with_its_encoding_and_line(folder):
    (folder / "notes.txt").write_bytes("first line\nsecond: caf\u00e9 cr\u00e8me\n".encode("latin-1"))
    with pytest.raises(UserError) as err:
        load_corpus(DataArguments(train_files=[str(folder)]))
    message = str(err.value)
    assert message.startswith(f"{folder / 'notes.txt'}:2: not UTF-8 (byte 0xe9")
    assert "Latin-1" in message and "iconv -f latin1 -t utf-8" in message
    assert "good0.txt" not in message and "DatasetGenerationError" not in message  # only the bad file


def test_binary_file_in_a_folder_is_named(folder):
    (folder / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4)
    with pytest.raises(UserError, match=r"image\.txt is a binary file \(a NUL byte at offset 8\)") as err:
        load_corpus(DataArguments(train_files=[str(folder)]))
    assert "good1.txt" not in str(err.value)


def test_utf16_file_is_named(folder):
    (folder / "export.txt").write_bytes("exported from Windows\n".encode("utf-16"))
    with pytest.raises(UserError, match=r"export\.txt is UTF-16 text .*iconv -f utf-16"):
        load_corpus(DataArguments(train_files=[str(folder)]))


def test_utf16_without_a_byte_order_mark_is_named(folder):
    # it loaded as one UTF-8 "document" full of NULs, and the error was "has a single document"
    (folder / "export.txt").write_bytes("exported from Windows\n\nwithout a mark\n".encode("utf-16-le"))
    with pytest.raises(UserError, match=r"export\.txt looks like UTF-16 text without a byte-order mark"):
        load_corpus(DataArguments(train_files=[str(folder)]))


def test_malformed_jsonl_line_is_located(tmp_path):
    rows = [json.dumps({"text": f"row {i}"}) for i in range(6)]
    rows[4] = '{"text": "unterminated}'
    (tmp_path / "ok.jsonl").write_text("\n".join(json.dumps({"text": f"fine {i}"}) for i in range(5)))
    (tmp_path / "bad.jsonl").write_text("\n".join(rows) + "\n")
    with pytest.raises(UserError, match=r"bad\.jsonl:5: malformed JSON \(Unterminated string") as err:
        load_corpus(DataArguments(train_files=[str(tmp_path / "ok.jsonl"), str(tmp_path / "bad.jsonl")]))
    assert "ok.jsonl" not in str(err.value)


def test_checks_pass_valid_files_and_json_documents(tmp_path):
    # > 1 MiB: chunked
    (tmp_path / "u.txt").write_text("d\u00e9j\u00e0 vu, na\u00efve \U0001f600\n" * 100_000, encoding="utf-8")
    (tmp_path / "a.json").write_text(json.dumps([{"text": "one"}, {"text": "two"}], indent=2))
    (tmp_path / "l.jsonl").write_text('{"text": "one"}\n\n{"text": "two"}\n')
    assert check_encoding(str(tmp_path / "u.txt")) is None
    assert check_json(str(tmp_path / "a.json")) is None and check_json(str(tmp_path / "l.jsonl")) is None


def test_bad_byte_after_the_first_chunk_gets_the_right_line(tmp_path):
    path = tmp_path / "big.txt"
    path.write_bytes(b"x" * 99 + b"\n" + (b"y" * 99 + b"\n") * 20_000 + b"bad \xff byte\n")
    assert check_encoding(str(path)).startswith(
        f"{path}:20002: not UTF-8 (byte 0xff at offset {100 * 20_001 + 4})"
    )


@pytest.mark.parametrize(
    "texts, kind",
    [(["row", 7, "row"], "a mix of strings and other JSON values"), ([["a", "list"], ["b"]], "lists")],
)
def test_a_text_field_that_is_not_a_string_is_named(tmp_path, texts, kind):
    # the empty-document filter called .strip() on it: an AttributeError traceback
    (tmp_path / "rows.jsonl").write_text("\n".join(json.dumps({"text": t}) for t in texts))
    with pytest.raises(UserError, match=rf"the column 'text' of .*rows.jsonl holds {kind}.*must be a string"):
        load_corpus(DataArguments(train_files=[str(tmp_path / "rows.jsonl")]))


def test_a_csv_row_with_more_fields_than_its_header_is_located(tmp_path):
    # it was "could not read ... as csv (DatasetGenerationError: An error occurred while generating the dataset)"
    rows = [f'"row {i}",{i}' for i in range(6)]
    rows[3] = "row 3, with an unquoted comma,3"
    (tmp_path / "rows.csv").write_text("text,id\n" + "\n".join(rows) + "\n")
    with pytest.raises(
        UserError, match=r"rows.csv:5: 3 fields where the header has 2 \(text, id\); quote a field"
    ):
        load_corpus(DataArguments(train_files=[str(tmp_path / "rows.csv")]))


def test_hidden_copies_are_left_out_and_a_byte_order_mark_does_not_start_the_text(folder):
    # .ipynb_checkpoints/ copies were trained on as a second copy of the corpus, without a word
    hidden = folder / ".ipynb_checkpoints"
    hidden.mkdir()
    (hidden / "good0-checkpoint.txt").write_text("a stale copy\n")
    (folder / "bom.txt").write_bytes("\ufeffWindows notes\n\nsecond paragraph\n".encode())
    texts = [
        t for split in load_corpus(DataArguments(train_files=[str(folder)])).values() for t in split["text"]
    ]
    assert not any("stale copy" in t for t in texts)
    assert any(t.startswith("Windows notes") for t in texts) and not any("\ufeff" in t for t in texts)


def test_records_without_text_are_counted_when_left_out(tmp_path, caplog):
    rows = [{"text": f"record {i}"} for i in range(8)] + [
        {"text": None},
        {"title": "no text"},
        {"text": "  "},
    ]
    (tmp_path / "rows.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    with caplog.at_level("WARNING", logger="llmkit"):
        data = load_corpus(DataArguments(train_files=[str(tmp_path / "rows.jsonl")]))
    assert sum(s.num_rows for s in data.values()) == 8
    assert (
        "3 of 11 train records have no text in 'text' (missing, null or blank) and were left out"
        in caplog.text
    )


def test_files_a_folder_holds_but_that_are_not_read_are_named(folder, caplog):
    # a .jsonl.gz shard, a README and an empty file were left out without a word: it looked as if the whole
    # folder had been trained on
    import gzip

    with gzip.open(folder / "more.txt.gz", "wt") as f:
        f.write("compressed paragraph\n")
    (folder / "README").write_text("about this corpus\n")
    (folder / "empty.txt").write_text("")
    with caplog.at_level("WARNING", logger="llmkit"):
        data = load_corpus(DataArguments(train_files=[str(folder)]))
    assert sum(s.num_rows for s in data.values()) == 8  # the four good files' two paragraphs each
    assert f"{folder}: left out 2 file(s) that are not .txt/.md" in caplog.text
    assert f"(.gz, no suffix: {folder / 'README'}, {folder / 'more.txt.gz'})" in caplog.text
    assert f"decompress {folder / 'more.txt.gz'} to train on them" in caplog.text
    assert f"left out 1 empty file(s): {folder / 'empty.txt'}" in caplog.text


def test_what_is_left_out_is_said_by_the_first_rank_only(folder, caplog, monkeypatch):
    # every rank of a launch read the same folder and printed the same warnings, once per rank
    (folder / "README").write_text("about this corpus\n")
    (folder / "rows.jsonl").write_text('{"text": "a"}\n{"title": "no text"}\n')
    for rank, said in (("1", False), ("0", True)):
        monkeypatch.setenv("RANK", rank)
        caplog.clear()
        with caplog.at_level("WARNING", logger="llmkit"):
            load_corpus(DataArguments(train_files=[str(folder / "rows.jsonl"), str(folder / "rows.jsonl")]))
            with pytest.raises(UserError, match="mixed file types"):  # the folder holds .txt and .jsonl
                load_corpus(DataArguments(train_files=[str(folder)]))
        assert ("left out 1 file(s)" in caplog.text) is said
        assert ("records have no text" in caplog.text) is said
