"""Label sets for classification and tagging, checked against every split before any training.

The classes are those of the training data. A label that only the validation or test file has cannot be
learned (it would become a class that caps accuracy), and a blank label has no class at all: both are
refused with the file and line of the example, read from where the row came from, not from its shuffled
position.
"""

from __future__ import annotations

from datasets import DatasetDict, concatenate_datasets

from llmkit.errors import UserError
from llmkit.finetune.data import ROW, SOURCE, FinetuneDataArguments, describe, locate
from llmkit.log import get_logger

logger = get_logger(__name__)


def key(value) -> str:
    """A label as the model's label map spells it (CSV readers give ints, JSON strings)."""
    return str(value).strip()


def label_names(
    raw: DatasetDict, column: str, token_task: bool, data_args: FinetuneDataArguments
) -> tuple[list[str], bool]:
    """The label names (tags: "O" first) and whether the task is multi-label; refuse blank and unseen labels."""
    feature = raw["train"].features[column]
    names = getattr(getattr(feature, "feature", None), "names", None) or getattr(feature, "names", None)
    if names:  # a ClassLabel feature: integers with names, the same in every split
        _require_two_classes(raw["train"][column], names, token_task, data_args, column)
        return list(names), False
    rows = [
        (source, row, value)
        for split in raw.values()
        for source, row, value in zip(split[SOURCE], split[ROW], split[column])
    ]
    multi = not token_task and any(isinstance(v, list) for _, _, v in rows)
    listed = token_task or multi
    blank = sorted((s, r) for s, r, v in rows if _blank(v, listed))
    if blank:
        where = ", ".join(locate(data_args, s, r) for s, r in blank[:5]) + (" ..." if len(blank) > 5 else "")
        raise UserError(f"{len(blank)} example(s) have no {column!r}: {where}. Label them or remove them.")
    objects = sorted((s, r, v) for s, r, v in rows if _object(v))
    if objects:  # its text would become a class name: {'k': 0}
        source, row, value = objects[0]
        raise UserError(
            f"{locate(data_args, source, row)}: {column!r} is {value!r:.60}, not a label; a label is a class name "
            "or number (a list of them for multi-label)."
        )
    seen = {key(x) for s, _, v in rows if s == "train" for x in (v if listed else [v])}
    unseen = sorted(
        (s, r, key(x))
        for s, r, v in rows
        if s != "train"
        for x in (v if listed else [v])
        if key(x) not in seen
    )
    if unseen:
        source, row, label = unseen[0]
        others = sorted({u[2] for u in unseen} - {label})
        raise UserError(
            f"label {label!r} in {locate(data_args, source, row)} does not occur in the training data "
            f"({describe(data_args, 'train')})"
            + (f"; nor do {others}" if others else "")
            + ". A model cannot learn "
            f"a class it never sees: add training examples with it, or remove those rows from {describe(data_args, source)}."
        )
    if not multi:  # one label of many can be present or absent: a multi-label set with one label still learns
        _require_two_classes([v for s, _, v in rows if s == "train"], None, token_task, data_args, column)
    if not listed:
        _refuse_one_example_classes([v for s, _, v in rows if s == "train"], data_args, column)
    if token_task and "O" in seen:
        return ["O", *sorted(seen - {"O"})], False
    if token_task and all(tag.lstrip("-").isdigit() for tag in seen):  # "0" is read as an entity type, not O
        logger.warning(
            f"warning: the tags in {column!r} are numbers without names, so none means 'outside any entity' (O): "
            "entity F1 counts every word as an entity and becomes word accuracy. Write the tags as names "
            "(O, B-PER, I-PER, ...) for entity-level scores."
        )
    return sorted(seen), multi


def _require_two_classes(values: list, names, token_task: bool, data_args, column: str) -> None:
    """A classifier trained on one class learns nothing (and scores 100% on a validation split of it): refuse."""
    seen = {key(x) for v in values for x in (v if token_task else [v])}
    if len(seen) > 1:
        return
    label = next(iter(seen), "")
    label = names[int(label)] if names and label.lstrip("-").isdigit() else label
    what = "tag" if token_task else "label"
    raise UserError(
        f"every example in {describe(data_args, 'train')} has the same {what} ({label!r} in column {column!r}): "
        f"a classifier needs at least two classes. Add examples of another class, or name the column that "
        f"holds the classes with --label_column."
    )


def keep_every_class_in_training(raw: DatasetDict, column: str) -> DatasetDict:
    """Move back into training the held-out validation rows of a class that no training row has.

    A validation share split off the training file at random can take every example of a rare class: the model
    then had a class it was never shown, scored as wrong on each of them, and nothing said so.
    """
    trained = {key(v) for v in raw["train"][column] if not isinstance(v, list)}
    held = raw["validation"]
    back = [
        i
        for i, (source, value) in enumerate(zip(held[SOURCE], held[column]))
        if source == "train" and not isinstance(value, list) and key(value) not in trained
    ]
    if not back or len(back) == len(held):  # nothing to move, or nothing would be left to score
        return raw
    classes = sorted({key(held[column][i]) for i in back})
    logger.info(
        f"moved {len(back)} held-out example(s) of {classes} back into training: the validation share had taken "
        "every example of these classes"
    )
    kept = sorted(set(range(len(held))) - set(back))
    return DatasetDict(
        {
            **raw,
            "train": concatenate_datasets([raw["train"], held.select(back)]),
            "validation": held.select(kept),
        }
    )


def _refuse_one_example_classes(values: list, data_args: FinetuneDataArguments, column: str) -> None:
    """A label column of mostly distinct values (a score, an id) is no set of classes: refuse it.

    Each value would become a class of its own, with a single example to learn from; 40 regression scores trained
    a 40-way classifier, silently, whose held-out examples all had classes it never saw.
    """
    labels = [key(v) for v in values]
    distinct = sorted(set(labels))
    if len(distinct) < 10 or 2 * len(distinct) <= len(labels):
        return
    numbers = all(_is_number(label) for label in distinct)
    fix = (
        "they look like scores, and finetune-bert predicts classes: bin them into a few classes first"
        if numbers and not all(label.lstrip("-").isdigit() for label in distinct)
        else "name the column that holds the classes with --label_column, or add examples to each class"
    )
    raise UserError(
        f"{column!r} in {describe(data_args, 'train')} has {len(distinct)} different values among {len(labels)} "
        f"examples ({', '.join(distinct[:4])}, ...): fewer than two examples per class to learn from; "
        f"{fix}."
    )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def check_word_tags(raw: DatasetDict, columns: tuple[str, str], data_args: FinetuneDataArguments) -> None:
    """A tagging example is a list of words with one tag per word; name the first that is not."""
    words_col, tags_col = columns
    rows = [
        r for split in raw.values() for r in zip(split[SOURCE], split[ROW], split[words_col], split[tags_col])
    ]
    for source, row, words, tags in sorted(rows, key=lambda r: (r[0], r[1])):  # file order, whatever the seed
        where = locate(data_args, source, row)
        if not isinstance(words, list):
            raise UserError(
                f"{where}: {words_col!r} is {words!r:.60}, not a list of words; --task token needs "
                f'["word", ...] and a tag per word in {tags_col!r}.'
            )
        if not isinstance(tags, list) or len(tags) != len(words):
            count = f"{len(tags)} tags" if isinstance(tags, list) else f"{tags!r:.40} (not a list of tags)"
            raise UserError(
                f"{where}: {len(words)} words in {words_col!r} but {count} in {tags_col!r}; give one tag per word."
            )


def _object(value) -> bool:
    """A JSON object (or a list holding one) where a label or a list of labels belongs."""
    return isinstance(value, dict) or (
        isinstance(value, list) and any(isinstance(x, (dict, list)) for x in value)
    )


def _blank(value, listed: bool) -> bool:
    if value is None:
        return True
    if isinstance(value, list):
        return any(v is None or (isinstance(v, str) and not v.strip()) for v in value)
    return not listed and isinstance(value, str) and not value.strip()


def multi_hot(values: list, label2id: dict) -> list[float]:
    """A multi-label target: 1.0 at each of the example's labels."""
    row = [0.0] * len(label2id)
    for v in values:
        row[label2id[key(v)]] = 1.0
    return row


def align(word_ids: list[int | None], tags: list, label2id: dict) -> list[int]:
    """Label each word's first sub-token; other sub-tokens and special tokens are ignored (-100)."""
    out, previous = [], None
    for w in word_ids:
        out.append(
            -100
            if w is None or w == previous
            else label2id[key(tags[w])]
            if isinstance(tags[w], str)
            else int(tags[w])
        )
        previous = w
    return out
