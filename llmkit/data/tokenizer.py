"""Tokenizers: load a named one, or train a byte-level BPE (GPT-2 style) on the corpus."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer, GPT2TokenizerFast, PreTrainedTokenizerBase, PreTrainedTokenizerFast

from llmkit import pieces
from llmkit.errors import UserError
from llmkit.loading import load_pretrained
from llmkit.log import get_logger

logger = get_logger(__name__)

STREAM_TOKENIZER_DOCS = 100_000  # documents a streamed corpus lends to BPE training


def tokenizer_training_texts(train, streaming: bool) -> Iterator[str]:
    """The texts BPE training sees, in pretraining and in `llmkit tokenize` alike: the whole training
    split, or a streamed corpus's first documents."""
    if streaming:
        return (row["text"] for row in islice(iter(train), STREAM_TOKENIZER_DOCS))
    return (text for batch in train.iter(batch_size=1000) for text in batch["text"])


EOS = "<|endoftext|>"
DEFAULT_BPE_VOCAB = 8192  # the size of a BPE trained on the corpus when no --vocab_size is given


def check_vocab_size_flag(
    vocab_size: int | None, tokenizer_name: str | None, vocab: int, follows: str
) -> None:
    """Refuse a --vocab_size other than the named tokenizer's size: it sizes only a BPE trained on the corpus,
    so beside --tokenizer_name it was silently ignored. `follows` says what takes the tokenizer's size instead."""
    if vocab_size is None or not tokenizer_name or vocab_size == vocab:
        return
    if vocab_size < vocab:
        raise UserError(
            f"--vocab_size {vocab_size} is smaller than tokenizer {tokenizer_name!r}'s {vocab} tokens; "
            f"drop --vocab_size ({follows}) or use a smaller tokenizer."
        )
    raise UserError(
        f"--vocab_size {vocab_size} is larger than tokenizer {tokenizer_name!r}'s {vocab} tokens, and {follows} "
        "(--vocab_size sizes the BPE trained when no --tokenizer_name is given); drop --vocab_size, or drop "
        "--tokenizer_name to train a BPE of that size."
    )


def train_byte_level_bpe(
    texts: Iterable[str], vocab_size: int, special_tokens: list[str], min_frequency: int = 2
) -> Tokenizer:
    """Train a byte-level BPE `tokenizers.Tokenizer` (GPT-2's scheme): any text encodes, nothing is <unk>."""
    if vocab_size < 257 + len(special_tokens):
        raise UserError(
            f"--vocab_size must exceed 256 bytes + {len(special_tokens)} special tokens, got {vocab_size}."
        )
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=special_tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(
        _batches(piece for text in texts for piece in pieces.text_pieces(text)), trainer=trainer
    )
    return bpe


def train_bpe_tokenizer(
    texts: Iterable[str], vocab_size: int, min_frequency: int = 2
) -> PreTrainedTokenizerFast:
    """Train a GPT-2-style tokenizer whose only special token is <|endoftext|> (also used for padding)."""
    bpe = train_byte_level_bpe(texts, vocab_size, [EOS], min_frequency)
    # Wrapping a tokenizers.Tokenizer object is the reliable way in transformers 5 (vocab_file=/merges_file= builds an empty one).
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token=EOS, eos_token=EOS, unk_token=EOS, pad_token=EOS
    )
    tokenizer.model_max_length = 1_000_000  # the model, not the tokenizer, limits the context
    # the model is sized by the tokenizer: a shortfall made --vocab_size look honoured
    if len(tokenizer) < vocab_size:
        logger.warning(
            f"the BPE has {len(tokenizer):,} tokens, not --vocab_size {vocab_size:,}: the corpus has no more "
            f"pairs seen {min_frequency} times or more to merge. The model's vocabulary follows the tokenizer's."
        )
    return tokenizer


def load_tokenizer(name_or_path: str) -> PreTrainedTokenizerBase:
    """Load a tokenizer by Hub name or local path; make sure it has an end-of-text and a pad token."""
    hint = "Pass a Hub name or a folder with tokenizer.json, or omit --tokenizer_name to train a BPE on the corpus."
    tokenizer = load_pretrained(
        _tokenizer_class(Path(name_or_path).expanduser(), hint), name_or_path, hint=hint
    )
    if tokenizer.eos_token_id is None:
        raise UserError(
            f"tokenizer {name_or_path!r} has no end-of-text token, which packing needs between documents."
        )
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _tokenizer_class(folder: Path, hint: str) -> type:
    """AutoTokenizer, or GPT-2's class for a folder of bare GPT-2 BPE files (vocab.json and merges.txt, no
    tokenizer.json or tokenizer_config.json), which AutoTokenizer cannot place: its error asked for sentencepiece."""
    if not folder.is_dir() or any(
        (folder / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json")
    ):
        return AutoTokenizer
    present = [f for f in ("vocab.json", "merges.txt") if (folder / f).is_file()]
    if len(present) == 2:
        return GPT2TokenizerFast
    if present:
        missing = "merges.txt" if present == ["vocab.json"] else "vocab.json"
        raise UserError(f"{folder} has {present[0]} but no {missing}: a BPE tokenizer needs both. {hint}")
    return AutoTokenizer


def get_tokenizer(
    tokenizer_name: str | None, vocab_size: int, texts: Iterable[str], saved_dir: str | Path | None = None
) -> PreTrainedTokenizerBase:
    """The tokenizer for a run: one saved by an earlier run of it, a named one, or a BPE trained on `texts`."""
    if saved_dir is not None and (Path(saved_dir) / "tokenizer.json").is_file():
        return load_tokenizer(str(saved_dir))  # resuming: the model's embeddings match this one
    if tokenizer_name:
        return load_tokenizer(tokenizer_name)
    return train_bpe_tokenizer(texts, vocab_size)


def tokenizer_fingerprint(tokenizer: PreTrainedTokenizerBase) -> str:
    """A hash of what maps text to ids (vocabulary, merges, pre-tokenizer, special tokens), whatever folder holds it."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        state = json.loads(backend.to_str())
        # encoding options, not the mapping: a saved copy may differ in these alone
        state.pop("truncation", None)
        state.pop("padding", None)
    else:
        state = {"vocab": sorted(tokenizer.get_vocab().items())}
    state["special_tokens"] = tokenizer.special_tokens_map
    return hashlib.sha256(json.dumps(state, sort_keys=True, default=str).encode()).hexdigest()


def _batches(texts: Iterable[str], size: int = 1000) -> Iterator[list[str]]:
    it = iter(texts)
    while batch := list(islice(it, size)):
        yield batch


def encode_documents(tokenizer: PreTrainedTokenizerBase, texts: list[str]) -> list:
    """Each text's token ids followed by end-of-text; a text over PIECE_CHARS is encoded a piece at a time
    into an int32 array (4 bytes a token, not a Python int's 36), so memory follows the piece."""
    eos = tokenizer.eos_token_id
    short = [i for i, t in enumerate(texts) if len(t) <= pieces.PIECE_CHARS]
    docs: list = [None] * len(texts)
    if short:
        ids = tokenizer([texts[i] for i in short], add_special_tokens=False, verbose=False)["input_ids"]
        for i, doc in zip(short, ids):
            docs[i] = doc + [eos]
    for i, text in enumerate(texts):
        if docs[i] is None:
            parts = [
                np.asarray(tokenizer(piece, add_special_tokens=False, verbose=False)["input_ids"], np.int32)
                for piece in pieces.text_pieces(text)
            ]
            docs[i] = np.concatenate([*parts, np.array([eos], np.int32)])
    return docs
