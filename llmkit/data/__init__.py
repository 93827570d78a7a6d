"""Text sources, tokenizers and packing for the language-model recipes."""

from llmkit.data.builtin import builtin_documents, builtin_texts
from llmkit.data.corpus import DataArguments, load_corpus
from llmkit.data.packing import collate_blocks, pack
from llmkit.data.streaming import pack_stream
from llmkit.data.tokenized import TokenizeArguments, load_tokenized, tokenize_corpus
from llmkit.data.tokenizer import get_tokenizer, train_bpe_tokenizer

__all__ = [
    "DataArguments",
    "TokenizeArguments",
    "builtin_documents",
    "builtin_texts",
    "collate_blocks",
    "get_tokenizer",
    "load_corpus",
    "load_tokenized",
    "pack",
    "pack_stream",
    "tokenize_corpus",
    "train_bpe_tokenizer",
]
