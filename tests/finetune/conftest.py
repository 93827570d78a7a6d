"""Small separable datasets and trained models the fine-tuning tests share (session fixtures; the topic CSV and
the digits mapping are in tests/conftest.py, which the two-rank launch shares too)."""

import json
import random

import pytest

from tests.finetune.helpers import FAST, MINILM


@pytest.fixture(scope="session")
def tagging_jsonl(tmp_path_factory):
    """Tag number words: 'I have three cats' -> O O B-NUM O."""
    path = tmp_path_factory.mktemp("tok") / "tags.jsonl"
    rng = random.Random(0)
    numbers = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
    words = [
        "I",
        "have",
        "cats",
        "we",
        "saw",
        "birds",
        "there",
        "are",
        "apples",
        "on",
        "the",
        "table",
        "she",
        "bought",
        "books",
    ]
    rows = []
    for _ in range(160):
        tokens = rng.sample(words, 5)
        tokens.insert(rng.randrange(6), rng.choice(numbers))
        rows.append({"words": tokens, "labels": ["B-NUM" if t in numbers else "O" for t in tokens]})
    path.write_text("\n".join(json.dumps(r) for r in rows))
    return path


@pytest.fixture(scope="session")
def classifier(topic_csv, tmp_path_factory):
    """MiniLM fine-tuned on the animals/finance fixture: (output dir, metrics)."""
    from llmkit.recipes.finetune_bert import main as finetune_bert

    out = tmp_path_factory.mktemp("clf")
    metrics = finetune_bert(
        [
            *MINILM,
            "--train_file",
            str(topic_csv),
            "--text_column",
            "sentence",
            "--label_column",
            "topic",
            "--num_train_epochs",
            "3",
            "--learning_rate",
            "1e-4",
            "--max_length",
            "32",
            "--output_dir",
            str(out),
            *FAST,
        ]
    )
    return out, metrics


@pytest.fixture(scope="session")
def small_t5_dir(digits_jsonl, tmp_path_factory):
    """A briefly trained small T5 on the digits mapping."""
    from llmkit.recipes.finetune_t5 import main as finetune_t5

    out = tmp_path_factory.mktemp("t5")
    finetune_t5(
        [
            "--train_file",
            str(digits_jsonl),
            "--text_column",
            "words",
            "--target_column",
            "digits",
            "--from_scratch",
            "--scratch_vocab_size",
            "300",
            "--max_steps",
            "20",
            "--eval_strategy",
            "no",
            "--save_strategy",
            "no",
            "--load_best_model_at_end",
            "false",
            "--output_dir",
            str(out),
            *FAST,
        ]
    )
    return out
