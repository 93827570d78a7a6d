"""Label columns that are no set of classes are refused before any model loads."""

import pytest

from tests.finetune.helpers import ANIMALS, MONEY, bert_fails

TEXTS = ANIMALS + MONEY


@pytest.mark.parametrize(
    ("labels", "fix"),
    [
        ([f"{0.37 * i:.2f}" for i in range(16)], "they look like scores"),  # a regression target
        ([str(1000 + i) for i in range(16)], "--label_column"),  # an id column
    ],
)
def test_a_label_column_of_distinct_values_is_refused(labels, fix, tmp_path, capsys):
    """16 distinct scores trained a 16-way classifier with one example per class, silently, scoring 0."""
    train = tmp_path / "train.csv"
    train.write_text("text,label\n" + "".join(f'"{t}",{label}\n' for t, label in zip(TEXTS, labels)))
    err = bert_fails(["--train_file", str(train), "--output_dir", str(tmp_path / "o")], capsys)
    assert f"'label' in {train} has 16 different values among 16 examples" in err and fix in err
    assert not (tmp_path / "o").exists()


def test_few_classes_of_numbers_and_a_small_toy_set_still_train_their_labels():
    from datasets import Dataset, DatasetDict

    from llmkit.finetune.data import ROW, SOURCE, FinetuneDataArguments
    from llmkit.finetune.labels import label_names

    def names(labels):
        rows = {"text": TEXTS[: len(labels)], "label": labels}
        split = Dataset.from_dict({**rows, SOURCE: ["train"] * len(labels), ROW: list(range(len(labels)))})
        return label_names(DatasetDict(train=split), "label", False, FinetuneDataArguments())[0]

    assert names([1.5, 2.0, 2.5, 3.0] * 4) == ["1.5", "2.0", "2.5", "3.0"]  # half stars: classes
    assert len(names([f"c{i}" for i in range(9)])) == 9  # a toy set, one example per class
    assert names(["a", "b"] * 8) == ["a", "b"]


def _split(labels, source="train"):
    from datasets import Dataset

    from llmkit.finetune.data import ROW, SOURCE

    n = len(labels)
    return Dataset.from_dict({"text": TEXTS[:n], "label": labels, SOURCE: [source] * n, ROW: list(range(n))})


def test_a_class_the_held_out_share_took_whole_goes_back_into_training():
    """A random validation share took both 'weather' rows: a class never trained on, scored wrong, unsaid."""
    from datasets import DatasetDict

    from llmkit.finetune.labels import keep_every_class_in_training

    raw = DatasetDict(
        train=_split(["animal", "money"] * 6), validation=_split(["weather", "animal", "weather"])
    )
    kept = keep_every_class_in_training(raw, "label")
    assert kept["train"]["label"].count("weather") == 2 and kept["validation"]["label"] == ["animal"]
    # a validation file is the user's: an unseen label there is refused (test_inputs.py), never moved
    given = DatasetDict(train=raw["train"], validation=_split(["weather", "animal"], source="validation"))
    assert keep_every_class_in_training(given, "label")["validation"]["label"] == ["weather", "animal"]
