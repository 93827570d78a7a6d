"""The tokenize tests' corpus and the command run in process."""

from pathlib import Path

from llmkit.arguments import parse_args
from llmkit.data import DataArguments, TokenizeArguments, tokenize_corpus

BLOCK = 32
DOCS = [f"Paragraph {i} tells of {'many small things ' * (i % 9)}and then it ends." for i in range(300)]


def tokenize(out: Path, corpus: Path, *extra: str) -> Path:
    """Parse the command's flags exactly as the recipe does and run it in this process."""
    argv = [
        "--train_files",
        str(corpus),
        "--block_size",
        str(BLOCK),
        "--vocab_size",
        "400",
        "--output_dir",
        str(out),
        *extra,
    ]
    return tokenize_corpus(*parse_args((DataArguments, TokenizeArguments), argv))
