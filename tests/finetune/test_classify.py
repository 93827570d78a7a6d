"""The BERT recipe: the real pretrained MiniLM encoder learns text classes and token tags; LoRA; bad input."""

import json

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

from llmkit.cli import main as llmkit_main
from llmkit.recipes.finetune_bert import main as finetune_bert
from tests.finetune.helpers import ANIMALS, FAST, MINILM, MONEY


def test_classifier_learns_and_loads_with_pipeline(classifier):
    out, metrics = classifier
    assert metrics["eval_accuracy"] >= 0.9 and metrics["labels"] == ["animals", "finance"]
    assert (out / "confusion_matrix.png").is_file() and (out / "loss_curve.png").is_file()
    assert metrics["world_size"] == 1 and metrics["train_loss"] > 0 and metrics["wall_time_seconds"] > 0
    card = (out / "README.md").read_text()
    assert "text-classification" in card and "accuracy" in card
    clf = pipeline("text-classification", model=str(out))
    assert clf("The hamster ran in its wheel.")[0]["label"] == "animals"
    assert clf("The central bank cut rates.")[0]["label"] == "finance"


def test_token_classifier_learns_tags(tagging_jsonl, tmp_path):
    metrics = finetune_bert(
        [
            *MINILM,
            "--task",
            "token",
            "--train_file",
            str(tagging_jsonl),
            "--text_column",
            "words",
            "--label_column",
            "labels",
            "--num_train_epochs",
            "2",
            "--learning_rate",
            "2e-4",
            "--output_dir",
            str(tmp_path),
            *FAST,
        ]
    )
    assert metrics["eval_f1"] >= 0.9
    tagger = pipeline("token-classification", model=str(tmp_path), aggregation_strategy="simple")
    found = [e["word"] for e in tagger("we saw seven birds")]
    assert found == ["seven"]


def test_lora_trains_only_adapters_and_merges_exactly(topic_csv, tmp_path):
    metrics = finetune_bert(
        [
            *MINILM,
            "--train_file",
            str(topic_csv),
            "--text_column",
            "sentence",
            "--label_column",
            "topic",
            "--use_lora",
            "--lora_r",
            "4",
            "--merge_lora",
            "--num_train_epochs",
            "2",
            "--learning_rate",
            "1e-3",
            "--max_length",
            "32",
            "--output_dir",
            str(tmp_path),
            *FAST,
        ]
    )
    assert metrics["trainable_parameters"] < 0.05 * metrics["parameters"]
    assert (tmp_path / "adapter_config.json").is_file() and (
        tmp_path / "merged" / "model.safetensors"
    ).is_file()
    from peft import AutoPeftModelForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(tmp_path)
    batch = tokenizer(ANIMALS[:2] + MONEY[:2], return_tensors="pt", padding=True)
    adapter = AutoPeftModelForSequenceClassification.from_pretrained(tmp_path).eval()
    merged = AutoModelForSequenceClassification.from_pretrained(tmp_path / "merged").eval()
    with torch.no_grad():
        assert torch.allclose(adapter(**batch).logits, merged(**batch).logits, atol=1e-4)
    trainable = [n for n, p in adapter.named_parameters() if p.requires_grad]
    assert all("lora_" in n or "classifier" in n for n in trainable)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--text_column", "nope"], "column(s) ['nope'] not found"),
        (
            ["--train_file", "{three}", "--model_name_or_path", "{clf}"],
            "2-label head but the data has 3 labels",
        ),
        (["--label_column", "sentence"], "must be different columns"),
        (["--task", "sequence-ish"], "--task must be"),
        (["--model_name_or_path", "/nonexistent/model"], "no folder at /nonexistent/model"),
    ],
)
def test_bad_input_gets_a_clear_error(extra, message, topic_csv, classifier, tmp_path, capsys):
    out, _ = classifier
    argv = [
        *MINILM,
        "--train_file",
        str(topic_csv),
        "--text_column",
        "sentence",
        "--label_column",
        "topic",
        "--output_dir",
        str(tmp_path / "o"),
    ]
    three = tmp_path / "three.csv"
    three.write_text("sentence,topic\n" + "\n".join(f"example {i},{'abc'[i % 3]}" for i in range(12)))
    argv += [a.replace("{clf}", str(out)).replace("{three}", str(three)) for a in extra]
    with pytest.raises(SystemExit) as exit_:
        llmkit_main(["finetune-bert", *argv])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and message in err and "Traceback" not in err, err
    assert not (tmp_path / "o" / "model.safetensors").exists()  # nothing half-written


def test_missing_labels_empty_and_long_texts(tmp_path, capsys):
    data = tmp_path / "d.jsonl"
    rows = [{"text": t, "label": "a" if i % 2 else "b"} for i, t in enumerate(ANIMALS + MONEY)]
    rows += [{"text": "", "label": "a"}, {"text": "word " * 400, "label": "b"}]
    data.write_text("\n".join(json.dumps(r) for r in rows))
    finetune_bert(
        [
            *MINILM,
            "--train_file",
            str(data),
            "--max_length",
            "16",
            "--num_train_epochs",
            "1",
            "--max_steps",
            "2",
            "--output_dir",
            str(tmp_path / "ok"),
            *FAST,
        ]
    )
    out = capsys.readouterr().out
    assert "dropped 1 example(s) with an empty 'text'" in out and "truncated (raise --max_length" in out

    data.write_text("\n".join(json.dumps(r) for r in rows + [{"text": "no label here", "label": None}] * 3))
    with pytest.raises(SystemExit):
        llmkit_main(
            [
                "finetune-bert",
                *MINILM,
                "--train_file",
                str(data),
                "--output_dir",
                str(tmp_path / "bad"),
                "--validation_split_percentage",
                "50",
            ]
        )
    assert "have no 'label'" in capsys.readouterr().err


def test_truncation_at_the_models_limit_does_not_say_to_raise_max_length(caplog):
    # --max_length 5000 on a 512-token encoder was cut to 512 and the run said "raise --max_length to keep more"
    from datasets import Dataset, DatasetDict

    from llmkit.finetune.trainer import report_truncation

    data = DatasetDict(train=Dataset.from_dict({"truncated": [True, False]}))
    report_truncation(data, 512, "texts", model_limit=512)
    report_truncation(data, 256, "texts", model_limit=512)
    first, second = [r.getMessage() for r in caplog.records if "truncated" in r.getMessage()]
    assert (
        "1 of 2 texts were longer than 512 tokens" in first and "use a model with a longer context" in first
    )
    assert "--max_length" not in first and "raise --max_length to keep more" in second


def _tiny_classifier(out, seed):
    """An untrained two-label BERT with a word-level tokenizer, built in code (no download)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "the", "puppy", "bank", "loan"])}
    core = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=core, unk_token="[UNK]", pad_token="[PAD]").save_pretrained(out)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=6, hidden_size=8, num_hidden_layers=1, num_attention_heads=1)
    config.intermediate_size, config.id2label = 16, {0: "animals", 1: "finance"}
    BertForSequenceClassification(config).save_pretrained(out)


def test_label_probabilities_loads_a_folder_once_and_again_when_it_is_retrained(tmp_path):
    from llmkit.finetune.classify import _classifier, label_probabilities

    _tiny_classifier(tmp_path, seed=0)
    _classifier.cache_clear()
    first = label_probabilities(str(tmp_path), "the puppy")
    assert label_probabilities(str(tmp_path), "the puppy") == first  # the app's second click
    assert _classifier.cache_info().misses == 1 and _classifier.cache_info().hits == 1  # was loaded per click
    _tiny_classifier(tmp_path, seed=1)  # trained again into the same folder: its new weights are used
    assert label_probabilities(str(tmp_path), "the puppy") != first
    assert _classifier.cache_info().misses == 2
