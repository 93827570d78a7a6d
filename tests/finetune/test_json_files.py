"""JSON training files in the wrong shape, or with a malformed line, get llmkit's one line and nothing else."""

import json
import logging

from tests.finetune.helpers import TRAIN, KeptMessages, bert_fails, write_jsonl


def test_a_malformed_line_is_named_by_llmkit_alone(tmp_path, capsys):
    # datasets logged "Failed to load JSON from file '...' with error ...: JSON parse error" before llmkit's line
    lines = [json.dumps(r) for r in TRAIN * 3]
    lines[20] = "not json at all"
    (tmp_path / "bad.jsonl").write_text("\n".join(lines) + "\n")
    kept, source = KeptMessages(), logging.getLogger("datasets.packaged_modules.json.json")
    source.addHandler(kept)
    try:
        err = bert_fails(
            ["--train_file", str(tmp_path / "bad.jsonl"), "--output_dir", str(tmp_path / "o")], capsys
        )
    finally:
        source.removeHandler(kept)
    assert "bad.jsonl:21: malformed JSON" in err and not kept.messages, kept.messages


def test_an_object_of_columns_is_refused_with_the_shapes_that_work(tmp_path, capsys):
    # {"text": [...], "label": [...]} was read as one example and refused as "has only 1 example"
    columns = {"text": [r["text"] for r in TRAIN], "label": [r["label"] for r in TRAIN]}
    (tmp_path / "columns.json").write_text(json.dumps(columns, indent=2))
    err = bert_fails(
        ["--train_file", str(tmp_path / "columns.json"), "--output_dir", str(tmp_path / "o")], capsys
    )
    assert 'holds one JSON object of columns ("text": [...], "label": [...])' in err, err
    assert "a list of records" in err and "JSON lines" in err and "only 1 example" not in err, err


def test_a_single_record_is_refused_with_the_shapes_that_work(tmp_path, capsys):
    (tmp_path / "one.json").write_text(json.dumps(TRAIN[0]))
    err = bert_fails(
        ["--train_file", str(tmp_path / "one.json"), "--output_dir", str(tmp_path / "o")], capsys
    )
    assert "holds a single JSON object, one example" in err and "a list of records" in err, err


def test_records_as_a_list_or_json_lines_still_load(tmp_path):
    from llmkit.finetune.jsonfiles import refuse_one_object

    listed = tmp_path / "list.json"
    listed.write_text(json.dumps(TRAIN, indent=2))
    for path in (
        listed,
        write_jsonl(tmp_path / "rows.jsonl", TRAIN),
        write_jsonl(tmp_path / "rows.json", TRAIN),
    ):
        refuse_one_object(str(path), training=True)  # no error
    refuse_one_object(
        str(write_jsonl(tmp_path / "valid.jsonl", TRAIN[:1])), training=False
    )  # one validation row is allowed
