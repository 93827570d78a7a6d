"""Tokenizers llmkit trains round-trip text and save like any transformers tokenizer."""

from transformers import AutoTokenizer

from llmkit.data import builtin_texts, train_bpe_tokenizer


def test_bpe_round_trips_text_and_reloads(tmp_path):
    texts = builtin_texts()[:200]
    tokenizer = train_bpe_tokenizer(texts, vocab_size=1000)
    assert 900 < len(tokenizer) <= 1000
    sample = "def f(x):\n    return x ** 2  # ünïcödé, tabs\tand  double  spaces → ✓"
    ids = tokenizer(sample)["input_ids"]
    assert tokenizer.decode(ids) == sample  # byte-level: any text survives
    assert tokenizer.eos_token == tokenizer.pad_token == "<|endoftext|>"

    tokenizer.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    assert reloaded(sample)["input_ids"] == ids
    # merges learned from the corpus
    assert len(tokenizer("The for statement is used to iterate")["input_ids"]) < 20
