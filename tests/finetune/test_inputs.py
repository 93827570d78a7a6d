"""Bad labels and bad model paths are refused with the file, line or folder and the fix; real failures pass through."""

import pytest
import torch
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

from llmkit.errors import UserError
from llmkit.loading import load_pretrained
from tests.finetune.helpers import ANIMALS, MINILM, MONEY, TRAIN, bert_fails, write_jsonl


def test_a_label_only_in_the_validation_file_is_refused(tmp_path, capsys):
    train = write_jsonl(tmp_path / "train.jsonl", TRAIN)
    valid = write_jsonl(
        tmp_path / "valid.jsonl", [*TRAIN[:3], {"text": "The weather is mild.", "label": "weather"}]
    )
    err = bert_fails(
        ["--train_file", str(train), "--validation_file", str(valid), "--output_dir", str(tmp_path / "o")],
        capsys,
    )
    assert "label 'weather'" in err and f"{valid} line 4" in err and "add training examples" in err
    assert not (tmp_path / "o" / "config.json").exists()


@pytest.mark.parametrize("where", ["train", "validation"])
def test_a_blank_label_names_its_file_and_line_whatever_the_seed(where, tmp_path, capsys):
    rows = [dict(r) for r in TRAIN]
    train_rows, valid_rows = (rows, [dict(r) for r in TRAIN[:4]])
    target = train_rows if where == "train" else valid_rows
    target[2]["label"] = None
    target[3]["label"] = "  "
    train = write_jsonl(tmp_path / "train.jsonl", train_rows)
    valid = write_jsonl(tmp_path / "valid.jsonl", valid_rows)
    bad = train if where == "train" else valid
    messages = []
    for seed in ("1", "2"):
        err = bert_fails(
            [
                "--train_file",
                str(train),
                "--validation_file",
                str(valid),
                "--seed",
                seed,
                "--output_dir",
                str(tmp_path / "o"),
            ],
            capsys,
        )
        messages.append(err)
    assert messages[0] == messages[1]  # the shuffling does not change the message
    assert f"2 example(s) have no 'label': {bad} line 3, {bad} line 4" in messages[0]


def test_a_blank_label_in_a_held_out_csv_row_is_located(tmp_path, capsys):
    data = tmp_path / "d.csv"
    lines = [f'"{t}",{"a" if i % 2 else "b"}' for i, t in enumerate(ANIMALS + MONEY)]
    lines[9] = f'"{MONEY[1]}",'  # row 10: line 11 of the file, after the header
    data.write_text("text,label\n" + "\n".join(lines) + "\n")
    for seed in ("1", "7"):  # held out for validation or not, depending on the seed: the same message
        err = bert_fails(
            [
                "--train_file",
                str(data),
                "--seed",
                seed,
                "--validation_split_percentage",
                "50",
                "--output_dir",
                str(tmp_path / "o"),
            ],
            capsys,
        )
        assert f"1 example(s) have no 'label': {data} line 11" in err


def test_loading_names_the_problem(tmp_path, monkeypatch):
    with pytest.raises(UserError, match="no folder at /nonexistent/model"):
        load_pretrained(AutoModelForSequenceClassification, "/nonexistent/model")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("hello")
    with pytest.raises(UserError, match="no config.json in .*notes: it is not a model folder"):
        load_pretrained(AutoConfig, tmp_path / "notes")
    with pytest.raises(UserError, match="no tokenizer files"):
        load_pretrained(AutoTokenizer, tmp_path / "notes")
    with pytest.raises(UserError, match="HF_HUB_OFFLINE=1 is set.*packaged") as err:
        load_pretrained(AutoConfig, "bert-base-uncased", hint="Use the packaged model")
    assert "not in the local cache" in str(err.value)
    with pytest.raises(UserError, match="is a file, not a model folder"):
        load_pretrained(AutoConfig, tmp_path / "notes" / "a.txt")
    # a run folder's missing checkpoint was reported as a Hub id the Hub could not be reached for
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        UserError, match="no folder at notes/checkpoint-9: notes is a folder here, but it holds no"
    ):
        load_pretrained(AutoConfig, "notes/checkpoint-9")


def test_loading_lets_real_failures_through():
    class RunsOutOfMemory:
        @classmethod
        def from_pretrained(cls, name, **kwargs):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    class HasABug:
        @classmethod
        def from_pretrained(cls, name, **kwargs):
            raise TypeError("unexpected keyword argument 'labelz'")

    with pytest.raises(torch.OutOfMemoryError):
        load_pretrained(RunsOutOfMemory, "bert-base-uncased")
    with pytest.raises(TypeError, match="labelz"):
        load_pretrained(HasABug, "bert-base-uncased")


def test_an_empty_test_file_is_refused(tmp_path, capsys):
    train = write_jsonl(tmp_path / "train.jsonl", TRAIN)
    (tmp_path / "test.jsonl").write_text("")
    err = bert_fails(
        [
            "--train_file",
            str(train),
            "--test_file",
            str(tmp_path / "test.jsonl"),
            "--output_dir",
            str(tmp_path / "o"),
        ],
        capsys,
    )
    assert "test.jsonl" in err


@pytest.mark.parametrize("task", ["sequence", "token"])
def test_a_label_column_with_one_class_is_refused(task, tmp_path, capsys):
    if task == "token":
        rows = [{"tokens": t.split(), "tags": ["O"] * len(t.split())} for t in ANIMALS + MONEY]
    else:
        rows = [{"text": t, "label": "animal"} for t in ANIMALS + MONEY]
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    err = bert_fails(
        ["--task", task, "--train_file", str(train), "--output_dir", str(tmp_path / "o")], capsys
    )
    what = "tag ('O'" if task == "token" else "label ('animal'"
    assert f"every example in {train} has the same {what}" in err and "at least two classes" in err
    assert not (tmp_path / "o" / "config.json").exists()


def test_a_one_row_or_header_only_csv_is_named_in_one_line(tmp_path, capsys):
    one = tmp_path / "one.csv"
    one.write_text('text,label\n"The cat sat on the mat.",animal\n')
    err = bert_fails(["--train_file", str(one), "--output_dir", str(tmp_path / "o")], capsys)
    assert f"{one} has only 1 example" in err and "--validation_file" in err
    header = tmp_path / "header.csv"
    header.write_text("text,label\n")
    err = bert_fails(["--train_file", str(header), "--output_dir", str(tmp_path / "o")], capsys)
    assert f"{header} has no examples" in err and "corresponds to no data" not in err
    train = write_jsonl(tmp_path / "train.jsonl", TRAIN)
    argv = ["--train_file", str(train), "--validation_file", str(header), "--output_dir", str(tmp_path / "o")]
    assert f"{header} has no examples" in bert_fails(argv, capsys)


def test_a_text_column_of_numbers_is_read_as_text():
    from datasets import Dataset, DatasetDict

    from llmkit.finetune.data import drop_empty

    raw = DatasetDict(
        train=Dataset.from_list([{"answer": 4}, {"answer": None}, {"answer": 12}]),
        validation=Dataset.from_list([{"answer": 2.5}]),
    )
    kept, dropped = drop_empty(raw, "answer")  # a JSON answer 4 used to end in "int has no len()"
    assert dropped == 1
    assert kept["train"]["answer"] == ["4", "12"] and kept["validation"]["answer"] == ["2.5"]


@pytest.mark.parametrize("where", ["train", "validation"])
def test_a_file_whose_texts_are_all_empty_is_named(where, tmp_path, capsys):
    # a validation file of empty texts ended in "Column 'truncated' doesn't exist"; a training file in "every
    # example has the same label ''" (finetune-gpt2 and a T5 of empty targets: tracebacks too)
    empty = write_jsonl(
        tmp_path / "empty.jsonl", [{"text": " ", "label": "animal"}, {"text": "", "label": "money"}]
    )
    files = [str(empty)] if where == "train" else [str(write_jsonl(tmp_path / "t.jsonl", TRAIN)), str(empty)]
    argv = ["--train_file", files[0], *(["--validation_file", files[1]] if files[1:] else [])]
    err = bert_fails([*argv, "--output_dir", str(tmp_path / "o")], capsys)
    assert f"every example in {empty} has an empty 'text'" in err and "--text_column" in err
    assert not (tmp_path / "o").exists()


def test_a_split_whose_column_is_all_blank_is_refused_for_every_recipe():
    from datasets import Dataset, DatasetDict

    from llmkit.finetune.data import drop_empty

    raw = DatasetDict(
        train=Dataset.from_list([{"src": "one", "tgt": "1"}]),
        validation=Dataset.from_list([{"src": "two", "tgt": ""}]),
    )
    with pytest.raises(UserError, match="every example in the validation data has an empty 'tgt'"):
        drop_empty(raw, "tgt")


def test_lora_target_modules_are_split_at_commas_and_a_name_no_layer_has_is_refused(tmp_path, capsys):
    # "query,value" (as the README writes the defaults) matched no layer; "query vlaue" adapted query alone
    from llmkit.finetune.lora import LoraArguments, apply_lora

    model = AutoModelForSequenceClassification.from_pretrained(MINILM[1], num_labels=2)
    wrapped = apply_lora(model, LoraArguments(use_lora=True, lora_target_modules=["query,value"]), "SEQ_CLS")
    adapted = {
        n.split(".lora_A")[0].rsplit(".", 1)[-1] for n, _ in wrapped.named_parameters() if "lora_A" in n
    }
    assert adapted == {"query", "value"}
    train = write_jsonl(tmp_path / "train.jsonl", TRAIN)
    argv = ["--train_file", str(train), "--output_dir", str(tmp_path / "o"), "--use_lora"]
    err = bert_fails([*argv, "--lora_target_modules", "query", "vlaue"], capsys)
    assert "--lora_target_modules vlaue: no layer" in err and "value" in err.split("named")[1]
    assert not (tmp_path / "o" / "config.json").exists()


@pytest.mark.parametrize("odd", [7, {"a": 1}])
def test_a_text_column_mixing_strings_and_other_json_values_is_named(odd, tmp_path, capsys):
    # a number beside strings ended in "int has no len()", an object in the tokenizer's TypeError: tracebacks
    rows = [dict(row) for row in TRAIN]
    rows[3]["text"] = odd
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    err = bert_fails(["--train_file", str(train), "--output_dir", str(tmp_path / "o")], capsys)
    assert (
        f"the 'text' column of the train data holds {type(odd).__name__} values such as {odd!r} beside" in err
    )


def test_a_weights_file_cut_short_is_named_and_a_whole_folder_still_lets_real_failures_through(tmp_path):
    from transformers import BertConfig

    config = BertConfig(
        vocab_size=100, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64
    )
    AutoModelForSequenceClassification.from_config(config).save_pretrained(tmp_path / "m")
    weights = tmp_path / "m" / "model.safetensors"
    whole = weights.read_bytes()

    class RunsOutOfMemory:
        @classmethod
        def from_pretrained(cls, name, **kwargs):
            raise torch.OutOfMemoryError("CUDA out of memory.")

    with pytest.raises(torch.OutOfMemoryError):
        load_pretrained(RunsOutOfMemory, tmp_path / "m")
    # safetensors' SafetensorError traceback ("header too small", "incomplete metadata")
    for cut, problem in ((b"", "has a damaged header"), (whole[: len(whole) // 2], "is truncated")):
        weights.write_bytes(cut)
        with pytest.raises(UserError, match=f"model.safetensors {problem} \\(a save or copy cut short\\)"):
            load_pretrained(AutoModelForSequenceClassification, tmp_path / "m")
    weights.write_bytes(whole)
    # a JSON file cut short: a JSONDecodeError/OSError traceback, or (generation_config.json) silently ignored
    for name in ("config.json", "generation_config.json"):
        good = tmp_path / "m" / name
        text = good.read_text() if good.is_file() else '{"max_length": 20}'
        good.write_text(text[: len(text) // 2])
        with pytest.raises(UserError, match=f"m/{name} is not valid JSON .*cut short"):
            load_pretrained(AutoModelForSequenceClassification, tmp_path / "m")
        good.write_text(text)


def test_tagging_rows_without_one_tag_per_word_are_located(tmp_path, capsys):
    rows = [{"tokens": ["The", "cat", "sat"], "tags": ["O", "B-ANIMAL", "O"]} for _ in range(12)]
    rows[7] = {
        "tokens": ["A", "dog", "barked"],
        "tags": ["O", "B-ANIMAL"],
    }  # an IndexError traceback in align
    short = write_jsonl(tmp_path / "short.jsonl", rows)
    argv = ["--task", "token", "--output_dir", str(tmp_path / "o")]
    err = bert_fails(["--train_file", str(short), *argv], capsys)
    assert f"{short} line 8: 3 words in 'tokens' but 2 tags in 'tags'; give one tag per word." in err
    rows[7] = {"tokens": "A dog barked", "tags": ["O", "B-ANIMAL", "O"]}
    text = write_jsonl(tmp_path / "text.jsonl", rows)
    err = bert_fails(["--train_file", str(text), *argv], capsys)
    assert f"{text} line 8: 'tokens' is 'A dog barked', not a list of words" in err
    assert not (tmp_path / "o").exists()


def test_number_tags_without_names_are_said_to_score_words_not_entities(caplog):
    # tags 0/1/2 from a JSONL trained with "0" read as an entity type: eval_f1 was word accuracy, shown as F1
    from datasets import Dataset, DatasetDict

    from llmkit.finetune.data import ROW, SOURCE, FinetuneDataArguments
    from llmkit.finetune.labels import label_names
    from llmkit.finetune.metrics import entity_f1

    rows = [{"tags": [0, 1, 0], SOURCE: "train", ROW: i} for i in range(3)] + [
        {"tags": [2, 0], SOURCE: "train", ROW: 3}
    ]
    names, _ = label_names(DatasetDict(train=Dataset.from_list(rows)), "tags", True, FinetuneDataArguments())
    assert names == ["0", "1", "2"] and "entity F1 counts every word as an entity" in caplog.text
    scores = entity_f1([["0", "1", "1"]], [["0", "1", "0"]])
    assert scores["f1"] == scores["token_accuracy"]  # what the warning says
    caplog.clear()
    named = [{"tags": ["O", "B-X"], SOURCE: "train", ROW: 0}]
    label_names(DatasetDict(train=Dataset.from_list(named)), "tags", True, FinetuneDataArguments())
    assert "entity F1" not in caplog.text


def test_a_label_that_is_a_json_object_is_refused(tmp_path, capsys):
    # it trained, the object's text becoming a class name
    rows = [{"text": t, "label": {"kind": i % 2}} for i, t in enumerate(ANIMALS + MONEY)]
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    err = bert_fails(["--train_file", str(train), "--output_dir", str(tmp_path / "o")], capsys)
    assert f"{train} line 1: 'label' is {{'kind': 0}}, not a label" in err, err
    assert not (tmp_path / "o" / "config.json").exists()


def test_a_validation_file_that_is_training_data_is_said_and_a_semicolon_csv_is_named(tmp_path, caplog):
    # scores on a copy of the training file measured memorisation, without a word; a ';'-separated CSV was
    # reported as one column 'text;label'
    from llmkit.finetune.builtin import classification_sample
    from llmkit.finetune.data import FinetuneDataArguments, load_table

    train = write_jsonl(tmp_path / "train.jsonl", TRAIN)
    copy = tmp_path / "copy.jsonl"
    copy.write_bytes(train.read_bytes())
    for valid in (train, copy):
        caplog.clear()
        args = FinetuneDataArguments(train_file=str(train), validation_file=str(valid))
        load_table(args, classification_sample, ["text", "label"])
        assert f"the validation file {valid} is also training data" in caplog.text
    caplog.clear()
    other = write_jsonl(tmp_path / "other.jsonl", TRAIN[:2])
    load_table(
        FinetuneDataArguments(train_file=str(train), validation_file=str(other)),
        classification_sample,
        ["text", "label"],
    )
    assert "also training data" not in caplog.text
    semi = tmp_path / "semi.csv"
    semi.write_text("text;label\n" + "".join(f"{r['text']};{r['label']}\n" for r in TRAIN))
    with pytest.raises(
        UserError, match="the data has \\['text;label'\\].*It looks ';'-separated: save it with commas"
    ):
        load_table(FinetuneDataArguments(train_file=str(semi)), classification_sample, ["text", "label"])


def test_finetune_gpt2_does_not_write_into_finetune_berts_folder():
    # both defaulted to runs/finetune: the README's bert-then-gpt2 order resumed BERT's checkpoint as GPT-2
    from llmkit.arguments import parse_args
    from recipes import finetune_bert, finetune_gpt2

    folders = {parse_args(m.TYPES, [])[-1].output_dir for m in (finetune_bert, finetune_gpt2)}
    assert folders == {"runs/finetune", "runs/finetune-gpt2"}
