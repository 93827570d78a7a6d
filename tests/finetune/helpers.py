"""Flags and texts the fine-tuning tests share, and a helper that runs a recipe in-process."""

import json
import logging

import pytest

from llmkit.cli import main as llmkit_main
from llmkit.finetune.common import packaged_minilm

MINILM = ["--model_name_or_path", packaged_minilm()]  # a real pretrained BERT-family encoder, offline
FAST = [
    "--per_device_train_batch_size",
    "8",
    "--per_device_eval_batch_size",
    "16",
    "--logging_steps",
    "5",
    "--disable_tqdm",
    "true",
    "--save_total_limit",
    "1",
]

ANIMALS = [
    "The cat sat on the warm mat and purred.",
    "A dog barked at the mail carrier.",
    "The parrot repeated every word.",
    "Our rabbit hops around the garden.",
    "The horse galloped across the field.",
    "A kitten chased a ball of yarn.",
    "The goldfish swims in circles.",
    "Wolves howl at night in the forest.",
]
MONEY = [
    "The bank raised its interest rate again.",
    "Stocks fell sharply after the earnings report.",
    "She paid the invoice by wire transfer.",
    "Inflation eroded the value of savings.",
    "The bond yield climbed to five percent.",
    "He refinanced the mortgage at a lower rate.",
    "Quarterly revenue beat the forecast.",
    "The budget deficit widened this year.",
]


def run(recipe_main, argv):
    """Run a recipe's main() in this process, as `python recipes/X.py argv` would."""
    return recipe_main(argv)


def bert_fails(argv, capsys) -> str:
    """Run finetune-bert on the packaged MiniLM, expect a clean refusal (exit 2); its `error:` line."""
    with pytest.raises(SystemExit) as exit_:
        llmkit_main(["finetune-bert", *MINILM, *argv])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "Traceback" not in err, err
    return next(line for line in err.splitlines() if line.startswith("error: "))


def write_jsonl(path, rows):
    """Write rows as JSON lines; the path."""
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


TRAIN = [{"text": t, "label": "animal"} for t in ANIMALS] + [{"text": t, "label": "money"} for t in MONEY]


class KeptMessages(logging.Handler):
    """Keeps the messages a logger lets through its filters, to assert on what a user would see."""

    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def squad_answers(text, start):
    """A SQuAD record's `answers` field: one answer at `start`, or none (an unanswerable question) for ''."""
    return {"text": [text], "answer_start": [start]} if text else {"text": [], "answer_start": []}
