"""Tokenize a corpus once into packed, memory-mapped blocks; pretraining then starts without tokenizing.

    python recipes/tokenize_corpus.py --output_dir data/builtin-1024                    # built-in corpus, BPE 8192
    python recipes/tokenize_corpus.py --train_files my_texts/ --tokenizer_name gpt2 --block_size 1024 \\
        --num_proc 8 --output_dir data/mine
    accelerate launch recipes/pretrain_gpt2.py --tokenized_dataset data/mine --preset gpt2 --max_steps 20000

`llmkit tokenize` takes the same flags. The corpus flags are those of recipes/pretrain_gpt2.py.
"""

from llmkit.arguments import parse_args
from llmkit.data import DataArguments, TokenizeArguments, tokenize_corpus
from llmkit.errors import run_cli

TYPES = (DataArguments, TokenizeArguments)


def main(argv: list[str] | None = None) -> str:
    """Tokenize the corpus the flags describe; returns the output folder."""
    data_args, tokenize_args = parse_args(TYPES, argv, hide=("tokenized_dataset",))
    return str(tokenize_corpus(data_args, tokenize_args))


if __name__ == "__main__":
    run_cli(main)
