"""Tokenizers llmkit trains round-trip text and save like any transformers tokenizer."""

import json

import pytest
from datasets import Dataset
from transformers import AutoTokenizer

from llmkit.arguments import parse_args
from llmkit.data import DataArguments, TokenizeArguments, builtin_texts, tokenize_corpus, train_bpe_tokenizer
from llmkit.data.tokenized import METADATA
from llmkit.errors import UserError
from tests.data.helpers import BLOCK, DOCS


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


def test_a_long_document_is_tokenized_a_piece_at_a_time(monkeypatch):
    """A 200 MB one-line file took more than 17 GB in `llmkit tokenize` (tokenizers hold a few hundred bytes per
    token of the text in one call): a long text is trained on and encoded in pieces, to the same ids."""
    from llmkit import pieces
    from llmkit.data import pack
    from llmkit.data import tokenizer as tokenizer_module

    words = ["alpha", "beta", "gamma", "delta", "x\u4e00\u4e01", "ok.", "don't", "  two"]
    long = " ".join(words[i * 7 % len(words)] for i in range(4000))  # ~25k characters on one line
    monkeypatch.setattr(pieces, "PIECE_CHARS", 1000)
    seen = []
    batches = tokenizer_module._batches
    monkeypatch.setattr(
        tokenizer_module, "_batches", lambda texts: batches(t for t in texts if not seen.append(len(t)))
    )
    tokenizer = train_bpe_tokenizer([long, "a short one"], vocab_size=300)
    assert seen and max(seen) <= 1000

    whole = tokenizer(long, add_special_tokens=False)["input_ids"]
    call = type(tokenizer).__call__
    lengths = []

    def spy(self, text, **kwargs):
        lengths.append(max(len(t) for t in ([text] if isinstance(text, str) else text)))
        return call(self, text, **kwargs)

    monkeypatch.setattr(type(tokenizer), "__call__", spy)
    packed = pack(Dataset.from_dict({"text": ["a short one", long]}), tokenizer, 8)
    assert max(lengths) <= 1000
    short = tokenizer("a short one", add_special_tokens=False)["input_ids"]
    stream = [i for row in packed["input_ids"] for i in row.tolist()]
    expected = short + [tokenizer.eos_token_id] + whole + [tokenizer.eos_token_id]
    assert stream == expected[: len(stream)] and len(expected) - len(stream) < 8


def test_a_folder_of_bare_gpt2_bpe_files_loads(tmp_path):
    # vocab.json + merges.txt (GPT-2's own release format) without tokenizer.json was refused as needing
    # sentencepiece, which would not have helped; vocab.json alone got the same wrong advice
    from llmkit.data.tokenizer import load_tokenizer, train_bpe_tokenizer
    from llmkit.errors import UserError

    texts = ["the cat sat on the mat, then the cat ran."] * 50
    trained = train_bpe_tokenizer(texts, vocab_size=300)
    bare = tmp_path / "bare"
    bare.mkdir()
    trained.backend_tokenizer.model.save(str(bare))  # writes vocab.json and merges.txt
    loaded = load_tokenizer(str(bare))
    sample = "the cat ran on the mat"
    assert loaded(sample)["input_ids"] == trained(sample)["input_ids"]
    assert loaded.eos_token == "<|endoftext|>" and loaded.eos_token_id == trained.eos_token_id
    (bare / "merges.txt").unlink()
    with pytest.raises(UserError, match="has vocab.json but no merges.txt: a BPE tokenizer needs both"):
        load_tokenizer(str(bare))


def test_a_vocabulary_the_corpus_cannot_fill_is_said(caplog):
    # --vocab_size 1000000 on a small corpus gave 289 tokens without a word
    with caplog.at_level("WARNING", logger="llmkit"):
        tokenizer = train_bpe_tokenizer(["the cat sat on the mat."] * 20, vocab_size=100_000)
    assert f"the BPE has {len(tokenizer):,} tokens, not --vocab_size 100,000" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="llmkit"):
        train_bpe_tokenizer(["the cat sat on the mat."] * 20, vocab_size=260)
    assert "not --vocab_size" not in caplog.text


def test_tokenize_refuses_a_vocab_size_the_named_tokenizer_does_not_have(tmp_path, tokenized):
    # --vocab_size 5000 beside --tokenizer_name was ignored without a word: its default (8192) could not be
    # told from a value given; now it is refused as `llmkit pretrain` refuses it
    (tmp_path / "c.txt").write_text("\n\n".join(DOCS))
    out = tmp_path / "ds"
    argv = ["--train_files", str(tmp_path / "c.txt"), "--block_size", str(BLOCK), "--output_dir", str(out)]
    argv += ["--tokenizer_name", str(tokenized / "tokenizer")]
    size = json.loads((tokenized / METADATA).read_text())["vocab_size"]
    flags = lambda *extra: parse_args((DataArguments, TokenizeArguments), [*argv, *extra])  # noqa: E731
    with pytest.raises(UserError, match=rf"--vocab_size 5000 is larger than tokenizer '.*'s {size} tokens"):
        tokenize_corpus(*flags("--vocab_size", "5000"))
    with pytest.raises(UserError, match=rf"--vocab_size 300 is smaller than tokenizer '.*'s {size} tokens"):
        tokenize_corpus(*flags("--vocab_size", "300"))
    assert not out.exists() and flags()[1].vocab_size is None
    # the tokenizer's own size is accepted
    done = tokenize_corpus(*flags("--vocab_size", str(size)))
    assert json.loads((done / METADATA).read_text())["vocab_size"] == size
