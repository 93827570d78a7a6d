"""finetune-qa refuses SQuAD files, windows and models it cannot train on, with one clear line each."""

import json

import pytest
import transformers
from transformers import AutoTokenizer

from llmkit.cli import main as llmkit_main
from llmkit.finetune.common import packaged_minilm
from llmkit.finetune.qa_eval import score_spans
from llmkit.finetune.qa_spans import Span
from tests.finetune.helpers import squad_answers


def _fails(argv, capsys) -> str:
    with pytest.raises(SystemExit) as exit_:
        llmkit_main(["finetune-qa", "--model_name_or_path", packaged_minilm(), *argv])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, err
    return lines[0]


GOOD = {
    "id": "q1",
    "title": "",
    "context": "Ada lives in Rome.",
    "question": "Where?",
    "answers": squad_answers("Rome", 13),
}
NESTED_NO_ANSWERS = {
    "data": [{"title": "t", "paragraphs": [{"context": "Ada.", "qas": [{"id": "x", "question": "?"}]}]}]
}

NESTED_EMPTY_ANSWERS = {
    "data": [
        {
            "title": "t",
            "paragraphs": [
                {
                    "context": "Ada.",
                    "qas": [{"id": "x", "question": "?", "answers": [], "is_impossible": False}],
                }
            ],
        }
    ]
}


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        (
            "cols.jsonl",
            json.dumps({k: v for k, v in GOOD.items() if k != "question"}),
            "no ['question'] column",
        ),
        (
            "start.jsonl",
            json.dumps({**GOOD, "answers": squad_answers("Rome", 3)}),
            "not at answer_start 3 (the text is at 13)",
        ),
        ("nested.json", json.dumps(NESTED_NO_ANSWERS), "question 'x' has no 'answers' field"),
        (
            "unmarked.json",
            json.dumps(NESTED_EMPTY_ANSWERS),
            "question 'x' has 'answers': [] but is not marked 'is_impossible': true",
        ),
        ("empty.jsonl", "", "is empty"),
        # a blank answer was said to be "not in the context"; a number raised a TypeError
        (
            "blank.jsonl",
            json.dumps({**GOOD, "answers": {"text": [""], "answer_start": [13]}}),
            "has the answer text ''; give",
        ),
        (
            "number.jsonl",
            json.dumps({**GOOD, "answers": squad_answers(5, 13)}),
            "has the answer text 5; give",
        ),
    ],
)
def test_bad_squad_files_get_one_clear_line(name, content, expected, tmp_path, capsys):
    path = tmp_path / name
    path.write_text(content)
    err = _fails(["--train_file", str(path), "--output_dir", str(tmp_path / "o")], capsys)
    assert expected in err and str(path) in err
    assert not (tmp_path / "o" / "config.json").exists()


def test_questions_sharing_an_id_are_each_scored_on_their_own(tmp_path, caplog):
    # answers are matched to questions by id: two SQuAD files without ids in one folder (both "1-1-1") or a
    # hand-made file with one id everywhere were scored with the last such question's answer for all of them
    from llmkit.finetune.data import FinetuneDataArguments
    from llmkit.finetune.qa_data import load_qa

    folder = tmp_path / "dev"
    folder.mkdir()
    for name, (context, answer) in {
        "a": ("Ana lives in Oslo.", "Oslo"),
        "b": ("Bo works as a baker.", "baker"),
    }.items():
        qa = {"question": "Which?", "answers": [{"text": answer, "answer_start": context.index(answer)}]}
        article = {"title": name, "paragraphs": [{"context": context, "qas": [qa]}]}
        (folder / f"{name}.json").write_text(json.dumps({"data": [article]}))
    args = FinetuneDataArguments(train_file=str(folder), validation_file=str(folder))
    rows = load_qa(args, builtin=None)["validation"]
    assert len(set(rows["id"])) == 2 and "reuse the id of an earlier one (first: '1-1-1')" in caplog.text
    spans = {qid: Span(text, 0, len(text), 1.0) for qid, text in zip(rows["id"], ["Oslo", "baker"])}
    assert score_spans(spans, rows, threshold=0.0)["exact_match"] == 100


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (
            ["--max_length", "4", "--doc_stride", "0"],
            "--max_length 4 leaves no room for a question and its context",
        ),
        (["--max_length", "0"], "--max_length 0 leaves no room"),
        (["--max_length", "64", "--doc_stride", "-1"], "--doc_stride -1 must be 0 or more"),
        (
            ["--max_length", "64", "--doc_stride", "64"],
            "--doc_stride 64 must be below half of --max_length 64",
        ),
    ],
)
def test_windows_too_short_to_read_are_refused(flags, expected, tmp_path, capsys):
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps(GOOD))
    argv = ["--train_file", str(path), "--validation_file", str(path), "--output_dir", str(tmp_path / "o")]
    err = _fails([*argv, *flags], capsys)
    assert expected in err
    assert not (tmp_path / "o" / "config.json").exists()


def test_a_model_without_a_question_answering_head_is_refused(tmp_path, capsys):
    vit = tmp_path / "vit"  # a real model folder, of a kind that cannot answer questions
    transformers.ViTConfig().save_pretrained(vit)
    AutoTokenizer.from_pretrained(packaged_minilm()).save_pretrained(vit)
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps(GOOD))
    with pytest.raises(SystemExit) as exit_:
        llmkit_main(
            ["finetune-qa", "--model_name_or_path", str(vit), "--train_file", str(path)]
            + ["--validation_file", str(path), "--max_length", "64", "--doc_stride", "16"]
            + ["--output_dir", str(tmp_path / "o")]
        )
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "Traceback" not in err, err
    assert f"error: {vit} is a 'vit' model, which AutoModelForQuestionAnswering cannot load" in err
