"""Extractive QA on very long contexts: the run says, before windowing, how many windows they make and why."""

import random

from datasets import Dataset, DatasetDict
from transformers import AutoTokenizer

from llmkit.finetune.common import packaged_minilm
from llmkit.finetune.qa import _warn_if_many_windows
from llmkit.finetune.qa_spans import encode_windows


def _context(n_words: int) -> str:
    rng = random.Random(0)
    words = "the river crossed a valley where farmers grew wheat and barley under a wide sky".split()
    return " ".join(rng.choice(words) for _ in range(n_words))


def _split(contexts):
    return Dataset.from_dict({"question": ["what grew there?"] * len(contexts), "context": contexts})


def test_a_book_length_context_is_announced_with_its_window_count_and_flags(caplog):
    # a 1 MB context took 692 s in windowing and training with not a word of why
    tokenizer = AutoTokenizer.from_pretrained(packaged_minilm())
    long = _context(20_000)
    raw = DatasetDict(train=_split([long, "a short context"]), validation=_split([long]))
    _warn_if_many_windows(raw, tokenizer, 128, 32)
    (said,) = [r.getMessage() for r in caplog.records if "long contexts" in r.getMessage()]
    real = len(
        encode_windows(tokenizer, ["what grew there?"], [long], max_length=128, stride=32)["input_ids"]
    )
    estimate = int(said.split("the longest is about ")[1].split()[0])
    assert abs(estimate - real) <= 0.15 * real, (estimate, real)  # an estimate from a sample, close enough
    assert "the 3 questions make about" in said and "--max_length 128" in said and "--doc_stride 32" in said


def test_ordinary_contexts_say_nothing(caplog):
    tokenizer = AutoTokenizer.from_pretrained(packaged_minilm())
    raw = DatasetDict(train=_split([_context(300)] * 50))
    _warn_if_many_windows(raw, tokenizer, 384, 128)
    assert not [r for r in caplog.records if "long contexts" in r.getMessage()]
